"""Prometheus metrics of the service (``GET /metrics``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bayesmmm.serving.pools import WorkPool

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Prometheus metrics of one service (its own ``CollectorRegistry``: apps never share series).

    Labels come from fixed sets only: a method outside the HTTP methods is ``other``; a
    path no route matched is ``unmatched`` (or ``unauthorized``, ``too_large``,
    ``bad_host`` when the gate answered), so no request can create new series.
    """

    def __init__(self, model_version: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "bayesmmm_http_requests", "HTTP requests by method, route and status.", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "bayesmmm_http_request_duration_seconds", "Time to handle a request.", ["method", "route"],
            buckets=buckets, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("bayesmmm_requests_in_flight", "Requests being handled.", registry=r)
        self.model_info = Gauge("bayesmmm_model_info", "The model version being served.", ["model_version"], registry=r)
        self.started = Gauge("bayesmmm_start_time_seconds", "Unix time the service started.", registry=r)
        self.started.set(time.time())
        self.rejected = Counter(
            "bayesmmm_rejected_requests", "Model work refused (busy: 429) or timed out (504), by pool.",
            ["pool", "reason"], registry=r,
        )  # fmt: skip
        self.pending = Gauge("bayesmmm_work_pending", "Model work running or queued, by pool.", ["pool"], registry=r)
        self.reloads = Counter("bayesmmm_model_reloads", "Model reloads by outcome.", ["outcome"], registry=r)
        self.model_version = ""
        self.set_model(model_version)

    def set_model(self, model_version: str) -> None:
        if self.model_version:
            self.model_info.remove(self.model_version)
        self.model_version = model_version
        self.model_info.labels(model_version).set(1)

    def track_pools(self, pools: Iterable[WorkPool]) -> None:
        for pool in pools:
            self.pending.labels(pool.name).set_function(lambda p=pool: p.pending)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
