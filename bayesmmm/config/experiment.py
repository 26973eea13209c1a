"""Experiment configuration: pydantic models that round-trip to and from YAML.

Every model forbids unknown keys, so a misspelt key fails before any work with the
name of the nearest valid key.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bayesmmm.components.plugins import load_plugins
from bayesmmm.components.priors import Prior
from bayesmmm.config.varying import TimeVaryingMediaConfig

__all__ = [
    "AUTO_MEDIA_POOLING",
    "AUTO_MEDIA_PRIOR",
    "AdstockConfig",
    "ChannelColumns",
    "ConfigError",
    "DataConfig",
    "DiagnosticsConfig",
    "ExperimentConfig",
    "GeoConfig",
    "MediaPriorConfig",
    "MlflowConfig",
    "ModelConfig",
    "OrganicConfig",
    "OutputConfig",
    "SamplerConfig",
    "SaturationConfig",
    "SelectionConfig",
    "TimeVaryingMediaConfig",
    "TrackingConfig",
    "apply_overrides",
    "load_experiment",
    "load_plugins",
    "resolve_media_prior",
    "resolve_weekly_seasonality",
]


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message says what and how to fix it."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready), paths as strings."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal object."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str):
        """Parse YAML text."""
        return cls.model_validate(yaml.safe_load(text) or {})


class ChannelColumns(_Base):
    """One paid channel of the long form ``data.channels``: its spend column and, optionally, its exposure.

    ``exposure`` (impressions, clicks, GRPs) is what the channel's adstock and saturation act on;
    without it the curves act on the spend (a spend-only channel). ROAS, marginal ROAS, cost per
    KPI and the budget optimizer always use ``spend``. ``cost_per_unit`` (spend per unit of exposure)
    is the price the optimizer converts a budget to exposure with; without it, the recent average
    (:func:`bayesmmm.data.exposure.cost_per_unit`).
    """

    spend: str = Field(description="the channel's spend column (money)")
    exposure: str | None = Field(
        None, description="the channel's exposure column (impressions, clicks, GRPs); the curves act on it"
    )
    cost_per_unit: float | None = Field(
        None, gt=0, description="stated spend per unit of exposure for the optimizer (default: the recent average)"
    )
    reach: str | None = Field(
        None,
        description="reach & frequency channel: the column of people reached per period (with frequency; "
        "bayesmmm.data.reach)",
    )
    frequency: str | None = Field(
        None, description="reach & frequency channel: the column of average exposures per person reached (>= 1)"
    )
    plan_frequency: float | None = Field(
        None,
        ge=1,
        description="reach & frequency channel: the frequency the optimizer buys at (default: the optimal frequency)",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_column(cls, data: Any) -> Any:
        return {"spend": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _cost_needs_exposure(self) -> ChannelColumns:
        if self.cost_per_unit is not None and self.exposure is None:
            raise ValueError(
                "cost_per_unit converts spend to exposure: a spend-only channel has none (set exposure, or drop it)"
            )
        if self.exposure is not None and self.exposure == self.spend:
            raise ValueError(f"spend and exposure are the same column {self.spend!r}: drop exposure (spend-only)")
        if (self.reach is None) != (self.frequency is None):
            given, missing = ("reach", "frequency") if self.reach is not None else ("frequency", "reach")
            raise ValueError(
                f"a reach & frequency channel needs both columns: {given} is set, {missing} is not "
                f"(set {missing}, or drop {given} to model the channel on its spend or exposure)"
            )
        if self.reach is not None and self.exposure is not None:
            raise ValueError(
                "give exposure or reach & frequency, not both: a reach & frequency channel's exposure is its "
                "impressions, reach x frequency (drop exposure)"
            )
        if self.reach is not None and len({self.spend, self.reach, self.frequency}) < 3:
            raise ValueError(
                f"spend, reach and frequency must be three different columns (got {self.spend!r}, {self.reach!r}, "
                f"{self.frequency!r})"
            )
        if self.plan_frequency is not None and self.reach is None:
            raise ValueError("plan_frequency is for reach & frequency channels: set reach and frequency, or drop it")
        return self

    @property
    def is_rf(self) -> bool:
        """Whether this is a reach & frequency channel (``reach`` and ``frequency`` set)."""
        return self.reach is not None

    @property
    def impressions_column(self) -> str | None:
        """The derived column of a reach & frequency channel's impressions (``reach × frequency``: its
        exposure, :func:`bayesmmm.data.reach.add_impressions`), or None."""
        return None if self.reach is None else f"{self.reach}*{self.frequency}"


#: a treatment's baseline: the training minimum, the training mean, or a stated value
TreatmentBaseline = Literal["min", "mean"] | float


class DataConfig(_Base):
    """Where the data is, which columns play which role, and how to treat repairable data.

    ``frequency``: ``auto`` (the default: inferred from the dates), ``daily``, ``weekly``,
    ``monthly`` (calendar months dated by their first or their last day) or a fixed step of
    days such as ``14D`` (:mod:`bayesmmm.data.frequency`); carry-over lengths, hold-outs and
    horizons count periods of it.

    ``negative_spend: clip`` sets negative spend to 0 (default ``error``);
    ``missing_weeks: fill_zero`` inserts the periods missing from the data's grid (weeks of
    weekly data, days of daily data...) with zero spend and zero controls, their target
    interpolated linearly from the periods around them (default ``error``). Both warn with
    what they changed.

    ``dataset`` names a data set bundled with bayesmmm (:func:`bayesmmm.datasets.list_datasets`)
    instead of ``path``; set one of the two (a ``--data`` CSV replaces either).

    Paid channels come in one of two forms: ``channel_columns: [tv, search]`` (each column is
    the channel's spend, and its curves act on that spend), or ``channels: {search: {spend:
    search_spend, exposure: search_clicks}, tv: {spend: tv_spend}}`` (the key is the channel's
    name; curves act on the exposure, ROAS uses the spend; see :class:`ChannelColumns`).
    ``revenue_per_kpi_column`` values the target (conversions, say): ROAS, marginal ROAS and the
    optimizer are then in revenue (contribution × revenue per KPI of its period).
    Roles beyond paid media and controls (:mod:`bayesmmm.data.roles`, ``docs/data_roles.md``):
    ``organic_columns`` (adstock and saturation, no spend: excluded from ROAS and the budget),
    ``treatment_columns`` with ``treatment_baseline`` (contribution ``gamma · (x − baseline)``) and
    ``event_columns`` (categorical: one effect per level against the most frequent level).
    """

    path: Path | None = None
    dataset: str | None = Field(
        None,
        description="a data set bundled with bayesmmm, instead of path (see bayesmmm.datasets.list_datasets())",
        json_schema_extra={"examples": ["meridian_national_media", "pymc_marketing_example"]},
    )
    date_column: str = "date"
    target_column: str = "sales"
    channel_columns: list[str] | None = Field(
        None, min_length=1, description="paid channels, short form: spend columns (the curves act on the spend)"
    )
    channels: dict[str, ChannelColumns] | None = Field(
        None,
        min_length=1,
        description="paid channels, long form: {name: {spend: COL, exposure: COL, cost_per_unit: X}}",
    )
    revenue_per_kpi_column: str | None = Field(
        None, description="revenue per unit of the target (e.g. per conversion): ROAS and the optimizer in revenue"
    )
    control_columns: list[str] = []
    negative_spend: Literal["error", "clip"] = Field("error", description="error, or clip negative spend to 0")
    missing_weeks: Literal["error", "fill_zero"] = Field(
        "error",
        description="error, or insert missing periods (weeks, days, months) with zero spend (target interpolated)",
    )
    frequency: str = Field(
        "auto",
        description="the dates' frequency: auto (inferred from the dates), daily, weekly, monthly (calendar months) "
        "or a fixed step of days such as 14D",
        json_schema_extra={"examples": ["auto", "daily", "weekly", "monthly", "14D"]},
    )
    geo_column: str | None = Field(
        None, description="long-format geo panel: the column naming each row's geo (one row per date and geo)"
    )
    population_column: str | None = Field(
        None, description="geo panels: per-geo population (constant within a geo) used for per-capita scaling"
    )
    # -- data roles beyond paid media and controls (bayesmmm.data.roles) --------------------------
    organic_columns: list[str] = Field(
        [],
        description="organic media (no spend: newsletter sends, organic posts): adstock and saturation, "
        "contributions and curves, never ROAS or the budget",
    )
    treatment_columns: list[str] = Field(
        [],
        description="non-media treatments (price index, promotion depth, distribution): an effect measured "
        "against treatment_baseline",
    )
    treatment_baseline: TreatmentBaseline | dict[str, TreatmentBaseline] = Field(
        "min",
        description="the value a treatment's contribution is measured against: min, mean or a number; or one "
        "per treatment column ({col: min|mean|VALUE}, unnamed columns: min)",
    )
    event_columns: list[str] = Field(
        [],
        description="categorical columns (text): one effect per level, the most frequent level is the "
        "reference; empty or missing values are the level 'na'",
    )

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, value: str) -> str:
        from bayesmmm.data.frequency import normalize_frequency

        return normalize_frequency(value)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str | None) -> str | None:
        from bayesmmm.datasets import DATASETS, unknown_dataset_message

        if name is not None and name not in DATASETS:
            raise ValueError(unknown_dataset_message(name))
        return name

    @property
    def source_path(self) -> Path | None:
        """The CSV to read: ``path``, or the bundled ``dataset``'s file, or ``None`` when neither is set."""
        if self.dataset is not None:
            from bayesmmm.datasets import dataset_path

            return dataset_path(self.dataset)
        return self.path

    @property
    def channel_names(self) -> list[str]:
        """The paid channels' names: ``channel_columns``, or the keys of ``channels``."""
        return list(self.channels) if self.channels is not None else list(self.channel_columns or [])

    @property
    def spend_columns(self) -> list[str]:
        """Each channel's spend column (in :attr:`channel_names` order)."""
        if self.channels is None:
            return list(self.channel_columns or [])
        return [c.spend for c in self.channels.values()]

    @property
    def media_columns(self) -> list[str]:
        """The column each channel's curves act on: its exposure, or its spend for a spend-only channel."""
        if self.channels is None:
            return list(self.channel_columns or [])
        return [c.exposure or c.impressions_column or c.spend for c in self.channels.values()]

    @property
    def has_exposure(self) -> bool:
        """Whether any channel's curves act on an exposure column (or reach & frequency) rather than its spend."""
        return self.channels is not None and any(c.exposure is not None or c.is_rf for c in self.channels.values())

    @property
    def rf_channels(self) -> list[str]:
        """The reach & frequency channels (``data.channels.<name>.reach / frequency``), in channel order."""
        return [name for name, c in (self.channels or {}).items() if c.is_rf]

    @property
    def stated_cost_per_unit(self) -> list[float | None]:
        """Each channel's stated ``cost_per_unit`` (None: the recent average; spend-only channels: None)."""
        if self.channels is None:
            return [None] * len(self.channel_names)
        return [c.cost_per_unit for c in self.channels.values()]

    @model_validator(mode="after")
    def _distinct_columns(self) -> DataConfig:
        if self.path is not None and self.dataset is not None:
            raise ValueError("both path and dataset are set: keep one (dataset names a bundled data set)")
        if (self.channel_columns is None) == (self.channels is None):
            raise ValueError(
                "give the paid channels once: either channel_columns: [spend columns] (short form) or "
                "channels: {name: {spend: COL, exposure: COL}} (long form)"
                + ("; both are set" if self.channels is not None else "; neither is set")
            )
        spend_cols = self.spend_columns
        exposure_cols = [c.exposure for c in (self.channels or {}).values() if c.exposure is not None]
        exposure_cols += [col for c in (self.channels or {}).values() if c.is_rf for col in (c.reach, c.frequency)]
        cols = [self.date_column, self.target_column, *spend_cols, *exposure_cols, *self.control_columns]
        cols += [c for c in (self.geo_column, self.population_column, self.revenue_per_kpi_column) if c is not None]
        cols += [*self.organic_columns, *self.treatment_columns, *self.event_columns]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ValueError(
                f"columns {dupes} appear in more than one role (date, target, channel spend, exposure, reach or "
                "frequency, control, "
                "geo, population, revenue_per_kpi, organic, treatment, event)"
            )
        if isinstance(self.treatment_baseline, dict):
            unknown = sorted(set(self.treatment_baseline) - set(self.treatment_columns))
            if unknown:
                raise ValueError(
                    f"treatment_baseline names {unknown}, which are not in treatment_columns "
                    f"({self.treatment_columns or 'none'}): name treatment columns only"
                )
        if self.population_column is not None and self.geo_column is None:
            raise ValueError("population_column needs a geo panel: set data.geo_column too (or drop population_column)")
        return self


