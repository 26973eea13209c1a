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
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.components.likelihood import LIKELIHOODS
from bayesmmm.components.plugins import records_for
from bayesmmm.components.priors import Prior
from bayesmmm.components.seasonality import SEASONALITIES
from bayesmmm.components.trend import TRENDS
from bayesmmm.config.experiment import (
    ConfigError,
    DataConfig,
    GeoConfig,
    ModelConfig,
    SamplerConfig,
    check_geo_options,
    resolve_media_prior,
    resolve_weekly_seasonality,
)
from bayesmmm.data.frequency import few_periods_warning
from bayesmmm.data.loading import DataError, MMMData, frame_to_data
from bayesmmm.model.calibration import add_lift_likelihood, check_lift_tests, lift_draws, lift_key, read_lift_tests
from bayesmmm.model.geo import geo_media_parameters, geo_parameters, link_of, pool_parameter
from bayesmmm.model.mean import mean_components, total
from bayesmmm.model.media_prior import (
    coefficient,
    create_quantity,
    organic_coefficient,
    posterior_coefficients,
    posterior_organic_coefficients,
    target_total,
)
from bayesmmm.model.persistence import ModelFileError, load_model, save_model, to_datatree
from bayesmmm.model.predictive import Predictive
from bayesmmm.model.scales import Scales
from bayesmmm.model.spec import ORGANIC_SHARE, QUANTITY_VARIABLES, ModelSpec

__all__ = ["MMM", "ModelFileError", "Scales", "link_of", "pool_parameter"]

MODEL_VARIABLES = (
    "intercept",
    "beta",
    "trend_slope",
    "trend_delta",
    "gamma_fourier",
    "gamma_control",
    "sigma",
    "nu",
    "beta_organic",
    "gamma_treatment",
    "gamma_event",
    "rf_slope",
    "rf_ec",
)


def organic_transforms(data_config: DataConfig, model_config: ModelConfig) -> tuple[Any, Any]:
    """The organic media's adstock and saturation (``model.organic``, default the model's own), their
    variables suffixed ``_organic``; ``(None, None)`` without ``data.organic_columns``."""
    if not data_config.organic_columns:
        return None, None
    organic = model_config.organic
    adstock = (organic.adstock if organic and organic.adstock else model_config.adstock).build()
    saturation = (organic.saturation if organic and organic.saturation else model_config.saturation).build()
    adstock.suffix = saturation.suffix = "_organic"
    return adstock, saturation


