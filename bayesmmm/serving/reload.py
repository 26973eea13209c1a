"""Hot reload: :class:`ServingApp`, the ASGI app ``bayesmmm serve`` runs, swaps in a promoted version.

A watcher thread (or ``SIGHUP``) loads the new version aside, start-up work included, and
swaps the app; requests in flight finish on the old one.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayesmmm.serving.factory import create_app
from bayesmmm.serving.logs import service_log
from bayesmmm.serving.pools import ServeLimits
from bayesmmm.serving.runtime import Runtime
from bayesmmm.serving.service import DEFAULT_MAX_DRAWS, ModelService

__all__ = ["ServingApp"]


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
    ) -> ServingApp:
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
                service_log.exception(
                    "reload failed; still serving the loaded version", extra={"model_version": self.model_version}
                )
                return False
            previous = self.model_version
            self.app, self.service = app, service  # requests in flight finish on the previous app
            self.runtime.metrics.set_model(service.model_version)
            self.runtime.metrics.reloads.labels("ok").inc()
            service_log.info(
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
                service_log.exception("checking the registry for a new version failed")

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
