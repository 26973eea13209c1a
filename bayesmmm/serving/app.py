"""HTTP service for one fitted model: forecasts, budget optimization, ROAS, a dashboard, metrics.

``create_app(ModelService.from_target(...))`` builds a FastAPI app; ``bayesmmm serve``
runs it under uvicorn. Endpoints:

- ``GET /health`` — liveness and the model version (never needs a token);
- ``POST /predict`` — posterior-predictive forecast of future weeks (mean and HDI per row);
- ``POST /optimize`` — budget allocation (:func:`bayesmmm.decisions.optimizer.optimize_budget`);
- ``GET /roas``, ``GET /contributions`` — the fitted model's tables;
- ``GET /models``, ``GET /models/compare`` — registry versions and a candidate check
  (when serving from a registry);
- ``GET /`` — the dashboard; ``GET /docs`` — OpenAPI docs (Swagger UI served from the
  ``swagger-ui-bundle`` package, no CDN); ``GET /metrics`` — Prometheus.

Everything that does not depend on a request is computed at start-up: the compiled
posterior-predictive function (vectorized over draws), the ROAS and contribution
tables and the dashboard. Safe defaults: the CLI binds 127.0.0.1 and answers only to
``Host: localhost`` names (``--allowed-host``); with ``BAYESMMM_API_TOKEN`` set, every
endpoint except ``/health`` and the docs needs ``Authorization: Bearer <token>``; request
bodies are capped in bytes, rows and weeks × draws; requests are validated (unknown
fields, duplicate keys and loose types refused) and every 4xx says what to fix.

Under load: model work runs on small pools of its own (:class:`~bayesmmm.serving.middleware.WorkPool`),
so ``/health`` never waits for it; a full pool answers ``429`` with ``Retry-After`` and a
request waits at most ``request_timeout_s`` (``504``). :class:`ServingApp` serves the
registry's current version and swaps in a promoted one (file watch or ``SIGHUP``) while
requests in flight finish on the old one.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time,
# and the request model of /predict is built per model inside create_app
import datetime as dt
import functools
import hmac
import json
import logging
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from bayesmmm.model.mmm import MMM
from bayesmmm.serving.middleware import (
    API_CSP,
    PAGE_CSP,
    SECURITY_HEADERS,
    BoundedCache,
    DuplicateKeyError,
    Metrics,
    Overloaded,
    RequestTimeout,
    ServeLimits,
    WorkPool,
    check_hosts,
    check_token,
    host_allowed,
    strict_json,
)

__all__ = [
    "HOSTS_ENV",
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "TOKEN_ENV",
    "JsonFormatter",
    "Metrics",
    "ModelService",
    "OptimizeRequest",
    "ServeLimits",
    "ServiceInputError",
    "ServingApp",
    "configure_logging",
    "create_app",
]

TOKEN_ENV = "BAYESMMM_API_TOKEN"
HOSTS_ENV = "BAYESMMM_ALLOWED_HOSTS"  # comma-separated Host names the server answers to (default: localhost)
MAX_BODY_BYTES = 256 * 1024  # 520 weeks of a ten-channel plan take ~120 KB of JSON
MAX_ROWS = 520  # ten years of weeks
DEFAULT_MAX_DRAWS = 1000  # forecasts: HDIs from 1000 draws are stable; more only costs latency
# spend, budgets and controls beyond this many times the largest weekly value of the training data are
# refused (422): far outside anything the model saw, and near 1e308 the arithmetic overflows to null
RANGE_FACTOR = 1e6
# no token needed: liveness, and the docs (the page, its assets and the spec it loads) so that /docs can
# "Authorize" with the token; the spec has the request schema (channel names), never data or results
PUBLIC_PATHS = frozenset({"/health", "/docs", "/openapi.json"})
PUBLIC_PREFIXES = ("/static/", "/docs/")

log = logging.getLogger("bayesmmm.serving.app")
access_log = logging.getLogger("bayesmmm.access")


class ServiceInputError(ValueError):
    """A request that passed schema validation but cannot be served (the message says why)."""


# ------------------------------------------------------------------- logging
class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message`` and any extra fields."""

    RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
        "color_message",  # uvicorn's ANSI-coloured copy of the message
    }

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self.RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "info") -> None:
    """Send every log record (the service's, uvicorn's) to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in ("arviz", "matplotlib"):  # import-time chatter
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


# ------------------------------------------------------------- request models
def _iso_date_string(value: Any) -> Any:
    # pydantic's lax date would also take numbers (Unix time); a week is named by its ISO date
    if not isinstance(value, str | dt.date):
        raise ValueError(f"must be an ISO date string like 2024-01-01, not {type(value).__name__}")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_string)]
Probability = Annotated[float, Field(gt=0, lt=1, strict=True, description="interval probability, in (0, 1)")]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer."""

    message: str = Field(description="what is wrong and how to fix it, naming the field")
    detail: Any = Field(None, description="the message, or FastAPI-style [{loc, msg, type}] per invalid field")