class MMM:
    """Bayesian marketing mix model with pluggable adstock and saturation.

    Parameters
    ----------
    data_config : DataConfig or dict
        Column roles (date, target, channels, controls). ``path`` is ignored here.
    model_config : ModelConfig or dict, optional
        Structure and priors; defaults to :class:`ModelConfig()`.
    lift_tests : DataFrame or path of a CSV, optional
        Lift tests calibrating the model: each is a term of the likelihood
        (:mod:`bayesmmm.model.calibration`).

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
        lift_tests: pd.DataFrame | str | Path | None = None,
    ) -> None:
        self.data_config = (
            data_config if isinstance(data_config, DataConfig) else DataConfig.model_validate(dict(data_config))
        )
        if model_config is None:
            model_config = ModelConfig()
        self.model_config = (
            model_config if isinstance(model_config, ModelConfig) else ModelConfig.model_validate(dict(model_config))
        )
        # media_prior.type auto -> the type it means here, so that a saved model stores the concrete type
        self.model_config = resolve_media_prior(self.data_config, self.model_config)
        try:
            check_geo_options(self.data_config, self.model_config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.adstock = self.model_config.adstock.build()
        self.saturation = self.model_config.saturation.build()
        self.likelihood = LIKELIHOODS.get(self.model_config.likelihood)()
        trend_cls = TRENDS.get(self.model_config.trend)
        trend_options = trend_cls.check_options(self.model_config.trend_options)
        self.trend = trend_cls(n_changepoints=self.model_config.n_changepoints, **trend_options)
        self.seasonality = self._build_seasonality()
        #: the organic media's own transforms (variables suffixed ``_organic``), None without organic media
        self.organic_adstock, self.organic_saturation = organic_transforms(self.data_config, self.model_config)
        #: the multiplier component of ``model.time_varying_media`` (None: constant effects)
        self.varying = self.model_config.time_varying_media.build() if self.model_config.time_varying_media else None
        components = (self.adstock, self.saturation, self.likelihood, self.trend, self.seasonality)
        components += tuple(c for c in (self.organic_adstock, self.organic_saturation, self.varying) if c is not None)
        #: the plugins the components come from (saved with the model, checked on load)
        self.plugins = records_for(type(c) for c in components)
        self.priors = {
            **self.likelihood.default_priors,
            **self.trend.default_priors,
            **self.seasonality.default_priors,
            **self.model_config.resolved_priors(),
        }
        #: lift tests entering the likelihood (:mod:`bayesmmm.model.calibration`), or None
        self.lift_tests: pd.DataFrame | None = None
        if lift_tests is not None:
            self.set_lift_tests(lift_tests)
        #: the model bound to its training data (:class:`~bayesmmm.model.spec.ModelSpec`), set by :meth:`bind`
        self.spec: ModelSpec | None = None
        self.idata = None
        self.timings: dict[str, float] = {}
        #: scales to bind to instead of computing them from the data (a refresh keeps the first fit's:
        #: :mod:`bayesmmm.workflows.refresh`); None: :meth:`Scales.from_data` of the training data
        self.fixed_scales: Scales | None = None
        #: initial values of free variables (constrained space, by name) for the sampler: a warm start;
        #: every backend starts from the PyMC model's initial point (jittered), which these set
        self.initial_values: dict[str, np.ndarray] | None = None
        #: ``(pymc model, sampler settings) -> WarmStart | None``, called by :meth:`fit` once the model is
        #: built: the backend's warm start (mass matrix, step size, chains' starts, shorter warm-up;
        #: :mod:`bayesmmm.inference.warm`), set by a refresh; None: a cold warm-up
        self.warm_start: Callable[[Any, SamplerConfig], Any] | None = None
        #: the joint sequential update of a refresh (:class:`~bayesmmm.model.sequential.SequentialUpdate`):
        #: the first posterior as an MvNormal prior, the likelihood of the new periods only; None: a full fit
        self.sequential: Any = None
        self._predictive: tuple[ModelSpec, Any, Predictive] | None = None

    def _build_seasonality(self):
        """The configured seasonality (day-of-week terms as far as ``weekly_seasonality`` is resolved)."""
        cls = SEASONALITIES.get(self.model_config.seasonality)
        weekly = self.model_config.weekly_seasonality or 0
        try:
            return cls(order=self.model_config.yearly_seasonality, **({"weekly_order": weekly} if weekly else {}))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def set_lift_tests(self, tests: pd.DataFrame | str | Path | None) -> None:
        """Calibrate with lift tests (a CSV path or a frame in the contract of
        :mod:`bayesmmm.model.calibration`; ``None`` removes them); used by the next fit."""
        if tests is None:
            self.lift_tests = None
            return
        tests = read_lift_tests(tests) if isinstance(tests, str | Path) else check_lift_tests(tests)
        unknown = sorted(set(tests["channel"]) - set(self.channels))
        if unknown:
            raise DataError(
                f"{tests.attrs['source']}: unknown channel {unknown[0]!r} in the lift tests; "
                f"channels: {', '.join(self.channels)}"
            )
        self.lift_tests = tests

    # ------------------------------------------------------------------ design
    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.data_config.channel_names)

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(self.data_config.control_columns)

    @property
    def fourier_modes(self) -> list[str]:
        return self.seasonality.feature_names()

    @property
    def is_geo(self) -> bool:
        """Whether the model is fitted to a geo panel (``data.geo_column`` set)."""
        return self.data_config.geo_column is not None

    @property
    def geos(self) -> tuple[str, ...]:
        """The panel's geos (empty for a national model or before data are set)."""
        return self.spec.geos if self.spec is not None else ()

    @property
    def geo_config(self) -> GeoConfig:
        """``model.geo`` or its defaults."""
        return self.model_config.geo or GeoConfig()

    @property
    def pooled(self) -> bool:
        """Whether there are geo deviations to pool (a panel of at least two geos)."""
        return self.spec is not None and self.spec.pooled

    @property
    def data(self) -> MMMData | None:
        """The training data (None before :meth:`bind`)."""
        return self.spec.data if self.spec is not None else None

    @property
    def scales(self) -> Scales | None:
        """The training scales (None before :meth:`bind`)."""
        return self.spec.scales if self.spec is not None else None

    def bind(self, data: MMMData, scales: Scales) -> ModelSpec:
        """Bind the model to its training data and scales: builds the frozen :attr:`spec` every
        computation of the model reads (a new binding is a new spec, with its own compiled code).

        ``model.weekly_seasonality`` unset is resolved here, from the data's frequency
        (:func:`~bayesmmm.config.experiment.resolve_weekly_seasonality`), and the seasonality
        rebuilt when that adds or removes day-of-week terms.
        """
        resolved = resolve_weekly_seasonality(self.model_config, data.frequency)
        if resolved is not self.model_config:
            self.model_config = resolved
        if getattr(self.seasonality, "weekly_order", 0) != (self.model_config.weekly_seasonality or 0):
            self.seasonality = self._build_seasonality()
        self.spec = ModelSpec(
            data_config=self.data_config,
            model_config=self.model_config,
            adstock=self.adstock,
            saturation=self.saturation,
            likelihood=self.likelihood,
            trend=self.trend,
            seasonality=self.seasonality,
            priors=self.priors,
            data=data,
            scales=scales,
            organic_adstock=self.organic_adstock,
            organic_saturation=self.organic_saturation,
            varying=self.varying,
        )
        return self.spec

    def require_spec(self) -> ModelSpec:
        """The bound :attr:`spec`; ``RuntimeError`` before the model has data."""
        if self.spec is None:
            raise RuntimeError("the model has no data yet: call fit() (or MMM.load) first")
        return self.spec

    @property
    def predictive(self) -> Predictive:
        """The predictive core over the current posterior: ``Predictive(spec, posterior)``, made anew
        whenever the spec or the posterior changes (never a stale view of an earlier one)."""
        spec = self.require_spec()
        posterior = self.idata["posterior"] if self.idata is not None and "posterior" in self.idata else None
        cached = self._predictive
        if cached is None or cached[0] is not spec or cached[1] is not posterior:
            cached = (spec, posterior, Predictive(spec, posterior))
            self._predictive = cached
        return cached[2]

    def history_inputs(self, multiplier: float | np.ndarray = 1.0) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Training ``dates, media × multiplier, controls`` in the model's layout (with geo for panels)."""
        return self.require_spec().history_inputs(multiplier)

    def design(self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled numeric inputs of the mean function for the given rows: :meth:`ModelSpec.design`."""
        return self.require_spec().design(dates, media, controls)

    def require_fitted(self) -> None:
        """Raise ``RuntimeError`` unless the model has a posterior and its data."""
        if self.idata is None or self.spec is None:
            raise RuntimeError("the model is not fitted: call fit() or MMM.load() first")

    def require_scales(self) -> Scales:
        """The training scales; ``RuntimeError`` before the model has data."""
        return self.require_spec().scales

    @property
    def media_prior_variable(self) -> str | None:
        """The free variable of the channels' business-unit prior (``roas``, ``mroas``,
        ``contribution_share``), or None with coefficient priors (:mod:`bayesmmm.model.media_prior`)."""
        return QUANTITY_VARIABLES.get(self.model_config.media_prior.type)

    def variable_dims(self) -> dict[str, tuple[str, ...]]:
        """Dims of every free variable: :attr:`ModelSpec.variable_dims`."""
        return dict(self.require_spec().variable_dims)

    def geo_variables(self) -> dict[str, tuple[tuple[str, ...], Prior]]:
        """Dims and priors of the geo-deviation variables: :attr:`ModelSpec.geo_variables`."""
        return dict(self.require_spec().geo_variables)

    def geo_parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Per-geo values of the pooled parameters: :func:`~bayesmmm.model.geo.geo_parameters`."""
        return geo_parameters(self.require_spec(), params)

    def geo_media_parameters(self, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-geo media parameters per draw: :func:`~bayesmmm.model.geo.geo_media_parameters`."""
        return geo_media_parameters(self.require_spec(), draws)

    def coords(self, dates: pd.DatetimeIndex | None = None) -> dict[str, Any]:
        """Named coordinates of the model's dims: :meth:`ModelSpec.coords`."""
        return self.require_spec().coords(dates)

    # ------------------------------------------------------------ mean function
    # ------------------------------------------------------------------- model
    def build_model(self, frame: pd.DataFrame | None = None):
        """Build the PyMC model on ``frame`` (or the data already set)."""
        import pymc as pm

        if frame is not None:
            self._set_data(frame)
        if self.data is None:
            raise RuntimeError("build_model needs data: pass a data frame")
        if self.media_prior_variable and self.is_geo:
            raise ConfigError(
                f"model.media_prior type {self.model_config.media_prior.type!r} is implemented for national models; "
                "for a geo panel use type coefficient (model.priors.beta)"
            )
        spec = self.require_spec()
        if spec.organic_share and self.is_geo:
            raise ConfigError(
                "model.organic.prior: share is implemented for national models; for a geo panel use prior: "
                "coefficient (model.priors.beta_organic)"
            )
        design = spec.training_design()
        dims = spec.variable_dims
        geo = ("geo",) if self.is_geo else ()
        with pm.Model(coords=spec.coords()) as model:
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
            for name, dim in (("organic", "organic"), ("treatments", "treatment"), ("events", "event")):
                if design[name].shape[-1]:  # pm.Data like the media: compiled code serves other data sets
                    inputs[name] = pm.Data(f"{name}_data", design[name], dims=("date", *geo, dim))
                else:
                    inputs[name] = design[name]
            if spec.rf_channels:  # reach & frequency channels: their frequency (bayesmmm.model.reach)
                inputs["frequency"] = pm.Data("rf_frequency_data", design["frequency"], dims=("date", *geo, "channel"))
            inputs["fourier"] = (
                pm.Data("fourier_data", design["fourier"], dims=("date", self.seasonality.feature_dim))
                if self.seasonality.active
                else design["fourier"]
            )
            if self.is_geo:
                y = pm.Data("y_data", self.data.geo_target / np.asarray(self.scales.target), dims=("date", "geo"))
            else:
                y = pm.Data("y_data", self.data.target / self.scales.target, dims="date")
            params = {}
            for name in MODEL_VARIABLES:
                derived = (name == "beta" and self.media_prior_variable) or (
                    name == "beta_organic" and spec.organic_share
                )
                if name in dims and not derived:
                    params[name] = self.priors[name].create(name, dims=dims[name])
            if self.media_prior_variable:
                params[self.media_prior_variable] = create_quantity(spec)
            own = [*self.trend.variables(), *self.seasonality.variables(), *self.likelihood.param_names]
            for name in own:  # a plugin component's own variables
                if name not in params:
                    params[name] = self.priors[name].create(name, dims=dims[name])
            for transform in (self.adstock, self.saturation):
                created = transform.create_priors(("channel",))
                params.update({transform.variable_name(p): rv for p, rv in created.items()})
            if spec.organic:
                for transform in (self.organic_adstock, self.organic_saturation):
                    created = transform.create_priors(("organic",))
                    params.update({transform.variable_name(p): rv for p, rv in created.items()})
            share_total = None
            if self.model_config.media_prior.type == "share" or spec.organic_share:
                share_total = pm.Data("target_total_data", target_total(spec))  # data: compiled code is reused
            if self.media_prior_variable:  # beta: the exact function of the business quantity
                total_arg = share_total if self.model_config.media_prior.type == "share" else None
                beta = coefficient(spec, params, params[self.media_prior_variable], inputs["media"], total_arg)
                params["beta"] = pm.Deterministic("beta", beta, dims="channel")
            if spec.organic_share:  # beta_organic: the exact function of the organic contribution share
                share = self.priors[ORGANIC_SHARE].create(ORGANIC_SHARE, dims=("organic",))
                params[ORGANIC_SHARE] = share
                beta_organic = organic_coefficient(spec, params, share, inputs["organic"], share_total)
                params["beta_organic"] = pm.Deterministic("beta_organic", beta_organic, dims="organic")
            for name, (var_dims, prior) in spec.geo_variables.items():
                params[name] = prior.create(name, dims=var_dims)
            if self.varying is not None:  # the multiplier's own variables (model.time_varying_media)
                for name, var_dims in self.varying.variables().items():
                    params[name] = self.varying.priors[name].create(name, dims=var_dims)
            mu = total(mean_components(spec, params, inputs))
            if self.sequential is None:
                self.likelihood.observe("y", mu, params["sigma"], params, y, ("date", *geo))
            else:  # the joint update: the new periods only, the mean over the whole history
                start = self.sequential.start
                self.likelihood.observe("y", mu[start:], params["sigma"], params, y[start:], None)
            if self.lift_tests is not None:
                add_lift_likelihood(spec, self.lift_tests, params, (inputs["media"], inputs["t"]))
            if self.sequential is not None:  # the first posterior as a joint prior (bayesmmm.model.sequential)
                self.sequential.add_prior(model, spec, params)
        if self.initial_values:
            self._set_initial_values(model)
        return model

    def _set_initial_values(self, model) -> None:
        """:attr:`initial_values` as the model's initvals (free variables of the same shape only)."""
        sizes = {dim: len(values) for dim, values in model.coords.items()}
        for rv in model.free_RVs:
            value = self.initial_values.get(rv.name)
            dims = model.named_vars_to_dims.get(rv.name, ())
            if value is None or any(d not in sizes for d in dims):
                continue
            if np.shape(value) != tuple(sizes[d] for d in dims):
                continue
            model.set_initval(rv, np.asarray(value, dtype=float))

    def structure_key(self) -> str:
        """Identifies the sampling graph up to its data: models with equal keys share compiled code."""
        import hashlib

        parts = [self.model_config.model_dump_json(), json.dumps([list(self.channels), list(self.controls)])]
        if self.spec is not None and (self.spec.organic or self.spec.treatments or self.spec.events):
            parts.append(json.dumps([list(self.spec.organic), list(self.spec.treatments), list(self.spec.events)]))
        if self.plugins:  # a plugin's code shapes the graph: an edited plugin must not reuse compiled code
            parts.append(json.dumps([[r.spec, r.sha256] for r in self.plugins]))
        if self.is_geo:  # the geo count shapes the variables
            parts.append(json.dumps(["geo", len(self.geos)]))
        # the roas / mroas mapping (and roas's total media share prior) hold data totals; share's is pm.Data
        if self.model_config.media_prior.type in ("roas", "mroas") and self.data is not None:
            totals = [self.data.channel_spend.sum(axis=0).tolist(), float(self.data.target.sum()), self.scales.target]
            if self.data.has_revenue:  # the weeks' revenue per KPI weigh the mapping's curve
                totals.append(hashlib.sha256(np.ascontiguousarray(self.data.revenue_per_kpi).tobytes()).hexdigest())
            parts.append(json.dumps(totals))
        if self.lift_tests is not None:  # which tests (channel, geo, dated) shapes the lift term
            parts.append(json.dumps(["lift", lift_key(self.lift_tests)]))
        if self.sequential is not None:  # the joint update's prior and window shape the graph
            parts.append(json.dumps(["sequential", self.sequential.key()]))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _set_data(self, frame: pd.DataFrame) -> None:
        data = frame_to_data(frame, self.data_config, min_rows=self.min_rows)
        scales = Scales.from_data(data, self.data_config.target_column)  # also checks the data
        self.bind(data, scales if self.fixed_scales is None else self.fixed_scales)

    @property
    def carryover_weeks(self) -> int:
        """Training weeks whose spend reaches a forecast: :attr:`ModelSpec.carryover_weeks`."""
        return self.require_spec().carryover_weeks

    @property
    def n_mean_parameters(self) -> int:
        """Parameters of the mean function: intercept, noise, channel coefficients and transform
        parameters, seasonality, controls, trend (the geo deviations not counted)."""
        n_params = 2 + len(self.channels) * (1 + len(self.adstock.param_names) + len(self.saturation.param_names))
        n_params += self.seasonality.n_parameters() + len(self.controls) + self.trend.n_parameters()
        if self.organic_adstock is not None:
            per = 1 + len(self.organic_adstock.param_names) + len(self.organic_saturation.param_names)
            n_params += len(self.data_config.organic_columns) * per
        n_params += len(self.data_config.treatment_columns) + len(self.data_config.event_columns)
        if self.varying is not None:
            n_params += self.varying.n_parameters()
        return n_params

    @property
    def min_rows(self) -> int:
        """Fewest periods the model accepts: more rows than mean parameters, and at least l_max."""
        return max(self.n_mean_parameters + 1, self.adstock.l_max)

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
            unknown = sorted(set(kwargs) - set(SamplerConfig.model_fields))
            if unknown:  # a typo (random_seed=7 for seed=7) must not be silently ignored
                raise ConfigError(
                    f"unknown sampler setting(s) {', '.join(unknown)}; valid: {', '.join(SamplerConfig.model_fields)}"
                )
            sampler = SamplerConfig.model_validate({**sampler.model_dump(), **kwargs})
        sampler = self._resolve_mass_matrix(sampler)
        model = self.build_model(frame)
        few = few_periods_warning(
            self.data.n_dates,
            self.data.frequency,
            self.n_mean_parameters,
            self.adstock.l_max,
            self.model_config.yearly_seasonality,
        )
        if few is not None:
            warnings.warn(few, UserWarning, stacklevel=2)
        warm = self.warm_start(model, sampler) if self.warm_start is not None else None
        idata, timings = sample(
            model, sampler, cache_key=self.structure_key(), prepare=self._prepare_post_processing, warm=warm
        )
        self.timings = timings
        if self.media_prior_variable or self.spec.organic_share:
            # beta (and beta_organic) per draw, by the graph's own functions, whatever the backend
            post = idata["posterior"].to_dataset()
            if self.media_prior_variable:
                post["beta"] = (("chain", "draw", "channel"), posterior_coefficients(self.spec, post))
                post["beta"].attrs["deterministic"] = f"function of {self.media_prior_variable} (model.media_prior)"
                if self.spec.media_prior_pooled:
                    post[self.media_prior_variable].attrs["deterministic"] = "exp(media_prior_mu + tau * media_prior_z)"
            if self.spec.organic_share:
                post["beta_organic"] = (("chain", "draw", "organic"), posterior_organic_coefficients(self.spec, post))
                post["beta_organic"].attrs["deterministic"] = (
                    f"function of {ORGANIC_SHARE} (model.organic.prior: share)"
                )
            idata["posterior"] = xr.DataTree(post)
        self.idata = self._complete_idata(idata)
        return self.idata

    def precompile(self, frame: pd.DataFrame, sampler: SamplerConfig | Mapping[str, Any] | None = None) -> bool:
        """Build the model on ``frame`` and compile its sampler now; a later :meth:`fit` with the same
        structure and sampler settings (in this process) reuses the compiled code.

        Thread-safe with respect to fits of other models: run it on a background thread to
        overlap a compile with other work, after
        :func:`~bayesmmm.inference.sampling.import_backend` on the main thread. Returns False
        where the backend compiles nothing ahead.
        """
        from bayesmmm.inference.sampling import precompile

        if sampler is None:
            sampler = SamplerConfig()
        elif not isinstance(sampler, SamplerConfig):
            sampler = SamplerConfig.model_validate(dict(sampler))
        return precompile(self.build_model(frame), self._resolve_mass_matrix(sampler), self.structure_key())

    def _resolve_mass_matrix(self, sampler: SamplerConfig) -> SamplerConfig:
        """``mass_matrix: auto`` is ``diag`` for a geo panel: its partial pooling is funnel-shaped, which a
        dense metric does not straighten and whose larger steps then diverge (measured on a 3-geo panel:
        1 divergence in 600 draws dense, none diagonal); national models leave it to the backend."""
        if sampler.mass_matrix == "auto" and self.is_geo:
            return sampler.model_copy(update={"mass_matrix": "diag"})
        return sampler

    def _prepare_post_processing(self) -> None:
        """What :meth:`_complete_idata` needs, done ahead: the JAX backends run this while XLA
        compiles the sampler (the compile leaves a core idle), saving ~1.5 s of a fit."""
        import scipy.stats  # noqa: F401  (the log-likelihood's; a second to import)

        self.predictive.compiled()

    def _complete_idata(self, idata):
        """The model file's tree (:func:`~bayesmmm.model.persistence.to_datatree`) with the pointwise
        log-likelihood of its own posterior."""
        tree = to_datatree(self.require_spec(), idata, self.lift_tests, self.plugins)
        self.idata = tree
        tree["log_likelihood"] = xr.DataTree(xr.Dataset({"y": self.log_likelihood()}))
        return tree

    def check_continues(self, dates: pd.DatetimeIndex) -> None:
        """``DataError`` unless ``dates`` continue the training data: :meth:`ModelSpec.check_continues`."""
        self.require_spec().check_continues(dates)

    def lift_draws(self, draws: Mapping[str, np.ndarray] | None = None, tests: pd.DataFrame | None = None):
        """The model's lift of each test per draw, original units, (sample, test):
        :func:`~bayesmmm.model.calibration.lift_draws` of the posterior (or ``draws``) and the model's
        lift tests (or ``tests``)."""
        draws = self.posterior_draws() if draws is None else draws
        return lift_draws(self.require_spec(), draws, self.lift_tests if tests is None else tests)

    # ------------------------------------------------- predictive (one core)
    def components(
        self, params: Mapping[str, Any], design: Mapping[str, Any], reference_media: Any = None
    ) -> dict[str, Any]:
        """Scaled mean components as PyTensor expressions: :func:`~bayesmmm.model.predictive.mean_components`."""
        return mean_components(self.require_spec(), params, design, reference_media)

    def posterior_draws(self, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Free variables with a leading ``sample`` axis: :meth:`Predictive.posterior_draws`."""
        return self.predictive.posterior_draws(max_draws, seed)

    def evaluate(self, dates, media, controls, draws=None, batch_size: int = 1000, reduce=None, components=None):
        """Components in original units per draw: :meth:`Predictive.evaluate`."""
        return self.predictive.evaluate(dates, media, controls, draws, batch_size, reduce, components)

    def media_totals(self, multipliers, draws=None, batch_size: int = 1000, value: bool = False):
        """Channel totals at scaled media: :meth:`~bayesmmm.model.predictive.Predictive.media_totals`."""
        return self.predictive.media_totals(multipliers, draws, batch_size, value)

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
        """Write the fitted model (posterior, data, config, scales, versions, plugins) to NetCDF, atomically."""
        self.require_fitted()
        return save_model(self.idata, path)

    @classmethod
    def load(cls, path: str | Path, *, import_plugins: bool = True) -> MMM:
        """Load a model written by :meth:`save`; it predicts exactly what the original did.

        See :func:`~bayesmmm.model.persistence.load_model`: ``path`` is a ``posterior.nc`` or a
        finished run folder; the plugins the model was fitted with are imported (or, with
        ``import_plugins=False``, must be registered already) and checked against their SHA-256.
        """
        return load_model(cls, path, import_plugins=import_plugins)