class _TransformConfig(_Base):
    name: str
    priors: dict[str, Prior] = {}
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword settings of the transform")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    def _registry(self):
        raise NotImplementedError

    def _settings(self) -> dict[str, Any]:
        return dict(self.options)

    def build(self):
        """Instantiate the registered transform."""
        cls = self._registry().get(self.name)
        return cls(priors=self.priors, **self._settings())

    @model_validator(mode="after")
    def _check_transform(self):
        self.build()  # raises with the list of valid names / parameters
        return self


#: the longest carry-over window, in periods of the data: a year of days (two years of weeks fit too)
MAX_L_MAX = 366


class AdstockConfig(_TransformConfig):
    """Adstock by registered name, with ``l_max``, ``normalize`` and prior overrides."""

    name: str = "geometric"
    l_max: int = Field(
        8,
        ge=1,
        le=MAX_L_MAX,
        description="carry-over lags in periods of the data, lag 0 included (8 weeks of weekly data; daily data "
        "needs more, e.g. 28-60 days)",
    )
    normalize: bool = True

    def _registry(self):
        from bayesmmm.components import ADSTOCKS

        return ADSTOCKS

    def _settings(self) -> dict[str, Any]:
        return {"l_max": self.l_max, "normalize": self.normalize, **self.options}


