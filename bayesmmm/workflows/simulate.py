"""Synthetic MMM data with known ground truth, built from the registered transforms.

A scenario YAML describes spends, per-channel adstock and saturation (any registered
name, parameters in the model's units: saturation acts on spend divided by the
channel's mean spend over weeks with spend, :func:`~bayesmmm.data.loading.spend_scale`),
channel effects, trend, seasonality, events, controls and noise.
:func:`simulate` returns the data frame and a truth dict (``truth.json``) with the true
parameters and each channel's true contribution, ROAS and share.

Richer scenarios (issue 25; all optional, a scenario without them simulates the same data
as before): ``frequency`` (weekly, daily, calendar months; ``n_periods``), a day-of-week
pattern, channels bought in units of exposure with a drifting cost per unit (the curve acts
on the exposure, ROAS uses the spend), organic channels, treatments against a baseline,
categorical events, and a KPI target valued by a drifting revenue per KPI
(:mod:`bayesmmm.workflows.simulate_series`). Such a scenario can carry an ``experiment:``
template; :func:`write_simulation` then writes ``experiment.yaml`` naming the columns.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bayesmmm.components.features import YEAR_DAYS
from bayesmmm.config.experiment import (
    ConfigError,
    absolute_plugins,
    format_validation_error,
    with_plugins_loaded,
    yaml_problem,
)
from bayesmmm.data.loading import spend_scale
from bayesmmm.workflows.simulate_rf import RFChannelSpec, rf_data_keys, simulate_rf_channels
from bayesmmm.workflows.simulate_series import (
    PERIOD_DAYS,
    CategoricalEventSpec,
    ExposureSpec,
    RevenuePerKpiSpec,
    TreatmentSpec,
    baseline_value,
    categorical_column,
    categorical_truth,
    drift_series,
    period_dates,
    period_ends,
    periods_containing,
)
from bayesmmm.workflows.simulate_varying import EffectChangeSpec, effect_path, roas_by_year

__all__ = [
    "GeoSpec",
    "LiftTestSpec",
    "ScenarioConfig",
    "builtin_scenario",
    "experiment_for",
    "load_scenario",
    "simulate",
    "simulate_geo",
    "simulate_lift_tests",
    "true_contribution",
    "true_flight_response",
    "write_simulation",
]

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "scenarios"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlightingSpec(_Spec):
    """On/off flighting: alternating runs of weeks with geometric lengths."""

    mean_on_weeks: float = Field(6.0, ge=1.0)
    mean_off_weeks: float = Field(4.0, ge=1.0)


class SpendSpec(_Spec):
    """Spend per period ~ Gamma(shape, scale) [× Uniform(0, 1)] [× on/off flighting] [× weekdays].

    Flighting lengths are in weeks, converted to the data's periods; ``weekdays`` (daily
    data only, 0 = Monday) keeps the series on those days of the week and zero on the others.
    """

    shape: float = Field(gt=0)
    scale: float = Field(gt=0)
    times_uniform: bool = False
    flighting: FlightingSpec | None = None
    weekdays: list[int] | None = Field(None, description="daily data: the days of the week (0 = Monday) with spend")

    @model_validator(mode="after")
    def _weekdays(self) -> SpendSpec:
        if self.weekdays is not None and (not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays)):
            raise ValueError("weekdays: give days of the week from 0 (Monday) to 6 (Sunday)")
        return self


class TransformSpec(_Spec):
    """A registered transform with true parameter values (and settings like ``l_max``)."""

    name: str
    params: dict[str, float]
    l_max: int | None = Field(None, ge=1)
    normalize: bool | None = None


class ChannelSpec(_Spec):
    """One channel: spend process, transforms, and ``beta`` (target units per unit of saturation).

    ``spend_column`` names the spend column (default: the channel's name). With ``exposure``
    the channel buys units of exposure at a drifting cost: the exposure column is
    ``spend / cost``, and the curve acts on the exposure divided by its mean over periods with
    exposure (the spend column still gives ROAS).
    """

    spend: SpendSpec
    adstock: TransformSpec
    saturation: TransformSpec
    beta: float = Field(ge=0)
    spend_column: str | None = None
    exposure: ExposureSpec | None = None
    #: a true effect that changes over time (:mod:`bayesmmm.workflows.simulate_varying`)
    effect_change: EffectChangeSpec | None = None


class OrganicSpec(_Spec):
    """An organic channel (newsletter sends, posts): an exposure series with no spend.

    ``volume`` is its process (like a spend process); the curve acts on the volume divided
    by its mean over periods with volume; ``column`` defaults to the channel's name.
    """

    volume: SpendSpec
    adstock: TransformSpec
    saturation: TransformSpec
    beta: float = Field(ge=0)
    column: str | None = None


class TrendSpec(_Spec):
    """Trend adding ``total`` over the whole period: linear, sigmoid (S-shaped) or none.

    ``sigmoid``: ``1 / (1 + exp(-steepness (t - midpoint)))`` over ``t`` from 0 (first week)
    to 1 (last week), rescaled to rise by ``total`` from the first week to the last.
    """

    kind: Literal["none", "linear", "sigmoid"] = "linear"
    total: float = 0.0
    steepness: float = Field(8.0, gt=0, description="sigmoid: slope at the midpoint (per simulated span)")
    midpoint: float = Field(0.5, description="sigmoid: where it rises fastest (0 first week, 1 last week)")


class SeasonalitySpec(_Spec):
    """``amplitude * sum_k h_k cos(2πk (doy - peak) / 365.25)`` with harmonics ``h``."""

    amplitude: float = 0.0
    peak_day_of_year: float = Field(330, ge=0, le=366)
    harmonics: list[float] = [1.0]


class EventSpec(_Spec):
    """A 0/1 event column, 1 on the week containing each date, with an additive effect."""

    name: str
    dates: list[date]
    effect: float


class ControlSpec(_Spec):
    """A control column: Bernoulli(p) (``dist: bernoulli``) or Normal(0, 1), with an effect."""

    name: str
    dist: Literal["bernoulli", "normal"] = "bernoulli"
    p: float = Field(0.1, ge=0, le=1)
    effect: float


class NoiseSpec(_Spec):
    dist: Literal["normal", "student_t"] = "normal"
    sigma: float = Field(ge=0)
    nu: float = Field(5.0, gt=0)


class GeoSpec(_Spec):
    """A long-format geo panel: ``n`` geos of log-normal population, each a scaled copy of
    the national scenario (base, trend, seasonality, events, controls, spend and noise ×
    the geo's size ``population / mean population``) with geo-varying channel effects
    ``beta × size × exp(beta_sd_log · N(0, 1))`` (one draw per geo and channel).

    Optional heterogeneity beyond a scaled copy (all off by default, so a scenario without
    these keys simulates the same panel as before; drawn from their own random stream):
    the noise's standard deviation is ``noise.sigma × size ** noise_size_power ×
    exp(noise_sd_log · N(0, 1))`` (``noise_size_power: 0.5`` is count-like noise, relatively
    larger in small geos), the base level is ``base × size × exp(base_sd_log · N(0, 1))``
    and the trend's total change ``trend.total × size × (1 + trend_sd · N(0, 1))``.
    """

    n: int = Field(ge=1)
    population_mean: float = Field(1.0e6, gt=0)
    population_sd_log: float = Field(0.5, ge=0)
    beta_sd_log: float = Field(0.3, ge=0)
    noise_size_power: float = Field(1.0, description="the geo's noise sd scales with size ** this power")
    noise_sd_log: float = Field(0.0, ge=0, description="log-normal spread of the geos' noise sd beyond their size")
    base_sd_log: float = Field(0.0, ge=0, description="log-normal spread of the geos' base level beyond their size")
    trend_sd: float = Field(0.0, ge=0, description="relative spread of the geos' trend change beyond their size")
    column: str = "geo"
    population_column: str = "population"


class LiftTestSpec(_Spec):
    """Lift tests generated from the TRUE curves (``DIR/lift_tests.csv``, the calibration contract).

    One test per channel in ``channels`` (default: all): weekly spend ``x`` changed by
    ``change · x`` (``-1`` goes dark, ``-0.5`` pulls back by half); the measured lift is the
    true lift plus Normal noise of standard deviation ``noise · |true lift|`` (also the
    reported ``sigma``). With ``weeks`` the tests are dated, ``weeks`` long and staggered
    from the end of the data (the last channel's test ends on the last week, the one before
    ends ``weeks`` earlier...), ``x`` the actual mean spend over the test's weeks, and the
    true lift the counterfactual over those weeks, carry-over from earlier weeks included;
    without ``weeks`` they are steady state at the channel's mean weekly spend.
    """

    channels: list[str] | None = None
    change: float = Field(-1.0, ge=-1.0, description="spend change as a fraction of x (-1: go dark)")
    noise: float = Field(0.1, gt=0, description="standard error as a fraction of the true lift")
    weeks: int | None = Field(None, ge=1, description="dated tests of this many weeks (default: steady state)")

    @model_validator(mode="after")
    def _changes_spend(self) -> LiftTestSpec:
        if self.change == 0:
            raise ValueError("lift_tests.change = 0 changes no spend; use e.g. -1 (go dark) or 0.5")
        return self


class ScenarioConfig(_Spec):
    """A complete scenario; see ``configs/scenario_*.yaml``; ``geos`` makes it a geo panel.

    ``n_weeks`` (weekly data) or ``n_periods`` (any ``frequency``) sets the length.
    """

    name: str = "scenario"
    plugins: list[str] = Field(
        [], description="Python files (relative to this YAML file) or module names that register components"
    )
    seed: int = 0
    start_date: date
    frequency: Literal["weekly", "daily", "monthly"] = "weekly"
    n_weeks: int | None = Field(None, ge=8)
    n_periods: int | None = Field(None, ge=8, description="number of periods of the frequency")
    date_column: str = "date"
    target_column: str = "sales"
    base: float
    trend: TrendSpec = TrendSpec()
    seasonality: SeasonalitySpec = SeasonalitySpec()
    events: list[EventSpec] = []
    controls: list[ControlSpec] = []
    channels: dict[str, ChannelSpec] = Field(min_length=1)
    noise: NoiseSpec
    geos: GeoSpec | None = None
    lift_tests: LiftTestSpec | None = None
    day_of_week: list[float] = Field([], description="daily data: additive effects Monday..Sunday (7 numbers)")
    organic: dict[str, OrganicSpec] = {}
    treatments: list[TreatmentSpec] = []
    categorical_events: list[CategoricalEventSpec] = []
    revenue_per_kpi: RevenuePerKpiSpec | None = None
    reach_frequency: dict[str, RFChannelSpec] = Field(
        {}, description="reach & frequency channels (bayesmmm.workflows.simulate_rf), national scenarios"
    )
    experiment: dict[str, Any] | None = Field(
        None, description="model/sampler/... of the experiment.yaml written beside the data (data: block filled in)"
    )

    @property
    def periods(self) -> int:
        """Number of periods (rows per geo)."""
        return int(self.n_weeks if self.n_weeks is not None else self.n_periods)  # n_weeks: a model_copy may set it

    @model_validator(mode="before")
    @classmethod
    def _load_plugins(cls, data: Any) -> Any:
        return with_plugins_loaded(data)

    @model_validator(mode="after")
    def _check_length(self) -> ScenarioConfig:
        if self.n_weeks is None and self.n_periods is None:
            raise ValueError("set n_periods (or n_weeks for weekly data): the number of periods to simulate")
        if self.n_weeks is not None and self.frequency != "weekly":
            raise ValueError(f"n_weeks counts weeks; frequency is {self.frequency}: give n_periods instead")
        if self.n_weeks is not None and self.n_periods is not None and self.n_weeks != self.n_periods:
            raise ValueError(f"n_weeks ({self.n_weeks}) and n_periods ({self.n_periods}) differ; keep one")
        if self.frequency == "weekly" and self.n_weeks is None:
            self.n_weeks = self.n_periods
        if self.frequency == "monthly" and self.start_date.day != 1:
            raise ValueError(f"monthly data start on the 1st of a month; start_date is {self.start_date}")
        return self

    @model_validator(mode="after")
    def _check_extras(self) -> ScenarioConfig:
        daily = self.frequency == "daily"
        if self.day_of_week and (not daily or len(self.day_of_week) != 7):
            raise ValueError("day_of_week takes 7 effects (Monday..Sunday) and needs frequency: daily")
        processes = [(f"channel {n!r}", c.spend) for n, c in self.channels.items()]
        processes += [(f"organic {n!r}", o.volume) for n, o in self.organic.items()]
        for what, spend in processes:
            if spend.weekdays is not None and not daily:
                raise ValueError(f"{what}: weekdays needs frequency: daily")
        rich = self.new_roles()
        if self.geos is not None and rich:
            raise ValueError(f"geo panels are simulated without {', '.join(rich)}; drop them or geos")
        if self.geos is not None and self.frequency != "weekly":
            raise ValueError("geo panels are simulated weekly; drop frequency or geos")
        if self.lift_tests is not None and (self.frequency != "weekly" or rich):
            raise ValueError("lift_tests are simulated for weekly scenarios of spend channels only")
        columns = [self.date_column, self.target_column, *(e.name for e in self.events)]
        columns += [c.name for c in self.controls] + list(self.media_columns().values())
        columns += [ch.exposure.column for ch in self.channels.values() if ch.exposure is not None]
        columns += [o.column or n for n, o in self.organic.items()]
        columns += [t.name for t in self.treatments] + [e.name for e in self.categorical_events]
        columns += [self.revenue_per_kpi.column] if self.revenue_per_kpi is not None else []
        columns += [c for name, rf in self.reach_frequency.items() for c in rf.columns(name).values()]
        columns += [n for n in self.reach_frequency if n in self.channels]  # a name used twice
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ValueError(f"columns {dupes} are written by more than one part of the scenario; rename them")
        return self

    def media_columns(self) -> dict[str, str]:
        """Channel → its spend column."""
        return {n: ch.spend_column or n for n, ch in self.channels.items()}

    def new_roles(self) -> list[str]:
        """The richer parts (issue 25) this scenario uses, by key."""
        used = {
            "exposure channels": any(ch.exposure is not None for ch in self.channels.values()),
            "spend_column": any(ch.spend_column is not None for ch in self.channels.values()),
            "day_of_week": bool(self.day_of_week),
            "organic": bool(self.organic),
            "treatments": bool(self.treatments),
            "categorical_events": bool(self.categorical_events),
            "revenue_per_kpi": self.revenue_per_kpi is not None,
            "reach_frequency": bool(self.reach_frequency),
        }
        return [k for k, v in used.items() if v]

    @model_validator(mode="after")
    def _check_transforms(self) -> ScenarioConfig:
        for name, ch in [*self.channels.items(), *self.organic.items()]:
            for spec, kind in ((ch.adstock, "adstock"), (ch.saturation, "saturation")):
                transform = _build(spec, kind)
                missing = sorted(set(transform.param_names) - set(spec.params))
                extra = sorted(set(spec.params) - set(transform.param_names))
                if missing or extra:
                    raise ValueError(
                        f"channel {name!r}: {kind} {spec.name!r} takes parameters {list(transform.param_names)}; "
                        f"missing {missing or 'none'}, unknown {extra or 'none'}"
                    )
        if self.lift_tests is not None:
            unknown = sorted(set(self.lift_tests.channels or []) - set(self.channels))
            if unknown:
                raise ValueError(
                    f"lift_tests.channels: unknown channel {unknown[0]!r}; channels: {list(self.channels)}"
                )
            if self.geos is not None:
                raise ValueError("lift_tests are simulated for national scenarios only; drop lift_tests or geos")
            if (
                self.lift_tests.weeks is not None
                and self.lift_tests.weeks * len(self.lift_tests.channels or self.channels) > self.periods
            ):
                raise ValueError("lift_tests.weeks × the number of tested channels exceeds n_weeks; test fewer weeks")
        return self


def _build(spec: TransformSpec, kind: str):
    from bayesmmm.components import ADSTOCKS, SATURATIONS

    registry = ADSTOCKS if kind == "adstock" else SATURATIONS
    settings: dict[str, Any] = {}
    if kind == "adstock":
        if spec.l_max is not None:
            settings["l_max"] = spec.l_max
        if spec.normalize is not None:
            settings["normalize"] = spec.normalize
    return registry.get(spec.name)(**settings)


def builtin_scenario(name: str) -> Path:
    """Path of a YAML shipped in ``bayesmmm/scenarios`` (``four_channel``, ``intermittent``...)."""
    path = BUILTIN_DIR / f"{name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml") if not p.stem.endswith("_experiment"))
        raise ConfigError(f"no scenario file or built-in scenario named {name!r}; built-ins: {', '.join(names)}")
    return path


def load_scenario(path: str | Path) -> ScenarioConfig:
    """Read and validate a scenario YAML."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"scenario file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and isinstance(raw.get("plugins"), list):
            raw["plugins"] = absolute_plugins([str(p) for p in raw["plugins"]], path.parent.resolve())
        return ScenarioConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), ScenarioConfig)) from None