class PredictResponse(BaseModel):
    """Answer of ``POST /predict``: one value per requested week (null where not finite)."""

    model_version: str
    hdi_prob: float
    dates: list[str]
    sales_pred_mean: list[float | None]
    sales_pred_hdi_low: list[float | None]
    sales_pred_hdi_high: list[float | None]
    contributions: dict[str, list[float | None]] | None = Field(
        None, description="posterior-mean contribution of each channel (with contributions: true)"
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request (a bad Content-Length, a Host this server is not)"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token (when the server requires one)"},
    404: {"model": ErrorBody, "description": "Not available on this server (no registry, dashboard off)"},
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
    422: {"model": ErrorBody, "description": "Invalid request: the message names the field and the fix"},
    429: {"model": ErrorBody, "description": "Busy: the model's work queue is full; retry after Retry-After seconds"},
    500: {"model": ErrorBody, "description": "Internal error (logged with the request id)"},
    504: {"model": ErrorBody, "description": "The model work took longer than the server's per-request timeout"},
}


class OptimizeRequest(BaseModel):
    """Body of ``POST /optimize``: the options of :func:`bayesmmm.decisions.optimizer.optimize_budget`.

    Strict types: ``"5"`` is not a number, ``"yes"`` not a boolean.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    budget: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="total spend over the horizon, all channels"
    )
    weeks: int = Field(ge=1, le=MAX_ROWS, strict=True, description="horizon in weeks (spend paced flat)")
    max_change: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="each channel may move ± this fraction of its current spend"
    )
    bounds: dict[str, tuple[FiniteFloat, FiniteFloat]] | None = Field(
        None, description="absolute {channel: [low, high]} totals over the horizon"
    )
    fixed: list[str] = Field(default_factory=list, description="channels held at their current spend")
    objective: Literal["mean", "cvar", "mean_sd"] = "mean"
    risk: float | None = Field(None, gt=0, allow_inf_nan=False, description="CVaR tail fraction or mean_sd weight")
    target_response: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_roas: float | None = Field(None, gt=0, allow_inf_nan=False)
    hdi_prob: Probability = 0.9
    max_draws: int = Field(1000, ge=10, le=4000, strict=True, description="posterior draws used")
    seed: int = Field(0, ge=0, strict=True)


def _request_models(mmm: MMM) -> tuple[type[BaseModel], type[BaseModel]]:
    """Pydantic models of one spend row and of ``POST /predict``'s body, named after the model's columns."""
    fields: dict[str, Any] = {
        "date": (IsoDate, Field(description="week start, ISO date (YYYY-MM-DD)")),
    }
    spend_cap, control_cap = _input_caps(mmm)
    for i, ch in enumerate(mmm.channels):
        fields[f"channel_{i}"] = (
            float,
            Field(
                alias=ch, ge=0, le=spend_cap, strict=True, allow_inf_nan=False,
                description=f"spend on {ch} that week (>= 0, at most {RANGE_FACTOR:g} × the largest weekly spend "
                "of the training data)",
            ),
        )  # fmt: skip
    for i, ctl in enumerate(mmm.controls):
        fields[f"control_{i}"] = (
            float,
            Field(
                alias=ctl, ge=-control_cap, le=control_cap, strict=True, allow_inf_nan=False,
                description=f"control {ctl} that week",
            ),
        )  # fmt: skip
    config = ConfigDict(extra="forbid", populate_by_name=False)
    row = create_model("SpendRow", __config__=config, **fields)
    example = _example_row(mmm)
    body = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"new_media_spend": [example]}]}),
        new_media_spend=(
            list[row],
            Field(min_length=1, max_length=MAX_ROWS, description="future weeks, in date order, one row per week"),
        ),
        hdi_prob=(Probability, 0.9),
        contributions=(
            bool,
            Field(False, strict=True, description="add each channel's contribution (posterior mean); true or false"),
        ),
        seed=(int, Field(0, ge=0, strict=True, description="seed of the observation-noise draws")),
    )
    return row, body


def _input_caps(mmm: MMM) -> tuple[float, float]:
    """Largest spend and largest absolute control value a request may send (:data:`RANGE_FACTOR`)."""
    media = np.asarray(mmm.data.media, dtype=float)
    controls = np.asarray(mmm.data.controls, dtype=float)
    spend = float(np.nanmax(media)) if media.size else 0.0
    control = float(np.nanmax(np.abs(controls))) if controls.size else 0.0
    return RANGE_FACTOR * max(spend, 1.0), RANGE_FACTOR * max(control, 1.0)


def _example_row(mmm: MMM) -> dict[str, Any]:
    """The week after the training data, with the last training week's spend and controls."""
    data = mmm.data
    row: dict[str, Any] = {"date": str((data.dates[-1] + pd.Timedelta(days=7)).date())}
    row.update({ch: round(float(v), 2) for ch, v in zip(mmm.channels, data.media[-1], strict=True)})
    row.update({c: float(v) for c, v in zip(mmm.controls, data.controls[-1], strict=True)})
    return row


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, pd.Timestamp | dt.date):
        return obj.isoformat()
    return obj


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return _jsonable(frame.to_dict(orient="records"))