class SaturationConfig(_TransformConfig):
    """Saturation by registered name, with prior overrides."""

    name: str = "logistic"

    def _registry(self):
        from bayesmmm.components import SATURATIONS

        return SATURATIONS


MODEL_PRIORS = {
    "intercept": "baseline level (scaled target units)",
    "beta": "channel coefficient: maximum effect per period, dims (channel,)",
    "trend_slope": "linear trend slope over the training span (t in [0, 1])",
    "trend_delta": "piecewise-trend slope changes at changepoints",
    "gamma_fourier": "Fourier seasonality coefficients, dims (fourier_mode,)",
    "gamma_control": "control coefficients on max-abs scaled controls, dims (control,)",
    "beta_organic": "organic media coefficient: maximum weekly effect, dims (organic,)",
    "organic_share": "organic media's contribution as a share of the KPI over the training periods "
    "(model.organic.prior: share; beta_organic is then its function), dims (organic,)",
    "gamma_treatment": "treatment coefficients on (x - baseline) / max|x - baseline|, dims (treatment,)",
    "gamma_event": "event-level effects against the reference level (scaled target units), dims (event,)",
    "sigma": "observation noise scale",
    "nu": "Student-t degrees of freedom",
    "rf_slope": "reach & frequency channels: Hill slope of the frequency curve, dims (rf_channel,)",
    "rf_ec": "reach & frequency channels: frequency at half saturation of the frequency curve, dims (rf_channel,)",
}


def default_model_priors() -> dict[str, Prior]:
    """The default priors of the non-transform model variables (on the scaled problem)."""
    return {
        "intercept": Prior(dist="Normal", mu=0.5, sigma=1.0),
        "beta": Prior(dist="HalfNormal", sigma=1.0),
        "trend_slope": Prior(dist="Normal", mu=0.0, sigma=0.5),
        "trend_delta": Prior(dist="Laplace", mu=0.0, b=0.25),
        "gamma_fourier": Prior(dist="Normal", mu=0.0, sigma=0.5),
        "gamma_control": Prior(dist="Normal", mu=0.0, sigma=1.0),
        "beta_organic": Prior(dist="HalfNormal", sigma=1.0),
        # Meridian's default contribution_om: a share of the KPI with mean 1%, 95% below 3%
        "organic_share": Prior(dist="Beta", alpha=1.0, beta=99.0),
        "gamma_treatment": Prior(dist="Normal", mu=0.0, sigma=1.0),
        "gamma_event": Prior(dist="Normal", mu=0.0, sigma=0.5),
        "sigma": Prior(dist="HalfNormal", sigma=0.5),
        "nu": Prior(dist="Gamma", alpha=2.0, beta=0.1),
        # Meridian's priors of its reach & frequency Hill (slope_rf, ec_rf), in frequency units
        "rf_slope": Prior(dist="LogNormal", mu=0.7, sigma=0.4),
        "rf_ec": Prior(dist="LogNormal", mu=0.7, sigma=0.4),
    }