def _spend(
    spec: SpendSpec, n: int, rng: np.random.Generator, dates: pd.DatetimeIndex | None = None, frequency: str = "weekly"
) -> np.ndarray:
    x = rng.gamma(spec.shape, spec.scale, size=n)
    if spec.times_uniform:
        x = x * rng.uniform(0.0, 1.0, size=n)
    if spec.flighting is not None:
        on = np.zeros(n, dtype=bool)
        t, state = 0, bool(rng.integers(0, 2))
        while t < n:
            mean = spec.flighting.mean_on_weeks if state else spec.flighting.mean_off_weeks
            if frequency != "weekly":  # weeks → periods of the data (at least one)
                mean = max(1.0, mean * 7.0 / PERIOD_DAYS[frequency])
            length = int(rng.geometric(1.0 / mean))
            on[t : t + length] = state
            t, state = t + length, not state
        if not on.any():
            on[rng.integers(0, n)] = True
        x = x * on
    if spec.weekdays is not None and dates is not None:
        x = x * np.isin(dates.day_of_week.to_numpy(), spec.weekdays)
    return x


def _trend(spec: TrendSpec, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    if spec.kind == "linear":
        return spec.total * t
    if spec.kind == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-spec.steepness * (t - spec.midpoint)))
        return spec.total * (s - s[0]) / (s[-1] - s[0])
    return np.zeros(n)


