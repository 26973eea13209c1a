"""The frozen description of a model bound to its training data: what every consumer computes from.

A :class:`ModelSpec` is built once, when an :class:`~bayesmmm.model.mmm.MMM` is bound to data
(``fit``, ``build_model``, ``MMM.load``): the column roles and configuration, the components
(adstock, saturation, likelihood, trend, seasonality), the priors, the training data and the
scales, and what follows from them (the free variables and their dims, the geo pooling, the
coordinates, the scaled design of any rows). It never changes and never points back at the model:
the predictive core (:class:`~bayesmmm.model.predictive.Predictive`), the geo, media-prior and
calibration helpers take a spec, so a view of a posterior (a thinned one, say) cannot disagree
with the model it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.components.adstock import Adstock
from bayesmmm.components.features import time_index
from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import DataConfig, GeoConfig, ModelConfig
from bayesmmm.data.frequency import frequency_label, is_next_period, next_dates, period_name
from bayesmmm.data.loading import DataError, MMMData
from bayesmmm.model.scales import Scales

__all__ = ["ORGANIC_SHARE", "POOLING_VARIABLES", "QUANTITY_VARIABLES", "ModelSpec"]

#: free variable holding the quantity of a business-unit media prior, by its type (:mod:`bayesmmm.model.media_prior`)
QUANTITY_VARIABLES = {"roas": "roas", "mroas": "mroas", "share": "contribution_share"}
#: the organic media's free variable under ``model.organic.prior: share`` (``beta_organic`` its function)
ORGANIC_SHARE = "organic_share"
#: free variables of the pooled media priors: the shared log level, the spread (``hierarchical`` only), the offsets
POOLING_VARIABLES = {"level": "media_prior_mu", "spread": "media_prior_tau", "offset": "media_prior_z"}


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A model's structure, priors, training data and scales, fixed when it is bound to data.

    Parameters
    ----------
    data_config, model_config : the column roles and the model's configuration.
    adstock, saturation, likelihood, trend, seasonality : the bound components.
    priors : every prior by variable name (read-only).
    data : the training data (original units).
    scales : the scaling constants fixed at training time.

    Notes
    -----
    Equality is identity: two specs are the same model only if they are the same object, so
    caches keyed by a spec (compiled functions) can never serve another model.
    """

    data_config: DataConfig
    model_config: ModelConfig
    adstock: Any
    saturation: Any
    likelihood: Any
    trend: Any
    seasonality: Any
    priors: Mapping[str, Prior]
    data: MMMData
    scales: Scales
    #: the organic media's own adstock and saturation (variables suffixed ``_organic``), or None without organic
    organic_adstock: Any = None
    organic_saturation: Any = None
    #: the bound multiplier component of ``model.time_varying_media`` (:mod:`bayesmmm.components.multiplier`),
    #: or None: every channel's effect is constant
    varying: Any = None
    #: values derived from the spec alone (the training design, compiled functions), filled on first use
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "priors", MappingProxyType(dict(self.priors)))

    # ----------------------------------------------------------------- roles
    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.data_config.channel_names)

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(self.data_config.control_columns)

    @property
    def organic(self) -> tuple[str, ...]:
        """Organic media (``data.organic_columns``): their own dim ``organic``, never part of ``channel``."""
        return tuple(self.data_config.organic_columns)

    @property
    def treatments(self) -> tuple[str, ...]:
        """Treatments (``data.treatment_columns``), measured against their baselines."""
        return tuple(self.data_config.treatment_columns)

    @property
    def events(self) -> tuple[str, ...]:
        """Event effects, ``column[level]`` (every non-reference level of ``data.event_columns``)."""
        return tuple(self.data.event_names)

    @property
    def rf_channels(self) -> tuple[str, ...]:
        """Reach & frequency channels (``data.channels.<name>.reach / frequency``): part of ``channel``
        (ROAS, the budget, lift tests), their curves on reach and frequency (:mod:`bayesmmm.model.reach`)."""
        return tuple(self.data_config.rf_channels)

    @property
    def rf_index(self) -> tuple[int, ...]:
        """Positions of :attr:`rf_channels` in :attr:`channels`."""
        return tuple(self.channels.index(c) for c in self.rf_channels)

    @property
    def input_blocks(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The non-paid input block's parts in order, ``(name, columns)``: ``controls``, ``organic``,
        ``treatments`` (original units), ``events`` (0/1 indicators). Every caller passes these, side by
        side on the last axis, where the mean functions take ``controls`` (:meth:`history_inputs`,
        :meth:`covariates`); a model without organic media, treatments and events takes its controls alone.
        Last, ``rf_frequency``: the frequency of the reach & frequency channels (absent without them)."""
        return (
            ("controls", self.controls),
            ("organic", self.organic),
            ("treatments", self.treatments),
            ("events", self.events),
            ("rf_frequency", self.rf_channels),
        )

    def transforms(self, block: str = "media") -> tuple[Any, Any, str]:
        """``(adstock, saturation, coefficient name)`` of ``media`` (the channels) or ``organic``."""
        if block == "organic":
            return self.organic_adstock, self.organic_saturation, "beta_organic"
        return self.adstock, self.saturation, "beta"

    @property
    def is_geo(self) -> bool:
        """Whether the model is fitted to a geo panel (``data.geo_column`` set)."""
        return self.data_config.geo_column is not None

    @property
    def geos(self) -> tuple[str, ...]:
        """The panel's geos (empty for a national model)."""
        return self.data.geos

    @property
    def geo_config(self) -> GeoConfig:
        """``model.geo`` or its defaults."""
        return self.model_config.geo or GeoConfig()

    @property
    def pooled(self) -> bool:
        """Whether there are geo deviations to pool (a panel of at least two geos)."""
        return self.is_geo and len(self.geos) > 1

    @property
    def media_prior_variable(self) -> str | None:
        """The free variable of the channels' business-unit prior, or None with coefficient priors."""
        return QUANTITY_VARIABLES.get(self.model_config.media_prior.type)

    @property
    def organic_share(self) -> bool:
        """Whether the organic media's prior is on their contribution share (``model.organic.prior: share``)."""
        organic = self.model_config.organic
        return bool(self.organic) and organic is not None and organic.prior == "share"

    @property
    def media_prior_pooled(self) -> bool:
        """Whether the channels' quantity has a pooled prior (``pooling: level`` or ``hierarchical``, 2+ channels)."""
        cfg = self.model_config.media_prior
        return cfg.pooling in ("level", "hierarchical") and cfg.type in ("roas", "share") and len(self.channels) > 1

    @property
    def frequency(self) -> str:
        """The training data's frequency (:mod:`bayesmmm.data.frequency`): daily, weekly, monthly or "<N>D"."""
        return self.data.frequency

    @property
    def carryover_weeks(self) -> int:
        """Training periods (of the data's frequency; the name is historical) whose spend reaches a
        forecast: ``l_max - 1`` for a lag-window adstock; an adstock class that overrides ``apply``
        may carry over further, so then every training period."""
        weeks = 0
        for adstock in (self.adstock, self.organic_adstock if self.organic else None):
            if adstock is None:
                continue
            if type(adstock).apply is not Adstock.apply:
                return self.data.n_dates
            weeks = max(weeks, adstock.l_max - 1)
        return weeks

    # ------------------------------------------------------------- variables
    def pooling_dims(self) -> dict[str, tuple[str, ...]]:
        """Dims of the pooled media prior's free variables (empty unless :attr:`media_prior_pooled`)."""
        if not self.media_prior_pooled:
            return {}
        dims: dict[str, tuple[str, ...]] = {POOLING_VARIABLES["level"]: ()}
        if self.model_config.media_prior.pooling == "hierarchical":
            dims[POOLING_VARIABLES["spread"]] = ()
        dims[POOLING_VARIABLES["offset"]] = ("channel",)
        return dims

    @cached_property
    def geo_variables(self) -> Mapping[str, tuple[tuple[str, ...], Prior]]:
        """Dims and priors of the geo-deviation variables (empty unless the panel has >= 2 geos); the
        math that uses them is :mod:`bayesmmm.model.geo`."""
        if not self.pooled:
            return MappingProxyType({})
        cfg = self.geo_config
        z = Prior(dist="Normal", mu=0.0, sigma=1.0)
        out: dict[str, tuple[tuple[str, ...], Prior]] = {}
        if cfg.beta_spread == "learned":
            out["beta_geo_sigma"] = (("channel",), Prior(dist="HalfNormal", sigma=cfg.beta_sigma))
        if cfg.beta_pooling == "zerosum":  # PyMC's zero-sum axis is the last one: (channel, geo)
            out["beta_geo_z"] = (("channel", "geo"), Prior(dist="ZeroSumNormal", sigma=1.0))
        else:
            out["beta_geo_z"] = (("geo", "channel"), z)
        if self.trend.pooled_variable in self.trend.variables() and cfg.trend == "pooled":
            out["trend_geo_sigma"] = ((), Prior(dist="HalfNormal", sigma=cfg.trend_sigma))
            out["trend_geo_z"] = (("geo",), z)
        if self.seasonality.active and cfg.seasonality == "pooled":
            out["seasonality_geo_sigma"] = ((), Prior(dist="HalfNormal", sigma=cfg.seasonality_sigma))
            out["seasonality_geo_z"] = (("geo", self.seasonality.feature_dim), z)
        for transform, mode in ((self.adstock, cfg.adstock), (self.saturation, cfg.saturation)):
            if mode == "pooled":
                for name in transform.variable_names.values():
                    if cfg.param_spread == "learned":
                        out[f"{name}_geo_sigma"] = (("channel",), Prior(dist="HalfNormal", sigma=cfg.param_sigma))
                    if cfg.param_pooling == "zerosum":  # zero-sum over the last axis, as beta_geo_z
                        out[f"{name}_geo_z"] = (("channel", "geo"), Prior(dist="ZeroSumNormal", sigma=1.0))
                    else:
                        out[f"{name}_geo_z"] = (("geo", "channel"), z)
        return MappingProxyType(out)

    @cached_property
    def variable_dims(self) -> Mapping[str, tuple[str, ...]]:
        """Dims of every free variable (transform parameters are per channel); read-only."""
        dims = {
            "intercept": ("geo",) if self.is_geo else (),
            "beta": ("channel",),
            "sigma": ("geo",) if self.pooled and self.geo_config.sigma == "per_geo" else (),
        }
        if self.media_prior_variable:  # beta is then a function of this variable (model.media_prior)
            dims[self.media_prior_variable] = ("channel",)
            dims.update(self.pooling_dims())  # a pooled prior: the quantity is a function of these
        dims.update(self.trend.variables())
        dims.update(self.seasonality.variables())
        if self.controls:
            dims["gamma_control"] = ("control",)
        for name in self.likelihood.param_names:
            dims[name] = ()
        for transform in (self.adstock, self.saturation):
            for name in transform.variable_names.values():
                dims[name] = ("channel",)
        if self.organic:  # shared by every geo of a panel
            dims["beta_organic"] = ("organic",)
            if self.organic_share:  # beta_organic is then a function of it (model.organic.prior: share)
                dims[ORGANIC_SHARE] = ("organic",)
            for transform in (self.organic_adstock, self.organic_saturation):
                for name in transform.variable_names.values():
                    dims[name] = ("organic",)
        if self.treatments:
            dims["gamma_treatment"] = ("treatment",)
        if self.events:
            dims["gamma_event"] = ("event",)
        if self.rf_channels:  # the frequency curve of the reach & frequency channels (shared by a panel's geos)
            dims["rf_slope"] = ("rf_channel",)
            dims["rf_ec"] = ("rf_channel",)
        if self.varying is not None:
            dims.update(self.varying.variables())
        dims.update({name: d for name, (d, _prior) in self.geo_variables.items()})
        return MappingProxyType(dims)

    def coords(self, dates: pd.DatetimeIndex | None = None) -> dict[str, Any]:
        """Named coordinates of the model's dims (``date``: the training dates unless ``dates`` given)."""
        coords: dict[str, Any] = {"channel": list(self.channels)}
        if self.is_geo:
            coords["geo"] = list(self.geos)
        coords["date"] = pd.DatetimeIndex(self.data.dates if dates is None else dates)
        if self.controls:
            coords["control"] = list(self.controls)
        roles = (("organic", self.organic), ("treatment", self.treatments), ("event", self.events))
        for dim, names in (*roles, ("rf_channel", self.rf_channels)):
            if names:
                coords[dim] = list(names)
        coords.update(self.seasonality.coords())
        coords.update(self.trend.coords())
        if self.varying is not None:
            coords.update(self.varying.coords())
        return coords

    # ---------------------------------------------------------------- inputs
    def history_inputs(self, multiplier: float | np.ndarray = 1.0) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Training ``dates, media × multiplier, non-paid inputs`` in the model's layout (with geo for
        panels); the non-paid inputs are :meth:`covariates` (the controls alone without other roles)."""
        data = self.data
        if self.is_geo:
            return data.dates, data.geo_media * multiplier, self.covariates(data)
        return data.dates, data.media * multiplier, self.covariates(data)

    def covariates(self, data: MMMData) -> np.ndarray:
        """The non-paid input block of ``data`` (:attr:`input_blocks`: controls, organic, treatments, events
        side by side), ``(date, [geo,] column)``; geos in ``data``'s order."""
        rf = list(self.rf_index)
        if self.is_geo:
            parts = [data.geo_controls, data.geo_organic, data.geo_treatments, data.geo_events]
            if rf:
                parts.append(data.geo_rf_frequency[..., rf])
        else:
            parts = [data.controls, data.organic, data.treatments, data.events]
            if rf:
                parts.append(data.rf_frequency[..., rf])
        return np.concatenate([np.asarray(p, dtype=float) for p in parts], axis=-1)

    def split_covariates(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`covariates` split back into its parts (original units), by :attr:`input_blocks` name."""
        sizes = [len(cols) for _name, cols in self.input_blocks]
        if block.shape[-1] != sum(sizes):
            described = ", ".join(f"{len(c)} {n}" for n, c in self.input_blocks if c) or "none"
            raise ValueError(
                f"the non-paid inputs have {block.shape[-1]} columns; this model takes {sum(sizes)} ({described})"
            )
        out, start = {}, 0
        for (name, _cols), size in zip(self.input_blocks, sizes, strict=True):
            out[name] = block[..., start : start + size]
            start += size
        return out

    def design(self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled numeric inputs of the mean function for the given rows; ``controls`` is the non-paid
        block (:meth:`covariates`). Treatments enter as ``(x − baseline) / max|x − baseline|``."""
        s = self.scales
        parts = self.split_covariates(np.asarray(controls, dtype=float))

        def scaled(values: np.ndarray, scale: Any) -> np.ndarray:
            return values / np.asarray(scale) if values.shape[-1] else np.zeros(values.shape)

        baselines = np.array([self.data.encoding.baselines[c] for c in self.treatments])
        frequency = np.ones(np.shape(media))  # (date, [geo,] channel): 1 for channels without reach & frequency
        if self.rf_channels:
            frequency[..., list(self.rf_index)] = parts["rf_frequency"]
        return {
            "media": media / np.asarray(s.media),
            "controls": scaled(parts["controls"], s.controls),
            "organic": scaled(parts["organic"], s.organic),
            "treatments": scaled(parts["treatments"] - baselines, s.treatments),
            "events": parts["events"],
            "frequency": frequency,
            "t": time_index(dates, pd.Timestamp(s.start), s.span_days),
            "fourier": self.seasonality.features(dates),
        }

    def training_design(self) -> dict[str, np.ndarray]:
        """:meth:`design` of the training rows (computed once)."""
        if "training_design" not in self.memo:
            design = self.design(*self.history_inputs())
            for value in design.values():
                value.flags.writeable = False
            self.memo["training_design"] = design
        return self.memo["training_design"]

    def check_continues(self, dates: pd.DatetimeIndex) -> None:
        """Raise :class:`~bayesmmm.data.loading.DataError` unless ``dates`` start one period (of the
        data's frequency) after the training data's last date (the one check of "do these dates
        continue the data")."""
        last = self.data.dates[-1]
        frequency = self.data.frequency
        periods = period_name(frequency, plural=True)
        if dates[0] <= last:
            raise DataError(
                f"new dates start on {dates[0].date()}, not after the training data's last date "
                f"{last.date()}; give only the {periods} after it (in Python, include_history=False "
                f"scores past {periods})"
            )
        if not is_next_period(last, dates[0], frequency):
            try:
                gap = (dates[0] - last).days
            except (OverflowError, pd.errors.OutOfBoundsDatetime):  # e.g. a date past 2262 in seconds
                raise DataError(
                    f"new dates must continue the {frequency_label(frequency)} grid: first new date {dates[0]} is "
                    f"out of range (more than 292 years from the last training date {last.date()})"
                ) from None
            expected = next_dates(last, frequency, 1)[0]
            raise DataError(
                f"new dates must continue the {frequency_label(frequency)} grid: first new date {dates[0].date()} is "
                f"{gap} days after the last training date {last.date()} (the next {period_name(frequency)} is "
                f"{expected.date()})"
            )
