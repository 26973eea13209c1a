"""nutpie's Rust NUTS: :func:`run_nutpie`, shared by both nutpie backends, and ``nutpie_numba``.

``nutpie_numba`` samples PyMC's graph compiled with numba (``nutpie.compile_pymc_model``):
the fastest gradient on CPU for larger models, but compiled again in every process (nutpie's
numba callbacks cannot be cached on disk). ``nutpie`` (:mod:`bayesmmm.inference.jax.nutpie_nuts`)
samples the JAX translation that later processes reuse.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import SamplerError, cores, get_backend, progress, timings

__all__ = ["precompile_numba", "run_nutpie", "sample_numba", "start_nutpie"]

_COMPILED: OrderedDict[str, Any] = OrderedDict()
_COMPILED_MAX = 8
_COMPILED_LOCK = threading.Lock()  # a precompile on a background thread and a fit share the cache


def start_nutpie(config: SamplerConfig) -> None:
    """Import nutpie (and numba) on this thread."""
    try:
        import nutpie  # noqa: F401
    except ImportError as exc:  # pragma: no cover - nutpie is a core dependency
        raise SamplerError("nutpie is not installed: pip install nutpie, or use --sampler pymc") from exc


def run_nutpie(compiled, config: SamplerConfig):
    """``nutpie.sample`` of a compiled model with ``config``'s settings; nutpie's own result.

    The mass matrix: nutpie's low-rank adaptation (the leading eigenvectors of the draws'
    and gradients' covariance on top of a diagonal) where ``mass_matrix`` resolves to
    ``dense``, its diagonal one otherwise."""
    import nutpie

    dense = get_backend(config.backend).mass_matrix(config.mass_matrix, compiled.n_dim) == "dense"
    return nutpie.sample(
        compiled,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        cores=cores(config),
        seed=config.seed,
        target_accept=config.target_accept,
        adaptation="low_rank" if dense else "diag",
        save_warmup=False,
        progress_bar=progress(config),
    )


def _numba_compiled(model, cache_key: str | None):
    """nutpie's compiled model, reused for a model of the same structure with new data.

    The model's ``pm.Data`` values are swapped in with ``with_data``; only the graph is
    compiled (numba), once per structure and process (least recently used are dropped).
    """
    import nutpie

    if cache_key is not None and cache_key in _COMPILED:
        _COMPILED.move_to_end(cache_key)
        compiled = _COMPILED[cache_key]
        known = {var.name for var in compiled.shared_var_keys}  # data the graph does not use are absent
        updates = {v.name: v.get_value() for v in model.data_vars if v.name in known}
        return compiled.with_data(**updates), True
    compiled = nutpie.compile_pymc_model(model)
    if cache_key is not None:
        _COMPILED[cache_key] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return compiled, False


def precompile_numba(model, config: SamplerConfig, cache_key: str) -> None:
    """Compile ``model`` with numba now, for a later fit with ``cache_key`` to reuse."""
    with _COMPILED_LOCK:
        _numba_compiled(model, cache_key)


def sample_numba(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Sample with nutpie over numba; code compiled for ``cache_key`` is reused with the new data."""
    start = time.perf_counter()
    start_nutpie(config)
    with _COMPILED_LOCK:
        compiled, reused = _numba_compiled(model, cache_key)
    compiled_at = time.perf_counter()
    idata = run_nutpie(compiled, config)
    return idata, timings(start, compiled_at, reused)
