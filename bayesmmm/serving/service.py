"""The domain of the service: one loaded model with everything precomputed, and its forecasts.

- :class:`ModelService`: a fitted model ready to serve (compiled forecast, ROAS and
  contribution tables, dashboard), answering ``/predict``, ``/optimize`` and the tables
  as plain Python (no HTTP here); :class:`ServiceInputError` is a request it cannot serve;
- :class:`Forecaster`: posterior-predictive forecasts of the periods after the training data
  on at most ``max_draws`` draws (a :meth:`~bayesmmm.model.predictive.Predictive.thinned` view:
  it evaluates exactly the draws it reports);
- :func:`optimize_in_worker`: an optimization in an optimizer process (off the serving
  process's GIL).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bayesmmm.data.frequency import next_dates, period_name
from bayesmmm.data.loading import DataError
from bayesmmm.data.roles import RoleError, encode_events, set_columns
from bayesmmm.model.mmm import MMM
from bayesmmm.serving.pools import BoundedCache
from bayesmmm.serving.schemas import (
    RANGE_FACTOR,
    OptimizeRequest,
    example_row,
    input_caps,
    jsonable,
    records,
    request_models,
    row_media,
)
from bayesmmm.stats import hdi_bounds

__all__ = ["DEFAULT_MAX_DRAWS", "Forecaster", "ModelService", "ServiceInputError", "optimize_in_worker"]

DEFAULT_MAX_DRAWS = 1000  # forecasts: HDIs from 1000 draws are stable; more only costs latency


class ServiceInputError(ValueError):
    """A request that passed schema validation but cannot be served (the message says why)."""


def _plan(result: Any) -> dict[str, Any]:
    """An optimizer result as plain JSON-able values (what crosses the process boundary)."""
    numbers = result.allocation.select_dtypes("number").to_numpy(dtype=float)
    return {
        "allocation": records(result.allocation),
        "summary": jsonable(result.summary),
        "finite": bool(np.isfinite(numbers).all()),
    }


_WORKER_MODELS: dict[tuple, MMM] = {}  # in an optimizer process: the models it loaded (the last two)


def optimize_in_worker(
    posterior: str, key: tuple, kwargs: dict[str, Any] | None, plugins: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """Run :func:`~bayesmmm.decisions.optimizer.optimize_budget` in an optimizer process (``kwargs`` None: only load).

    An optimization is seconds of mostly Python work; in its own process it never holds the
    serving process's GIL, so forecasts and ``/health`` keep their latency while it runs.
    ``plugins``: the files or modules the service was started with (``serve --plugin``),
    imported here too; nothing is imported from the model folder.
    """
    from bayesmmm.components.plugins import load_plugins
    from bayesmmm.decisions.optimizer import optimize_budget

    mmm = _WORKER_MODELS.get(key)
    if mmm is None:
        load_plugins(plugins)
        mmm = MMM.load(posterior, import_plugins=False)
        while len(_WORKER_MODELS) >= 2:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
        _WORKER_MODELS[key] = mmm
    if kwargs is None:
        return None
    return _plan(optimize_budget(mmm, **kwargs))


class Forecaster:
    """Posterior-predictive forecasts of the periods after the training data, for serving.

    A thin caller of the predictive core (:meth:`~bayesmmm.model.predictive.Predictive.predict_draws`,
    the computation behind :meth:`MMM.predict` with ``noise=True``) with the posterior draws
    extracted once and no xarray/pandas bookkeeping, which costs more than the arithmetic at
    serving sizes; the HDI estimator is :func:`bayesmmm.stats.hdi_bounds`, as everywhere in bayesmmm.

    Parameters
    ----------
    mmm : a fitted model.
    max_draws : use at most this many draws: every k-th of each chain
        (:meth:`~bayesmmm.model.predictive.Predictive.thinned`); None for all.
    """

    def __init__(self, mmm: MMM, max_draws: int | None = DEFAULT_MAX_DRAWS) -> None:
        #: the predictive over the thinned posterior: what it evaluates is what ``n_draws`` counts
        self.predictive = mmm.predictive.thinned(max_draws)
        self.draws = self.predictive.posterior_draws()
        self.n_draws = self.predictive.n_draws

    def forecast(
        self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray, hdi_prob: float, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Mean and HDI of the target (with observation noise) and mean channel contributions per new period.

        ``dates`` must continue the training periods (checked). Returns arrays ``mean``,
        ``hdi_low``, ``hdi_high`` (date,) and ``media`` (date, channel).
        """
        out = self.predictive.predict_draws(dates, media, controls, noise=True, seed=seed, draws=self.draws)
        y = out["y"]
        low, high = hdi_bounds(y, hdi_prob, axis=0)
        return {"mean": y.mean(axis=0), "hdi_low": low, "hdi_high": high, "media": out["media"].mean(0)}


