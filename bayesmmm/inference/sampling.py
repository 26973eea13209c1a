"""Run NUTS on a PyMC model with a registered backend; every backend returns the same layout.

``nutpie`` (numba, Rust sampler) and ``pymc`` run through their own libraries;
``numpyro`` and ``blackjax`` run NUTS over the model's JAX log-density
(:mod:`bayesmmm.inference.jax_backends`). Every backend's ``sample_stats`` is reduced to
the same variables, :data:`~bayesmmm.inference.base.SAMPLE_STATS`, under the same names
and dtypes. Add a backend with :func:`~bayesmmm.inference.base.register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import (
    BACKENDS,
    JAX_BACKENDS,
    SAMPLE_STATS,
    SamplerError,
    get_backend,
    harmonize_stats,
    resolve_backend,
)

__all__ = ["BACKENDS", "JAX_BACKENDS", "SAMPLE_STATS", "SamplerError", "harmonize_stats", "sample"]


def sample(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Run NUTS on a PyMC ``model`` with the backend ``config.backend``.

    ``cache_key`` identifies the model's structure (see ``MMM.structure_key``): the
    nutpie and JAX backends then reuse code compiled for an earlier model with the same key.
    ``prepare``: work the caller needs after sampling anyway; the JAX backends run it
    while XLA compiles (on another core), the others do not call it.

    Returns
    -------
    idata : DataTree with ``posterior`` and ``sample_stats`` (warm-up discarded;
        statistics as in :data:`SAMPLE_STATS`).
    timings : ``compile_s``, ``sample_s`` (seconds; compile is 0 where the backend
        does not separate it: ``pymc``), ``total_s``, and ``compile_reused`` (1 when
        compiled code was reused).
    """
    name = resolve_backend(config.backend)
    if name != config.backend:
        config = config.model_copy(update={"backend": name})
    idata, timings = get_backend(name)(model, config, cache_key, prepare)
    return _harmonized(idata, name), {**timings, "backend": name}


def _harmonized(idata, backend: str):
    from xarray import DataTree

    return DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "sample_stats": harmonize_stats(idata["sample_stats"].to_dataset(), backend),
        }
    )
