"""The one predictive core: parameters and inputs → the mean, its components and observations.

Everything that needs the model's mean ``mu`` or its observation model calls this module:
the PyMC graph for fitting (:func:`mean_components`, :func:`total`, the likelihood's
``observe``), the pointwise log-likelihood, ``predict``, the posterior decomposition,
response curves and the optimizer (:func:`media_contributions`, :meth:`Predictive.evaluate`)
and the service (:meth:`Predictive.predict_draws`).

The pure functions of the mean live in :mod:`bayesmmm.model.mean` (re-exported here);

- :class:`Predictive` — one posterior of one model: ``Predictive(spec, posterior)``, immutable.
  The mean function is compiled once per :class:`~bayesmmm.model.spec.ModelSpec` (vectorized
  over draws, NumPy linker) and shared by every posterior of that spec; evaluation in original
  units, forecasts with observation noise, the posterior decomposition and the pointwise
  log-likelihood all read this object's own posterior. :meth:`Predictive.thinned` makes a new
  one over fewer draws, so a view evaluates exactly the draws it reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.components.features import time_index
from bayesmmm.data.loading import DataError, frame_to_data
from bayesmmm.model.mean import (
    COMPONENTS,
    DESIGN_BLOCKS,
    adstocked_media,
    compile_mean,
    compile_media,
    compile_multiplier,
    mean_components,
    media_contributions,
    national_and_geo,
    saturated_media,
    total,
    warn_past_trend_limit,
)
from bayesmmm.model.value import value_weights

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "COMPONENTS",
    "DATASET_NAMES",
    "ROLE_NAMES",
    "Predictive",
    "adstocked_media",
    "mean_components",
    "media_contributions",
    "national_and_geo",
    "role_blocks",
    "saturated_media",
    "total",
    "warn_past_trend_limit",
]


#: the components of the roles beyond paid media and controls (:mod:`bayesmmm.data.roles`)
ROLE_NAMES = ("organic", "treatments", "events")
#: a component's name in a Dataset where it differs: a variable cannot share its dim's name (``organic``)
DATASET_NAMES = {"organic": "organic_media"}


def role_blocks(spec: ModelSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(component, dim, columns)`` of each role block the model has (organic, treatments, events)."""
    blocks = (("organic", "organic", spec.organic), ("treatments", "treatment", spec.treatments))
    blocks += (("events", "event", spec.events),)
    return [(name, dim, cols) for name, dim, cols in blocks if cols]