class ModelService:
    """One loaded model with everything precomputed for serving.

    Parameters
    ----------
    mmm : a fitted model.
    model_version : label reported by ``/health`` and ``/metrics``.
    hdi_prob : probability of the precomputed ROAS and contribution intervals.
    dashboard : render the dashboard figures at start-up (a few seconds).
    max_draws : forecasts use at most this many posterior draws (evenly thinned within
        each chain; None: all). The ROAS and contribution tables always use every draw.
    diagnostics : the run's ``diagnostics.json`` (shown on the dashboard), if known.
    registry_root, name : where the model came from, to list and compare versions.
    table_cache : ROAS and contribution tables kept per other ``hdi_prob`` (least recently
        used dropped first; the start-up tables are always kept).
    posterior_path : the file ``mmm`` was loaded from (an optimizer process loads it too).
    design : the run's lift-test plan (``RUN_DIR/design/designs.csv`` of ``bayesmmm design``),
        shown on the dashboard, if there is one.
    """

    def __init__(
        self,
        mmm: MMM,
        model_version: str,
        *,
        hdi_prob: float = 0.9,
        dashboard: bool = True,
        max_draws: int | None = DEFAULT_MAX_DRAWS,
        diagnostics: dict[str, Any] | None = None,
        registry_root: Path | None = None,
        name: str | None = None,
        table_cache: int = 8,
        posterior_path: Path | None = None,
        design: pd.DataFrame | None = None,
    ) -> None:
        from bayesmmm.evaluation.summaries import contributions_table, fit_metrics, roas_table

        t0 = time.perf_counter()
        mmm.require_fitted()
        if mmm.is_geo:
            from bayesmmm.config.experiment import ConfigError

            raise ConfigError(
                "serving a geo model is not supported yet (/predict takes national rows); "
                "serve a national run, or use `bayesmmm predict` with a panel CSV"
            )
        self.mmm = mmm
        self.model_version = model_version
        self.hdi_prob = hdi_prob
        self.diagnostics = diagnostics
        self.registry_root = registry_root
        self.name = name
        self.posterior_path = Path(posterior_path) if posterior_path is not None else None
        #: plugin files or modules an optimizer process imports before loading the model (serve --plugin)
        self.plugins: tuple[str, ...] = ()
        # a compiled PyTensor function keeps its buffers between calls: one prediction at a time
        self._predict_lock = threading.Lock()
        self._optimize_lock = threading.BoundedSemaphore(1)
        self.row_model, self.predict_model = request_models(mmm)
        self.forecaster = Forecaster(mmm, max_draws)
        comps = mmm.posterior_components()
        self.metrics = fit_metrics(mmm, comps)
        post = mmm.idata["posterior"]
        self.n_draws_total = int(post.sizes["chain"] * post.sizes["draw"])
        self.spend_cap, self.control_cap = input_caps(mmm)
        # bounded: each other hdi_prob adds a table (a client could ask for thousands)
        self._roas = BoundedCache(table_cache, pinned=[hdi_prob])
        self._contributions = BoundedCache(table_cache, pinned=[hdi_prob])
        self._roas[hdi_prob] = roas_table(mmm, hdi_prob, comps)
        self._contributions[hdi_prob] = contributions_table(mmm, hdi_prob, comps)
        self.example = {"new_media_spend": [example_row(mmm)], "hdi_prob": hdi_prob}
        self.predict(self.example)  # compiles the predictive function now, not on the first request
        self.figures: dict[str, str] = {}
        self.dashboard_html = ""
        if dashboard:
            from bayesmmm.serving.dashboard import dashboard_figures, render_dashboard

            self.figures = dashboard_figures(mmm, hdi_prob, comps, curves_max_draws=self.forecaster.n_draws)
            self.dashboard_html = render_dashboard(
                mmm, model_version, self._roas[hdi_prob], self.metrics, self.figures, diagnostics, design=design
            )
        self.startup_s = time.perf_counter() - t0

    @classmethod
    def from_target(
        cls,
        target: str | Path,
        *,
        name: str | None = None,
        version: str = "current",
        hdi_prob: float = 0.9,
        dashboard: bool = True,
        max_draws: int | None = DEFAULT_MAX_DRAWS,
        table_cache: int = 8,
        plugins: tuple[str, ...] = (),
    ) -> ModelService:
        """Load a run folder, a registry version or a registry's current model (see :func:`resolve_model`).

        The service imports no code from a model folder: the plugins a model needs must be
        registered already (``plugins``, imported here: ``serve --plugin``; or an installed
        package's entry point), else :class:`~bayesmmm.components.plugins.PluginError` says so.
        """
        from bayesmmm.components.plugins import load_plugins
        from bayesmmm.serving.dashboard import read_design_plan
        from bayesmmm.serving.model_registry import resolve_model

        plugins = tuple(str(p) for p in plugins)
        load_plugins(plugins)
        posterior, label, entry = resolve_model(target, name, version)
        diagnostics = None
        diag_path = posterior.parent / "diagnostics.json"
        if diag_path.exists():
            try:
                diagnostics = json.loads(diag_path.read_text())
            except ValueError:
                diagnostics = None
        mmm = MMM.load(posterior, import_plugins=False)
        service = cls(
            mmm,
            label,
            hdi_prob=hdi_prob,
            dashboard=dashboard,
            max_draws=max_draws,
            diagnostics=diagnostics,
            registry_root=entry.path.parent.parent if entry is not None else None,
            name=entry.name if entry is not None else None,
            table_cache=table_cache,
            posterior_path=posterior,
            design=read_design_plan(posterior.parent) if dashboard else None,
        )
        service.plugins = plugins
        return service

    # --------------------------------------------------------------- predict
    def _inputs(self, rows: list[dict[str, Any]]) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Validated rows → dates, spend and controls; the dates must continue the training periods."""
        dates = pd.DatetimeIndex([r["date"] for r in rows])
        try:
            self.mmm.check_continues(dates)
        except DataError as exc:
            raise ServiceInputError(f"new_media_spend[0].date: {exc}") from None
        frequency = self.mmm.data.frequency
        expected = next_dates(dates[0], frequency, len(dates) - 1)
        wrong = np.flatnonzero(dates[1:] != expected)
        if len(wrong):
            i = int(wrong[0]) + 1
            raise ServiceInputError(
                f"new_media_spend[{i}].date: rows must be consecutive {period_name(frequency, plural=True)} in "
                f"order; {dates[i].date()} follows {dates[i - 1].date()} (expected {expected[i - 1].date()})"
            )
        media, rf_frequency = row_media(self.mmm, rows)
        spec = self.mmm.require_spec()
        if not (spec.organic or spec.treatments or spec.events or spec.rf_channels):
            controls = np.array([[r[c] for c in self.mmm.controls] for r in rows], dtype=float).reshape(len(rows), -1)
            return dates, media, controls
        # the non-paid block (controls, organic, treatments, event indicators by the training levels)
        frame = pd.DataFrame(rows)
        dc = self.mmm.data_config
        numeric = [*dc.control_columns, *dc.organic_columns, *dc.treatment_columns]
        parts = [frame[numeric].to_numpy(dtype=float).reshape(len(rows), -1)]
        for col in dc.event_columns:
            try:
                parts.append(encode_events(col, frame[col].to_numpy(), *spec.data.encoding.events[col]))
            except RoleError as exc:
                raise ServiceInputError(f"new_media_spend: {exc}") from None
        if spec.rf_channels:  # the reach & frequency channels' frequency: the block's last part
            parts.append(rf_frequency[:, list(spec.rf_index)])
        return dates, media, np.concatenate(parts, axis=1)

    def predict(self, body: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """Serve ``POST /predict``: validates ``body`` (a dict or a parsed request) and forecasts.

        Returns ``dates``, ``sales_pred_mean``, ``sales_pred_hdi_low``, ``sales_pred_hdi_high``
        (one value per row), ``hdi_prob``, ``model_version`` and, on request,
        ``contributions`` ({channel: [...]}).
        """
        req = body if isinstance(body, BaseModel) else self.predict_model.model_validate_json(json.dumps(body))
        rows = [r.model_dump(by_alias=True) for r in req.new_media_spend]
        if req.set:  # a what-if: these columns take this value in every row
            try:
                frame = set_columns(pd.DataFrame(rows), req.set, self.mmm.data_config)
            except RoleError as exc:
                raise ServiceInputError(f"set: {exc}") from None
            rows = frame.to_dict(orient="records")
        dates, media, controls = self._inputs(rows)
        with self._predict_lock:
            fc = self.forecaster.forecast(dates, media, controls, req.hdi_prob, seed=req.seed)
        if not all(np.isfinite(fc[k]).all() for k in ("mean", "hdi_low", "hdi_high", "media")):
            raise ServiceInputError(
                "new_media_spend: the forecast is not finite for these values (they overflow the model's "
                "arithmetic); send spend and controls on the scale of the training data"
            )
        out: dict[str, Any] = {
            "model_version": self.model_version,
            "hdi_prob": req.hdi_prob,
            "dates": [str(d.date()) for d in dates],
            "sales_pred_mean": jsonable(fc["mean"]),
            "sales_pred_hdi_low": jsonable(fc["hdi_low"]),
            "sales_pred_hdi_high": jsonable(fc["hdi_high"]),
        }
        if req.contributions:
            out["contributions"] = {ch: jsonable(fc["media"][:, i]) for i, ch in enumerate(self.mmm.channels)}
        return out

    # -------------------------------------------------------------- optimize
    def optimize_kwargs(self, req: OptimizeRequest) -> dict[str, Any]:
        """Check ``req`` against this model; the arguments of :func:`~bayesmmm.decisions.optimizer.optimize_budget`."""
        unknown = [c for c in [*(req.bounds or {}), *req.fixed] if c not in self.mmm.channels]
        if unknown:
            raise ServiceInputError(
                f"unknown channel(s) {unknown} in bounds/fixed; this model's channels are {list(self.mmm.channels)}"
            )
        for ch, (lo, hi) in (req.bounds or {}).items():
            if not (0 <= lo <= hi):
                raise ServiceInputError(f"bounds.{ch}: need 0 <= low <= high, got [{lo}, {hi}]")
        # the largest total a plan may move: RANGE_FACTOR × the largest total spend of a period, over the horizon
        per_period = float(np.nanmax(np.asarray(self.mmm.data.channel_spend, dtype=float).sum(axis=1), initial=0.0))
        cap = RANGE_FACTOR * max(per_period, 1.0) * req.weeks
        periods = period_name(self.mmm.data.frequency, plural=True)
        too_big = [("budget", req.budget)]
        too_big += [(f"bounds.{ch}", hi) for ch, (_, hi) in (req.bounds or {}).items()]
        for field, value in too_big:
            if value is not None and value > cap:
                raise ServiceInputError(
                    f"{field}: {value:.4g} is more than {RANGE_FACTOR:g} × the largest total spend of a period of the "
                    f"training data over {req.weeks} {periods} ({cap:.4g}); the model says nothing about that range"
                )
        return {
            "budget": req.budget,
            "weeks": req.weeks,
            "max_change": req.max_change,
            "bounds": req.bounds,
            "fixed": tuple(req.fixed),
            "objective": req.objective,
            "risk": req.risk,
            "target_response": req.target_response,
            "target_roas": req.target_roas,
            "hdi_prob": req.hdi_prob,
            "max_draws": req.max_draws,
            "seed": req.seed,
        }

    def optimize(self, req: OptimizeRequest) -> dict[str, Any]:
        """Serve ``POST /optimize`` in this process (one optimization at a time; others wait)."""
        from bayesmmm.decisions.optimizer import optimize_budget

        kwargs = self.optimize_kwargs(req)
        with self._optimize_lock:
            result = optimize_budget(self.mmm, **kwargs)
        return self.optimize_answer(_plan(result))

    def optimize_answer(self, plan: dict[str, Any]) -> dict[str, Any]:
        if not plan["finite"]:
            raise ServiceInputError(
                "the optimized plan is not finite for these inputs (they overflow the model's arithmetic); "
                "send a budget on the scale of the training data"
            )
        return {"model_version": self.model_version, "allocation": plan["allocation"], "summary": plan["summary"]}

    def optimize_job(self) -> tuple[str, tuple, tuple[str, ...]] | None:
        """What an optimizer process needs to load this model: (posterior path, cache key, plugins to
        import); None if not from a file."""
        if self.posterior_path is None:
            return None
        st = self.posterior_path.stat()
        return str(self.posterior_path), (str(self.posterior_path), st.st_mtime_ns, st.st_size), self.plugins

    # ---------------------------------------------------------------- tables
    def cached_table(self, kind: Literal["roas", "contributions"], hdi_prob: float | None) -> pd.DataFrame | None:
        """The table if it is in memory (no model work), else None."""
        cache = self._roas if kind == "roas" else self._contributions
        return cache.get(self.hdi_prob if hdi_prob is None else hdi_prob)

    def roas(self, hdi_prob: float | None = None) -> pd.DataFrame:
        from bayesmmm.evaluation.summaries import roas_table

        prob = self.hdi_prob if hdi_prob is None else hdi_prob
        if prob not in self._roas:
            self._roas[prob] = roas_table(self.mmm, prob)
        return self._roas[prob]

    def contributions(self, hdi_prob: float | None = None) -> pd.DataFrame:
        from bayesmmm.evaluation.summaries import contributions_table

        prob = self.hdi_prob if hdi_prob is None else hdi_prob
        if prob not in self._contributions:
            self._contributions[prob] = contributions_table(self.mmm, prob)
        return self._contributions[prob]
