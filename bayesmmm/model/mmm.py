"""The Bayesian media mix model.

.. math::

    y_t / s_y = \\text{intercept} + \\text{trend}(t) + \\text{seasonality}(t)
        + \\sum_k \\gamma_k z_{t,k} + \\sum_c \\beta_c\\,
        \\text{saturation}_c(\\text{adstock}_c(x_{\\cdot,c} / s_c))_t + \\varepsilon_t

``s_y`` is the mean absolute target, ``s_c`` the channel's mean spend over the training
weeks with spend (:func:`~bayesmmm.data.loading.spend_scale`) and the
controls ``z`` are divided by their maximum absolute value. The sampling graph holds
only what the likelihood needs; contributions, ROAS and predictions are computed after
sampling by one function compiled once per model and vectorized over draws.

Geo panels (``data.geo_column``): every array gains a ``geo`` axis — media
``(date, geo, channel)``, target ``(date, geo)`` — scaled per geo (see :class:`Scales`);
each geo has its own intercept and the channel effects are partially pooled,
``beta[g, c] = beta[c] exp(beta_geo_sigma[c] z[g, c])`` (non-centered); transform
parameters, trend and seasonality are shared or pooled per ``model.geo``
(:class:`~bayesmmm.config.experiment.GeoConfig`). With one geo there is nothing to pool: the
variables are the national model's (the intercept gains a length-1 geo dim) and so is
the log-density. Reported contributions are the sums over geos.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.components.adstock import Adstock
from bayesmmm.components.features import fourier_features, fourier_mode_names, time_index
from bayesmmm.components.likelihood import LIKELIHOODS
from bayesmmm.components.plugins import PluginError, ensure_plugins, records_for
from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import ConfigError, DataConfig, GeoConfig, ModelConfig, SamplerConfig, check_geo_options
from bayesmmm.data.loading import DataError, MMMData, frame_to_data, spend_scale
from bayesmmm.model.predictive import Predictive, mean_components, total

__all__ = ["MMM", "ModelFileError", "Scales", "link_of", "pool_parameter"]

MODEL_VARIABLES = ("intercept", "beta", "trend_slope", "trend_delta", "gamma_fourier", "gamma_control", "sigma", "nu")


#: link functions of pooled positive / unit-interval parameters, by prior distribution
_LOGIT_DISTS = frozenset({"Beta", "Kumaraswamy", "LogitNormal"})
_LOG_DISTS = frozenset(
    {"HalfNormal", "HalfCauchy", "HalfStudentT", "Gamma", "InverseGamma", "LogNormal", "Exponential", "Weibull"}
)


def link_of(prior: Prior) -> str:
    """Scale on which a pooled parameter varies across geos: ``logit``, ``log`` or ``identity``.

    Chosen from the support of the parameter's prior, so pooled values stay in it.
    """
    if prior.dist in _LOGIT_DISTS:
        return "logit"
    if prior.dist in _LOG_DISTS:
        return "log"
    return "identity"


def pool_parameter(value, sigma, z, link: str = "identity"):
    """Per-geo value of a partially pooled parameter (non-centered), PyTensor.

    ``inv_link(link(value) + sigma * z)``: ``value`` is the national (median geo)
    value with dims ``(...)``, ``sigma`` its spread across geos, ``z ~ N(0, 1)`` with
    dims ``(geo, ...)``.
    """
    import pytensor.tensor as pt

    if link == "logit":
        return pt.sigmoid(pt.log(value) - pt.log1p(-value) + sigma * z)
    if link == "log":
        return value * pt.exp(sigma * z)
    return value + sigma * z


class ModelFileError(ValueError):
    """A saved model file is missing, corrupt or not a bayesmmm model."""


@dataclass(frozen=True)
class Scales:
    """Scaling constants fixed at training time (original units = scaled × scale)."""

    target: float | tuple[float, ...]  # (geo,) for a geo panel
    media: tuple[float, ...] | tuple[tuple[float, ...], ...]  # (channel,) or (geo, channel)
    controls: tuple[float, ...]
    start: str
    span_days: float

    @classmethod
    def from_data(cls, data: MMMData, target_name: str = "target") -> Scales:
        """Scales of national data, or per-geo scales of a panel (:meth:`from_panel`)."""
        if data.is_panel:
            return cls.from_panel(data, target_name)
        target = float(np.mean(np.abs(data.target)))
        if not np.isfinite(target) or target <= 0:
            raise DataError(
                f"the target column {target_name!r} is zero in every week; nothing to model: "
                "check data.target_column and the file"
            )
        if np.ptp(data.target) == 0:
            raise DataError(
                f"the target column {target_name!r} is constant ({data.target[0]:g} every week); nothing to "
                "explain: check data.target_column and the file"
            )
        media = spend_scale(data.media)
        for name, value in zip(data.channels, media, strict=True):
            if value <= 0:
                raise DataError(f"channel {name!r} has zero spend in every week; drop it from channel_columns")
        controls = np.abs(data.controls).max(axis=0) if data.controls.shape[1] else np.zeros(0)
        for name, value, col in zip(data.control_names, controls, data.controls.T, strict=True):
            if value <= 0 or np.ptp(col) == 0:
                raise DataError(
                    f"control {name!r} does not vary ({col[0]:g} every week): it cannot be told apart from the "
                    "intercept; drop it from control_columns"
                )
        span = float((data.dates[-1] - data.dates[0]).days)
        return cls(
            target=target,
            media=tuple(float(v) for v in media),
            controls=tuple(float(v) for v in controls),
            start=str(data.dates[0].date()),
            span_days=span,
        )

    @classmethod
    def from_panel(cls, data: MMMData, target_name: str = "target") -> Scales:
        """Per-geo scales of a geo panel: ``target`` is ``(geo,)``, ``media`` ``(geo, channel)``.

        Without population, a geo's target scale is its mean absolute target and a
        channel's scale its mean active-week spend in that geo (a geo that never spends on
        a channel gets the mean of the other geos' scales). With ``population`` the
        scales are per capita, shared by all geos, times the geo's population: target
        ``pop_g · mean(|y| / pop)``, media ``pop_g · spend_scale(x / pop)`` over all weeks
        and geos — so geos with more spend per head are further along the saturation curve.
        Controls are scaled by their maximum absolute value over the panel.
        """
        y, x, z = data.geo_target, data.geo_media, data.geo_controls
        n_dates, n_geos, n_ch = x.shape
        for g, geo in enumerate(data.geos):
            if not np.mean(np.abs(y[:, g])) > 0 or np.ptp(y[:, g]) == 0:
                raise DataError(
                    f"geo {geo!r}: the target column {target_name!r} is constant ({y[0, g]:g} every week); "
                    "nothing to explain: drop the geo or check data.target_column"
                )
        if data.population is not None:
            pop = np.asarray(data.population, dtype=float)
            target = pop * float(np.mean(np.abs(y) / pop))
            media = pop[:, None] * spend_scale((x / pop[None, :, None]).reshape(n_dates * n_geos, n_ch))[None, :]
        else:
            target = np.mean(np.abs(y), axis=0)
            media = np.stack([spend_scale(x[:, g, :]) for g in range(n_geos)])  # (geo, channel)
        for c, name in enumerate(data.channels):
            col = media[:, c]
            if not (col > 0).any():
                raise DataError(f"channel {name!r} has zero spend in every week and geo; drop it from channel_columns")
            media[col <= 0, c] = col[col > 0].mean()
        flat = z.reshape(n_dates * n_geos, z.shape[-1])
        controls = np.abs(flat).max(axis=0) if flat.shape[1] else np.zeros(0)
        for name, value, col in zip(data.control_names, controls, flat.T, strict=True):
            if value <= 0 or np.ptp(col) == 0:
                raise DataError(
                    f"control {name!r} does not vary ({col[0]:g} in every week and geo): it cannot be told apart "
                    "from the intercepts; drop it from control_columns"
                )
        return cls(
            target=tuple(float(v) for v in target),
            media=tuple(tuple(float(v) for v in row) for row in media),
            controls=tuple(float(v) for v in controls),
            start=str(data.dates[0].date()),
            span_days=float((data.dates[-1] - data.dates[0]).days),
        )


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a saved model depends on.

    Read from the package metadata: importing ArviZ only to read its version would add
    seconds to every fit.
    """
    from importlib.metadata import PackageNotFoundError, version

    from bayesmmm import __version__

    out = {"bayesmmm": __version__}
    for name in ("pymc", "pytensor", "arviz", "numpy", "pandas", "xarray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a dependency installed without metadata
            out[name] = "unknown"
    return out


class MMM:
    """Bayesian marketing mix model with pluggable adstock and saturation.

    Parameters
    ----------
    data_config : DataConfig or dict
        Column roles (date, target, channels, controls). ``path`` is ignored here.
    model_config : ModelConfig or dict, optional
        Structure and priors; defaults to :class:`ModelConfig()`.

    Examples
    --------
    >>> mmm = MMM({"channel_columns": ["tv", "search"], "target_column": "sales"})  # doctest: +SKIP
    >>> idata = mmm.fit(frame, SamplerConfig(draws=500))                            # doctest: +SKIP
    >>> mmm.roas()                                                                   # doctest: +SKIP
    """

    def __init__(
        self,
        data_config: DataConfig | Mapping[str, Any],
        model_config: ModelConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self.data_config = (
            data_config if isinstance(data_config, DataConfig) else DataConfig.model_validate(dict(data_config))
        )
        if model_config is None:
            model_config = ModelConfig()
        self.model_config = (
            model_config if isinstance(model_config, ModelConfig) else ModelConfig.model_validate(dict(model_config))
        )
        try:
            check_geo_options(self.data_config, self.model_config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.adstock = self.model_config.adstock.build()
        self.saturation = self.model_config.saturation.build()
        self.likelihood = LIKELIHOODS.get(self.model_config.likelihood)()
        #: the plugins the components come from (saved with the model, checked on load)
        self.plugins = records_for(type(c) for c in (self.adstock, self.saturation, self.likelihood))
        self.priors = {**self.likelihood.default_priors, **self.model_config.resolved_priors()}
        self.data: MMMData | None = None
        self.scales: Scales | None = None
        self.idata = None
        self.timings: dict[str, float] = {}
        #: the predictive core: compiled mean function, decomposition, forecasts, log-likelihood
        self.predictive = Predictive(self)

    # ------------------------------------------------------------------ design
    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.data_config.channel_columns)

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(self.data_config.control_columns)

    @property
    def fourier_modes(self) -> list[str]:
        return fourier_mode_names(self.model_config.yearly_seasonality)

    @property
    def is_geo(self) -> bool:
        """Whether the model is fitted to a geo panel (``data.geo_column`` set)."""
        return self.data_config.geo_column is not None

    @property
    def geos(self) -> tuple[str, ...]:
        """The panel's geos (empty for a national model or before data are set)."""
        return self.data.geos if self.data is not None else ()

    @property
    def geo_config(self) -> GeoConfig:
        """``model.geo`` or its defaults."""
        return self.model_config.geo or GeoConfig()

    @property
    def _pooled(self) -> bool:
        """Whether there are geo deviations to pool (a panel of at least two geos)."""
        return self.is_geo and len(self.geos) > 1

    def history_inputs(self, multiplier: float | np.ndarray = 1.0) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Training ``dates, media × multiplier, controls`` in the model's layout (with geo for panels)."""
        data = self.data
        if self.is_geo:
            return data.dates, data.geo_media * multiplier, data.geo_controls
        return data.dates, data.media * multiplier, data.controls

    def design(self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled numeric inputs of the mean function for the given rows."""
        s = self.require_scales()
        return {
            "media": media / np.asarray(s.media),
            "controls": controls / np.asarray(s.controls)
            if controls.shape[-1]
            else np.zeros((*controls.shape[:-1], 0)),
            "t": time_index(dates, pd.Timestamp(s.start), s.span_days),
            "fourier": fourier_features(dates, self.model_config.yearly_seasonality),
        }

    def require_fitted(self) -> None:
        """Raise ``RuntimeError`` unless the model has a posterior and its data."""
        if self.idata is None or self.data is None:
            raise RuntimeError("the model is not fitted: call fit() or MMM.load() first")

    def require_scales(self) -> Scales:
        """The training scales; ``RuntimeError`` before the model has data."""
        if self.scales is None:
            raise RuntimeError("the model has no data yet: call fit() (or MMM.load) first")
        return self.scales

    def variable_dims(self) -> dict[str, tuple[str, ...]]:
        """Dims of every free variable (transform parameters are per channel)."""
        dims = {
            "intercept": ("geo",) if self.is_geo else (),
            "beta": ("channel",),
            "sigma": (),
        }
        if self.model_config.trend != "none":
            dims["trend_slope"] = ()
        if self.model_config.trend == "piecewise":
            dims["trend_delta"] = ("changepoint",)
        if self.model_config.yearly_seasonality:
            dims["gamma_fourier"] = ("fourier_mode",)
        if self.controls:
            dims["gamma_control"] = ("control",)
        for name in self.likelihood.param_names:
            dims[name] = ()
        for transform in (self.adstock, self.saturation):
            for name in transform.variable_names.values():
                dims[name] = ("channel",)
        dims.update({name: d for name, (d, _prior) in self.geo_variables().items()})
        return dims

    def geo_variables(self) -> dict[str, tuple[tuple[str, ...], Prior]]:
        """Dims and priors of the geo-deviation variables (empty unless the panel has >= 2 geos)."""
        if not self._pooled:
            return {}
        cfg = self.geo_config
        z = Prior(dist="Normal", mu=0.0, sigma=1.0)
        out = {"beta_geo_sigma": (("channel",), Prior(dist="HalfNormal", sigma=cfg.beta_sigma))}
        if cfg.beta_pooling == "zerosum":  # PyMC's zero-sum axis is the last one: (channel, geo)
            out["beta_geo_z"] = (("channel", "geo"), Prior(dist="ZeroSumNormal", sigma=1.0))
        else:
            out["beta_geo_z"] = (("geo", "channel"), z)
        if self.model_config.trend != "none" and cfg.trend == "pooled":
            out["trend_geo_sigma"] = ((), Prior(dist="HalfNormal", sigma=cfg.trend_sigma))
            out["trend_geo_z"] = (("geo",), z)
        if self.model_config.yearly_seasonality and cfg.seasonality == "pooled":
            out["seasonality_geo_sigma"] = ((), Prior(dist="HalfNormal", sigma=cfg.seasonality_sigma))
            out["seasonality_geo_z"] = (("geo", "fourier_mode"), z)
        for transform, mode in ((self.adstock, cfg.adstock), (self.saturation, cfg.saturation)):
            if mode == "pooled":
                for name in transform.variable_names.values():
                    out[f"{name}_geo_sigma"] = (("channel",), Prior(dist="HalfNormal", sigma=cfg.param_sigma))
                    out[f"{name}_geo_z"] = (("geo", "channel"), z)
        return out

    def geo_parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Per-geo values of the pooled parameters (PyTensor; pure, core shapes).

        ``beta`` becomes ``(geo, channel)``; pooled transform parameters ``(geo,
        channel)``, a pooled trend slope ``(geo,)`` and pooled Fourier coefficients
        ``(geo, fourier_mode)``. Shared parameters are returned unchanged.
        """
        if not self._pooled:
            return dict(params)
        out = dict(params)
        z = params["beta_geo_z"]
        if self.geo_config.beta_pooling == "zerosum":
            z = z.T  # stored (channel, geo)
        out["beta"] = pool_parameter(params["beta"], params["beta_geo_sigma"], z, "log")
        if "trend_geo_z" in params:
            out["trend_slope"] = pool_parameter(params["trend_slope"], params["trend_geo_sigma"], params["trend_geo_z"])
        if "seasonality_geo_z" in params:
            out["gamma_fourier"] = pool_parameter(
                params["gamma_fourier"], params["seasonality_geo_sigma"], params["seasonality_geo_z"]
            )
        for transform in (self.adstock, self.saturation):
            for p, name in transform.variable_names.items():
                if f"{name}_geo_z" in params:
                    out[name] = pool_parameter(
                        params[name],
                        params[f"{name}_geo_sigma"],
                        params[f"{name}_geo_z"],
                        link_of(transform.priors[p]),
                    )
        return out

    def coords(self, dates: pd.DatetimeIndex | None = None) -> dict[str, Any]:
        """Named coordinates of the model's dims."""
        dates = self.data.dates if dates is None and self.data is not None else dates
        coords: dict[str, Any] = {"channel": list(self.channels)}
        if self.is_geo and self.data is not None:
            coords["geo"] = list(self.geos)
        if dates is not None:
            coords["date"] = pd.DatetimeIndex(dates)
        if self.controls:
            coords["control"] = list(self.controls)
        if self.model_config.yearly_seasonality:
            coords["fourier_mode"] = self.fourier_modes
        if self.model_config.trend == "piecewise":
            coords["changepoint"] = [f"cp_{i}" for i in range(self.model_config.n_changepoints)]
        return coords

    # ------------------------------------------------------------ mean function
    # ------------------------------------------------------------------- model
    def build_model(self, frame: pd.DataFrame | None = None):
        """Build the PyMC model on ``frame`` (or the data already set)."""
        import pymc as pm

        if frame is not None:
            self._set_data(frame)
        if self.data is None:
            raise RuntimeError("build_model needs data: pass a data frame")
        design = self.design(*self.history_inputs())
        dims = self.variable_dims()
        geo = ("geo",) if self.is_geo else ()
        with pm.Model(coords=self.coords()) as model:
            # Data enter as pm.Data so that a model compiled once serves every data set of
            # the same structure (nutpie's with_data): hold-out refits, sweeps, seeds.
            inputs = {
                "media": pm.Data("media_data", design["media"], dims=("date", *geo, "channel")),
                "t": pm.Data("t_data", design["t"], dims="date"),
            }
            inputs["controls"] = (
                pm.Data("control_data", design["controls"], dims=("date", *geo, "control"))
                if self.controls
                else design["controls"]
            )
            inputs["fourier"] = (
                pm.Data("fourier_data", design["fourier"], dims=("date", "fourier_mode"))
                if self.model_config.yearly_seasonality
                else design["fourier"]
            )
            if self.is_geo:
                y = pm.Data("y_data", self.data.geo_target / np.asarray(self.scales.target), dims=("date", "geo"))
            else:
                y = pm.Data("y_data", self.data.target / self.scales.target, dims="date")
            params = {}
            for name in MODEL_VARIABLES:
                if name in dims:
                    params[name] = self.priors[name].create(name, dims=dims[name])
            for name in self.likelihood.param_names:  # a plugin likelihood's own parameters
                if name not in params:
                    params[name] = self.priors[name].create(name, dims=dims[name])
            for transform in (self.adstock, self.saturation):
                created = transform.create_priors(("channel",))
                params.update({transform.variable_name(p): rv for p, rv in created.items()})
            for name, (var_dims, prior) in self.geo_variables().items():
                params[name] = prior.create(name, dims=var_dims)
            mu = total(self.components(params, inputs))
            self.likelihood.observe("y", mu, params["sigma"], params, y, ("date", *geo))
        return model

    def structure_key(self) -> str:
        """Identifies the sampling graph up to its data: models with equal keys share compiled code."""
        import hashlib

        parts = [self.model_config.model_dump_json(), json.dumps([list(self.channels), list(self.controls)])]
        if self.plugins:  # a plugin's code shapes the graph: an edited plugin must not reuse compiled code
            parts.append(json.dumps([[r.spec, r.sha256] for r in self.plugins]))
        if self.is_geo:  # the geo count shapes the variables
            parts.append(json.dumps(["geo", len(self.geos)]))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _set_data(self, frame: pd.DataFrame) -> None:
        data = frame_to_data(frame, self.data_config, min_rows=self.min_rows)
        self.data = data
        self.scales = Scales.from_data(data, self.data_config.target_column)
        self.predictive = Predictive(self)

    @property
    def carryover_weeks(self) -> int:
        """Training weeks whose spend reaches a forecast: ``l_max - 1`` for a lag-window adstock.

        An adstock class that overrides ``apply`` may carry over further, so then every
        training week counts.
        """
        if type(self.adstock).apply is Adstock.apply:
            return self.adstock.l_max - 1
        return self.data.n_dates if self.data is not None else 0

    @property
    def min_rows(self) -> int:
        """Fewest weeks the model accepts: more rows than mean parameters, and at least l_max."""
        n_params = 2 + len(self.channels) * (1 + len(self.adstock.param_names) + len(self.saturation.param_names))
        n_params += 2 * self.model_config.yearly_seasonality + len(self.controls)
        n_params += {"none": 0, "linear": 1, "piecewise": 1 + self.model_config.n_changepoints}[self.model_config.trend]
        return max(n_params + 1, self.adstock.l_max)

    # --------------------------------------------------------------------- fit
    def fit(self, frame: pd.DataFrame, sampler: SamplerConfig | Mapping[str, Any] | None = None, **kwargs: Any):
        """Sample the posterior with NUTS.

        Parameters
        ----------
        frame : data frame with the configured columns.
        sampler : SamplerConfig or dict; keyword arguments override its fields
            (``draws=200, chains=2``...).

        Returns
        -------
        xarray.DataTree with ``posterior``, ``sample_stats``, ``observed_data``,
        ``log_likelihood`` (original units) and ``constant_data``.
        """
        from bayesmmm.inference.sampling import sample

        if sampler is None:
            sampler = SamplerConfig()
        elif not isinstance(sampler, SamplerConfig):
            sampler = SamplerConfig.model_validate(dict(sampler))
        if kwargs:
            sampler = sampler.model_copy(update=kwargs)
            SamplerConfig.model_validate(sampler.model_dump())
        model = self.build_model(frame)
        idata, timings = sample(model, sampler, cache_key=self.structure_key(), prepare=self._prepare_post_processing)
        self.timings = timings
        self.idata = self._complete_idata(idata)
        return self.idata

    def _prepare_post_processing(self) -> None:
        """What :meth:`_complete_idata` needs, done ahead: the JAX backends run this while XLA
        compiles the sampler (the compile leaves a core idle), saving ~1.5 s of a fit."""
        import scipy.stats  # noqa: F401  (the log-likelihood's; a second to import)

        self.predictive.compiled()

    def _complete_idata(self, idata):
        """Keep posterior and sample_stats; add observed/constant data, log-likelihood and metadata."""
        from xarray import DataTree

        data = self.data
        date = pd.DatetimeIndex(data.dates)
        if self.is_geo:
            geo_coords = {"geo": list(self.geos)}
            constant = xr.Dataset(
                {
                    "spend": (("date", "geo", "channel"), data.geo_media),
                    "control_data": (("date", "geo", "control"), data.geo_controls),
                },
                coords={"date": date, "channel": list(self.channels), "control": list(self.controls), **geo_coords},
            )
            if data.population is not None:
                constant["population"] = ("geo", data.population)
            observed = xr.Dataset({"y": (("date", "geo"), data.geo_target)}, coords={"date": date, **geo_coords})
        else:
            constant = xr.Dataset(
                {
                    "spend": (("date", "channel"), data.media),
                    "control_data": (("date", "control"), data.controls),
                },
                coords={"date": date, "channel": list(self.channels), "control": list(self.controls)},
            )
            observed = xr.Dataset({"y": ("date", data.target)}, coords={"date": date})
        tree = DataTree.from_dict(
            {
                "posterior": idata["posterior"].to_dataset(),
                "sample_stats": idata["sample_stats"].to_dataset(),
                "observed_data": observed,
                "constant_data": constant,
            }
        )
        tree.attrs.update(
            {
                "bayesmmm_data_config": self.data_config.model_dump_json(),
                "bayesmmm_model_config": self.model_config.model_dump_json(),
                "bayesmmm_scales": json.dumps(self.scales.__dict__),
                "bayesmmm_versions": json.dumps(package_versions()),
                "bayesmmm_plugins": json.dumps([r.to_dict() for r in self.plugins]),
            }
        )
        self.idata = tree
        tree["log_likelihood"] = xr.DataTree(xr.Dataset({"y": self.log_likelihood()}))
        return tree

    # ---------------------------------------------------------- post-processing
    def geo_media_parameters(self, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-geo media parameters of a geo model for each draw: ``beta`` and the transform
        variables, each ``(sample, geo, channel)`` (shared ones broadcast over geos)."""
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import vectorize_graph

        from bayesmmm.components.base import numpy_mode

        dims = self.variable_dims()
        core = {n: pt.tensor(n, shape=(None,) * len(d), dtype="float64") for n, d in dims.items()}
        batched = {n: pt.tensor(f"{n}_draws", shape=(None,) * (len(d) + 1), dtype="float64") for n, d in dims.items()}
        names = ["beta", *self.adstock.variable_names.values(), *self.saturation.variable_names.values()]
        per_geo = self.geo_parameters(core)
        outs = vectorize_graph([per_geo[n] for n in names], {core[n]: batched[n] for n in dims})
        fn = pytensor.function(list(batched.values()), outs, mode=numpy_mode(), on_unused_input="ignore")
        values = fn(*[np.asarray(draws[n], dtype="float64") for n in dims])
        shape = (len(values[0]), len(self.geos), len(self.channels))
        return {
            n: np.ascontiguousarray(np.broadcast_to(v[:, None, :] if v.ndim == 2 else v, shape))
            for n, v in zip(names, values, strict=True)
        }

    def check_continues(self, dates: pd.DatetimeIndex) -> None:
        hist = self.data
        if dates[0] <= hist.dates[-1]:
            raise DataError(
                f"new dates start on {dates[0].date()}, not after the training data's last date "
                f"{hist.dates[-1].date()}; give only the weeks after it (in Python, include_history=False "
                "scores past weeks)"
            )
        gap = (dates[0] - hist.dates[-1]).days
        if gap != 7:
            raise DataError(
                f"new dates must continue the weekly grid: first new date {dates[0].date()} is {gap} days "
                f"after the last training date {hist.dates[-1].date()}"
            )

    # ------------------------------------------------- predictive (one core)
    def components(
        self, params: Mapping[str, Any], design: Mapping[str, Any], reference_media: Any = None
    ) -> dict[str, Any]:
        """Scaled mean components as PyTensor expressions: :func:`~bayesmmm.model.predictive.mean_components`."""
        return mean_components(self, params, design, reference_media)

    def posterior_draws(self, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Free variables with a leading ``sample`` axis: :meth:`Predictive.posterior_draws`."""
        return self.predictive.posterior_draws(max_draws, seed)

    def evaluate(self, dates, media, controls, draws=None, batch_size: int = 1000, reduce=None):
        """Components in original units per draw: :meth:`Predictive.evaluate`."""
        return self.predictive.evaluate(dates, media, controls, draws, batch_size, reduce)

    def to_chain_draw(self, arr: np.ndarray, dims: tuple[str, ...], coords: dict[str, Any]) -> xr.DataArray:
        """``(sample, ...)`` → ``(chain, draw, ...)``: :meth:`Predictive.to_chain_draw`."""
        return self.predictive.to_chain_draw(arr, dims, coords)

    def posterior_components(self) -> xr.Dataset:
        """Posterior of every mean component over the training dates: :meth:`Predictive.posterior_components`."""
        return self.predictive.posterior_components()

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood, original units: :meth:`Predictive.log_likelihood`."""
        return self.predictive.log_likelihood()

    def predict(
        self,
        frame: pd.DataFrame,
        *,
        include_history: bool = True,
        noise: bool = False,
        seed: int = 0,
    ) -> xr.Dataset:
        """Posterior of the mean (and optionally noisy) target for new rows.

        Parameters
        ----------
        frame : rows with the date, channel and control columns (target not needed).
        include_history : prepend the training weeks so adstock carries over from them
            into the new weeks (new dates must then follow the training dates).
        noise : also draw ``y`` with observation noise (seeded by ``seed``).

        Returns
        -------
        Dataset with ``mu`` (chain, draw, date), ``media`` (…, date, channel) and, with
        ``noise``, ``y`` — all for the rows of ``frame`` only, original units. For a geo
        model ``frame`` is a panel with the training geos and these are national totals;
        ``mu_geo`` (…, date, geo) is added.
        """
        return self.predictive.predict(frame, include_history=include_history, noise=noise, seed=seed)

    # --------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the fitted model (posterior, data, config, scales, versions) to NetCDF, atomically."""
        from bayesmmm.io import atomic_path

        if self.idata is None:
            raise RuntimeError("nothing to save: fit the model first")
        path = Path(path)
        with atomic_path(path) as tmp:
            self.idata.to_netcdf(tmp, engine="netcdf4")
        return path

    @classmethod
    def load(cls, path: str | Path, *, import_plugins: bool = True) -> MMM:
        """Load a model written by :meth:`save`; it predicts exactly what the original did.

        ``path`` is a ``posterior.nc`` or a finished run folder (one holding
        ``metadata.json``, written last); the hidden ``*.partial`` folder of an
        unfinished fit is refused. Only NetCDF is read: nothing is ever unpickled.

        The plugins the model's components come from are recorded in the file; with
        ``import_plugins`` (default) a plugin not loaded yet is imported from its recorded
        file (checked against its SHA-256) or module. ``import_plugins=False`` (the service)
        only checks that the components are registered already. A missing or changed plugin
        raises :class:`~bayesmmm.components.plugins.PluginError` naming it and the fix.
        """
        from xarray import open_datatree

        from bayesmmm.io import MARKER, PARTIAL_SUFFIX

        path = Path(path)
        folder = path if path.is_dir() else path.parent
        if folder.name.endswith(PARTIAL_SUFFIX):
            raise ModelFileError(
                f"{folder} is the temporary folder of a fit that did not finish; fit again (it can be deleted)"
            )
        if path.is_dir():
            if not (path / MARKER).exists():
                raise ModelFileError(
                    f"{path} is not a finished run folder (no {MARKER}); pass the folder written by `bayesmmm fit`"
                )
            path = path / "posterior.nc"
        if not path.exists():
            raise ModelFileError(f"model file {str(path)!r} does not exist")
        try:
            with open_datatree(path, engine="netcdf4") as tree:
                tree = tree.load()
        except Exception as exc:  # h5py/netCDF raise many types for corrupt files
            raise ModelFileError(f"{path} is not a readable NetCDF model file ({type(exc).__name__}: {exc})") from None
        attrs = tree.attrs
        needed = ["bayesmmm_data_config", "bayesmmm_model_config", "bayesmmm_scales"]
        if any(k not in attrs for k in needed) or "posterior" not in tree.children:
            raise ModelFileError(
                f"{path} is a NetCDF file but not a bayesmmm model (no bayesmmm metadata or posterior)"
            )
        try:
            plugins = json.loads(attrs.get("bayesmmm_plugins", "[]"))
        except ValueError:
            raise ModelFileError(f"{path} has a damaged plugin record (bayesmmm_plugins); fit again") from None
        try:
            ensure_plugins(plugins, import_code=import_plugins)
        except PluginError as exc:
            raise PluginError(f"{path}: {exc}") from None
        try:
            mmm = cls(
                DataConfig.model_validate_json(attrs["bayesmmm_data_config"]),
                ModelConfig.model_validate({"center_media": False, **json.loads(attrs["bayesmmm_model_config"])}),
            )
            const = tree["constant_data"]
            if mmm.is_geo:
                n_dates, n_geos = const.sizes["date"], const.sizes["geo"]
                mmm.data = MMMData.from_panel(
                    dates=pd.DatetimeIndex(const["date"].values),
                    geos=tuple(str(g) for g in const["geo"].values),
                    target=tree["observed_data"]["y"].transpose("date", "geo").to_numpy(),
                    media=const["spend"].transpose("date", "geo", "channel").to_numpy(),
                    controls=const["control_data"].to_numpy().reshape(n_dates, n_geos, -1),
                    channels=mmm.channels,
                    control_names=mmm.controls,
                    population=const["population"].to_numpy() if "population" in const else None,
                )
            else:
                mmm.data = MMMData(
                    dates=pd.DatetimeIndex(const["date"].values),
                    target=tree["observed_data"]["y"].to_numpy(),
                    media=const["spend"].to_numpy(),
                    controls=const["control_data"].to_numpy().reshape(const.sizes["date"], -1),
                    channels=mmm.channels,
                    control_names=mmm.controls,
                )
            mmm.scales = Scales(**json.loads(attrs["bayesmmm_scales"]))
        except (KeyError, ValueError, TypeError) as exc:  # damaged or hand-edited metadata
            first = _first_problem(exc)
            raise ModelFileError(
                f"{path} has bayesmmm metadata that cannot be read ({type(exc).__name__}: {first}); fit again"
            ) from None
        mmm.idata = tree
        return mmm


def _first_problem(exc: Exception) -> str:
    """The first problem of an exception in one line (a pydantic error's first message, with its key)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg'].removeprefix('Value error, ')}" if loc else err["msg"]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