# -------------------------------------------------------------------- service
def thinned(mmm: MMM, max_draws: int | None) -> MMM:
    """A view of ``mmm`` whose posterior keeps at most ``max_draws`` draws (every k-th of each chain).

    Shares the configuration, data and compiled mean function; only the posterior group
    is kept, which is all that :meth:`MMM.predict` reads. Returns ``mmm`` itself when it
    has no more draws than that.
    """
    import copy

    from xarray import DataTree

    post = mmm.idata["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if max_draws is None or n <= max_draws:
        return mmm
    if max_draws < post.sizes["chain"]:
        raise ValueError(f"max_draws must be at least the number of chains ({post.sizes['chain']}), got {max_draws}")
    step = math.ceil(n / max_draws)
    light = copy.copy(mmm)
    light.__dict__.pop("_components", None)
    light.idata = DataTree.from_dict({"posterior": post.isel(draw=slice(None, None, step))})
    light.idata.attrs.update(mmm.idata.attrs)
    return light


def hdi_columns(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """HDI of each column of ``draws`` (samples, k): ArviZ's "nearest" estimator, vectorized."""
    s = np.sort(draws, axis=0)
    n = s.shape[0]
    inc = min(int(np.floor(prob * n)), n - 1)
    idx = np.argmin(s[inc:] - s[: n - inc], axis=0)
    cols = np.arange(s.shape[1])
    return s[idx, cols], s[idx + inc, cols]


def _plan(result: Any) -> dict[str, Any]:
    """An optimizer result as plain JSON-able values (what crosses the process boundary)."""
    numbers = result.allocation.select_dtypes("number").to_numpy(dtype=float)
    return {
        "allocation": _records(result.allocation),
        "summary": _jsonable(result.summary),
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
    """Posterior-predictive forecasts of the weeks after the training data, for serving.

    A thin caller of the predictive core (:meth:`~bayesmmm.model.predictive.Predictive.predict_draws`,
    the computation behind :meth:`MMM.predict` with ``noise=True``) with the posterior draws
    extracted once and no xarray/pandas bookkeeping, which costs more than the arithmetic at
    serving sizes; the HDI estimator is :func:`~bayesmmm.evaluation.summaries.forecast_table`'s.

    Parameters
    ----------
    mmm : a fitted model.
    max_draws : use at most this many draws (see :func:`thinned`).
    """

    def __init__(self, mmm: MMM, max_draws: int | None = DEFAULT_MAX_DRAWS) -> None:
        self.model = thinned(mmm, max_draws)
        self.draws = self.model.posterior_draws()
        post = self.model.idata["posterior"]
        self.n_draws = int(post.sizes["chain"] * post.sizes["draw"])

    def forecast(
        self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray, hdi_prob: float, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Mean and HDI of the target (with observation noise) and mean channel contributions per new week.

        ``dates`` must continue the training weeks (checked). Returns arrays ``mean``,
        ``hdi_low``, ``hdi_high`` (date,) and ``media`` (date, channel).
        """
        out = self.model.predictive.predict_draws(dates, media, controls, noise=True, seed=seed, draws=self.draws)
        y = out["y"]
        low, high = hdi_columns(y, hdi_prob)
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
        self.row_model, self.predict_model = _request_models(mmm)
        self.forecaster = Forecaster(mmm, max_draws)
        comps = mmm.posterior_components()
        self.metrics = fit_metrics(mmm, comps)
        post = mmm.idata["posterior"]
        self.n_draws_total = int(post.sizes["chain"] * post.sizes["draw"])
        self.spend_cap, self.control_cap = _input_caps(mmm)
        # bounded: each other hdi_prob adds a table (a client could ask for thousands)
        self._roas = BoundedCache(table_cache, pinned=[hdi_prob])
        self._contributions = BoundedCache(table_cache, pinned=[hdi_prob])
        self._roas[hdi_prob] = roas_table(mmm, hdi_prob, comps)
        self._contributions[hdi_prob] = contributions_table(mmm, hdi_prob, comps)
        self.example = {"new_media_spend": [_example_row(mmm)], "hdi_prob": hdi_prob}
        self.predict(self.example)  # compiles the predictive function now, not on the first request
        self.figures: dict[str, str] = {}
        self.dashboard_html = ""
        if dashboard:
            from bayesmmm.serving.dashboard import dashboard_figures, render_dashboard

            self.figures = dashboard_figures(mmm, hdi_prob, comps, curves_model=self.forecaster.model)
            self.dashboard_html = render_dashboard(
                mmm, model_version, self._roas[hdi_prob], self.metrics, self.figures, diagnostics
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
    ) -> "ModelService":
        """Load a run folder, a registry version or a registry's current model (see :func:`resolve_model`).

        The service imports no code from a model folder: the plugins a model needs must be
        registered already (``plugins``, imported here: ``serve --plugin``; or an installed
        package's entry point), else :class:`~bayesmmm.components.plugins.PluginError` says so.
        """
        from bayesmmm.components.plugins import load_plugins
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
        )
        service.plugins = plugins
        return service

    # --------------------------------------------------------------- predict
    def _inputs(self, rows: list[dict[str, Any]]) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Validated rows → dates, spend and controls; the dates must continue the training weeks."""
        dates = pd.DatetimeIndex([r["date"] for r in rows])
        last = self.mmm.data.dates[-1]
        expected = last + pd.Timedelta(days=7)
        if dates[0] != expected:
            raise ServiceInputError(
                f"new_media_spend[0].date: forecasts continue the training data, which ends on {last.date()}; "
                f"the first row must be dated {expected.date()}, got {dates[0].date()}"
            )
        steps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
        if (steps != 7).any():
            i = int(np.flatnonzero(steps != 7)[0]) + 1
            raise ServiceInputError(
                f"new_media_spend[{i}].date: rows must be consecutive weeks in order; {dates[i].date()} "
                f"follows {dates[i - 1].date()} (expected {(dates[i - 1] + pd.Timedelta(days=7)).date()})"
            )
        media = np.array([[r[c] for c in self.mmm.channels] for r in rows], dtype=float)
        controls = np.array([[r[c] for c in self.mmm.controls] for r in rows], dtype=float).reshape(len(rows), -1)
        return dates, media, controls

    def predict(self, body: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """Serve ``POST /predict``: validates ``body`` (a dict or a parsed request) and forecasts.

        Returns ``dates``, ``sales_pred_mean``, ``sales_pred_hdi_low``, ``sales_pred_hdi_high``
        (one value per row), ``hdi_prob``, ``model_version`` and, on request,
        ``contributions`` ({channel: [...]}).
        """
        req = body if isinstance(body, BaseModel) else self.predict_model.model_validate_json(json.dumps(body))
        rows = [r.model_dump(by_alias=True) for r in req.new_media_spend]
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
            "sales_pred_mean": _jsonable(fc["mean"]),
            "sales_pred_hdi_low": _jsonable(fc["hdi_low"]),
            "sales_pred_hdi_high": _jsonable(fc["hdi_high"]),
        }
        if req.contributions:
            out["contributions"] = {ch: _jsonable(fc["media"][:, i]) for i, ch in enumerate(self.mmm.channels)}
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
        # the largest total a plan may move: RANGE_FACTOR × the largest weekly total spend, over the horizon
        weekly = float(np.nanmax(np.asarray(self.mmm.data.media, dtype=float).sum(axis=1), initial=0.0))
        cap = RANGE_FACTOR * max(weekly, 1.0) * req.weeks
        too_big = [("budget", req.budget)]
        too_big += [(f"bounds.{ch}", hi) for ch, (_, hi) in (req.bounds or {}).items()]
        for field, value in too_big:
            if value is not None and value > cap:
                raise ServiceInputError(
                    f"{field}: {value:.4g} is more than {RANGE_FACTOR:g} × the largest weekly total spend of the "
                    f"training data over {req.weeks} weeks ({cap:.4g}); the model says nothing about that range"
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


# ---------------------------------------------------------------- middleware
def _token_ok(header: bytes | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode("latin-1"), token.encode())


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


_API_CSP = API_CSP.encode()


class _Gate:
    """ASGI middleware, outermost: request ids, security headers, Host check, bearer token, body-size limit,
    metrics, JSON access logs, and the 500 answer of any unhandled error (with its request id)."""

    def __init__(
        self, app: Any, *, token: str | None, max_body_bytes: int, metrics: Metrics, allowed_hosts: tuple[str, ...]
    ) -> None:
        self.app = app
        self.token = token or None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.allowed_hosts = allowed_hosts

    async def _reply(self, send: Callable, status: int, message: str, headers: list | None = None) -> None:
        body = json.dumps({"detail": message, "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                + (headers or []),
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        state: dict[str, Any] = {"status": 500, "started": False}
        extra_headers = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = [*message.get("headers", []), *extra_headers]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", _API_CSP))  # pages set their own
                message = {**message, "headers": headers}
            await send(message)

        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        self.metrics.in_flight.inc()
        try:
            # /health is exempt: a probe may name the pod's IP; it tells nothing but the model version
            if path != "/health" and not host_allowed(headers.get(b"host"), self.allowed_hosts):
                state["rejected"] = "bad_host"
                shown = headers.get(b"host", b"").decode("latin-1")[:100]
                await self._reply(
                    send_wrapper,
                    400,
                    f"the Host header {shown!r} is not a name this server answers to; add it with --allowed-host "
                    f"(or {HOSTS_ENV}) if this server is meant to be reached by that name",
                )
                return
            if self.token and not _public(path) and not _token_ok(headers.get(b"authorization"), self.token):
                state["rejected"] = "unauthorized"
                await self._reply(
                    send_wrapper,
                    401,
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                    f"(the token the server was started with in {TOKEN_ENV})",
                    [(b"www-authenticate", b'Bearer realm="bayesmmm"')],
                )
                return
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    state["rejected"] = "bad_request"
                    await self._reply(send_wrapper, 400, "the Content-Length header is not a number")
                    return
                if declared > self.max_body_bytes:
                    state["rejected"] = "too_large"
                    await self._reply(send_wrapper, 413, self._too_large(declared))
                    return
            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:  # a chunked or lying body
                        raise HTTPException(413, self._too_large(received))
                return message

            await self.app(scope, limited_receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "path": path})
            if state["started"]:
                raise
            # never the exception's text: it may name files, arrays or internals
            await self._reply(
                send_wrapper, 500, f"internal error (request id {request_id}); the server log has the details"
            )
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = state.get("rejected") or getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route_path, state["status"], elapsed)
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"][:16],
                    "path": path[:200],
                    "route": route_path,
                    "status": state["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )

    def _too_large(self, size: int) -> str:
        return (
            f"request body too large: {size} bytes > the limit of {self.max_body_bytes} bytes; "
            f"send fewer rows (at most {MAX_ROWS} weeks per request)"
        )


class _StrictJSONRoute(APIRoute):
    """A route whose JSON body may not repeat a key or hold NaN/Infinity (plain ``json`` takes the last
    value of a repeated key silently)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Any:
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()  # cached: FastAPI reads the same bytes next
                if body:
                    try:
                        strict_json(body)
                    except DuplicateKeyError as exc:
                        raise RequestValidationError(
                            [{"type": "duplicate_key", "loc": ("body",), "msg": str(exc), "input": None}]
                        ) from None
                    except ValueError as exc:
                        if "is not JSON" in str(exc):
                            raise RequestValidationError(
                                [
                                    {
                                        "type": "json_invalid",
                                        "loc": ("body",),
                                        "msg": str(exc),
                                        "ctx": {"error": str(exc)},
                                    }
                                ]
                            ) from None
                        # other malformed JSON: FastAPI's own message
            return await handler(request)

        return strict_handler


class Runtime:
    """What outlives one app: metrics, the work pools and the comparison cache (shared across reloads)."""

    def __init__(self, model_version: str, limits: ServeLimits | None = None) -> None:
        self.limits = limits or ServeLimits()
        lim = self.limits
        self.metrics = Metrics(model_version)
        self.predict = WorkPool("predict", lim.predict_workers, lim.predict_queue, lim.request_timeout_s)
        # no per-thread nice for the long work: a niced thread descheduled while it holds the GIL stalls the
        # forecasts and the event loop too (measured: /predict p50 333 ms niced vs 204 ms not, same load)
        self.optimize = WorkPool(
            "optimize", lim.optimize_workers, lim.optimize_queue, lim.request_timeout_s,
            processes=lim.optimize_processes,
        )  # fmt: skip
        self.tables = WorkPool("tables", 1, lim.tables_queue, lim.request_timeout_s)
        self.metrics.track_pools([self.predict, self.optimize, self.tables])
        self.compare_cache = BoundedCache(lim.compare_cache)

    def shutdown(self) -> None:
        for pool in (self.predict, self.optimize, self.tables):
            pool.shutdown()

    def warm(self, service: ModelService) -> None:
        """Start the optimizer process and load ``service``'s model there now, not on the first /optimize."""
        job = service.optimize_job()
        if self.optimize.processes and job is not None:
            self.optimize.submit_background(optimize_in_worker, job[0], job[1], None, job[2])


@functools.cache
def _swagger_asset(name: str) -> tuple[bytes, str]:
    from swagger_ui_bundle import swagger_ui_path

    media = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}
    return (Path(swagger_ui_path) / name).read_bytes(), media[name]


def _swagger_available() -> bool:
    try:
        _swagger_asset("swagger-ui-bundle.js")
    except (ImportError, OSError):
        return False
    return True


# ------------------------------------------------------------------- errors
def _loc(loc: tuple | list) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _describe(err: dict[str, Any], service: ModelService) -> str:
    where = _loc(err.get("loc", ()))
    kind = err.get("type", "")
    msg = err.get("msg", "invalid")
    columns = ["date", *service.mmm.channels, *service.mmm.controls]
    if where == "body" and kind in ("missing", "json_invalid", "model_attributes_type", "dict_type"):
        if kind == "missing":
            return 'the request body is empty: send a JSON object like {"new_media_spend": [{...}], "hdi_prob": 0.9}'
        if kind == "json_invalid":
            return f"the request body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
        return "the request body must be a JSON object"
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
    hint = ""
    if kind == "missing" and where.startswith("new_media_spend["):
        hint = f"; every row needs {', '.join(columns)}"
    elif kind == "extra_forbidden" and where.startswith("new_media_spend["):
        hint = f"; this model's columns are {', '.join(columns)}"
    elif kind == "extra_forbidden":
        hint = "; remove it (see /docs for the fields)"
    elif kind in ("greater_than_equal", "greater_than") and where.startswith("new_media_spend["):
        hint = " (spend cannot be negative)" if where.split(".")[-1] in service.mmm.channels else ""
        if hint == "":
            hint = f" (more than {RANGE_FACTOR:g} × the largest absolute value in the training data)"
    elif kind in ("less_than_equal", "less_than") and where.startswith("new_media_spend["):
        hint = f" (more than {RANGE_FACTOR:g} × the largest value in the training data: outside the model's range)"
    elif kind.startswith("date"):
        hint = " (use ISO dates like 2024-01-01)"
    elif kind in ("too_short", "too_long") and where == "new_media_spend":
        hint = f" (send 1 to {MAX_ROWS} weeks)"
    elif where == "hdi_prob":
        hint = " (hdi_prob must be a number strictly between 0 and 1, e.g. 0.9)"
    got = ""
    if "input" in err and kind not in ("missing",) and not isinstance(err["input"], dict | list):
        got = f", got {json.dumps(err['input'], default=str)}"
    return f"{where}: {msg}{got}{hint}"


# ----------------------------------------------------------------------- app
def _input_error_types() -> tuple[type[Exception], ...]:
    """Errors that mean 'this request cannot be served' (422 with their message); any other error is a 500."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.data.loading import DataError
    from bayesmmm.decisions.optimizer import OptimizationError
    from bayesmmm.serving.model_registry import RegistryError

    return (ServiceInputError, OptimizationError, DataError, RegistryError, ConfigError)


def create_app(
    service: ModelService,
    *,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    allowed_hosts: list[str] | tuple[str, ...] | None = None,
    limits: ServeLimits | None = None,
    docs: bool = True,
    runtime: Runtime | None = None,
) -> FastAPI:
    """The FastAPI app serving ``service``.

    Parameters
    ----------
    service : the loaded model (see :meth:`ModelService.from_target`).
    token : bearer token required on every endpoint but ``/health`` and the docs; by default
        the value of the ``BAYESMMM_API_TOKEN`` environment variable (none when unset or
        empty). A token no client could send (blank, padded, non-ASCII) raises ValueError.
    max_body_bytes : largest request body accepted (413 beyond).
    allowed_hosts : ``Host`` names answered (port ignored; ``*.example.com``, ``*`` for any);
        default ``$BAYESMMM_ALLOWED_HOSTS`` (comma-separated) or localhost only.
    limits : work pools, timeouts and caps (:class:`ServeLimits`).
    docs : serve Swagger UI at ``/docs`` (``/openapi.json`` is always served).
    runtime : metrics and pools shared with a previous app (:class:`ServingApp` reloads).
    """
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    token = check_token(token, TOKEN_ENV)
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a whole number of bytes >= 1, got {max_body_bytes!r}")
    if allowed_hosts is None and os.environ.get(HOSTS_ENV):
        allowed_hosts = [h for h in os.environ[HOSTS_ENV].split(",") if h.strip()]
    hosts = check_hosts(allowed_hosts)
    runtime = runtime or Runtime(service.model_version, limits)
    limits = runtime.limits
    metrics = runtime.metrics
    input_errors = _input_error_types()
    app = FastAPI(
        title="bayesmmm",
        version=service.model_version,
        summary="Forecasts, budget optimization and ROAS from a fitted Bayesian marketing mix model.",
        description=f"Serving model **{service.model_version}**: channels {', '.join(service.mmm.channels)}; "
        f"controls {', '.join(service.mmm.controls) or 'none'}. Forecasts start the week after "
        f"{service.mmm.data.dates[-1].date()}.",
        responses=ERROR_RESPONSES,
        docs_url=None,  # our own /docs below: local assets, no inline script
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.router.route_class = _StrictJSONRoute
    app.state.service = service
    app.state.metrics = metrics
    app.state.runtime = runtime
    PredictRequest = service.predict_model  # a class, built per model

    bearer = HTTPBearer(auto_error=False)

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        # the gate checks every request already; this dependency puts the scheme into the OpenAPI spec
        # (so /docs can "Authorize") and checks again where it is declared
        if token and (
            credentials is None or not hmac.compare_digest(credentials.credentials.encode("latin-1"), token.encode())
        ):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    protected = [Security(require_token)] if token else []

    def error(status: int, message: str, details: Any = None) -> JSONResponse:
        content: dict[str, Any] = {"detail": details if details is not None else message, "message": message}
        return JSONResponse(status_code=status, content=_jsonable(content))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        messages = list(dict.fromkeys(_describe(e, service) for e in errors))
        shown = "; ".join(messages[:5]) + (f"; and {len(messages) - 5} more" if len(messages) > 5 else "")
        details = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors[:50]]
        return error(422, shown, details)

    @app.exception_handler(StarletteHTTPException)  # also FastAPI's subclass and Starlette's own (e.g. bad JSON)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        response = error(exc.status_code, message)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    async def _input(request: Request, exc: Exception) -> JSONResponse:
        # input the model cannot use: the message says what to change. Any other ValueError is a bug: the
        # gate answers 500 with the request id, never the raw text
        return error(422, str(exc))

    for kind in input_errors:
        app.add_exception_handler(kind, _input)

    @app.exception_handler(Overloaded)
    async def _busy(request: Request, exc: Overloaded) -> JSONResponse:
        metrics.rejected.labels(exc.pool, "busy").inc()
        response = error(429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestTimeout)
    async def _timeout(request: Request, exc: RequestTimeout) -> JSONResponse:
        metrics.rejected.labels(exc.pool, "timeout").inc()
        return error(504, str(exc))

    class Health(BaseModel):
        status: Literal["ok"]
        model_version: str

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness: always open, even when a token is required elsewhere; never waits on model work."""
        return {"status": "ok", "model_version": service.model_version}

    @app.post(
        "/predict",
        tags=["model"],
        response_model=PredictResponse,
        response_model_exclude_unset=True,
        dependencies=protected,
    )
    async def predict(body: PredictRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Posterior-predictive forecast of future weeks: mean and HDI of the target, one value per row.

        Rows are consecutive weeks starting the week after the training data, each with
        every channel's spend (>= 0) and every control. Adstock carries over from the
        training weeks; trend and seasonality continue.
        """
        weeks, draws = len(body.new_media_spend), service.forecaster.n_draws
        if weeks * draws > limits.max_predict_cells:
            raise ServiceInputError(
                f"new_media_spend: {weeks} weeks × {draws} draws = {weeks * draws} is over this server's limit of "
                f"{limits.max_predict_cells} weeks × draws per forecast; send at most "
                f"{max(limits.max_predict_cells // draws, 1)} weeks per request"
            )
        return await runtime.predict.run(service.predict, body)

    @app.post("/optimize", tags=["model"], dependencies=protected)
    async def optimize(body: OptimizeRequest) -> dict[str, Any]:
        """Allocate a budget across channels (same options as the optimizer's Python API)."""
        draws = min(body.max_draws, service.n_draws_total)
        if body.weeks * draws > limits.max_optimize_cells:
            raise ServiceInputError(
                f"weeks × max_draws = {body.weeks} × {draws} = {body.weeks * draws} is over this server's limit "
                f"of {limits.max_optimize_cells}; lower weeks or max_draws (e.g. max_draws "
                f"{max(limits.max_optimize_cells // body.weeks, 10)})"
            )
        job = service.optimize_job()
        if runtime.optimize.processes and job is not None:  # in the optimizer process: not on this GIL
            kwargs = service.optimize_kwargs(body)
            answer = await runtime.optimize.run(optimize_in_worker, job[0], job[1], kwargs, job[2])
            return service.optimize_answer(answer)
        return await runtime.optimize.run(service.optimize, body, local=True)

    def _prob(value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise HTTPException(422, f"hdi_prob must be strictly between 0 and 1, got {value}")
        return value

    async def table(kind: Literal["roas", "contributions"], hdi_prob: float | None) -> pd.DataFrame:
        cached = service.cached_table(kind, hdi_prob)
        if cached is not None:
            return cached
        return await runtime.tables.run(getattr(service, kind), hdi_prob)

    @app.get("/roas", tags=["model"], dependencies=protected)
    async def roas(
        hdi_prob: Annotated[float | None, Query(description="interval probability")] = None,
    ) -> dict[str, Any]:
        """ROAS, contribution and share per channel over the training weeks (mean and HDI)."""
        frame = await table("roas", _prob(hdi_prob))
        return {
            "model_version": service.model_version,
            "hdi_prob": frame.attrs.get("hdi_prob"),
            "channels": _records(frame),
        }

    @app.get("/contributions", tags=["model"], dependencies=protected)
    async def contributions(
        hdi_prob: Annotated[float | None, Query(description="interval probability")] = None,
        component: Annotated[str | None, Query(description="one component, e.g. a channel name or 'trend'")] = None,
    ) -> dict[str, Any]:
        """Weekly contribution of every component (channels, controls, baseline) and totals."""
        frame = await table("contributions", _prob(hdi_prob))
        if component is not None:
            known = list(dict.fromkeys(frame["component"]))
            if component not in known:
                raise HTTPException(422, f"unknown component {component!r}; choose one of {', '.join(known)}")
            frame = frame[frame["component"] == component]
        totals = frame.groupby("component", sort=False)["mean"].sum()
        return {
            "model_version": service.model_version,
            "hdi_prob": _prob(hdi_prob) or service.hdi_prob,
            "totals": _jsonable(totals.to_dict()),
            "rows": _records(frame),
        }

    if service.registry_root is not None:  # the registry routes exist only when serving from a registry
        from bayesmmm.serving import model_registry as registry_module

        registry = registry_module.ModelRegistry(service.registry_root)

        @app.get("/models", tags=["registry"], dependencies=protected)
        def models() -> dict[str, Any]:
            """Versions of the served model in its registry (no file paths)."""
            frame = registry.table()
            frame = frame[frame["name"] == service.name].drop(columns=["source_run"])
            return {"serving": service.model_version, "versions": _records(frame)}

        def compare_cached(candidate: str, against: str) -> dict[str, Any]:
            a, b = registry.get(service.name, against), registry.get(service.name, candidate)
            # versions are immutable (the posterior's hash is in model.json): a comparison never goes stale
            key = (a.label, a.metadata.get("posterior_sha256"), b.label, b.metadata.get("posterior_sha256"))
            hit = runtime.compare_cache.get(key)
            if hit is None:
                hit = _jsonable(registry_module.compare_versions(a, b, import_plugins=False))
                runtime.compare_cache[key] = hit
            return hit

        @app.get("/models/compare", tags=["registry"], dependencies=protected)
        async def compare(
            candidate: Annotated[str, Query(description="version to check, e.g. v3")],
            against: Annotated[str, Query(description="version to compare with")] = "current",
        ) -> dict[str, Any]:
            """Compare a candidate version with the current one (ELPD, diagnostics) before promoting it."""
            return await runtime.tables.run(compare_cached, candidate, against)

    @app.get("/metrics", tags=["service"], dependencies=protected, response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format: requests by route and status, latency histogram, model version, queues."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        from bayesmmm.serving.dashboard import static_file

        try:
            content, media_type = static_file(name)
        except KeyError:
            raise HTTPException(404, f"no static file {name!r}") from None
        return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=300"})

    if docs and _swagger_available():

        @app.get("/docs", include_in_schema=False)
        async def swagger() -> HTMLResponse:
            from bayesmmm.serving.dashboard import template

            page = template("docs.html").render(title=f"bayesmmm {service.model_version}")
            return HTMLResponse(page, headers={"content-security-policy": PAGE_CSP})

        @app.get("/docs/{name}", include_in_schema=False)
        async def swagger_asset(name: str) -> Response:
            try:
                content, media_type = _swagger_asset(name)
            except KeyError:
                raise HTTPException(404, f"no docs asset {name!r}") from None
            return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=86400"})

    elif docs:
        log.warning("swagger-ui-bundle is not installed: /docs is off (/openapi.json is served)")

    if service.dashboard_html:  # off with --no-dashboard: then GET / is a plain 404

        @app.get("/", response_class=HTMLResponse, tags=["service"], dependencies=protected)
        async def dashboard() -> HTMLResponse:
            """Dashboard for stakeholders: ROAS, fit, decomposition, response curves and a budget form."""
            return HTMLResponse(service.dashboard_html, headers={"content-security-policy": PAGE_CSP})

    app.add_middleware(_Gate, token=token, max_body_bytes=max_body_bytes, metrics=metrics, allowed_hosts=hosts)
    log.info(
        "service ready",
        extra={
            "model_version": service.model_version,
            "startup_s": round(service.startup_s, 2),
            "auth": bool(token),
            "max_body_bytes": max_body_bytes,
            "allowed_hosts": list(hosts),
        },
    )
    return app


# ----------------------------------------------------------------- reloads
class ServingApp:
    """The ASGI app ``bayesmmm serve`` runs: one model's app, swapped for a new one on reload.

    When serving a registry's ``current`` (or ``latest``) version, a watcher thread checks
    every ``watch_interval`` seconds which version that is and, when it changed (a
    ``promote``), loads the new one aside (start-up work included) and swaps the app; a
    request is served by the app that was current when it arrived, so none is dropped.
    ``SIGHUP`` (see :meth:`install_sighup`) reloads at once, also for a run folder.
    Metrics and work pools are shared by every app (:class:`Runtime`).
    """

    def __init__(
        self,
        load: Callable[[], ModelService],
        *,
        watch_version: Callable[[], str] | None = None,
        watch_interval: float = 2.0,
        limits: ServeLimits | None = None,
        **app_kwargs: Any,
    ) -> None:
        self._load = load
        self._watch_version = watch_version
        self.watch_interval = watch_interval
        self._app_kwargs = app_kwargs
        self.service = load()
        self.runtime = Runtime(self.service.model_version, limits)
        self.app = create_app(self.service, runtime=self.runtime, **app_kwargs)
        self.runtime.warm(self.service)
        self._reload_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        watch_interval: float = 2.0,
        limits: ServeLimits | None = None,
        plugins: tuple[str, ...] = (),
        **app_kwargs: Any,
    ) -> "ServingApp":
        """Serve ``target`` like :meth:`ModelService.from_target`; watch the registry for ``current``/``latest``."""
        table_cache = (limits or ServeLimits()).table_cache

        def load() -> ModelService:
            return ModelService.from_target(
                target, name=name, version=version, hdi_prob=hdi_prob, dashboard=dashboard, max_draws=max_draws,
                table_cache=table_cache, plugins=plugins,
            )  # fmt: skip

        first = load()
        watch = None
        if first.registry_root is not None and version in ("current", "latest") and watch_interval:
            from bayesmmm.serving.model_registry import ModelRegistry

            registry, model_name = ModelRegistry(first.registry_root), first.name

            def watch() -> str:
                return registry.get(model_name, version).label

        loads = iter([first])
        return cls(
            lambda: next(loads, None) or load(),
            watch_version=watch,
            watch_interval=watch_interval or 3600.0,  # 0: no registry checks, the thread waits for SIGHUP
            limits=limits,
            **app_kwargs,
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await self.app(scope, receive, send)  # the app current when the request arrived serves all of it

    @property
    def model_version(self) -> str:
        return self.service.model_version

    def reload(self, force: bool = False) -> bool:
        """Load the target again and swap it in if its version changed (or ``force``); True if swapped.

        A failed load is logged and the current version keeps serving.
        """
        with self._reload_lock:
            try:
                if not force and self._watch_version is not None and self._watch_version() == self.model_version:
                    return False
                t0 = time.perf_counter()
                service = self._load()
                app = create_app(service, runtime=self.runtime, **self._app_kwargs)
                self.runtime.warm(service)
            except Exception:
                self.runtime.metrics.reloads.labels("failed").inc()
                log.exception(
                    "reload failed; still serving the loaded version", extra={"model_version": self.model_version}
                )
                return False
            previous = self.model_version
            self.app, self.service = app, service  # requests in flight finish on the previous app
            self.runtime.metrics.set_model(service.model_version)
            self.runtime.metrics.reloads.labels("ok").inc()
            log.info(
                "model reloaded",
                extra={
                    "previous": previous,
                    "model_version": service.model_version,
                    "load_s": round(time.perf_counter() - t0, 2),
                },
            )
            return True

    def _watch(self) -> None:
        while not self._stop.is_set():
            signalled = self._wake.wait(self.watch_interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                if signalled:
                    self.reload(force=True)
                elif self._watch_version is not None and self._watch_version() != self.model_version:
                    self.reload()
            except Exception:  # a registry mid-write, a vanished folder: try again next time
                log.exception("checking the registry for a new version failed")

    def start_watching(self) -> None:
        """Start the watcher thread (registry changes and SIGHUP requests)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="bayesmmm-reload", daemon=True)
            self._thread.start()

    def stop_watching(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def close(self) -> None:
        """Stop the watcher and the work pools (the optimizer process included)."""
        self.stop_watching()
        self.runtime.shutdown()

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now (what SIGHUP does)."""
        self._wake.set()

    def install_sighup(self) -> Any:
        """Reload on ``SIGHUP`` (main thread only); returns the previous handler."""
        return signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload())
