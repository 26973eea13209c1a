"""Run many independent fits on Dask distributed: a LocalCluster by default, or any scheduler.

Each task is one fit; a worker runs one task at a time (one thread per worker) and the
fit samples its chains on the worker's share of the cores. Used by ``sweep`` and by
``select --jobs N``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["EngineError", "dask_client", "map_tasks"]


class EngineError(RuntimeError):
    """The distributed engine is unavailable or misconfigured."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``scheduler``, or to a new LocalCluster of ``workers``.

    Local workers are separate, non-daemonic processes (so PyMC's own multiprocessing
    works inside them) with one thread each.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise EngineError("the distributed engine needs Dask: pip install 'bayesmmm[distributed]'") from exc
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or (os.cpu_count() or 1)
    with (
        dask.config.set({"distributed.worker.daemon": False, "distributed.logging.distributed": "error"}),
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def worker_cores() -> int:
    """Cores the calling task may use for its chains.

    On a Dask worker: that worker's host's CPU count split between the workers on the
    same host (so a remote cluster is sized by its own machines, not the submitter's).
    Elsewhere: all of this machine's cores.
    """
    total = os.cpu_count() or 1
    try:
        from distributed import get_client, get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not inside a Dask task
        return total
    host = worker.address.rsplit(":", 1)[0]
    addresses = get_client().scheduler_info().get("workers", {})
    on_host = sum(1 for a in addresses if a.rsplit(":", 1)[0] == host)
    return max(1, total // max(1, on_host))


def assign_groups(groups: Sequence[str], workers: Sequence[str]) -> dict[str, str]:
    """Map each group label to a worker, largest groups first onto the least-loaded worker."""
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    load = dict.fromkeys(workers, 0)
    out = {}
    for g in sorted(sizes, key=lambda k: (-sizes[k], k)):
        w = min(load, key=lambda k: (load[k], k))
        out[g] = w
        load[w] += sizes[g]
    return out


def map_tasks(
    fn: Callable[[Any], dict[str, Any]],
    tasks: Sequence[Any],
    client: Any,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    groups: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``fn(task)`` for every task on ``client``; results in task order.

    ``groups`` labels tasks that share compiled code (same model structure): each group
    is preferred on one worker, so the worker compiles once and reuses the code for the
    group's other tasks (a preference only: idle workers may still take them).

    ``fn`` must catch its own errors and report them in the returned dict; a task that
    still raises (a worker died, say) is reported as ``{"status": "failed", "error": ...}``.
    ``on_result(i, row)`` is called as each task finishes; ``on_progress(done, failed,
    running)`` after each.
    """
    from distributed import as_completed

    futures = [
        client.submit(fn, task, pure=False, key=f"bayesmmm-{i}-{os.urandom(4).hex()}") for i, task in enumerate(tasks)
    ]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    done = failed = 0
    try:
        for future in as_completed(futures):
            i = index[future.key]
            try:
                row = future.result()
            except Exception as exc:  # the task itself could not run
                row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            results[i] = row
            done += 1
            failed += row.get("status") != "ok"
            if on_result:
                on_result(i, row)
            if on_progress:
                on_progress(done, failed, len(tasks) - done)
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
    return [r if r is not None else {"status": "failed", "error": "cancelled"} for r in results]
