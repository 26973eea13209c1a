"""HTTP service for one fitted model: forecasts, budget optimization, ROAS, a dashboard, metrics.

``create_app(ModelService.from_target(...))`` builds a FastAPI app; ``bayesmmm serve``
runs it under uvicorn. Endpoints:

- ``GET /health`` — liveness and the model version (never needs a token);
- ``POST /predict`` — posterior-predictive forecast of future weeks (mean and HDI per row);
- ``POST /optimize`` — budget allocation (:func:`bayesmmm.decisions.optimizer.optimize_budget`);
- ``GET /roas``, ``GET /contributions`` — the fitted model's tables;
- ``GET /models``, ``GET /models/compare`` — registry versions and a candidate check
  (when serving from a registry);
- ``GET /`` — the dashboard; ``GET /docs`` — OpenAPI docs; ``GET /metrics`` — Prometheus.

Everything that does not depend on a request is computed at start-up: the compiled
posterior-predictive function (vectorized over draws), the ROAS and contribution
tables and the dashboard. Safe defaults: the CLI binds 127.0.0.1; with
``BAYESMMM_API_TOKEN`` set, every endpoint except ``/health`` needs
``Authorization: Bearer <token>``; request bodies are capped in bytes and rows;
requests are validated (unknown fields refused) and every 4xx says what to fix.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time,
# and the request model of /predict is built per model inside create_app
import datetime as dt
import hmac
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from bayesmmm.model.mmm import MMM

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "TOKEN_ENV",
    "JsonFormatter",
    "ModelService",
    "OptimizeRequest",
    "ServiceInputError",
    "configure_logging",
    "create_app",
]

TOKEN_ENV = "BAYESMMM_API_TOKEN"
MAX_BODY_BYTES = 256 * 1024  # 520 weeks of a ten-channel plan take ~120 KB of JSON
MAX_ROWS = 520  # ten years of weeks
DEFAULT_MAX_DRAWS = 1000  # forecasts: HDIs from 1000 draws are stable; more only costs latency
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PUBLIC_PATHS = frozenset({"/health"})

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


# ------------------------------------------------------------------- metrics
class Metrics:
    """Prometheus counters and a latency histogram, rendered in the text exposition format.

    Written here rather than with ``prometheus_client``: a few dozen lines, no global
    registry shared between apps (tests build several), no extra dependency.
    """

    def __init__(self, model_version: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.model_version = model_version
        self.buckets = buckets
        self.started = time.time()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._hist: dict[tuple[str, str], list[float]] = {}  # counts per bucket, then +Inf count, sum
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._hist.setdefault((method, route), [0.0] * (len(self.buckets) + 2))
            for i, le in enumerate(self.buckets):
                if seconds <= le:
                    h[i] += 1
            h[-2] += 1
            h[-1] += seconds

    def render(self) -> str:
        def esc(v: str) -> str:
            return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        lines = [
            "# HELP bayesmmm_model_info The model version being served.",
            "# TYPE bayesmmm_model_info gauge",
            f'bayesmmm_model_info{{model_version="{esc(self.model_version)}"}} 1',
            "# HELP bayesmmm_start_time_seconds Unix time the service started.",
            "# TYPE bayesmmm_start_time_seconds gauge",
            f"bayesmmm_start_time_seconds {self.started:.3f}",
            "# HELP bayesmmm_requests_in_flight Requests being handled.",
            "# TYPE bayesmmm_requests_in_flight gauge",
            f"bayesmmm_requests_in_flight {self.in_flight}",
            "# HELP bayesmmm_http_requests_total HTTP requests by method, route and status.",
            "# TYPE bayesmmm_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            hist = sorted((k, list(v)) for k, v in self._hist.items())
        for (method, route, status), n in requests:
            lines.append(
                f'bayesmmm_http_requests_total{{method="{method}",route="{esc(route)}",status="{status}"}} {n}'
            )
        lines += [
            "# HELP bayesmmm_http_request_duration_seconds Time to handle a request.",
            "# TYPE bayesmmm_http_request_duration_seconds histogram",
        ]
        for (method, route), h in hist:
            labels = f'method="{method}",route="{esc(route)}"'
            for le, count in zip(self.buckets, h, strict=False):
                lines.append(f'bayesmmm_http_request_duration_seconds_bucket{{{labels},le="{le:g}"}} {count:.0f}')
            lines.append(f'bayesmmm_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {h[-2]:.0f}')
            lines.append(f"bayesmmm_http_request_duration_seconds_sum{{{labels}}} {h[-1]:.6f}")
            lines.append(f"bayesmmm_http_request_duration_seconds_count{{{labels}}} {h[-2]:.0f}")
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------- request models
def _iso_date_string(value: Any) -> Any:
    # pydantic's lax date would also take numbers (Unix time); a week is named by its ISO date
    if not isinstance(value, str | dt.date):
        raise ValueError(f"must be an ISO date string like 2024-01-01, not {type(value).__name__}")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_string)]
Probability = Annotated[float, Field(gt=0, lt=1, strict=True, description="interval probability, in (0, 1)")]


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
    400: {"model": ErrorBody, "description": "Malformed request (e.g. a bad Content-Length)"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token (when the server requires one)"},
    404: {"model": ErrorBody, "description": "Not available on this server (no registry, dashboard off)"},
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
    422: {"model": ErrorBody, "description": "Invalid request: the message names the field and the fix"},
    500: {"model": ErrorBody, "description": "Internal error (logged with the request id)"},
}


class OptimizeRequest(BaseModel):
    """Body of ``POST /optimize``: the options of :func:`bayesmmm.decisions.optimizer.optimize_budget`."""

    model_config = ConfigDict(extra="forbid")

    budget: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="total spend over the horizon, all channels"
    )
    weeks: int = Field(ge=1, le=MAX_ROWS, strict=True, description="horizon in weeks (spend paced flat)")
    max_change: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="each channel may move ± this fraction of its current spend"
    )
    bounds: dict[str, tuple[float, float]] | None = Field(
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
    for i, ch in enumerate(mmm.channels):
        fields[f"channel_{i}"] = (
            float,
            Field(alias=ch, ge=0, strict=True, allow_inf_nan=False, description=f"spend on {ch} that week (>= 0)"),
        )
    for i, ctl in enumerate(mmm.controls):
        fields[f"control_{i}"] = (
            float,
            Field(alias=ctl, strict=True, allow_inf_nan=False, description=f"control {ctl} that week"),
        )
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
        contributions=(bool, Field(False, description="add each channel's contribution (posterior mean)")),
        seed=(int, Field(0, ge=0, strict=True, description="seed of the observation-noise draws")),
    )
    return row, body


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


class Forecaster:
    """Posterior-predictive forecasts of the weeks after the training data, for serving.

    The same computation as :meth:`MMM.predict` with ``noise=True`` followed by
    :func:`~bayesmmm.evaluation.summaries.forecast_table` (same draws, noise and HDI estimator), minus
    the xarray/pandas bookkeeping, which costs more than the arithmetic at serving sizes:
    the model's compiled mean function (vectorized over draws) is evaluated on the
    carry-over weeks of the training data followed by the new weeks, with the posterior
    draws extracted once.

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
        self.sigma = post["sigma"].to_numpy().reshape(-1, 1) * mmm.scales.target
        self.nu = post["nu"].to_numpy().reshape(-1, 1) if mmm.model_config.likelihood == "student_t" else None
        hist = mmm.data
        start = max(hist.n_dates - mmm.carryover_weeks, 0)
        self.hist = (hist.dates[start:], hist.media[start:], hist.controls[start:])

    def forecast(
        self, dates: pd.DatetimeIndex, media: np.ndarray, controls: np.ndarray, hdi_prob: float, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Mean and HDI of the target (with observation noise) and mean channel contributions per new week.

        ``dates`` must continue the training weeks (the caller checks). Returns arrays
        ``mean``, ``hdi_low``, ``hdi_high`` (date,) and ``media`` (date, channel).
        """
        h_dates, h_media, h_controls = self.hist
        comps = self.model.evaluate(
            h_dates.append(dates), np.vstack([h_media, media]), np.vstack([h_controls, controls]), draws=self.draws
        )
        n_new = len(dates)
        mu = (
            comps["intercept"]
            + comps["trend"]
            + comps["seasonality"]
            + comps["controls"].sum(-1)
            + comps["media"].sum(-1)
        )[:, -n_new:]
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal(mu.shape)  # drawn even for Student-t: the same stream as MMM.predict
        if self.nu is not None:
            eps = rng.standard_t(self.nu, size=mu.shape)
        y = mu + self.sigma * eps
        low, high = hdi_columns(y, hdi_prob)
        return {"mean": y.mean(axis=0), "hdi_low": low, "hdi_high": high, "media": comps["media"][:, -n_new:].mean(0)}


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
        # a compiled PyTensor function keeps its buffers between calls: one prediction at a time
        self._predict_lock = threading.Lock()
        self._optimize_lock = threading.BoundedSemaphore(1)
        self.row_model, self.predict_model = _request_models(mmm)
        self.forecaster = Forecaster(mmm, max_draws)
        comps = mmm.posterior_components()
        self.metrics = fit_metrics(mmm, comps)
        self._roas = {hdi_prob: roas_table(mmm, hdi_prob, comps)}
        self._contributions = {hdi_prob: contributions_table(mmm, hdi_prob, comps)}
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
    ) -> "ModelService":
        """Load a run folder, a registry version or a registry's current model (see :func:`resolve_model`)."""
        from bayesmmm.serving.model_registry import resolve_model

        posterior, label, entry = resolve_model(target, name, version)
        diagnostics = None
        diag_path = posterior.parent / "diagnostics.json"
        if diag_path.exists():
            try:
                diagnostics = json.loads(diag_path.read_text())
            except ValueError:
                diagnostics = None
        mmm = MMM.load(posterior)
        return cls(
            mmm,
            label,
            hdi_prob=hdi_prob,
            dashboard=dashboard,
            max_draws=max_draws,
            diagnostics=diagnostics,
            registry_root=entry.path.parent.parent if entry is not None else None,
            name=entry.name if entry is not None else None,
        )

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
    def optimize(self, req: OptimizeRequest) -> dict[str, Any]:
        """Serve ``POST /optimize`` (one optimization at a time; others wait)."""
        from bayesmmm.decisions.optimizer import optimize_budget

        unknown = [c for c in [*(req.bounds or {}), *req.fixed] if c not in self.mmm.channels]
        if unknown:
            raise ServiceInputError(
                f"unknown channel(s) {unknown} in bounds/fixed; this model's channels are {list(self.mmm.channels)}"
            )
        for ch, (lo, hi) in (req.bounds or {}).items():
            if not (0 <= lo <= hi):
                raise ServiceInputError(f"bounds.{ch}: need 0 <= low <= high, got [{lo}, {hi}]")
        with self._optimize_lock:
            result = optimize_budget(
                self.mmm,
                req.budget,
                req.weeks,
                max_change=req.max_change,
                bounds=req.bounds,
                fixed=tuple(req.fixed),
                objective=req.objective,
                risk=req.risk,
                target_response=req.target_response,
                target_roas=req.target_roas,
                hdi_prob=req.hdi_prob,
                max_draws=req.max_draws,
                seed=req.seed,
            )
        return {
            "model_version": self.model_version,
            "allocation": _records(result.allocation),
            "summary": _jsonable(result.summary),
        }

    # ---------------------------------------------------------------- tables
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
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


class _Gate:
    """ASGI middleware: request ids, bearer token, body-size limit, metrics and JSON access logs."""

    def __init__(self, app: Any, *, token: str | None, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.token = token or None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

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
        state: dict[str, Any] = {"status": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        self.metrics.in_flight += 1
        try:
            if (
                self.token
                and scope["path"] not in PUBLIC_PATHS
                and not _token_ok(headers.get(b"authorization"), self.token)
            ):
                await self._reply(
                    send_wrapper,
                    401,
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                    f"(the token the server was started with in {TOKEN_ENV})",
                    [(b"www-authenticate", b'Bearer realm="bayesmmm"')],
                )
                state["rejected"] = "unauthorized"
                return
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    await self._reply(send_wrapper, 400, "the Content-Length header is not a number")
                    return
                if declared > self.max_body_bytes:
                    await self._reply(send_wrapper, 413, self._too_large(declared))
                    state["rejected"] = "too_large"
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
        finally:
            self.metrics.in_flight -= 1
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", None) or state.get("rejected") or "unmatched"
            self.metrics.observe(scope["method"], route_path, state["status"], elapsed)
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
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
        hint = " (spend cannot be negative)"
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
def create_app(
    service: ModelService,
    *,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The FastAPI app serving ``service``.

    Parameters
    ----------
    service : the loaded model (see :meth:`ModelService.from_target`).
    token : bearer token required on every endpoint but ``/health``; by default the
        value of the ``BAYESMMM_API_TOKEN`` environment variable (none when unset or empty).
    max_body_bytes : largest request body accepted (413 beyond).
    """
    from fastapi.concurrency import run_in_threadpool

    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    metrics = Metrics(service.model_version)
    app = FastAPI(
        title="bayesmmm",
        version=service.model_version,
        summary="Forecasts, budget optimization and ROAS from a fitted Bayesian marketing mix model.",
        description=f"Serving model **{service.model_version}**: channels {', '.join(service.mmm.channels)}; "
        f"controls {', '.join(service.mmm.controls) or 'none'}. Forecasts start the week after "
        f"{service.mmm.data.dates[-1].date()}.",
        responses=ERROR_RESPONSES,
    )
    app.state.service = service
    app.state.metrics = metrics
    PredictRequest = service.predict_model  # a class, built per model

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

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        # ServiceInputError, DataError, OptimizationError, RegistryError: input the model cannot use
        return error(422, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": request.scope.get("state", {}).get("request_id")})
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    class Health(BaseModel):
        status: Literal["ok"]
        model_version: str

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: always open, even when a token is required elsewhere."""
        return {"status": "ok", "model_version": service.model_version}

    @app.post("/predict", tags=["model"], response_model=PredictResponse, response_model_exclude_unset=True)
    async def predict(body: PredictRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Posterior-predictive forecast of future weeks: mean and HDI of the target, one value per row.

        Rows are consecutive weeks starting the week after the training data, each with
        every channel's spend (>= 0) and every control. Adstock carries over from the
        training weeks; trend and seasonality continue.
        """
        return await run_in_threadpool(service.predict, body)

    @app.post("/optimize", tags=["model"])
    async def optimize(body: OptimizeRequest) -> dict[str, Any]:
        """Allocate a budget across channels (same options as the optimizer's Python API)."""
        return await run_in_threadpool(service.optimize, body)

    def _prob(value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise HTTPException(422, f"hdi_prob must be strictly between 0 and 1, got {value}")
        return value

    @app.get("/roas", tags=["model"])
    def roas(hdi_prob: Annotated[float | None, Query(description="interval probability")] = None) -> dict[str, Any]:
        """ROAS, contribution and share per channel over the training weeks (mean and HDI)."""
        table = service.roas(_prob(hdi_prob))
        return {
            "model_version": service.model_version,
            "hdi_prob": table.attrs.get("hdi_prob"),
            "channels": _records(table),
        }

    @app.get("/contributions", tags=["model"])
    def contributions(
        hdi_prob: Annotated[float | None, Query(description="interval probability")] = None,
        component: Annotated[str | None, Query(description="one component, e.g. a channel name or 'trend'")] = None,
    ) -> dict[str, Any]:
        """Weekly contribution of every component (channels, controls, baseline) and totals."""
        table = service.contributions(_prob(hdi_prob))
        if component is not None:
            known = list(dict.fromkeys(table["component"]))
            if component not in known:
                raise HTTPException(422, f"unknown component {component!r}; choose one of {', '.join(known)}")
            table = table[table["component"] == component]
        totals = table.groupby("component", sort=False)["mean"].sum()
        return {
            "model_version": service.model_version,
            "hdi_prob": _prob(hdi_prob) or service.hdi_prob,
            "totals": _jsonable(totals.to_dict()),
            "rows": _records(table),
        }

    if service.registry_root is not None:  # the registry routes exist only when serving from a registry
        from bayesmmm.serving.model_registry import Registry, compare_versions

        registry = Registry(service.registry_root)

        @app.get("/models", tags=["registry"])
        def models() -> dict[str, Any]:
            """Versions of the served model in its registry."""
            table = registry.table()
            table = table[table["name"] == service.name]
            return {"serving": service.model_version, "versions": _records(table)}

        @app.get("/models/compare", tags=["registry"])
        def compare(
            candidate: Annotated[str, Query(description="version to check, e.g. v3")],
            against: Annotated[str, Query(description="version to compare with")] = "current",
        ) -> dict[str, Any]:
            """Compare a candidate version with the current one (ELPD, diagnostics) before promoting it."""
            return _jsonable(
                compare_versions(registry.get(service.name, against), registry.get(service.name, candidate))
            )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests by route and status, latency histogram, model version."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    if service.dashboard_html:  # off with --no-dashboard: then GET / is a plain 404

        @app.get("/", response_class=HTMLResponse, tags=["service"])
        def dashboard() -> HTMLResponse:
            """Dashboard for stakeholders: ROAS, fit, decomposition, response curves and a budget form."""
            return HTMLResponse(service.dashboard_html)

    app.add_middleware(_Gate, token=token, max_body_bytes=max_body_bytes, metrics=metrics)
    log.info(
        "service ready",
        extra={
            "model_version": service.model_version,
            "startup_s": round(service.startup_s, 2),
            "auth": bool(token),
            "max_body_bytes": max_body_bytes,
        },
    )
    return app