def simulate(scenario: ScenarioConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate a data set and its ground truth.

    Returns
    -------
    frame : one row per period (week, day or month) with date, target, channel spends
        (and exposures), event and control columns, and the columns of the richer roles
        (organic, treatments, categorical events, revenue per KPI).
    truth : true parameters; per channel the true contribution (total and per period:
        ``weekly_contribution`` for weekly data, ``period_contribution`` otherwise), spend,
        ROAS = contribution / spend and share of the media contribution. With
        ``revenue_per_kpi`` the contributions are in KPI units, ``contribution_revenue`` =
        Σ_t contribution_t × revenue_per_kpi_t, ``roas_kpi`` = contribution / spend and
        ``roas`` = ``roas_revenue`` = contribution_revenue / spend. Organic channels, treatments
        and categorical events have their own blocks (``organic``, ``treatments``,
        ``categorical_events``).

    A scenario with ``geos`` gives a long-format panel (see :func:`simulate_geo`).
    """
    if scenario.geos is not None:
        if any(ch.effect_change is not None for ch in scenario.channels.values()):
            raise ConfigError("channels.<name>.effect_change is simulated for national scenarios only; remove geos")
        return simulate_geo(scenario)
    rng = np.random.default_rng(scenario.seed)
    n, freq = scenario.periods, scenario.frequency
    series_key = "weekly_contribution" if freq == "weekly" else "period_contribution"
    dates = period_dates(scenario.start_date, n, freq)
    ends = period_ends(dates, freq)
    frame = pd.DataFrame({scenario.date_column: dates.strftime("%Y-%m-%d")})
    baseline = np.full(n, scenario.base, dtype=float) + _trend(scenario.trend, n)
    doy = dates.day_of_year.to_numpy(dtype=float)
    seasonal = np.zeros(n)
    for k, h in enumerate(scenario.seasonality.harmonics, start=1):
        seasonal += h * np.cos(2 * np.pi * k * (doy - scenario.seasonality.peak_day_of_year) / YEAR_DAYS)
    seasonal *= scenario.seasonality.amplitude
    # the richer roles draw from their own streams ([seed, tag, k]): the main stream is unchanged
    rpk = None
    if scenario.revenue_per_kpi is not None:
        rpk = drift_series(scenario.revenue_per_kpi.value, dates, np.random.default_rng([scenario.seed, 28]))
    extra = np.zeros(n)
    for ev in scenario.events:
        col = np.zeros(n)
        for d in ev.dates:
            week = periods_containing(d, dates, ends)
            if len(week) == 0:
                raise ConfigError(f"event {ev.name!r} date {d} is outside the simulated periods")
            col[week] = 1.0
        frame[ev.name] = col
        extra += ev.effect * col
    for ctl in scenario.controls:
        col = rng.binomial(1, ctl.p, size=n).astype(float) if ctl.dist == "bernoulli" else rng.normal(size=n)
        frame[ctl.name] = col
        extra += ctl.effect * col
    channels: dict[str, Any] = {}
    series: dict[str, np.ndarray] = {}  # channel → its true contribution per period
    media_total = np.zeros(n)
    for k, (name, ch) in enumerate(scenario.channels.items()):
        spend = _spend(ch.spend, n, rng, dates, freq)
        x, cost = spend, None
        if ch.exposure is not None:
            cost = drift_series(ch.exposure.cost, dates, np.random.default_rng([scenario.seed, 25, k]))
            x = spend / cost
        scale = float(spend_scale(x))
        ad = _build(ch.adstock, "adstock")
        sat = _build(ch.saturation, "saturation")
        adstocked = ad.evaluate(x / scale, **ch.adstock.params)
        contribution = ch.beta * sat.evaluate(adstocked, **ch.saturation.params)
        path = effect_path(ch.effect_change, n) if ch.effect_change is not None else None
        if path is not None:
            contribution = contribution * path
        frame[ch.spend_column or name] = spend
        media_total += contribution
        series[name] = contribution
        channels[name] = {
            "adstock": {"name": ch.adstock.name, "l_max": ad.l_max, "normalize": ad.normalize, **ch.adstock.params},
            "saturation": {"name": ch.saturation.name, **ch.saturation.params},
            "beta": ch.beta,
            "spend_scale": scale if cost is None else float(spend_scale(spend)),
            "spend": float(spend.sum()),
            "contribution": float(contribution.sum()),
            "roas": float(contribution.sum() / spend.sum()),
            series_key: contribution.round(6).tolist(),
        }
        if path is not None:
            channels[name].update(
                {
                    "effect_multiplier": path.tolist(),
                    "beta_latest": float(ch.beta * path[-1]),
                    "roas_by_year": roas_by_year(dates, contribution, spend),
                }
            )
        if ch.spend_column is not None or cost is not None:
            channels[name]["spend_column"] = ch.spend_column or name
        if cost is not None:
            frame[ch.exposure.column] = x
            channels[name].update(
                {
                    "exposure_column": ch.exposure.column,
                    "exposure_scale": scale,
                    "exposure": float(x.sum()),
                    "cost_per_unit": float(spend.sum() / x.sum()),
                    "cost_per_unit_series": cost.tolist(),
                }
            )
    if scenario.reach_frequency:  # their own random streams: the other columns are unchanged
        rf_total, rf_truth = simulate_rf_channels(scenario.reach_frequency, dates, scenario.seed, frame, series_key)
        media_total += rf_total
        channels.update(rf_truth)
        series.update({name: np.asarray(c[series_key]) for name, c in rf_truth.items()})
    roles = _simulate_roles(scenario, frame, dates, ends, series_key)
    if scenario.noise.dist == "student_t":
        noise = scenario.noise.sigma * rng.standard_t(scenario.noise.nu, size=n)
    else:
        noise = rng.normal(0.0, scenario.noise.sigma, size=n)
    target = baseline + seasonal + extra + media_total + noise
    dow = np.asarray(scenario.day_of_week, dtype=float)[dates.day_of_week] if scenario.day_of_week else None
    if roles["total"] is not None:
        target = target + roles["total"] + (dow if dow is not None else 0.0)
    frame.insert(1, scenario.target_column, target)
    if rpk is not None:
        frame[scenario.revenue_per_kpi.column] = rpk
    total_media = sum(c["contribution"] for c in channels.values())
    total_spend = sum(c["spend"] for c in channels.values())
    target_scale = float(np.mean(np.abs(target)))
    for name, c in channels.items():
        c["share"] = c["contribution"] / total_media if total_media > 0 else 0.0
        c["spend_share"] = c["spend"] / total_spend
        c["beta_scaled"] = c["beta"] / target_scale
        if rpk is not None:
            c["contribution_revenue"] = float(np.sum(series[name] * rpk))
            c["roas_kpi"] = c["roas"]
            c["roas_revenue"] = c["roas"] = c["contribution_revenue"] / c["spend"]
    truth = {
        "scenario": _scenario_json(scenario),
        "target_scale": target_scale,
        "media_share_of_target": float(total_media / target.sum()),
        "channels": channels,
        "baseline": {
            "trend": _trend(scenario.trend, n).round(6).tolist(),
            "seasonality": seasonal.round(6).tolist(),
        },
    }
    if freq != "weekly" or scenario.new_roles():
        truth["frequency"] = freq
        truth["kpi"] = {"column": scenario.target_column}
        if rpk is not None:
            truth["kpi"].update(
                {
                    "revenue_per_kpi_column": scenario.revenue_per_kpi.column,
                    "mean_revenue_per_kpi": float(rpk.mean()),
                    "revenue": float(np.sum(target * rpk)),
                }
            )
        if scenario.day_of_week:
            truth["baseline"]["day_of_week"] = list(scenario.day_of_week)
        for block in ("organic", "treatments", "categorical_events"):
            for entry in roles[block].values():
                _add_revenue(entry, rpk, series_key)
            truth[block] = roles[block]
    return frame, truth


def _simulate_roles(
    scenario: ScenarioConfig, frame: pd.DataFrame, dates: pd.DatetimeIndex, ends: pd.DatetimeIndex, series_key: str
) -> dict[str, Any]:
    """Organic channels, treatments and categorical events: their columns (added to ``frame``),
    truth blocks and the sum of their contributions (``total``; None when the scenario has none)."""
    n = len(dates)
    total = np.zeros(n)
    organic: dict[str, Any] = {}
    for k, (name, og) in enumerate(scenario.organic.items()):
        volume = _spend(og.volume, n, np.random.default_rng([scenario.seed, 26, k]), dates, scenario.frequency)
        scale = float(spend_scale(volume))
        ad = _build(og.adstock, "adstock")
        sat = _build(og.saturation, "saturation")
        contribution = og.beta * sat.evaluate(ad.evaluate(volume / scale, **og.adstock.params), **og.saturation.params)
        frame[og.column or name] = volume
        total += contribution
        organic[name] = {
            "column": og.column or name,
            "adstock": {"name": og.adstock.name, "l_max": ad.l_max, "normalize": ad.normalize, **og.adstock.params},
            "saturation": {"name": og.saturation.name, **og.saturation.params},
            "beta": og.beta,
            "exposure_scale": scale,
            "exposure": float(volume.sum()),
            "contribution": float(contribution.sum()),
            series_key: contribution.round(6).tolist(),
        }
    treatments: dict[str, Any] = {}
    for k, tr in enumerate(scenario.treatments):
        x = drift_series(tr.value, dates, np.random.default_rng([scenario.seed, 27, k]))
        base = baseline_value(x, tr.baseline)
        contribution = tr.effect * (x - base)
        frame[tr.name] = x
        total += contribution  # against the baseline: `base` stays the level at the baseline value
        treatments[tr.name] = {
            "effect": tr.effect,
            "baseline": tr.baseline,
            "baseline_value": base,
            "contribution": float(contribution.sum()),
            series_key: contribution.round(6).tolist(),
        }
    events: dict[str, Any] = {}
    for ev in scenario.categorical_events:
        try:
            values = categorical_column(ev, dates, ends)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        effect = {ev.reference: 0.0, **{lv: spec.effect for lv, spec in ev.levels.items()}}
        absolute = np.array([effect[v] for v in values])
        frame[ev.name] = values
        total += absolute
        info = categorical_truth(ev, values)
        relative = absolute - effect[info["reference"]]
        for lv, entry in info["levels"].items():
            entry["contribution"] = float(relative[values == lv].sum())
        info["contribution"] = float(relative.sum())
        info[series_key] = relative.round(6).tolist()
        events[ev.name] = info
    has_roles = bool(organic or treatments or events or scenario.day_of_week)
    return {
        "organic": organic,
        "treatments": treatments,
        "categorical_events": events,
        "total": total if has_roles else None,
    }


def _add_revenue(entry: dict[str, Any], rpk: np.ndarray | None, series_key: str) -> None:
    """``contribution_revenue`` = Σ_t contribution_t × revenue_per_kpi_t of a truth entry."""
    if rpk is not None:
        entry["contribution_revenue"] = float(np.sum(np.asarray(entry[series_key]) * rpk))


#: keys of the richer scenarios, dropped from truth.json's copy of the scenario when unset
_NEW_KEYS = {
    "frequency": "weekly",
    "n_periods": None,
    "day_of_week": [],
    "organic": {},
    "treatments": [],
    "categorical_events": [],
    "revenue_per_kpi": None,
    "reach_frequency": {},
    "experiment": None,
}


def _scenario_json(scenario: ScenarioConfig) -> dict[str, Any]:
    """The scenario as JSON; keys added for issue 25 only where set (earlier truth.json unchanged)."""
    raw = scenario.model_dump(mode="json")
    for key, default in _NEW_KEYS.items():
        if raw.get(key) == default:
            raw.pop(key)
    for ch in raw["channels"].values():
        for key in ("spend_column", "exposure"):
            if ch.get(key) is None:
                ch.pop(key, None)
        if ch["spend"].get("weekdays") is None:
            ch["spend"].pop("weekdays", None)
    return raw


def simulate_geo(scenario: ScenarioConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate a geo panel (``scenario.geos``) and its truth.

    Each geo is the national scenario with every level scaled by the geo's size and its
    own seed; its channel effects are ``beta × size × multiplier``. Returns the long frame
    (date, geo, target, channels, controls, population) and a truth dict whose
    ``channels`` are national totals (contribution and spend summed over geos, ROAS =
    their ratio) and whose ``geos[geo]["channels"][channel]`` hold each geo's true
    ``beta``, ``multiplier``, ``spend``, ``contribution`` and ``roas``.
    """
    spec = scenario.geos
    rng = np.random.default_rng([scenario.seed, 7])
    population = spec.population_mean * np.exp(spec.population_sd_log * rng.standard_normal(spec.n))
    size = population / population.mean()
    multipliers = np.exp(spec.beta_sd_log * rng.standard_normal((spec.n, len(scenario.channels))))
    # heterogeneity beyond a scaled copy: its own stream, so the default panel is unchanged
    extra = np.random.default_rng([scenario.seed, 11]).standard_normal((3, spec.n))
    noise_w = size**spec.noise_size_power * np.exp(spec.noise_sd_log * extra[0])
    base_w = size * np.exp(spec.base_sd_log * extra[1])
    trend_w = size * (1.0 + spec.trend_sd * extra[2])
    names = [f"geo_{g:02d}" for g in range(spec.n)]
    frames, geo_truth = [], {}
    national: dict[str, dict[str, Any]] = {}
    for g, geo in enumerate(names):
        w = float(size[g])
        sub = scenario.model_copy(
            update={
                "geos": None,
                "seed": scenario.seed + 1000 * (g + 1),
                "base": scenario.base * float(base_w[g]),
                "trend": scenario.trend.model_copy(update={"total": scenario.trend.total * float(trend_w[g])}),
                "seasonality": scenario.seasonality.model_copy(
                    update={"amplitude": scenario.seasonality.amplitude * w}
                ),
                "events": [e.model_copy(update={"effect": e.effect * w}) for e in scenario.events],
                "controls": [c.model_copy(update={"effect": c.effect * w}) for c in scenario.controls],
                "channels": {
                    name: ch.model_copy(
                        update={
                            "spend": ch.spend.model_copy(update={"scale": ch.spend.scale * w}),
                            "beta": ch.beta * w * float(multipliers[g, c]),
                        }
                    )
                    for c, (name, ch) in enumerate(scenario.channels.items())
                },
                "noise": scenario.noise.model_copy(update={"sigma": scenario.noise.sigma * float(noise_w[g])}),
            }
        )
        frame, truth = simulate(sub)
        frame.insert(1, spec.column, geo)
        frame[spec.population_column] = float(population[g])
        frames.append(frame)
        geo_truth[geo] = {
            "population": float(population[g]),
            "size": w,
            "noise_sigma": scenario.noise.sigma * float(noise_w[g]),
            "channels": {
                name: {
                    "beta": ch["beta"],
                    "multiplier": float(multipliers[g, c]),
                    "spend": ch["spend"],
                    "contribution": ch["contribution"],
                    "roas": ch["roas"],
                }
                for c, (name, ch) in enumerate(truth["channels"].items())
            },
        }
        for name, ch in truth["channels"].items():
            agg = national.setdefault(
                name,
                {
                    "adstock": ch["adstock"],
                    "saturation": ch["saturation"],
                    "beta": scenario.channels[name].beta,
                    "spend": 0.0,
                    "contribution": 0.0,
                    "weekly_contribution": np.zeros(scenario.n_weeks),
                },
            )
            agg["spend"] += ch["spend"]
            agg["contribution"] += ch["contribution"]
            agg["weekly_contribution"] = agg["weekly_contribution"] + np.asarray(ch["weekly_contribution"])
    panel = pd.concat(frames, ignore_index=True)
    total_media = sum(c["contribution"] for c in national.values())
    total_spend = sum(c["spend"] for c in national.values())
    for c in national.values():
        c["roas"] = c["contribution"] / c["spend"]
        c["share"] = c["contribution"] / total_media if total_media > 0 else 0.0
        c["spend_share"] = c["spend"] / total_spend
        c["weekly_contribution"] = c["weekly_contribution"].round(6).tolist()
    target = panel[scenario.target_column].to_numpy()
    truth = {
        "scenario": _scenario_json(scenario),
        "media_share_of_target": float(total_media / target.sum()),
        "channels": national,
        "geos": geo_truth,
    }
    return panel, truth


def true_flight_response(
    truth: dict[str, Any], totals: dict[str, float | np.ndarray], weeks: int
) -> dict[str, float | np.ndarray]:
    """TRUE incremental response of a flat-paced flight, from the simulator's true curves.

    The same quantity the budget optimizer maximizes (see
    :class:`~bayesmmm.decisions.response.FlightResponse`): ``totals[channel]`` spread evenly over
    ``weeks`` weeks from zero adstock, counted until the carry-over has decayed.

    Parameters
    ----------
    truth : the simulator's ``truth.json`` content.
    totals : channel → total spend over the flight; a 1-D array evaluates many
        flights at once (one compiled evaluation per channel).
    weeks : flight length in weeks.

    Returns
    -------
    dict channel → true response (original units of the target), a float or an array
    shaped like the input.
    """
    out: dict[str, float | np.ndarray] = {}
    for name, spend in totals.items():
        ch = truth["channels"][name]
        if "exposure_column" in ch:
            raise ValueError(f"channel {name!r} is bought in exposure: true_flight_response takes spend channels")
        spend_arr = np.atleast_1d(np.asarray(spend, dtype=float))
        flight = np.zeros((weeks + ch["adstock"]["l_max"] - 1, spend_arr.size))
        flight[:weeks] = spend_arr / weeks
        response = np.sum(true_contribution(ch, flight), axis=0)
        out[name] = float(response[0]) if np.ndim(spend) == 0 else response.reshape(np.shape(spend))
    return out


def true_contribution(ch: dict[str, Any], spend: np.ndarray) -> np.ndarray:
    """The TRUE contribution per period of a channel (truth.json entry) for input series (date, n).

    The input is what the curve acts on: spend, or the exposure of a channel with
    ``exposure_column`` and of an organic channel (scaled by their ``exposure_scale``).
    """
    ad_params = {k: v for k, v in ch["adstock"].items() if k not in ("name", "l_max", "normalize")}
    sat_params = {k: v for k, v in ch["saturation"].items() if k != "name"}
    ad = _build(
        TransformSpec(
            name=ch["adstock"]["name"],
            l_max=ch["adstock"]["l_max"],
            normalize=ch["adstock"]["normalize"],
            params=ad_params,
        ),
        "adstock",
    )
    sat = _build(TransformSpec(name=ch["saturation"]["name"], params=sat_params), "saturation")
    scale = ch.get("exposure_scale", ch.get("spend_scale"))
    return ch["beta"] * sat.evaluate(ad.evaluate(spend / scale, **ad_params), **sat_params)


def simulate_lift_tests(scenario: ScenarioConfig, frame: pd.DataFrame, truth: dict[str, Any]) -> pd.DataFrame:
    """Lift tests of ``scenario.lift_tests`` from the TRUE curves (:class:`LiftTestSpec`).

    Returns the CSV's rows (``channel, x, delta_x, delta_y, sigma[, start, end]``) plus
    ``true_lift``, the noiseless lift (dropped from the CSV, kept in ``truth.json``).
    """
    spec = scenario.lift_tests
    rng = np.random.default_rng([scenario.seed, 1616])  # its own stream: the data do not change
    names = spec.channels or list(scenario.channels)
    dates = pd.DatetimeIndex(pd.to_datetime(frame[scenario.date_column]))
    n = len(dates)
    rows = []
    for k, name in enumerate(names):
        ch = truth["channels"][name]
        spend = frame[name].to_numpy(dtype=float)
        path = np.asarray(ch.get("effect_multiplier", np.ones(n)), dtype=float)[:, None]  # a changing effect
        if spec.weeks is None and "effect_multiplier" in ch:
            raise ConfigError(
                f"lift_tests: channel {name!r}'s true effect changes over time (effect_change), so a steady-state "
                "test has no single true lift: give lift_tests.weeks (dated tests)"
            )
        if spec.weeks is None:  # steady state: a constant spend long enough to fill the adstock
            x = float(spend.mean())
            base = np.full((max(ch["adstock"]["l_max"], n), 1), x)
            treat = base * (1.0 + spec.change)
            true = float((true_contribution(ch, treat) - true_contribution(ch, base))[-1, 0])
            window = {}
        else:
            end = n - 1 - (len(names) - 1 - k) * spec.weeks
            start = end - spec.weeks + 1
            x = float(spend[start : end + 1].mean())
            if x <= 0:
                raise ConfigError(
                    f"lift_tests: the {spec.weeks}-week test of channel {name!r} falls in weeks "
                    f"{dates[start].date()}..{dates[end].date()}, where it spends nothing, so it cannot change "
                    "its spend; test flighted channels in steady state (omit lift_tests.weeks) or use shorter tests"
                )
            base, treat = spend.copy(), spend.copy()
            base[start : end + 1], treat[start : end + 1] = x, x * (1.0 + spec.change)
            diff = (true_contribution(ch, treat[:, None]) - true_contribution(ch, base[:, None])) * path
            true = float(diff[start : end + 1, 0].mean())
            window = {"start": str(dates[start].date()), "end": str(dates[end].date())}
        sigma = spec.noise * abs(true) if true != 0 else spec.noise
        rows.append(
            {
                "channel": name,
                "x": x,
                "delta_x": spec.change * x,
                "delta_y": true + sigma * float(rng.normal()),
                "sigma": sigma,
                **window,
                "true_lift": true,
            }
        )
    return pd.DataFrame(rows)


def experiment_for(scenario: ScenarioConfig, data_path: str = "data.csv") -> dict[str, Any] | None:
    """The experiment that fits the scenario's data: its ``experiment:`` template (model,
    sampler...) with a ``data:`` block naming every column in its role; None without a template.

    The data keys are those of issue 25: ``frequency`` (when not weekly), ``channels: {name:
    {spend, exposure}}`` when a channel has an exposure or a renamed spend column (else the
    short form ``channel_columns``), ``revenue_per_kpi_column``, ``organic_columns``,
    ``treatment_columns`` with ``treatment_baseline``, ``event_columns``, and the 0/1 events and
    controls as ``control_columns``. Keys of the template's own ``data:`` block are kept.
    """
    if scenario.experiment is None:
        return None
    template = {k: v for k, v in scenario.experiment.items() if k != "data"}
    data: dict[str, Any] = {"path": data_path}
    if scenario.frequency != "weekly":
        data["frequency"] = scenario.frequency
    data.update({"date_column": scenario.date_column, "target_column": scenario.target_column})
    if scenario.revenue_per_kpi is not None:
        data["revenue_per_kpi_column"] = scenario.revenue_per_kpi.column
    spend = scenario.media_columns()
    long_form = any(ch.exposure is not None or ch.spend_column is not None for ch in scenario.channels.values())
    if long_form or scenario.reach_frequency:
        data["channels"] = {
            name: {"spend": spend[name], **({"exposure": ch.exposure.column} if ch.exposure is not None else {})}
            for name, ch in scenario.channels.items()
        }
        data["channels"].update(rf_data_keys(scenario.reach_frequency))
    else:
        data["channel_columns"] = list(scenario.channels)
    controls = [e.name for e in scenario.events] + [c.name for c in scenario.controls]
    if controls:
        data["control_columns"] = controls
    if scenario.organic:
        data["organic_columns"] = [og.column or name for name, og in scenario.organic.items()]
    if scenario.treatments:
        data["treatment_columns"] = [t.name for t in scenario.treatments]
        baselines = {t.baseline for t in scenario.treatments}
        data["treatment_baseline"] = (
            baselines.pop() if len(baselines) == 1 else {t.name: t.baseline for t in scenario.treatments}
        )
    if scenario.categorical_events:
        data["event_columns"] = [e.name for e in scenario.categorical_events]
    data.update(scenario.experiment.get("data") or {})
    return {"name": template.pop("name", scenario.name), "data": data, **template}


def write_simulation(scenario: ScenarioConfig, out_dir: str | Path) -> tuple[Path, Path]:
    """Simulate and write ``out_dir/data.csv`` and ``out_dir/truth.json`` atomically.

    A scenario with ``lift_tests`` also writes ``out_dir/lift_tests.csv`` (and the true,
    noiseless lifts under ``lift_tests`` in ``truth.json``); one with an ``experiment:``
    template writes ``out_dir/experiment.yaml`` (:func:`experiment_for`), which fits
    ``data.csv`` beside it.
    """
    from bayesmmm.io import write_json, write_text

    out_dir = Path(out_dir)
    frame, truth = simulate(scenario)
    data_path = write_text(out_dir / "data.csv", frame.to_csv(index=False))
    experiment = experiment_for(scenario)
    if experiment is not None:
        header = f"# Fits data.csv beside it: simulated by bayesmmm from scenario {scenario.name!r}.\n"
        write_text(out_dir / "experiment.yaml", header + yaml.safe_dump(experiment, sort_keys=False))
    if scenario.lift_tests is not None:
        tests = simulate_lift_tests(scenario, frame, truth)
        truth["lift_tests"] = tests.to_dict(orient="records")
        write_text(out_dir / "lift_tests.csv", tests.drop(columns="true_lift").to_csv(index=False))
    truth_path = write_json(out_dir / "truth.json", truth)
    return data_path, truth_path
