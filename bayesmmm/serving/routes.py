"""The endpoints of the service, as FastAPI routers of module-level handlers.

Each handler finds what it serves on ``request.app.state``: the ``service``
(:class:`~bayesmmm.serving.service.ModelService`), the ``runtime`` (work pools, caches,
metrics: :class:`~bayesmmm.serving.runtime.Runtime`), the bearer ``token`` and, serving
from a registry, the ``registry``. Model work runs on the runtime's pools, never on the
event loop. :func:`include_routes` adds the routers a service needs to its app.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time
import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bayesmmm.data.frequency import period_name
from bayesmmm.serving.gate import PAGE_CSP, tokens_match
from bayesmmm.serving.logs import service_log
from bayesmmm.serving.schemas import Health, OptimizeRequest, PredictResponse, StrictJSONRoute, jsonable, records
from bayesmmm.serving.service import ModelService, ServiceInputError, optimize_in_worker

__all__ = ["include_routes", "require_token"]

_bearer = HTTPBearer(auto_error=False)


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> None:
    """The bearer token, as a dependency of the protected routes.

    The gate checks every request already; this dependency puts the scheme into the OpenAPI
    spec (so that ``/docs`` can "Authorize") and checks again where it is declared.
    """
    token = request.app.state.token
    if token and (credentials is None or not tokens_match(credentials.credentials, token)):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


# ------------------------------------------------------------------ always open
public_routes = APIRouter(route_class=StrictJSONRoute)


@public_routes.get("/health", response_model=Health, tags=["service"])
async def health(request: Request) -> dict[str, Any]:
    """Liveness: always open, even when a token is required elsewhere; never waits on model work."""
    return {"status": "ok", "model_version": request.app.state.service.model_version}


@public_routes.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    from bayesmmm.serving.dashboard import static_file

    try:
        content, media_type = static_file(name)
    except KeyError:
        raise HTTPException(404, f"no static file {name!r}") from None
    return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=300"})


# ------------------------------------------------------------------ the model
async def forecast(request: Request, body: BaseModel) -> dict[str, Any]:
    """``POST /predict`` on the app's service, within the server's periods × draws limit."""
    service, runtime = request.app.state.service, request.app.state.runtime
    weeks, draws, cap = len(body.new_media_spend), service.forecaster.n_draws, runtime.limits.max_predict_cells
    if weeks * draws > cap:
        periods = period_name(service.mmm.data.frequency, plural=True)
        raise ServiceInputError(
            f"new_media_spend: {weeks} {periods} × {draws} draws = {weeks * draws} is over this server's limit of "
            f"{cap} {periods} × draws per forecast; send at most {max(cap // draws, 1)} {periods} per request"
        )
    return await runtime.predict.run(service.predict, body)


def predict_routes(request_model: type[BaseModel]) -> APIRouter:
    """The router of ``POST /predict`` for one model: its body is ``request_model`` (the model's columns)."""
    router = APIRouter(route_class=StrictJSONRoute)

    @router.post("/predict", tags=["model"], response_model=PredictResponse, response_model_exclude_unset=True)
    async def predict(request: Request, body: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        """Posterior-predictive forecast of future periods: mean and HDI of the target, one value per row.

        Rows are consecutive periods of the model's frequency (days, weeks, months) starting the period
        after the training data, each with every channel's media (>= 0: its exposure column for a
        channel with one, else its spend) and every control. Adstock carries over from the training
        periods; trend and seasonality continue.
        """
        return await forecast(request, body)

    return router


model_routes = APIRouter(route_class=StrictJSONRoute, tags=["model"])


@model_routes.post("/optimize")
async def optimize(request: Request, body: OptimizeRequest) -> dict[str, Any]:
    """Allocate a budget across channels (same options as the optimizer's Python API)."""
    service, runtime = request.app.state.service, request.app.state.runtime
    draws, cap = min(body.max_draws, service.n_draws_total), runtime.limits.max_optimize_cells
    if body.weeks * draws > cap:
        raise ServiceInputError(
            f"weeks × max_draws = {body.weeks} × {draws} = {body.weeks * draws} is over this server's limit "
            f"of {cap}; lower weeks or max_draws (e.g. max_draws {max(cap // body.weeks, 10)})"
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


async def _table(request: Request, kind: Literal["roas", "contributions"], hdi_prob: float | None) -> pd.DataFrame:
    """A table from memory, else computed on the tables pool."""
    service = request.app.state.service
    cached = service.cached_table(kind, hdi_prob)
    if cached is not None:
        return cached
    return await request.app.state.runtime.tables.run(getattr(service, kind), hdi_prob)


@model_routes.get("/roas")
async def roas(
    request: Request,
    hdi_prob: Annotated[float | None, Query(description="interval probability")] = None,
) -> dict[str, Any]:
    """ROAS, contribution, cost per KPI and share per channel over the training periods (mean and HDI);
    ``roas_unit`` says what ROAS is in (revenue, or KPI, per unit of spend)."""
    frame = await _table(request, "roas", _prob(hdi_prob))
    return {
        "model_version": request.app.state.service.model_version,
        "hdi_prob": frame.attrs.get("hdi_prob"),
        "roas_unit": frame.attrs.get("roas_unit"),
        "channels": records(frame),
    }


@model_routes.get("/contributions")
async def contributions(
    request: Request,
    hdi_prob: Annotated[float | None, Query(description="interval probability")] = None,
    component: Annotated[str | None, Query(description="one component, e.g. a channel name or 'trend'")] = None,
) -> dict[str, Any]:
    """Weekly contribution of every component (channels, controls, baseline) and totals."""
    service = request.app.state.service
    frame = await _table(request, "contributions", _prob(hdi_prob))
    if component is not None:
        known = list(dict.fromkeys(frame["component"]))
        if component not in known:
            raise HTTPException(422, f"unknown component {component!r}; choose one of {', '.join(known)}")
        frame = frame[frame["component"] == component]
    totals = frame.groupby("component", sort=False)["mean"].sum()
    return {
        "model_version": service.model_version,
        "hdi_prob": _prob(hdi_prob) or service.hdi_prob,
        "totals": jsonable(totals.to_dict()),
        "rows": records(frame),
    }


# ------------------------------------------------------------------ the registry
registry_routes = APIRouter(route_class=StrictJSONRoute, tags=["registry"])


@registry_routes.get("/models")
def models(request: Request) -> dict[str, Any]:
    """Versions of the served model in its registry (no file paths)."""
    service = request.app.state.service
    frame = request.app.state.registry.table()
    frame = frame[frame["name"] == service.name].drop(columns=["source_run"])
    return {"serving": service.model_version, "versions": records(frame)}


def _compare_cached(request: Request, candidate: str, against: str) -> dict[str, Any]:
    from bayesmmm.serving.model_registry import compare_versions

    state = request.app.state
    registry, cache = state.registry, state.runtime.compare_cache
    a, b = registry.get(state.service.name, against), registry.get(state.service.name, candidate)
    # versions are immutable (the posterior's hash is in model.json): a comparison never goes stale
    key = (a.label, a.metadata.get("posterior_sha256"), b.label, b.metadata.get("posterior_sha256"))
    hit = cache.get(key)
    if hit is None:
        hit = jsonable(compare_versions(a, b, import_plugins=False))
        cache[key] = hit
    return hit


@registry_routes.get("/models/compare")
async def compare(
    request: Request,
    candidate: Annotated[str, Query(description="version to check, e.g. v3")],
    against: Annotated[str, Query(description="version to compare with")] = "current",
) -> dict[str, Any]:
    """Compare a candidate version with the current one (ELPD, diagnostics) before promoting it."""
    return await request.app.state.runtime.tables.run(_compare_cached, request, candidate, against)


# ------------------------------------------------------------------ metrics, docs, dashboard
metrics_routes = APIRouter(route_class=StrictJSONRoute, tags=["service"])


@metrics_routes.get("/metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    """Prometheus text format: requests by route and status, latency histogram, model version, queues."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


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


docs_routes = APIRouter(route_class=StrictJSONRoute, include_in_schema=False)


@docs_routes.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    from bayesmmm.serving.dashboard import template

    page = template("docs.html").render(title=f"bayesmmm {request.app.state.service.model_version}")
    return HTMLResponse(page, headers={"content-security-policy": PAGE_CSP})


@docs_routes.get("/docs/{name}")
async def swagger_asset(name: str) -> Response:
    try:
        content, media_type = _swagger_asset(name)
    except KeyError:
        raise HTTPException(404, f"no docs asset {name!r}") from None
    return Response(content, media_type=media_type, headers={"cache-control": "public, max-age=86400"})


dashboard_routes = APIRouter(route_class=StrictJSONRoute, tags=["service"])


@dashboard_routes.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    """Dashboard for stakeholders: ROAS, fit, decomposition, response curves and a budget form."""
    return HTMLResponse(request.app.state.service.dashboard_html, headers={"content-security-policy": PAGE_CSP})


def include_routes(app: FastAPI, service: ModelService, *, token: str | None, docs: bool) -> None:
    """Add the routes serving ``service`` to ``app``; with a ``token``, all but the public ones require it.

    The registry routes exist only when serving from a registry, ``/docs`` only with
    ``docs`` (and the ``swagger-ui-bundle`` package), the dashboard only when it was rendered.
    """
    protected: list[Any] = [Security(require_token)] if token else []
    app.include_router(public_routes)
    app.include_router(predict_routes(service.predict_model), dependencies=protected)
    app.include_router(model_routes, dependencies=protected)
    if service.registry_root is not None:
        from bayesmmm.serving.model_registry import ModelRegistry

        app.state.registry = ModelRegistry(service.registry_root)
        app.include_router(registry_routes, dependencies=protected)
    app.include_router(metrics_routes, dependencies=protected)
    if docs and _swagger_available():
        app.include_router(docs_routes)
    elif docs:
        service_log.warning("swagger-ui-bundle is not installed: /docs is off (/openapi.json is served)")
    if service.dashboard_html:  # off with --no-dashboard: then GET / is a plain 404
        app.include_router(dashboard_routes, dependencies=protected)
