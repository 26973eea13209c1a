"""The state of the service that outlives one app, shared across reloads: :class:`Runtime`."""

from __future__ import annotations

from bayesmmm.serving.metrics import Metrics
from bayesmmm.serving.pools import BoundedCache, ServeLimits, WorkPool
from bayesmmm.serving.service import ModelService, optimize_in_worker

__all__ = ["Runtime"]


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
        """Stop every pool (the optimizer process included)."""
        for pool in (self.predict, self.optimize, self.tables):
            pool.shutdown()

    def warm(self, service: ModelService) -> None:
        """Start the optimizer process and load ``service``'s model there now, not on the first /optimize."""
        job = service.optimize_job()
        if self.optimize.processes and job is not None:
            self.optimize.submit_background(optimize_in_worker, job[0], job[1], None, job[2])
