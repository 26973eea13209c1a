"""Run NUTS on a PyMC model with a registered backend; every backend returns the same layout.

The built-ins: ``pymc`` and ``nutpie_numba`` run PyMC's graph through their own libraries;
``nutpie``, ``numpyro`` and ``blackjax`` run NUTS over the model's JAX log-density
(:mod:`bayesmmm.inference.jax`). Every backend's ``sample_stats`` is reduced to the same
variables, :data:`~bayesmmm.inference.base.SAMPLE_STATS`, under the same names and dtypes.
Nothing here names a backend: add one with :func:`~bayesmmm.inference.base.register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import SAMPLE_STATS, SamplerError, backend_names, get_backend, harmonize_stats
from bayesmmm.inference.warm import WarmStart

__all__ = ["SAMPLE_STATS", "SamplerError", "backend_names", "harmonize_stats", "import_backend", "precompile", "sample"]


def sample(
    model,
    config: SamplerConfig,
    cache_key: str | None = None,
    prepare: Callable[[], Any] | None = None,
    warm: WarmStart | None = None,
) -> tuple[Any, dict[str, float]]:
    """Run NUTS on a PyMC ``model`` with the backend ``config.backend``.

    ``cache_key`` identifies the model's structure (see ``MMM.structure_key``): backends
    that compile reuse code compiled for an earlier model with the same key.
    ``prepare``: work the caller needs after sampling anyway; the JAX backends run it
    while XLA compiles (on another core), the others do not call it.
    ``warm``: a :class:`~bayesmmm.inference.warm.WarmStart` (a refresh's): a backend with the
    ``warm_metric`` capability starts its chains there, keeps its mass matrix and runs its
    shorter warm-up (``warm.tune`` instead of ``config.tune``); the others ignore it.

    Returns
    -------
    idata : DataTree with ``posterior`` and ``sample_stats`` (warm-up discarded;
        statistics as in :data:`SAMPLE_STATS`).
    timings : ``compile_s``, ``sample_s`` (seconds; compile is 0 where the backend
        does not separate it: ``pymc``), ``total_s``, ``compile_reused`` (1 when
        compiled code was reused), ``backend``, ``tune`` (the warm-up run) and ``warm_metric``
        (whether ``warm`` was used).
    """
    backend = get_backend(config.backend)
    config = _for(backend.name, config)
    fn = backend.function("sample")
    if warm is not None and backend.capabilities.warm_metric:
        config = config.model_copy(update={"tune": warm.tune})
        idata, timings = fn(model, config, cache_key, prepare, warm=warm)
    else:
        idata, timings = fn(model, config, cache_key, prepare)
    used = warm is not None and backend.capabilities.warm_metric
    extra = {"backend": backend.name, "tune": config.tune, "warm_metric": int(used)}
    return _harmonized(idata, backend.name), {**timings, **extra}


def precompile(model, config: SamplerConfig, cache_key: str) -> bool:
    """Compile ``model``'s sampler now so that a later :func:`sample` with ``cache_key`` reuses it.

    Safe to run on a background thread while the caller does other work (the XLA and
    numba compilers run without the GIL). Returns False for a backend that compiles
    nothing ahead (``pymc``).
    """
    backend = get_backend(config.backend)
    compile_ahead = backend.function("precompile")
    if compile_ahead is None:
        return False
    compile_ahead(model, _for(backend.name, config), cache_key)
    return True


def import_backend(config: SamplerConfig) -> None:
    """Import (and configure) ``config``'s backend libraries in this thread.

    Call it on the main thread before compiling on another one: importing JAX (or numba)
    from two threads at once can see a partially initialized module."""
    import pymc  # noqa: F401

    backend = get_backend(config.backend)
    start = backend.function("start")
    if start is not None:
        start(_for(backend.name, config))


def _for(name: str, config: SamplerConfig) -> SamplerConfig:
    """``config`` with ``backend: auto`` resolved to ``name``."""
    return config if config.backend == name else config.model_copy(update={"backend": name})


def _harmonized(idata, backend: str):
    from xarray import DataTree

    return DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "sample_stats": harmonize_stats(idata["sample_stats"].to_dataset(), backend),
        }
    )
