"""The application factory: :func:`create_app` composes the FastAPI app serving one loaded model.

The pieces: the routes (:mod:`~bayesmmm.serving.routes`), the error answers
(:mod:`~bayesmmm.serving.errors`), the gate every request passes first
(:mod:`~bayesmmm.serving.gate`) and the runtime shared across reloads
(:mod:`~bayesmmm.serving.runtime`).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from bayesmmm.data.frequency import period_name
from bayesmmm.serving.errors import add_error_handlers
from bayesmmm.serving.gate import HOSTS_ENV, MAX_BODY_BYTES, TOKEN_ENV, Gate, check_hosts, check_token
from bayesmmm.serving.logs import service_log
from bayesmmm.serving.pools import ServeLimits
from bayesmmm.serving.routes import include_routes
from bayesmmm.serving.runtime import Runtime
from bayesmmm.serving.schemas import ERROR_RESPONSES
from bayesmmm.serving.service import ModelService

__all__ = ["create_app"]


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
    app = FastAPI(
        title="bayesmmm",
        version=service.model_version,
        summary="Forecasts, budget optimization and ROAS from a fitted Bayesian marketing mix model.",
        description=f"Serving model **{service.model_version}**: channels {', '.join(service.mmm.channels)}; "
        f"controls {', '.join(service.mmm.controls) or 'none'}. Forecasts start the "
        f"{period_name(service.mmm.data.frequency)} after {service.mmm.data.dates[-1].date()}.",
        responses=ERROR_RESPONSES,
        docs_url=None,  # our own /docs (routes.docs_routes): local assets, no inline script
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.service = service
    app.state.runtime = runtime
    app.state.metrics = runtime.metrics
    app.state.token = token
    add_error_handlers(app)
    include_routes(app, service, token=token, docs=docs)
    app.add_middleware(Gate, token=token, max_body_bytes=max_body_bytes, metrics=runtime.metrics, allowed_hosts=hosts)
    service_log.info(
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