class GeoConfig(_Base):
    """How a geo-panel model (``data.geo_column`` set) shares parameters across geos.

    Channel effects are always partially pooled: ``beta[g, c] = beta[c] ·
    exp(beta_geo_sigma[c] · beta_geo_z[g, c])`` (non-centered, ``beta_geo_sigma ~
    HalfNormal(beta_sigma)``). Each geo has its own intercept. ``beta_pooling: zerosum``
    (the default) constrains ``beta_geo_z[·, c]`` to sum to zero over the geos
    (``ZeroSumNormal``), so ``beta[c]`` is the geometric mean of the geos' effects;
    ``noncentered`` (independent ``N(0, 1)`` z, ``beta[c]`` the median geo's effect) lets
    the national effect and the mean of the deviations trade off along a ridge whose
    direction turns with ``beta_geo_sigma``: NUTS diverges there when few geos pin their own
    effects (2-geo panels: 8 divergences in 8 fits, 0 with zerosum; geo coverage study in
    ``benchmarks/README.md``). ``beta_spread: fixed`` sets ``beta_geo_sigma = beta_sigma``
    (no spread variable: the learned spread and the national effect form a ridge where the
    geo defaults' remaining divergences sit); the default stays ``learned``.

    ``adstock`` / ``saturation``: ``shared`` (one value per channel) or ``pooled`` (per geo
    and channel, the national value moved on the link scale — logit for (0, 1) parameters,
    log for positive ones — by ``sigma · z``, ``sigma ~ HalfNormal(param_sigma)``). The
    saturation is ``pooled`` by default (adstock ``shared``): geos differ in spend per head
    and in how saturated they are, which one curve in each geo's own scaled units cannot
    say, and its per-geo intervals were too narrow on panels from an independent generator
    (``docs/geo.md``, "Per-geo intervals"). By default a pooled parameter's geo deviations
    sum to zero (``param_pooling: zerosum``) and their spread is fixed at ``param_sigma``
    (``param_spread: fixed``): a learned spread (``HalfNormal(param_sigma)`` per channel)
    forms a funnel with the deviations when each geo's curve is well identified (measured: 3
    divergences and min bulk ESS 113 on a 10-geo panel, 0 and 406 with the fixed spread).
    Models saved before these defaults load with ``saturation: shared``, ``param_sigma: 0.3``,
    ``param_pooling: noncentered`` and ``param_spread: learned``. ``trend`` / ``seasonality``: ``shared`` (one curve for
    all geos, the default) or ``pooled`` (national curve plus per-geo deviations of the
    slope / Fourier coefficients, ``HalfNormal(trend_sigma)`` / ``HalfNormal(seasonality_sigma)``
    spreads). With one geo there is nothing to pool and the model is the national one.

    ``sigma: per_geo`` (the default) gives each geo its own noise scale ``sigma[g]`` (the
    ``priors.sigma`` prior for each), in the geo's scaled units: geos differ in how noisy
    they are relative to their size (a small geo's sales are relatively noisier), which one
    scale for all cannot say, so it is too small for the noisy geos (intervals too narrow)
    and too large for the quiet ones. ``shared`` is the earlier model (one scale). Models
    saved before these options existed load with ``sigma: shared`` and ``beta_pooling:
    noncentered``, so they mean what they meant.
    """

    adstock: Literal["shared", "pooled"] = "shared"
    saturation: Literal["shared", "pooled"] = Field(
        "pooled",
        description="saturation parameters: one per channel (shared) or per geo and channel around it (pooled, "
        "the default: geos sit at different points of their curves; models saved before it load with shared)",
    )
    trend: Literal["shared", "pooled"] = "shared"
    seasonality: Literal["shared", "pooled"] = "shared"
    beta_pooling: Literal["noncentered", "zerosum"] = Field(
        "zerosum",
        description="geo deviations of the channel effects: z summing to zero over the geos (zerosum, the default: "
        "beta[c] is the geometric mean of the geos' effects) or independent N(0, 1) z (noncentered, the default "
        "of models saved before geo.sigma existed)",
    )
    param_pooling: Literal["noncentered", "zerosum"] = Field(
        "zerosum",
        description="geo deviations of pooled transform parameters: independent N(0, 1) z (noncentered) or z summing "
        "to zero over the geos (zerosum: the national value is the geos' mean on the link scale)",
    )
    param_spread: Literal["learned", "fixed"] = Field(
        "fixed",
        description="spread of pooled transform parameters across geos: learned (sigma ~ HalfNormal(param_sigma) per "
        "channel) or fixed (sigma = param_sigma: no spread variable, so no funnel between it and the deviations)",
    )
    beta_spread: Literal["learned", "fixed"] = Field(
        "learned",
        description="spread of the log channel effects across geos: learned (beta_geo_sigma ~ HalfNormal(beta_sigma) "
        "per channel, the default) or fixed (beta_geo_sigma = beta_sigma: no spread variable, so no ridge between it "
        "and the national effect)",
    )
    sigma: Literal["per_geo", "shared"] = Field(
        "per_geo",
        description="observation noise: one scale per geo (per_geo, the default) or one for all geos in per-geo "
        "scaled units (shared: models saved before this option existed load with it)",
    )
    beta_sigma: float = Field(0.5, gt=0, description="HalfNormal scale of the log-effect spread across geos")
    param_sigma: float = Field(
        0.5,
        gt=0,
        description="HalfNormal scale of pooled transform parameters' spread (link scale; models saved before "
        "geo.saturation became pooled load with 0.3)",
    )
    trend_sigma: float = Field(0.2, gt=0, description="HalfNormal scale of per-geo trend-slope deviations")
    seasonality_sigma: float = Field(0.1, gt=0, description="HalfNormal scale of per-geo Fourier deviations")


class MediaPriorConfig(_Base):
    """The prior of each channel's effect, in business units (Meridian's ``media_prior_type``).

    ``type: coefficient``: ``beta ~ priors.beta``, the channel's maximum effect per period on the
    scaled target (the default before this option existed). ``roas`` (contribution over the
    training weeks ÷ spend), ``mroas`` (marginal ROAS of a 1% spend increase over the training
    weeks) or ``share`` (contribution ÷ the target's total over the training weeks): the prior
    is on that quantity instead, and ``beta`` is the exact function of it and of the channel's
    adstock and saturation parameters that gives the quantity; sampling the prior gives the
    requested distribution of the quantity. ``default`` applies to every channel not named
    under ``channels``; all channels' priors must use the same distribution (parameters may
    differ). National models only.

    ``type: auto`` (the default) is resolved when the model is built: ``coefficient`` for a
    geo panel (``data.geo_column``) or when ``priors.beta`` is set (a coefficient prior was
    asked for), else :data:`AUTO_MEDIA_PRIOR` (``share``, chosen by measurement: see the
    README). With ``roas`` or ``share`` and no ``default``, a channel not named under
    ``channels`` gets the *total media share* prior: ``LogNormal`` priors, independent across
    channels, chosen so that the share of the target due to all channels together has mean
    ``total_share_mean`` and standard deviation ``total_share_sd`` (Meridian's default for a
    non-revenue KPI: 0.4 and 0.2). ``share`` splits it evenly (each channel: mean
    ``total_share_mean / K``, sd ``total_share_sd / √K``, K channels); ``roas`` gives every
    channel the same ROAS prior (Meridian's form: shares in proportion to spend).

    ``pooling`` (total media share prior only, i.e. ``roas`` or ``share`` without ``default``
    and ``channels``): ``none`` keeps the channels independent. ``level`` and ``hierarchical``
    make them exchangeable, ``log q_c = mu + tau z_c``, sharing a log level ``mu`` that the
    data and lift tests learn (its prior centred on the independent prior's log mean, sd the
    total share's log-sd): lift-tested channels then inform the untested ones. ``level``
    fixes the spread ``tau`` so that each channel's prior is exactly the independent one
    (the total's sd grows to ``total_share_sd · √(2 − 1/K)``); ``hierarchical`` learns it
    (``HalfNormal``, same per-channel log-variance). See
    :mod:`bayesmmm.model.media_prior` and the measured comparison in
    ``benchmarks/README.md``. ``auto`` (the default) is resolved when the model is built:
    :data:`AUTO_MEDIA_POOLING` for ``share`` with the total media share prior, ``none``
    otherwise. Models saved before this option existed load with ``none``.
    """

    type: Literal["auto", "coefficient", "roas", "mroas", "share"] = Field(
        "auto",
        description="auto (share for national models, coefficient for geo panels or when priors.beta is set), "
        "coefficient (beta ~ priors.beta), or the business quantity the prior is on: roas, mroas, share",
    )
    default: Prior | None = Field(
        None,
        description="prior of the quantity for every channel not under channels (roas / share: default the total "
        "media share prior)",
    )
    channels: dict[str, Prior] = Field({}, description="per-channel priors of the quantity")
    total_share_mean: float = Field(
        0.4, gt=0, lt=1, description="total media share prior (roas / share without default): mean of all channels"
    )
    total_share_sd: float = Field(
        0.2, gt=0, description="total media share prior (roas / share without default): sd of all channels"
    )
    pooling: Literal["auto", "none", "level", "hierarchical"] = Field(
        "auto",
        description="total media share prior: none (independent channels), level (exchangeable channels sharing "
        "a learned log level, fixed spread: lift-tested channels inform the untested ones) or hierarchical (level "
        "and spread learned); auto (default): level for the total media share prior, else none",
    )

    @model_validator(mode="after")
    def _priors_for_the_type(self) -> MediaPriorConfig:
        if self.type in ("coefficient", "auto") and (self.default is not None or self.channels):
            raise ValueError(
                "media_prior.default / channels apply to type roas, mroas or share (name the type); with type "
                "coefficient set the coefficient prior under model.priors.beta"
            )
        dists = {p.dist for p in [*([self.default] if self.default else []), *self.channels.values()]}
        if len(dists) > 1:
            raise ValueError(
                f"media_prior: every channel's prior must use the same distribution (got {', '.join(sorted(dists))}); "
                "vary the parameters per channel instead"
            )
        if self.pooling in ("level", "hierarchical") and (
            self.type not in ("auto", "roas", "share") or self.default is not None or self.channels
        ):
            raise ValueError(
                f"media_prior.pooling: {self.pooling} pools the total media share prior: it applies to type roas or "
                "share (or auto) without default and channels"
            )
        return self


