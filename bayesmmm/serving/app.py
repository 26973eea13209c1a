"""HTTP service for one fitted model: forecasts, budget optimization, ROAS, a dashboard, metrics.

``create_app(ModelService.from_target(...))`` builds a FastAPI app; ``bayesmmm serve``
runs it under uvicorn. Endpoints:

- ``GET /health`` — liveness and the model version (never needs a token);
- ``POST /predict`` — posterior-predictive forecast of future periods (mean and HDI per row);
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

Under load: model work runs on small pools of its own (:class:`~bayesmmm.serving.pools.WorkPool`),
so ``/health`` never waits for it; a full pool answers ``429`` with ``Retry-After`` and a
request waits at most ``request_timeout_s`` (``504``). :class:`ServingApp` serves the
registry's current version and swaps in a promoted one (file watch or ``SIGHUP``) while
requests in flight finish on the old one.

Where things are (each module one job):

- :mod:`~bayesmmm.serving.factory`: :func:`create_app`, composing the pieces below;
- :mod:`~bayesmmm.serving.service`: :class:`ModelService`, :class:`Forecaster` (the model side, no HTTP);
- :mod:`~bayesmmm.serving.schemas`: request and answer models, strict JSON bodies;
- :mod:`~bayesmmm.serving.routes`: the endpoints; :mod:`~bayesmmm.serving.errors`: the error answers;
- :mod:`~bayesmmm.serving.gate`: the ASGI gate (Host, token, body size, security headers, access logs);
- :mod:`~bayesmmm.serving.pools`, :mod:`~bayesmmm.serving.metrics`, :mod:`~bayesmmm.serving.runtime`:
  work pools and caches, Prometheus metrics, and what outlives one app;
- :mod:`~bayesmmm.serving.reload`: :class:`ServingApp`; :mod:`~bayesmmm.serving.logs`: JSON logs.

This module is the public entry point: it re-exports those names.
"""

from bayesmmm.serving.factory import create_app
from bayesmmm.serving.gate import HOSTS_ENV, MAX_BODY_BYTES, TOKEN_ENV
from bayesmmm.serving.logs import JsonFormatter, configure_logging
from bayesmmm.serving.metrics import Metrics
from bayesmmm.serving.pools import ServeLimits
from bayesmmm.serving.reload import ServingApp
from bayesmmm.serving.schemas import MAX_ROWS, OptimizeRequest
from bayesmmm.serving.service import Forecaster, ModelService, ServiceInputError

__all__ = [
    "HOSTS_ENV",
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "TOKEN_ENV",
    "Forecaster",
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
