"""How much model work the service takes on: work pools with admission control and timeouts, small caches.

- :class:`ServeLimits`: the sizes of the pools and the caps on one request;
- :class:`WorkPool`: model work runs on its own small thread (or process) pools, never on
  the event loop or on the thread pool that serves ``/health``; each pool admits at most
  ``workers + queue`` jobs (beyond that :class:`Overloaded`: ``429`` with ``Retry-After``)
  and a request waits at most ``request_timeout_s`` for its answer (:class:`RequestTimeout`:
  ``504``);
- :class:`BoundedCache`: the tables and comparisons kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = ["BoundedCache", "Overloaded", "RequestTimeout", "ServeLimits", "WorkPool"]


@dataclass(frozen=True)
class ServeLimits:
    """How much model work the service takes on at once, and how big one request may be.

    Parameters
    ----------
    predict_workers, predict_queue : forecasts run one at a time per worker (the compiled
        function is not re-entrant); up to ``predict_queue`` more wait, beyond that ``429``.
    optimize_workers, optimize_queue : the same for ``/optimize`` (seconds of CPU each).
    tables_queue : ``/roas`` and ``/contributions`` at a new ``hdi_prob``, ``/models/compare``
        (one worker).
    request_timeout_s : longest a client waits for model work (queue + run), then ``504``.
    max_predict_cells : largest ``weeks × draws`` of one forecast.
    max_optimize_cells : largest ``weeks × max_draws`` of one optimization.
    optimize_processes : run optimizations in worker processes (spawned, each loads the
        model once), so that their seconds of Python never hold the serving process's GIL;
        False: threads of the serving process.
    table_cache, compare_cache : tables (per ``hdi_prob``) and comparisons kept in memory.
    """

    predict_workers: int = 1
    predict_queue: int = 32
    optimize_workers: int = 1
    optimize_queue: int = 2
    tables_queue: int = 4
    request_timeout_s: float = 30.0
    max_predict_cells: int = 520 * 1000  # MAX_ROWS weeks on 1000 draws: ~0.2 s
    max_optimize_cells: int = 104 * 1000  # two years on 1000 draws: ~1 s of CPU (520 weeks: 20 s)
    table_cache: int = 8
    compare_cache: int = 16
    optimize_processes: bool = True

    def __post_init__(self) -> None:
        for key in ("predict_workers", "optimize_workers", "max_predict_cells", "max_optimize_cells"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ValueError(f"{key} must be a whole number >= 1, got {getattr(self, key)!r}")
        for key in ("predict_queue", "optimize_queue", "tables_queue", "table_cache", "compare_cache"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                raise ValueError(f"{key} must be a whole number >= 0, got {getattr(self, key)!r}")
        if not (isinstance(self.request_timeout_s, int | float) and 0 < self.request_timeout_s < math.inf):
            raise ValueError(f"request_timeout_s must be a number of seconds > 0, got {self.request_timeout_s!r}")


class Overloaded(Exception):
    """A pool is full: answer 429 with ``Retry-After``."""

    def __init__(self, pool: str, pending: int, retry_after: int) -> None:
        super().__init__(
            f"the server is busy: {pending} {pool} requests are running or queued, the most it takes; "
            f"retry after {retry_after} s"
        )
        self.pool = pool
        self.retry_after = retry_after


class RequestTimeout(Exception):
    """Model work took longer than the per-request timeout: answer 504."""

    def __init__(self, pool: str, seconds: float) -> None:
        super().__init__(
            f"the {pool} request took longer than {seconds:g} s (the server's per-request timeout); "
            "send a smaller request (fewer weeks or draws) or retry later"
        )
        self.pool = pool


def _exit_with_parent(parent: int) -> None:
    """Worker-process initializer: exit when the serving process is gone (killed, or exited without shutdown)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="bayesmmm-parent-watch", daemon=True).start()


class WorkPool:
    """A few threads (or processes) for one kind of model work, with admission control and a timeout.

    At most ``workers + queue`` jobs are admitted (running or waiting); one more raises
    :class:`Overloaded` at once instead of parking a thread. A caller waits at most
    ``timeout_s``; a job that has not started by then is dropped, one that runs finishes
    (Python threads cannot be stopped) and keeps its slot until it does, so the admitted
    work, not the answered work, is what is bounded. With ``processes`` the jobs run in
    spawned worker processes (functions and arguments must pickle); a pool whose worker
    died is replaced.
    """

    def __init__(self, name: str, workers: int, queue: int, timeout_s: float, processes: bool = False) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self.processes = processes
        self._lock = threading.Lock()
        self.pending = 0
        self._mean_s = 0.05  # moving average of a job's time from submission to result, for Retry-After
        self.executor = self._new_executor()
        self._threads: ThreadPoolExecutor | None = None

    def _new_executor(self) -> Executor:
        if self.processes:
            import multiprocessing

            # spawn, not fork: the serving process has threads (fork would copy their locks mid-use); the
            # workers exit by themselves when the serving process dies, whatever killed it
            return ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"bayesmmm-{self.name}")

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * self.pending / self.workers))

    def _submit(self, fn: Callable[..., Any], *args: Any, local: bool = False) -> Future:
        if local and self.processes:  # a job that cannot cross to a process (e.g. a model not from a file)
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"bayesmmm-{self.name}")
            return self._threads.submit(fn, *args)
        try:
            return self.executor.submit(fn, *args)
        except BrokenExecutor:  # a worker process died (e.g. killed for memory): start a new pool
            self.executor = self._new_executor()
            return self.executor.submit(fn, *args)

    def submit_background(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` outside admission control (warm-up work); errors are ignored."""
        with contextlib.suppress(Exception):
            self._submit(fn, *args)

    async def run(self, fn: Callable[..., Any], *args: Any, local: bool = False) -> Any:
        """Run ``fn(*args)`` in the pool (``local``: in a thread of this process even for a process pool)."""
        with self._lock:
            if self.pending >= self.capacity:
                raise Overloaded(self.name, self.pending, self.retry_after())
            self.pending += 1
        t0 = time.perf_counter()

        def done(_future: Future) -> None:
            with self._lock:
                self.pending -= 1
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t0)

        try:
            future = self._submit(fn, *args, local=local)
        except BaseException:
            with self._lock:
                self.pending -= 1
            raise
        future.add_done_callback(done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise RequestTimeout(self.name, self.timeout_s) from None
        except BrokenExecutor:
            self.executor = self._new_executor()  # the next request gets a fresh worker
            raise

    def shutdown(self) -> None:
        """Stop taking work; worker processes are terminated (a running optimization is abandoned)."""
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)


class BoundedCache:
    """A small thread-safe LRU mapping; ``pinned`` keys are never evicted."""

    def __init__(self, maxsize: int, pinned: Iterable[Hashable] = ()) -> None:
        self.maxsize = maxsize
        self.pinned = set(pinned)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __getitem__(self, key: Hashable) -> Any:
        with self._lock:
            self._data.move_to_end(key)
            return self._data[key]

    def __setitem__(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            evictable = [k for k in self._data if k not in self.pinned]
            while len(evictable) > self.maxsize:
                del self._data[evictable.pop(0)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
