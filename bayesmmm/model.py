"""The Bayesian media mix model.

.. math::

    y_t / s_y = \\text{intercept} + \\text{trend}(t) + \\text{seasonality}(t)
        + \\sum_k \\gamma_k z_{t,k} + \\sum_c \\beta_c\\,
        \\text{saturation}_c(\\text{adstock}_c(x_{\\cdot,c} / s_c))_t + \\varepsilon_t

``s_y`` is the mean absolute target, ``s_c`` the channel's mean spend over the training
weeks with spend (:func:`~bayesmmm.data.spend_scale`) and the
controls ``z`` are divided by their maximum absolute value. The sampling graph holds
only what the likelihood needs; contributions, ROAS and predictions are computed after
sampling by one function compiled once per model and vectorized over draws.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.config import DataConfig, ModelConfig, SamplerConfig
from bayesmmm.data import DataError, MMMData, frame_to_data, spend_scale
from bayesmmm.features import changepoint_locations, fourier_features, fourier_mode_names, time_index

__all__ = ["MMM", "ModelFileError", "Scales"]

COMPONENTS = ("intercept", "trend", "seasonality", "controls", "media")
MODEL_VARIABLES = ("intercept", "beta", "trend_slope", "trend_delta", "gamma_fourier", "gamma_control", "sigma", "nu")


class ModelFileError(ValueError):
    """A saved model file is missing, corrupt or not a bayesmmm model."""


@dataclass(frozen=True)
class Scales:
    """Scaling constants fixed at training time (original units = scaled × scale)."""

    target: float
    media: tuple[float, ...]
    controls: tuple[float, ...]
    start: str
    span_days: float

    @classmethod
    def from_data(cls, data: MMMData) -> Scales:
        target = float(np.mean(np.abs(data.target)))
        if not np.isfinite(target) or target <= 0:
            raise DataError("the target column is all zero; nothing to model")
        if np.ptp(data.target) == 0:
            raise DataError(f"the target is constant ({data.target[0]:g} every week); nothing to explain")
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


def _versions() -> dict[str, str]:
    import arviz
    import pymc
    import pytensor

    from bayesmmm import __version__

    return {
        "bayesmmm": __version__,
        "pymc": pymc.__version__,
        "pytensor": pytensor.__version__,
        "arviz": arviz.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "xarray": xr.__version__,
    }


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
        self.adstock = self.model_config.adstock.build()
        self.saturation = self.model_config.saturation.build()
        self.priors = self.model_config.resolved_priors()
        self.data: MMMData | None = None
        self.scales: Scales | None = None
        self.idata = None
        self.timings: dict[str, float] = {}

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

    def _design(self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled numeric inputs of the mean function for the given rows."""
        s = self._require_scales()
        return {
            "media": media / np.asarray(s.media),
            "controls": controls / np.asarray(s.controls) if controls.shape[1] else np.zeros((len(dates), 0)),
            "t": time_index(dates, pd.Timestamp(s.start), s.span_days),
            "fourier": fourier_features(dates, self.model_config.yearly_seasonality),
        }

    def _require_fitted(self) -> None:
        if self.idata is None or self.data is None:
            raise RuntimeError("the model is not fitted: call fit() or MMM.load() first")

    def _require_scales(self) -> Scales:
        if self.scales is None:
            raise RuntimeError("the model has no data yet: call fit() (or MMM.load) first")
        return self.scales

    def _dims(self) -> dict[str, tuple[str, ...]]:
        """Dims of every free variable (transform parameters are per channel)."""
        dims = {
            "intercept": (),
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
        if self.model_config.likelihood == "student_t":
            dims["nu"] = ()
        for transform in (self.adstock, self.saturation):
            for name in transform.variable_names.values():
                dims[name] = ("channel",)
        return dims

    def coords(self, dates: pd.DatetimeIndex | None = None) -> dict[str, Any]:
        """Named coordinates of the model's dims."""
        dates = self.data.dates if dates is None and self.data is not None else dates
        coords: dict[str, Any] = {"channel": list(self.channels)}
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
    def components(self, params: Mapping[str, Any], design: Mapping[str, Any]) -> dict[str, Any]:
        """Scaled mean components as PyTensor expressions (pure: no model context).

        Parameters
        ----------
        params : variable name → tensor (random variables or placeholders).
        design : ``media`` (date, channel), ``controls`` (date, control), ``t`` (date,),
            ``fourier`` (date, fourier_mode) tensors or arrays.

        Returns
        -------
        dict with ``intercept`` (date,), ``trend`` (date,), ``seasonality`` (date,),
        ``controls`` (date, control) and ``media`` (date, channel).
        """
        import pytensor.tensor as pt

        t = pt.as_tensor_variable(design["t"])
        zeros = pt.zeros_like(t)
        out: dict[str, Any] = {"intercept": zeros + params["intercept"]}
        trend = zeros
        if self.model_config.trend != "none":
            trend = params["trend_slope"] * t
        if self.model_config.trend == "piecewise":
            cps = changepoint_locations(self.model_config.n_changepoints)
            hinge = pt.maximum(t[:, None] - cps[None, :], 0.0)
            trend = trend + pt.sum(hinge * params["trend_delta"], axis=-1)
        out["trend"] = trend
        if self.model_config.yearly_seasonality:
            # elementwise product + sum compiles much faster than a dot in numba
            out["seasonality"] = pt.sum(pt.as_tensor_variable(design["fourier"]) * params["gamma_fourier"], axis=-1)
        else:
            out["seasonality"] = zeros
        if self.controls:
            out["controls"] = pt.as_tensor_variable(design["controls"]) * params["gamma_control"]
        else:  # shaped from t, never from the data: a compiled model must serve any number of weeks
            out["controls"] = pt.zeros((t.shape[0], 0), dtype=t.dtype)
        ad = {p: params[v] for p, v in self.adstock.variable_names.items()}
        sat = {p: params[v] for p, v in self.saturation.variable_names.items()}
        media = self.adstock.apply(pt.as_tensor_variable(design["media"]), **ad)
        out["media"] = self.saturation.apply(media, **sat) * params["beta"]
        return out

    @staticmethod
    def _sum_components(comps: Mapping[str, Any]):
        import pytensor.tensor as pt

        return (
            comps["intercept"]
            + comps["trend"]
            + comps["seasonality"]
            + pt.sum(comps["controls"], axis=-1)
            + pt.sum(comps["media"], axis=-1)
        )

    # ------------------------------------------------------------------- model
    def build_model(self, frame: pd.DataFrame | None = None):
        """Build the PyMC model on ``frame`` (or the data already set)."""
        import pymc as pm

        if frame is not None:
            self._set_data(frame)
        if self.data is None:
            raise RuntimeError("build_model needs data: pass a data frame")
        design = self._design(self.data.dates, self.data.media, self.data.controls)
        dims = self._dims()
        with pm.Model(coords=self.coords()) as model:
            # Data enter as pm.Data so that a model compiled once serves every data set of
            # the same structure (nutpie's with_data): hold-out refits, sweeps, seeds.
            inputs = {
                "media": pm.Data("media_data", design["media"], dims=("date", "channel")),
                "t": pm.Data("t_data", design["t"], dims="date"),
            }
            inputs["controls"] = (
                pm.Data("control_data", design["controls"], dims=("date", "control"))
                if self.controls
                else design["controls"]
            )
            inputs["fourier"] = (
                pm.Data("fourier_data", design["fourier"], dims=("date", "fourier_mode"))
                if self.model_config.yearly_seasonality
                else design["fourier"]
            )
            y = pm.Data("y_data", self.data.target / self.scales.target, dims="date")
            params = {}
            for name in MODEL_VARIABLES:
                if name in dims:
                    params[name] = self.priors[name].create(name, dims=dims[name])
            for transform in (self.adstock, self.saturation):
                created = transform.create_priors(("channel",))
                params.update({transform.variable_name(p): rv for p, rv in created.items()})
            mu = self._sum_components(self.components(params, inputs))
            if self.model_config.likelihood == "student_t":
                pm.StudentT("y", nu=params["nu"], mu=mu, sigma=params["sigma"], observed=y, dims="date")
            else:
                pm.Normal("y", mu=mu, sigma=params["sigma"], observed=y, dims="date")
        return model

    def structure_key(self) -> str:
        """Identifies the sampling graph up to its data: models with equal keys share compiled code."""
        import hashlib

        parts = [self.model_config.model_dump_json(), json.dumps([list(self.channels), list(self.controls)])]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _set_data(self, frame: pd.DataFrame) -> None:
        data = frame_to_data(frame, self.data_config, min_rows=self.min_rows)
        self.data = data
        self.scales = Scales.from_data(data)
        self.__dict__.pop("_mean_function", None)

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
        from bayesmmm.sampling import sample

        if sampler is None:
            sampler = SamplerConfig()
        elif not isinstance(sampler, SamplerConfig):
            sampler = SamplerConfig.model_validate(dict(sampler))
        if kwargs:
            sampler = sampler.model_copy(update=kwargs)
            SamplerConfig.model_validate(sampler.model_dump())
        model = self.build_model(frame)
        idata, timings = sample(model, sampler, cache_key=self.structure_key())
        self.timings = timings
        self.idata = self._complete_idata(idata)
        return self.idata

    def _complete_idata(self, idata):
        """Keep posterior and sample_stats; add observed/constant data, log-likelihood and metadata."""
        from xarray import DataTree

        data = self.data
        date = pd.DatetimeIndex(data.dates)
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
                "bayesmmm_versions": json.dumps(_versions()),
            }
        )
        self.idata = tree
        tree["log_likelihood"] = xr.DataTree(xr.Dataset({"y": self.log_likelihood()}))
        return tree

    # ---------------------------------------------------------- post-processing
    @cached_property
    def _mean_function(self):
        """Compiled ``(design, batched params) → components``, vectorized over a leading draw axis.

        Compiled once per model in :func:`~bayesmmm.transforms.base.numpy_mode`: the
        arrays are whole batches of draws, so NumPy does the work and compilation
        takes milliseconds (the numba backend would add seconds per model).
        """
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import vectorize_graph

        from bayesmmm.transforms.base import numpy_mode

        dims = self._dims()
        design = {
            "media": pt.matrix("media", dtype="float64"),
            "controls": pt.matrix("controls", dtype="float64"),
            "t": pt.vector("t", dtype="float64"),
            "fourier": pt.matrix("fourier", dtype="float64"),
        }
        core = {n: pt.tensor(n, shape=(None,) * len(d), dtype="float64") for n, d in dims.items()}
        batched = {n: pt.tensor(f"{n}_draws", shape=(None,) * (len(d) + 1), dtype="float64") for n, d in dims.items()}
        comps = self.components(core, design)
        names = list(COMPONENTS)
        outs = vectorize_graph([comps[k] for k in names], {core[n]: batched[n] for n in dims})
        fn = pytensor.function(
            [*design.values(), *batched.values()],
            outs,
            mode=numpy_mode(),
            on_unused_input="ignore",
        )
        return fn, list(dims), names

    def _posterior_draws(self, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Free variables stacked over (chain, draw) → leading ``sample`` axis."""
        self._require_fitted()
        post = self.idata["posterior"].to_dataset()
        n = post.sizes["chain"] * post.sizes["draw"]
        idx = np.arange(n)
        if max_draws is not None and max_draws < n:
            idx = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
        out = {}
        for name in self._dims():
            arr = post[name].to_numpy()
            out[name] = arr.reshape(n, *arr.shape[2:])[idx]
        return out

    def _evaluate(
        self, dates, media, controls, draws: Mapping[str, np.ndarray] | None = None, batch_size: int = 1000
    ) -> dict[str, np.ndarray]:
        """Components in ORIGINAL units for each draw: arrays with a leading ``sample`` axis."""
        fn, order, names = self._mean_function
        draws = self._posterior_draws() if draws is None else draws
        design = self._design(pd.DatetimeIndex(dates), np.asarray(media, float), np.asarray(controls, float))
        n = len(next(iter(draws.values())))
        core_ndim = {"intercept": 1, "trend": 1, "seasonality": 1, "controls": 2, "media": 2}
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, batch_size):
            part = [draws[k][start : start + batch_size] for k in order]
            outs = fn(design["media"], design["controls"], design["t"], design["fourier"], *part)
            # a component that no parameter touches (e.g. trend "none") comes back without a draw axis
            m = len(part[0])
            chunks.append(
                [np.broadcast_to(o, (m, *o.shape[-core_ndim[k] :])) for k, o in zip(names, outs, strict=True)]
            )
        scale = self.scales.target
        return {name: np.concatenate([c[i] for c in chunks]) * scale for i, name in enumerate(names)}

    def _sample_dims(self) -> tuple[int, int]:
        post = self.idata["posterior"]
        return post.sizes["chain"], post.sizes["draw"]

    def _to_chain_draw(self, arr: np.ndarray, dims: tuple[str, ...], coords: dict[str, Any]) -> xr.DataArray:
        chains, draws = self._sample_dims()
        return xr.DataArray(
            arr.reshape(chains, draws, *arr.shape[1:]),
            dims=("chain", "draw", *dims),
            coords={"chain": np.arange(chains), "draw": np.arange(draws), **coords},
        )

    def posterior_components(self) -> xr.Dataset:
        """Posterior of every mean component over the training dates, original units.

        Variables: ``intercept``, ``trend``, ``seasonality`` (chain, draw, date),
        ``controls`` (…, date, control), ``media`` (…, date, channel) and ``mu``.
        Computed once per posterior and cached (treat the result as read-only).
        """
        self._require_fitted()
        cached = self.__dict__.get("_components")
        if cached is not None and cached[0] is self.idata:
            return cached[1]
        data = self.data
        comps = self._evaluate(data.dates, data.media, data.controls)
        coords = self.coords()
        date = {"date": coords["date"]}
        ds = xr.Dataset(
            {
                "intercept": self._to_chain_draw(comps["intercept"], ("date",), date),
                "trend": self._to_chain_draw(comps["trend"], ("date",), date),
                "seasonality": self._to_chain_draw(comps["seasonality"], ("date",), date),
                "controls": self._to_chain_draw(
                    comps["controls"], ("date", "control"), {**date, "control": list(self.controls)}
                ),
                "media": self._to_chain_draw(
                    comps["media"], ("date", "channel"), {**date, "channel": list(self.channels)}
                ),
            }
        )
        ds["mu"] = (
            ds["intercept"]
            + ds["trend"]
            + ds["seasonality"]
            + ds["controls"].sum("control")
            + ds["media"].sum("channel")
        )
        self._components = (self.idata, ds)
        return ds

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood of the observed target, original units, (chain, draw, date)."""
        from scipy import stats

        comps = self.posterior_components()
        mu = comps["mu"].to_numpy()
        post = self.idata["posterior"]
        sigma = post["sigma"].to_numpy()[..., None] * self.scales.target
        y = self.data.target
        if self.model_config.likelihood == "student_t":
            nu = post["nu"].to_numpy()[..., None]
            ll = stats.t.logpdf(y, df=nu, loc=mu, scale=sigma)
        else:
            ll = stats.norm.logpdf(y, loc=mu, scale=sigma)
        return xr.DataArray(ll, dims=("chain", "draw", "date"), coords=comps["mu"].coords)

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
        ``noise``, ``y`` — all for the rows of ``frame`` only, original units.
        """
        self._require_fitted()
        new = frame_to_data(frame, self.data_config, require_target=False)
        dates, media, controls = new.dates, new.media, new.controls
        n_new = len(dates)
        if include_history:
            hist = self.data
            if dates[0] <= hist.dates[-1]:
                raise DataError(
                    f"new dates start on {dates[0].date()}, not after the training data's last date "
                    f"{hist.dates[-1].date()}; pass include_history=False to score past weeks"
                )
            gap = (dates[0] - hist.dates[-1]).days
            if gap != 7:
                raise DataError(
                    f"new dates must continue the weekly grid: first new date {dates[0].date()} is {gap} days "
                    f"after the last training date {hist.dates[-1].date()}"
                )
            dates = hist.dates.append(dates)
            media = np.vstack([hist.media, media])
            controls = np.vstack([hist.controls, controls])
        comps = self._evaluate(dates, media, controls)
        coords = {"date": pd.DatetimeIndex(dates[-n_new:])}
        mu = (
            comps["intercept"]
            + comps["trend"]
            + comps["seasonality"]
            + comps["controls"].sum(-1)
            + comps["media"].sum(-1)
        )[:, -n_new:]
        ds = xr.Dataset(
            {
                "mu": self._to_chain_draw(mu, ("date",), coords),
                "media": self._to_chain_draw(
                    comps["media"][:, -n_new:], ("date", "channel"), {**coords, "channel": list(self.channels)}
                ),
            }
        )
        if noise:
            rng = np.random.default_rng(seed)
            post = self.idata["posterior"]
            sigma = post["sigma"].to_numpy().reshape(-1, 1) * self.scales.target
            eps = rng.standard_normal(mu.shape)
            if self.model_config.likelihood == "student_t":
                nu = post["nu"].to_numpy().reshape(-1, 1)
                eps = rng.standard_t(nu, size=mu.shape)
            ds["y"] = self._to_chain_draw(mu + sigma * eps, ("date",), coords)
        return ds

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
    def load(cls, path: str | Path) -> MMM:
        """Load a model written by :meth:`save`; it predicts exactly what the original did."""
        from xarray import open_datatree

        path = Path(path)
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
        mmm = cls(
            DataConfig.model_validate_json(attrs["bayesmmm_data_config"]),
            ModelConfig.model_validate_json(attrs["bayesmmm_model_config"]),
        )
        const = tree["constant_data"]
        mmm.data = MMMData(
            dates=pd.DatetimeIndex(const["date"].values),
            target=tree["observed_data"]["y"].to_numpy(),
            media=const["spend"].to_numpy(),
            controls=const["control_data"].to_numpy().reshape(const.sizes["date"], -1),
            channels=mmm.channels,
            control_names=mmm.controls,
        )
        mmm.scales = Scales(**json.loads(attrs["bayesmmm_scales"]))
        mmm.idata = tree
        return mmm