class OrganicConfig(_Base):
    """The transforms of the organic media (``data.organic_columns``); unset ones are the model's own.

    Organic media get their own parameters whatever the transform: ``beta_organic`` and the
    transforms' variables with the suffix ``_organic`` (``adstock_alpha_organic``, ...), dims
    ``(organic,)``; their priors are the transforms' (override them under ``priors`` here) and
    ``model.priors.beta_organic``.

    ``prior: share`` puts the prior on each organic medium's contribution as a share of the KPI over the
    training periods instead (``model.priors.organic_share``, default ``Beta(1, 99)``, Meridian's
    ``contribution_om``): ``beta_organic`` is then its exact function given the transforms' parameters,
    as for the paid channels' ``media_prior.type: share``. National models only.
    """

    adstock: AdstockConfig | None = None
    saturation: SaturationConfig | None = None
    prior: Literal["coefficient", "share"] = Field(
        "coefficient",
        description="coefficient: priors.beta_organic on the coefficient; share: priors.organic_share on the "
        "contribution as a share of the KPI over the training periods (national models)",
    )


#: what ``model.media_prior.type: auto`` means for a national model without ``priors.beta``
AUTO_MEDIA_PRIOR = "share"
#: what ``model.media_prior.pooling: auto`` means for ``share`` with the total media share prior
#: (chosen by measurement: benchmarks/README.md, "Pooled share prior")
AUTO_MEDIA_POOLING = "level"


def resolve_media_prior(data: DataConfig, model: ModelConfig) -> ModelConfig:
    """``model`` with ``media_prior.type: auto`` and ``pooling: auto`` replaced by what they mean
    (see :class:`MediaPriorConfig`); stated values are returned unchanged.

    Raises ``ConfigError`` for a pooled prior (``level``, ``hierarchical``) where ``auto`` means ``coefficient``.
    """
    prior = model.media_prior
    kind = prior.type
    if kind == "auto":
        kind = "coefficient" if data.geo_column is not None or "beta" in model.priors else AUTO_MEDIA_PRIOR
    pooling = prior.pooling
    if pooling == "auto":
        total_prior = kind == "share" and prior.default is None and not prior.channels
        pooling = AUTO_MEDIA_POOLING if total_prior else "none"
    elif pooling != "none" and kind not in ("roas", "share"):
        raise ConfigError(
            f"model.media_prior.pooling: {pooling} pools a roas or share prior, but media_prior.type auto means "
            "coefficient here (a geo panel, or priors.beta is set)"
        )
    if (kind, pooling) == (prior.type, prior.pooling):
        return model
    return model.model_copy(update={"media_prior": prior.model_copy(update={"type": kind, "pooling": pooling})})