class Predictive:
    """The compiled mean function and observation model of one model, over one posterior.

    Parameters
    ----------
    spec : the model, bound to its training data (:class:`~bayesmmm.model.spec.ModelSpec`).
    posterior : its posterior (a Dataset or DataTree node with ``chain``/``draw`` dims), or None
        for a model not fitted yet (only :meth:`compiled` and the pure helpers work then).

    Notes
    -----
    Immutable: everything it computes comes from ``spec`` and ``posterior``, never from the model
    object that made it, so it cannot disagree with itself. The mean function is compiled once per
    spec, on first use, in :func:`~bayesmmm.components.base.numpy_mode` (the arrays are whole
    batches of draws, so NumPy does the work and compilation takes milliseconds), and shared by
    every posterior of that spec (:meth:`thinned` views included).
    """

    def __init__(self, spec: ModelSpec, posterior: Any = None) -> None:
        if posterior is not None and not isinstance(posterior, xr.Dataset):
            posterior = posterior.to_dataset()  # a DataTree node
        self._spec = spec
        self._posterior = posterior
        self._components: xr.Dataset | None = None
        self._centering: tuple[Mapping[str, np.ndarray], np.ndarray] | None = None
        self._draws: dict[str, np.ndarray] | None = None

    @property
    def spec(self) -> ModelSpec:
        """The model this predictive evaluates."""
        return self._spec

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior this predictive evaluates (``RuntimeError`` if the model is not fitted)."""
        if self._posterior is None:
            raise RuntimeError("the model is not fitted: call fit() or MMM.load() first")
        return self._posterior

    @property
    def n_draws(self) -> int:
        """Draws (chains × draws) of :attr:`posterior`: exactly the draws every method evaluates."""
        post = self.posterior
        return int(post.sizes["chain"] * post.sizes["draw"])

    def thinned(self, max_draws: int | None) -> Predictive:
        """A predictive over at most ``max_draws`` draws: every k-th draw of each chain.

        Shares the compiled functions (they depend on the spec alone); returns ``self`` when there
        are no more draws than that (or ``max_draws`` is None).
        """
        post = self.posterior
        n = self.n_draws
        if max_draws is None or n <= max_draws:
            return self
        chains = post.sizes["chain"]
        if max_draws < chains:
            raise ValueError(f"max_draws must be at least the number of chains ({chains}), got {max_draws}")
        step = math.ceil(n / max_draws)
        return Predictive(self._spec, post.isel(draw=slice(None, None, step)))

    # ------------------------------------------------------------ compiled mean
    def compiled(
        self, components: Sequence[str] | None = None
    ) -> tuple[Callable, list[str], list[str], Callable | None]:
        """``(fn, variable order, component names, center_fn)``: ``fn(media, controls, organic, treatments,
        events, t, fourier, *draws[, centering])`` (the scaled design, :meth:`ModelSpec.design`) returns
        the components (all of :data:`COMPONENTS`, or the ``components`` asked for, in that order)
        for a leading draw axis; ``center_fn(*draws)``
        the centering per draw, packed ``(sample, k)``: the intercept's shift (one, or one per geo), then
        any day-of-week profile (``center_day_of_week``); None without ``center_media``. Compiled once per
        spec and set of components (a subset computes only what it needs), except that once every
        component is compiled, that function serves any subset: a second compile takes
        longer than the work it would save."""
        names = tuple(COMPONENTS if components is None else components)
        unknown = sorted(set(names) - set(COMPONENTS))
        if unknown or not names:
            raise ValueError(f"unknown mean component(s) {unknown}; valid: {', '.join(COMPONENTS)}")
        compiled = self._spec.memo.setdefault("mean_functions", {})
        if names not in compiled:
            if COMPONENTS in compiled:  # compiling a subset (~1-2 s) costs more than it saves
                return compiled[COMPONENTS]
            compiled[names] = compile_mean(self._spec, names)
        return compiled[names]

    def centering(self, draws: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The packed centering of each draw, ``(sample, k)``: :func:`~bayesmmm.model.mean.media_mean` over the
        training media (one value, or one per geo), then any
        :func:`~bayesmmm.model.mean.media_weekly_profile` (None without ``center_media``); remembered for the
        last set of draws."""
        compiled = self._spec.memo.get("mean_functions") or {}
        # the centering does not depend on the components: any compiled entry has it
        _fn, order, _names, center_fn = next(iter(compiled.values()), None) or self.compiled(("media",))
        if center_fn is None:
            return None
        cached = self._centering
        if cached is not None and cached[0] is draws:
            return cached[1]
        value = np.asarray(center_fn(*[np.asarray(draws[k], dtype="float64") for k in order]))
        self._centering = (draws, value)
        return value

    # ------------------------------------------------------------------ draws
    def posterior_draws(self, max_draws: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Free variables stacked over (chain, draw) → leading ``sample`` axis (a seeded subsample
        of ``max_draws`` when given)."""
        post = self.posterior
        n = self.n_draws
        every = max_draws is None or max_draws >= n
        if every and self._draws is not None:
            return self._draws  # the same read-only arrays: centering and friends stay cached
        idx = np.arange(n)
        if not every:
            idx = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
        out = {}
        for name in self._spec.variable_dims:
            arr = post[name].to_numpy()
            out[name] = arr.reshape(n, *arr.shape[2:])[idx]
            out[name].flags.writeable = False
        if every:
            self._draws = out
        return out

    def evaluate(
        self,
        dates,
        media,
        controls,
        draws: Mapping[str, np.ndarray] | None = None,
        batch_size: int = 1000,
        reduce: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
        components: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Components in ORIGINAL units for each draw: arrays with a leading ``sample`` axis.

        ``components`` (default: all of :data:`COMPONENTS`) names the ones to compute; a
        subset such as ``("media",)`` skips the work of the others.

        ``controls`` is the non-paid input block (:meth:`ModelSpec.covariates`: the controls, then any
        organic media, treatments and event indicators).
        For a geo panel ``media``/``controls`` are ``(date, geo, ·)`` and every component
        has a geo axis after ``date``. ``reduce`` maps each batch of draws to smaller
        arrays (e.g. sums over geos) before the batches are joined, so memory stays
        bounded by the batch size rather than by the number of draws.
        """
        spec = self._spec
        fn, order, names, _center_fn = self.compiled(components)
        draws = self.posterior_draws() if draws is None else draws
        centering = self.centering(draws)
        design = spec.design(pd.DatetimeIndex(dates), np.asarray(media, float), np.asarray(controls, float))
        n = len(next(iter(draws.values())))
        extra = 1 if spec.is_geo else 0
        core_ndim = {"intercept": 1, "trend": 1, "seasonality": 1, **dict.fromkeys(COMPONENTS[3:], 2)}
        core_ndim = {k: v + extra for k, v in core_ndim.items()}
        scale = np.asarray(spec.scales.target, dtype=float)  # scalar, or (geo,)
        scales = {k: scale[:, None] if scale.ndim and core_ndim[k] == 3 else scale for k in names}
        chunks: list[dict[str, np.ndarray]] = []
        for start in range(0, n, batch_size):
            part = [draws[k][start : start + batch_size] for k in order]
            if centering is not None:
                part.append(centering[start : start + batch_size])
            outs = fn(*[design[k] for k in DESIGN_BLOCKS], design["t"], design["fourier"], *part)
            # a component that no parameter touches (e.g. trend "none") comes back without a draw axis
            m = len(part[0])
            batch = {
                k: np.broadcast_to(o, (m, *o.shape[-core_ndim[k] :])) * scales[k]
                for k, o in zip(names, outs, strict=True)
            }
            if components is not None:  # the compiled function may compute more than was asked
                batch = {k: batch[k] for k in components}
            chunks.append(batch if reduce is None else reduce(batch))
        return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}

    def media_functions(self, block: str = "media") -> tuple[Callable, Callable, list[str]]:
        """``(adstock, saturate, variable order)``: :func:`~bayesmmm.model.mean.compile_media` of ``block``
        (``media`` or ``organic``), compiled once per spec and shared by every posterior of it."""
        key = "media_functions" if block == "media" else f"{block}_media_functions"
        memo = self._spec.memo
        if key not in memo:
            memo[key] = compile_media(self._spec, block)
        return memo[key]

    def media_totals(
        self,
        multipliers: Sequence[float | np.ndarray],
        draws: Mapping[str, np.ndarray] | None = None,
        batch_size: int = 1000,
        value: bool = False,
    ) -> np.ndarray:
        """Each channel's contribution over the training weeks (summed over geos), in ORIGINAL
        units, with the historical media scaled by each multiplier: (multiplier, sample, channel).

        With ``value`` each period's contribution is valued by its revenue per KPI
        (:func:`~bayesmmm.model.value.value_weights`; no change without one): revenue.

        A multiplier is a number or one per channel. The same :func:`adstocked_media` and
        :func:`saturated_media` as the mean; an adstock is a convolution, linear in spend
        (:attr:`~bayesmmm.components.adstock.Adstock.linear`), so the adstocked history is
        computed once per draw and only the saturation is evaluated per multiplier (response
        curves evaluate dozens). An adstock that is not linear is evaluated per multiplier.
        """
        spec = self._spec
        adstock_fn, saturate_fn, order = self.media_functions()
        draws = self.posterior_draws() if draws is None else draws
        media = spec.training_design()["media"]  # scaled, (date, [geo,] channel)
        n_channels = media.shape[-1]
        scale = np.asarray(spec.scales.target, dtype=float)  # scalar, or (geo,)
        factors = [np.broadcast_to(np.asarray(m, dtype=float), (n_channels,)) for m in multipliers]
        linear = spec.adstock.linear
        n = len(next(iter(draws.values())))
        out = np.empty((len(factors), n, n_channels))
        weights = value_weights(spec) if value else np.ones(media.shape[:-1])
        for start in range(0, n, batch_size):
            part = [draws[k][start : start + batch_size] for k in order]
            base = adstock_fn(media, *part) if linear else None
            varying = self.training_multiplier({k: v[start : start + batch_size] for k, v in draws.items()})
            for i, m in enumerate(factors):
                carried = base * m if linear else adstock_fn(media * m, *part)
                per = np.asarray(saturate_fn(carried, weights, varying, *part))  # (sample, [geo,] channel)
                if spec.is_geo:  # national: each geo in its own units, then summed
                    per = (per * (scale.reshape(-1, 1) if scale.ndim else scale)).sum(axis=1)
                else:
                    per = per * scale
                out[i, start : start + len(part[0])] = per
        return out

    def multiplier(self, dates: pd.DatetimeIndex, draws: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The time-varying multiplier ``m_c(t)`` of each channel at ``dates`` per draw, (sample, date, channel):
        ones for a channel (or a model) without ``model.time_varying_media`` (:mod:`bayesmmm.model.multiplier`)."""
        spec = self._spec
        draws = self.posterior_draws() if draws is None else draws
        n = len(next(iter(draws.values())))
        if spec.varying is None:
            return np.ones((n, len(dates), len(spec.channels)))
        if "multiplier_function" not in spec.memo:
            spec.memo["multiplier_function"] = compile_multiplier(spec)
        fn, order = spec.memo["multiplier_function"]
        t = time_index(pd.DatetimeIndex(dates), pd.Timestamp(spec.scales.start), spec.scales.span_days)
        return np.asarray(fn(t, *[np.asarray(draws[k], dtype="float64") for k in order]))

    def planning_level(
        self, draws: Mapping[str, np.ndarray] | None = None, plan: str | float | None = None
    ) -> np.ndarray:
        """The level of each channel's effect that plans (the optimizer, flight responses) use, per draw,
        (sample, channel), as a multiple of the channel's training average (``beta``): 1 for constant
        channels; for the time-varying ones ``plan`` (default ``model.time_varying_media.plan``):
        ``latest`` the mean multiplier over the last ``plan_periods`` training periods, ``average`` 1,
        or a number."""
        spec = self._spec
        draws = self.posterior_draws() if draws is None else draws
        n = len(next(iter(draws.values())))
        out = np.ones((n, len(spec.channels)))
        config = spec.model_config.time_varying_media
        if config is None:
            return out
        plan = config.plan if plan is None else plan
        columns = [spec.channels.index(c) for c in config.channels]
        if plan == "latest":
            dates = spec.data.dates[-min(config.plan_periods, spec.data.n_dates) :]
            out[:, columns] = self.multiplier(dates, draws)[:, :, columns].mean(axis=1)
        elif plan != "average":
            if isinstance(plan, str) or not float(plan) > 0:
                raise ValueError(f"plan must be latest, average or a multiplier > 0, got {plan!r}")
            out[:, columns] = float(plan)
        return out

    def training_multiplier(self, draws: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`multiplier` over the training dates in the layout of :func:`compile_media`'s ``saturate``:
        (sample, date, [1,] channel); a broadcastable one without ``model.time_varying_media``."""
        spec = self._spec
        if spec.varying is None:
            return np.ones((1, 1, 1, 1) if spec.is_geo else (1, 1, 1))
        out = self.multiplier(spec.data.dates, draws)
        return out[:, :, None, :] if spec.is_geo else out

    def to_chain_draw(self, arr: np.ndarray, dims: tuple[str, ...], coords: dict[str, Any]) -> xr.DataArray:
        """An array with a leading ``sample`` axis (all draws, chain-major) as (chain, draw, *dims)."""
        post = self.posterior
        chains, draws = post.sizes["chain"], post.sizes["draw"]
        return xr.DataArray(
            arr.reshape(chains, draws, *arr.shape[1:]),
            dims=("chain", "draw", *dims),
            coords={"chain": np.arange(chains), "draw": np.arange(draws), **coords},
        )

    # --------------------------------------------------------- decomposition
    def posterior_components(self) -> xr.Dataset:
        """Posterior of every mean component over the training dates, original units.

        Variables: ``intercept``, ``trend``, ``seasonality`` (chain, draw, date),
        ``controls`` (…, date, control), ``media`` (…, date, channel), ``mu`` and, where the model
        has them, ``organic_media`` (…, date, organic: the ``organic`` component), ``treatments``
        (…, date, treatment: against the baselines) and ``events`` (…, date, event).
        For a geo panel these are NATIONAL (sums over geos) and the dataset adds
        ``mu_geo`` (…, date, geo) and ``media_geo`` (…, geo, channel: each geo's
        contribution summed over the training weeks); the full (date, geo, channel)
        posterior is never held, only batches of draws.
        With a revenue per KPI (``data.revenue_per_kpi_column``) it adds ``media_value`` (…, date,
        channel): each period's contribution × its revenue per KPI (per geo, then summed, for a
        panel), and for a panel ``media_geo_value`` (…, geo, channel).
        Computed once per predictive and cached (treat the result as read-only).
        """
        if self._components is not None:
            return self._components
        spec = self._spec
        rpk = value_weights(spec) if spec.data.has_revenue else None
        if spec.is_geo:

            def reduce(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                out = national_and_geo(batch)
                if rpk is not None:
                    valued = batch["media"] * rpk[None, :, :, None]  # (sample, date, geo, channel)
                    out["media_value"] = valued.sum(axis=2)
                    out["media_geo_value"] = valued.sum(axis=1)
                return out

            comps = self.evaluate(*spec.history_inputs(), reduce=reduce)
        else:
            comps = self.evaluate(*spec.history_inputs())
            if rpk is not None:
                comps["media_value"] = comps["media"] * rpk[None, :, None]
        date = {"date": pd.DatetimeIndex(spec.data.dates)}
        channels = {"channel": list(spec.channels)}
        ds = xr.Dataset(
            {
                "intercept": self.to_chain_draw(comps["intercept"], ("date",), date),
                "trend": self.to_chain_draw(comps["trend"], ("date",), date),
                "seasonality": self.to_chain_draw(comps["seasonality"], ("date",), date),
                "controls": self.to_chain_draw(
                    comps["controls"], ("date", "control"), {**date, "control": list(spec.controls)}
                ),
                "media": self.to_chain_draw(comps["media"], ("date", "channel"), {**date, **channels}),
            }
        )
        for name, dim, cols in role_blocks(spec):  # organic media, treatments, events: by their role
            ds[DATASET_NAMES.get(name, name)] = self.to_chain_draw(
                comps[name], ("date", dim), {**date, dim: list(cols)}
            )
        ds["mu"] = self.to_chain_draw(comps["mu"] if spec.is_geo else total(comps), ("date",), date)
        if rpk is not None:
            ds["media_value"] = self.to_chain_draw(comps["media_value"], ("date", "channel"), {**date, **channels})
        if spec.is_geo:
            geo = {"geo": list(spec.geos)}
            ds["mu_geo"] = self.to_chain_draw(comps["mu_geo"], ("date", "geo"), {**date, **geo})
            ds["media_geo"] = self.to_chain_draw(comps["media_geo"], ("geo", "channel"), {**geo, **channels})
            if rpk is not None:
                ds["media_geo_value"] = self.to_chain_draw(
                    comps["media_geo_value"], ("geo", "channel"), {**geo, **channels}
                )
            if spec.organic:
                organic = {"organic": list(spec.organic)}
                ds["organic_geo"] = self.to_chain_draw(comps["organic_geo"], ("geo", "organic"), {**geo, **organic})
        self._components = ds
        return ds

    # ------------------------------------------------------- observation model
    def observation_params(
        self, draws: Mapping[str, np.ndarray], shape_tail: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``sigma`` in ORIGINAL units and the likelihood's other parameters, per draw, shaped
        ``(sample, 1 × shape_tail)`` to broadcast against ``(sample, date[, geo])`` (a per-geo
        ``sigma``, ``geo.sigma: per_geo``, keeps its geo axis last)."""
        spec = self._spec
        ones = (1,) * shape_tail
        sigma = np.asarray(draws["sigma"])
        tail = (*ones[:-1], sigma.shape[-1]) if sigma.ndim == 2 else ones
        sigma = sigma.reshape(-1, *tail) * np.asarray(spec.scales.target, dtype=float)
        params = {p: np.asarray(draws[p]).reshape(-1, *ones) for p in spec.likelihood.param_names}
        return sigma, params

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood of the observed target, original units, (chain, draw, date[, geo])."""
        spec = self._spec
        comps = self.posterior_components()
        key = "mu_geo" if spec.is_geo else "mu"
        mu = comps[key].to_numpy()  # (chain, draw, date[, geo])
        y = spec.data.geo_target if spec.is_geo else spec.data.target
        chains, n_draws = mu.shape[:2]
        sigma, params = self.observation_params(self.posterior_draws(), mu.ndim - 2)
        sigma = sigma.reshape(chains, n_draws, *sigma.shape[1:])
        params = {k: v.reshape(chains, n_draws, *v.shape[1:]) for k, v in params.items()}
        ll = spec.likelihood.logpdf(y, mu, sigma, params)
        return xr.DataArray(ll, dims=comps[key].dims, coords=comps[key].coords)

    # ----------------------------------------------------------------- predict
    def predict_draws(
        self,
        dates: pd.DatetimeIndex,
        media: np.ndarray,
        controls: np.ndarray,
        *,
        include_history: bool = True,
        noise: bool = False,
        seed: int = 0,
        draws: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Draws of the mean (and noisy) target for new rows, NumPy, original units.

        ``media``/``controls`` are in the model's layout (with a geo axis for a panel, geos
        in the model's order; ``controls`` the non-paid block, :meth:`ModelSpec.covariates`). With
        ``include_history`` the training weeks whose spend carries over are prepended (the new dates
        must follow the training dates).
        ``draws`` (default: every draw of this predictive's posterior) may be a fixed subset
        reused across calls.

        Returns
        -------
        ``mu`` (sample, date), ``media`` (sample, date, channel), ``organic``, ``treatments`` and
        ``events`` (sample, date, ·; no column where the model has none) and, with ``noise``,
        ``y`` (sample, date) for the new rows; for a geo model these are national totals
        and ``mu_geo`` (sample, date, geo) is added.
        """
        spec = self._spec
        n_new = len(dates)
        warn_past_trend_limit(spec, pd.DatetimeIndex(dates))
        draws = self.posterior_draws() if draws is None else draws
        if include_history:
            spec.check_continues(dates)
            h_dates, h_media, h_controls = spec.history_inputs()
            start = max(len(h_dates) - spec.carryover_weeks, 0)
            dates = h_dates[start:].append(pd.DatetimeIndex(dates))
            media = np.concatenate([h_media[start:], media])
            controls = np.concatenate([h_controls[start:], controls])
        if spec.is_geo:

            def last_weeks(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                out = national_and_geo({k: v[:, -n_new:] for k, v in batch.items()})
                return {k: out[k] for k in ("mu", "media", "mu_geo", *ROLE_NAMES)}

            out = self.evaluate(dates, media, controls, draws=draws, reduce=last_weeks)
        else:
            comps = self.evaluate(dates, media, controls, draws=draws)
            out = {"mu": total(comps)[:, -n_new:], **{k: comps[k][:, -n_new:] for k in ("media", *ROLE_NAMES)}}
        if noise:
            per_obs = out["mu_geo"] if spec.is_geo else out["mu"]
            sigma, params = self.observation_params(draws, per_obs.ndim - 1)
            rng = np.random.default_rng(seed)
            y = per_obs + sigma * spec.likelihood.noise(rng, per_obs.shape, params)
            out["y"] = y.sum(axis=-1) if spec.is_geo else y
        return out

    def predict(self, frame: pd.DataFrame, *, include_history: bool = True, noise: bool = False, seed: int = 0):
        """:meth:`~bayesmmm.model.mmm.MMM.predict`: :meth:`predict_draws` on a frame, as a Dataset."""
        spec = self._spec
        self.posterior  # noqa: B018  (a clear error before any parsing when not fitted)
        # the training rows' treatment baselines and event levels, never the new rows' own
        new = frame_to_data(frame, spec.data_config, require_target=False, encoding=spec.data.encoding)
        if spec.is_geo:
            if set(new.geos) != set(spec.geos):
                missing = sorted(set(spec.geos) - set(new.geos))
                unknown = sorted(set(new.geos) - set(spec.geos))
                raise DataError(
                    f"the new rows must cover the training geos exactly: missing {missing or 'none'}, "
                    f"unknown {unknown or 'none'}; give one row per date for every training geo"
                )
            order = [new.geos.index(g) for g in spec.geos]
            media, controls = new.geo_media[:, order], spec.covariates(new)[:, order]
        else:
            media, controls = new.media, spec.covariates(new)
        out = self.predict_draws(new.dates, media, controls, include_history=include_history, noise=noise, seed=seed)
        coords = {"date": pd.DatetimeIndex(new.dates)}
        ds = xr.Dataset(
            {
                "mu": self.to_chain_draw(out["mu"], ("date",), coords),
                "media": self.to_chain_draw(
                    out["media"], ("date", "channel"), {**coords, "channel": list(spec.channels)}
                ),
            }
        )
        for name, dim, cols in role_blocks(spec):
            ds[DATASET_NAMES.get(name, name)] = self.to_chain_draw(
                out[name], ("date", dim), {**coords, dim: list(cols)}
            )
        if spec.is_geo:
            ds["mu_geo"] = self.to_chain_draw(out["mu_geo"], ("date", "geo"), {**coords, "geo": list(spec.geos)})
        if noise:
            ds["y"] = self.to_chain_draw(out["y"], ("date",), coords)
        return ds