class ModelConfig(_Base):
    """Model structure and priors.

    Scaling: the target is divided by its mean absolute value, each channel's spend by
    its mean spend over training periods with spend, each control by its maximum absolute value; all reported
    quantities are in original units.

    ``center_media`` (default true): the free ``intercept`` variable is the level of the
    fit net of the media's average contribution over the training weeks, i.e. the
    intercept of the decomposition is ``intercept - Σ_c mean_t contribution_c``, the sum over the
    paid channels and the organic media (``data.organic_columns``). Media
    contributions are positive and partly constant, so a raw intercept and the channel
    coefficients are strongly correlated; centering removes that correlation (measured:
    1.0 → 5.5 effective samples per 1000 gradients on the ten-channel scenario). The
    reported components, ROAS and predictions are those of the same model; only the
    intercept's prior applies to the centered level. Models saved before this option
    existed load with ``center_media: false``.

    ``center_day_of_week`` (default true; with ``center_media`` and day-of-week terms, i.e. daily data):
    the day-of-week coefficients likewise absorb the media's mean weekday profile over the training rows,
    ``seasonality_t = F_t γ − F_w,t c(θ)`` with ``c(θ)`` the least-squares day-of-week coefficients of the
    summed paid and organic contributions (the mean over geos for a panel). A channel bought or sent on
    fixed weekdays (a Tuesday newsletter, weekday-paced search) has a weekday profile that moves with its
    adstock and saturation parameters, and the free day-of-week coefficients had to follow it along a
    curved ridge: the divergences of the daily recovery study (20 data sets at 4 × 1000 + 1000: 852
    divergences in every fit → 169 in 14 fits, ROAS error and coverage unchanged). The mean, components
    and predictions are those of the same model; only the day-of-week prior applies to the centered
    coefficients. Models saved before this option existed load with ``center_day_of_week: false``.
    """

    adstock: AdstockConfig = AdstockConfig()
    saturation: SaturationConfig = SaturationConfig()
    yearly_seasonality: int = Field(2, ge=0, le=20, description="Fourier order n (2n features)")
    weekly_seasonality: int | None = Field(
        None,
        ge=0,
        le=3,
        description="day-of-week Fourier order (period 7 days) for daily data: 0 off, 3 = a free effect per "
        "weekday; default (unset): 3 for daily data, 0 otherwise (weekly or monthly data cannot have it)",
    )
    trend: str = Field(
        "linear", description="a registered trend: none, linear, piecewise, hsgp, spline (or a plugin's)"
    )
    n_changepoints: int = Field(4, ge=1, le=50, description="changepoints of the piecewise trend")
    trend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="settings of the chosen trend: hsgp {m, c, kernel}, spline {n_knots, horizon}",
    )
    seasonality: str = Field(
        "fourier", description="a registered seasonality over yearly_seasonality's order (fourier, or a plugin's)"
    )
    likelihood: str = Field("normal", description="observation model: a registered likelihood (normal, student_t)")
    center_media: bool = Field(
        True,
        description="intercept = mean level of the fit with the media contributions centered over the training "
        "weeks (a reparameterization: ~5x more effective samples per gradient); false: raw intercept",
    )
    center_day_of_week: bool = Field(
        True,
        description="with center_media and day-of-week terms (daily data): the day-of-week coefficients absorb "
        "the media's mean weekday profile over the training rows (a reparameterization: removes the curved ridge "
        "between them and a weekday-patterned channel's adstock and saturation); false: raw coefficients",
    )
    priors: dict[str, Prior] = {}
    geo: GeoConfig | None = Field(None, description="geo-panel pooling options; only with data.geo_column")
    media_prior: MediaPriorConfig = Field(
        MediaPriorConfig(),
        description="channel effect priors in business units: roas, mroas or share (auto: share, or coefficient for "
        "geo panels and when priors.beta is set)",
    )
    organic: OrganicConfig | None = Field(
        None,
        description="adstock and saturation of the organic media (data.organic_columns); default: the model's own "
        "adstock and saturation, with their own parameters (suffix _organic)",
    )
    time_varying_media: TimeVaryingMediaConfig | None = Field(
        None,
        description="a smooth multiplier over time on the chosen channels' effects (hsgp or spline); the other "
        "channels stay constant",
    )

    @field_validator("likelihood", "trend", "seasonality")
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        from bayesmmm.components.base import registries

        registries()[info.field_name].get(value)
        return value

    @field_validator("priors")
    @classmethod
    def _known_priors(cls, value: dict[str, Prior]) -> dict[str, Prior]:
        from bayesmmm.components.base import registries

        valid = list(MODEL_PRIORS)
        for kind in ("likelihood", "trend", "seasonality"):  # components' own variables
            registry = registries()[kind]
            valid += [p for name in registry.names() for p in registry.get(name).default_priors if p not in valid]
        for key in value:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"unknown model prior {key!r}.{hint} Valid: {', '.join(valid)}. "
                    "Transform priors go under adstock.priors / saturation.priors."
                )
        return value

    @model_validator(mode="after")
    def _check_trend_options(self) -> ModelConfig:
        from bayesmmm.components.base import registries

        trend = registries()["trend"].get(self.trend)
        trend.check_options(self.trend_options)
        if self.geo is not None and self.geo.trend == "pooled" and trend.pooled_variable is None:
            raise ValueError(
                f"geo.trend: pooled needs a trend with a per-geo parameter; trend {self.trend!r} is one curve "
                "shared by every geo: set geo.trend: shared, or a trend whose slope pools (linear, piecewise, spline)"
            )
        return self

    def resolved_priors(self) -> dict[str, Prior]:
        """Default model priors updated with the user's overrides."""
        return {**default_model_priors(), **self.priors}


#: what an unset ``model.weekly_seasonality`` means for daily data: every weekday its own effect
AUTO_WEEKLY_SEASONALITY = 3


def resolve_weekly_seasonality(model: ModelConfig, frequency: str) -> ModelConfig:
    """``model`` with ``weekly_seasonality`` set for data of ``frequency``: unset means
    :data:`AUTO_WEEKLY_SEASONALITY` for daily data and 0 otherwise.

    Raises ``ConfigError`` for day-of-week terms on data that is not daily (a week, a month, a
    fixed step of days: every period holds the same weekdays, or the weekday is not seen).
    """
    weekly = model.weekly_seasonality
    if weekly is None:
        weekly = AUTO_WEEKLY_SEASONALITY if frequency == "daily" else 0
    elif weekly > 0 and frequency != "daily":
        raise ConfigError(
            f"model.weekly_seasonality: {weekly} models the day of the week, which only daily data shows; these "
            f"data are {frequency}: set model.weekly_seasonality: 0 (or leave it unset)"
        )
    if weekly == model.weekly_seasonality:
        return model
    return model.model_copy(update={"weekly_seasonality": weekly})


class SamplerConfig(_Base):
    """MCMC settings.

    ``device`` and ``precision`` apply to the backends whose registered capabilities
    support them (the JAX backends ``numpyro`` and ``blackjax``): ``auto`` uses a GPU when
    JAX finds one, else the CPU (one XLA host device per core, chains in parallel);
    ``float32`` halves memory traffic (GPUs are much faster in it). ``mass_matrix: auto``
    is each backend's measured default (:attr:`bayesmmm.inference.base.Backend.dense_max_dim`).
    """

    backend: str = Field(
        "auto", description="auto (numpyro when JAX is installed, else nutpie) or a registered sampler backend"
    )
    chains: int = Field(4, ge=1, le=64)
    draws: int = Field(1000, ge=10)
    tune: int = Field(1000, ge=0)
    warm_tune: int | None = Field(
        None,
        ge=0,
        description=(
            "warm-up draws per chain of a warm-started fit (`bayesmmm refresh`: the first fit's mass matrix and step "
            "size, chains started at its draws; only the step size is adapted); default: tune / 5, at least 100, at "
            "most tune. Backends without a warm metric (all but numpyro) run the full tune"
        ),
    )
    seed: int | None = Field(0, ge=0)
    target_accept: float = Field(0.95, gt=0.5, lt=1.0)
    cores: int | None = Field(None, ge=1, description="chains run in parallel; default: min(chains, CPU count)")
    progressbar: bool | None = Field(None, description="default: on when stderr is a terminal")
    device: Literal["cpu", "gpu", "auto"] = Field("auto", description="JAX backends: where to sample")
    precision: Literal["float64", "float32"] = Field("float64", description="JAX backends: float width")
    mass_matrix: Literal["auto", "diag", "dense"] = Field(
        "auto",
        description=(
            "NUTS mass matrix adapted in warm-up: dense learns the posterior's correlations (MMM posteriors have "
            "strong ones: beta vs the saturation's half-point, the intercept vs every channel) and needs far fewer "
            "gradient evaluations per draw; auto = the backend's measured default: on every built-in dense up to "
            "200 free parameters for national models (nutpie's dense is its low-rank adaptation), diag above that "
            "and for geo panels (funnel-shaped pooling)"
        ),
    )

    precondition: Literal["laplace", "none"] = Field(
        "laplace",
        description=(
            "JAX backends: laplace samples each unconstrained coordinate divided by its Laplace-approximation "
            "posterior sd (found before the warm-up), so that the warm-up, which assumes coordinates of order one, "
            "adapts a good metric where the data pin parameters tightly (daily data: ~4x fewer gradients); a change "
            "of variables only, the draws are the model's; none: sample the unconstrained space as is"
        ),
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from bayesmmm.inference.base import backend_names

        names = ["auto", *backend_names()]
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown sampler backend {value!r}.{hint} Valid: {', '.join(names)}")
        return value

    @model_validator(mode="after")
    def _supported_by_backend(self) -> SamplerConfig:
        """Options the backend does not support (its registered capabilities) are refused here."""
        from bayesmmm.inference.base import get_backend

        problems = get_backend(self.backend).check(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _enough_draws(self) -> SamplerConfig:
        if self.chains * self.draws < MIN_TOTAL_DRAWS:  # PSIS-LOO's Pareto tail needs >= 5 of >= 25 draws
            raise ValueError(
                f"chains × draws = {self.chains} × {self.draws} is too few for the diagnostics and PSIS-LOO; "
                f"use at least {MIN_TOTAL_DRAWS} draws in all"
            )
        return self


MIN_TOTAL_DRAWS = 25


class DiagnosticsConfig(_Base):
    """Convergence gate: ``on_fail: warn`` reports, ``fail`` makes the fit exit non-zero."""

    max_rhat: float = Field(1.01, gt=1.0)
    min_ess_bulk: float = Field(400, ge=0)
    min_ess_tail: float = Field(400, ge=0)
    max_divergences: int = Field(0, ge=0)
    on_fail: Literal["warn", "fail"] = "warn"
    identifiability: bool = Field(True, description="compare each channel's ROAS posterior with its prior")
    prior_driven_contraction: float = Field(
        0.9, ge=0, lt=1, description="flag a channel whose posterior removed less of its prior's log-ROAS variance"
    )
    fail_on_prior_driven: bool = Field(False, description="a prior-driven channel fails the gate")
    extrapolated_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="flag a channel whose posterior median share of the contribution below its lowest observed "
        "input (5th percentile of the adstocked input) is at least this: the saturation form, not the data, "
        "decides it",
    )


class LiftTestsConfig(_Base):
    """A lift-test CSV (contract: :mod:`bayesmmm.model.calibration`); relative to the YAML's folder."""

    path: Path


class CalibrationConfig(_Base):
    """Experiments the model is calibrated to: each lift test is a term of the likelihood."""

    lift_tests: LiftTestsConfig | None = None


class OutputConfig(_Base):
    """What to report."""

    hdi_prob: float = Field(0.9, gt=0.0, lt=1.0)
    figures: bool = True


class SelectionConfig(_Base):
    """Candidates for functional-form selection (``bayesmmm select``): the Cartesian product
    of the lists given; an omitted list keeps the experiment's own model setting."""

    adstock: list[str] | None = None
    saturation: list[str] | None = None
    l_max: list[int] | None = None
    yearly_seasonality: list[int] | None = None
    trend: list[str] | None = None
    likelihood: list[str] | None = None
    criterion: Literal["loo", "waic", "bic", "holdout", "cv"] = "loo"
    holdout_weeks: int = Field(
        13,
        ge=0,
        description="periods of the data held out at the end (weeks of weekly data, days of daily data, months of "
        "monthly data); 0 skips the hold-out fits",
    )
    cv_folds: int = Field(3, ge=1, description="criterion cv: rolling-origin folds (as bayesmmm validate --folds)")
    cv_horizon: int = Field(13, ge=1, description="criterion cv: periods each fold predicts (validate --horizon)")
    jobs: int = Field(1, ge=1, description="candidates fitted at once (each gets cores // jobs)")

    @field_validator("adstock", "saturation", "likelihood", "trend")
    @classmethod
    def _known_transforms(cls, names: list[str] | None, info: ValidationInfo) -> list[str] | None:
        from bayesmmm.components.base import registries

        registry = registries()[info.field_name]
        for name in names or []:
            registry.get(name)
        return names


class MlflowConfig(_Base):
    """Log a fit to MLflow (``pip install 'bayesmmm[tracking]'``); see :mod:`bayesmmm.workflows.tracking`."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (file:///path/mlruns, sqlite:///mlflow.db, http://host:5000); "
        "default: MLflow's own (MLFLOW_TRACKING_URI, else ./mlruns)",
    )
    experiment: str | None = Field(None, description="MLflow experiment name; default: the experiment's name")
    run_name: str | None = Field(None, description="MLflow run name; default: the run folder's name")
    artifact_location: str | None = Field(
        None,
        description="artifact root of a new MLflow experiment; default: beside a sqlite:/// store's file "
        "(mlartifacts/), else MLflow's default",
    )
    tags: dict[str, str] = Field({}, description="extra tags on the MLflow run")
    log_model: bool = Field(True, description="log the fitted model (model/ with posterior.nc) as artifacts")


class TrackingConfig(_Base):
    """Experiment tracking: where each fit is recorded besides its run folder."""

    mlflow: MlflowConfig | None = None


class ExperimentConfig(_Base):
    """A whole experiment: data, model, sampler, diagnostics gate, outputs, tracking.

    ``plugins`` are Python files (relative to the YAML file; stored absolute) or module names
    imported before the rest is validated, wherever the config is validated (a Dask worker
    too), so the components they register can be used by name.
    """

    name: str | None = None
    plugins: list[str] = Field(
        [], description="Python files (relative to this YAML file) or module names that register components"
    )
    data: DataConfig
    model: ModelConfig = ModelConfig()
    sampler: SamplerConfig = SamplerConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    output: OutputConfig = OutputConfig()
    selection: SelectionConfig | None = None
    tracking: TrackingConfig = TrackingConfig()
    calibration: CalibrationConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _load_plugins(cls, data: Any) -> Any:
        return with_plugins_loaded(data)

    @model_validator(mode="after")
    def _geo_options_need_geo_data(self) -> ExperimentConfig:
        check_geo_options(self.data, self.model)
        if "beta" in self.model.priors and self.model.media_prior.type not in ("auto", "coefficient"):
            raise ValueError(
                f"model.priors.beta is the coefficient prior, but model.media_prior.type is "
                f"{self.model.media_prior.type!r} (the prior is on that quantity): remove priors.beta or set "
                "media_prior.type: coefficient"
            )
        return self


def check_geo_options(data: DataConfig, model: ModelConfig) -> None:
    """Raise ``ValueError`` when ``model.geo`` is set for data without ``geo_column``."""
    if model.geo is not None and data.geo_column is None:
        raise ValueError(
            "model.geo applies to geo panels only: set data.geo_column (the column naming each row's geo) "
            "or remove model.geo"
        )
    varying = model.time_varying_media
    if varying is not None:
        unknown = [c for c in varying.channels if c not in data.channel_names]
        if unknown:
            raise ValueError(
                f"model.time_varying_media.channels names {unknown[0]!r}, which is not a channel of the data; "
                f"channels: {', '.join(data.channel_names)}"
            )


def with_plugins_loaded(data: Any) -> Any:
    """A config mapping's ``plugins`` made absolute (against the working folder) and imported.

    Called before validating a config that names components, so a plugin's names are
    registered wherever the config is validated (a Dask worker too).
    """
    if isinstance(data, dict) and data.get("plugins"):
        plugins = data["plugins"]
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise ValueError("plugins must be a list of file paths or module names")
        data = {**data, "plugins": absolute_plugins(plugins, Path.cwd())}
        load_plugins(data["plugins"])
    return data


def absolute_plugins(plugins: list[str], base_dir: Path) -> list[str]:
    """Plugin files made absolute (relative ones resolve against ``base_dir``); module names unchanged."""
    out = []
    for spec in plugins:
        path = Path(spec).expanduser()
        if spec.endswith(".py") or (base_dir / path).exists():
            out.append(str(path if path.is_absolute() else (base_dir / path).resolve()))
        else:
            out.append(spec)
    return out


def format_validation_error(exc: ValidationError, source: str, root: type[BaseModel] | None = None) -> str:
    """One readable line per problem, with the dotted key and a close valid key if any.

    ``root`` is the model that was validated (default :class:`ExperimentConfig`), used to
    list the valid keys at the failing level.
    """
    lines = []
    errors = exc.errors()
    unknown = {(tuple(e["loc"][:-1]), str(e["loc"][-1])) for e in errors if e["type"] == "extra_forbidden" and e["loc"]}
    for err in errors:
        if err["type"] == "missing" and err["loc"] and _misspelt(err["loc"], unknown):
            continue  # the unknown-key line below names it ("did you mean ...?")
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {err['loc'][-1]!r}"
            valid = _valid_keys(err["loc"][:-1], root or ExperimentConfig)
            close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
            if close:
                msg += f"; did you mean {close[0]!r}?"
            if valid:
                msg += f" Valid keys here: {', '.join(valid)}"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def _misspelt(loc: tuple, unknown: set[tuple[tuple, str]]) -> bool:
    """Whether the missing key at ``loc`` is the nearest valid key of an unknown key beside it."""
    parent, name = tuple(loc[:-1]), str(loc[-1])
    return any(p == parent and difflib.get_close_matches(key, [name], n=1) for p, key in unknown)


def _valid_keys(loc: tuple, root: type[BaseModel]) -> list[str]:
    model = root
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        models = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:  # an optional block (``GeoConfig | None``)
            ann = models[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return []
    return list(model.model_fields)


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read an experiment YAML; relative data paths resolve against the YAML's folder.

    Parameters
    ----------
    path : path to the YAML file.
    overrides : dotted keys → values applied before validation
        (e.g. ``{"sampler.draws": 200}``).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"experiment file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with at least a 'data:' block")
    overrides = dict(overrides or {})
    if "data.path" in overrides and "data.dataset" not in overrides and isinstance(raw.get("data"), dict):
        raw["data"].pop("dataset", None)  # a CSV given for this run (--data) replaces the bundled data set
    apply_overrides(raw, overrides)
    if isinstance(raw.get("plugins"), list):
        raw["plugins"] = absolute_plugins([str(p) for p in raw["plugins"]], path.parent.resolve())
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    if config.data.path is not None and not config.data.path.is_absolute():
        config.data.path = (path.parent / config.data.path).resolve()
    lift = config.calibration.lift_tests if config.calibration is not None else None
    if lift is not None and not lift.path.is_absolute():
        lift.path = (path.parent / lift.path).resolve()
    return config


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML parse error in one line: what and where."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Apply dotted ``overrides`` (:func:`set_dotted`) to a raw experiment mapping, in place.

    Options belong to their trend: an override that switches ``model.trend`` to another trend
    drops the base's ``model.trend_options`` unless the overrides also set them, so a sweep
    over trends gives each trend its own defaults instead of another trend's options.
    """
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    switched = "model.trend" in overrides and overrides["model.trend"] != model.get("trend", "linear")
    sets_options = any(k == "model.trend_options" or k.startswith("model.trend_options.") for k in overrides)
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    if switched and not sets_options:
        raw["model"].pop("trend_options", None)


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw["a"]["b"] = value`` for ``key = "a.b"``, creating mappings on the way."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.get(part)
        if isinstance(nxt, str):  # shorthand like `adstock: geometric`
            nxt = {"name": nxt}
        node[part] = nxt if isinstance(nxt, dict) else {}
        node = node[part]
    node[parts[-1]] = value
