"""NUTS backends behind one function; every backend returns the same DataTree layout."""

from __future__ import annotations

import os
import sys
import time
from collections import OrderedDict
from typing import Any

from bayesmmm.config import SamplerConfig

__all__ = ["BACKENDS", "SamplerError", "sample"]

BACKENDS = ("nutpie", "pymc", "numpyro")


class SamplerError(RuntimeError):
    """A sampler backend is unavailable or failed."""


def _cores(config: SamplerConfig) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(config.chains, config.cores or available))


def _progress(config: SamplerConfig) -> bool:
    return sys.stderr.isatty() if config.progressbar is None else config.progressbar


_COMPILED: OrderedDict[str, Any] = OrderedDict()
_COMPILED_MAX = 8


def _nutpie_compiled(model, cache_key: str | None):
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


def sample(model, config: SamplerConfig, cache_key: str | None = None) -> tuple[Any, dict[str, float]]:
    """Run NUTS on a PyMC ``model``.

    ``cache_key`` identifies the model's structure (see ``MMM.structure_key``): the
    nutpie backend then reuses code compiled for an earlier model with the same key.

    Returns
    -------
    idata : DataTree with ``posterior`` and ``sample_stats`` (warm-up discarded).
    timings : ``compile_s``, ``sample_s`` (seconds; compile is 0 where the backend
        does not separate it), ``total_s``, and ``compile_reused`` (1 when compiled code
        was reused).
    """
    backend = config.backend
    if backend not in BACKENDS:
        raise SamplerError(f"sampler backend {backend!r} is not available; choose one of {', '.join(BACKENDS)}")
    start = time.perf_counter()
    if backend == "nutpie":
        try:
            import nutpie
        except ImportError as exc:  # pragma: no cover - nutpie is a core dependency
            raise SamplerError("nutpie is not installed: pip install nutpie, or use --sampler pymc") from exc
        compiled, reused = _nutpie_compiled(model, cache_key)
        compiled_at = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=_cores(config),
            seed=config.seed,
            target_accept=config.target_accept,
            save_warmup=False,
            progress_bar=_progress(config),
        )
        compile_s = compiled_at - start
    else:
        import pymc as pm

        if backend == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError as exc:
                raise SamplerError("the numpyro backend needs the JAX extra: pip install 'bayesmmm[jax]'") from exc
        idata = pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=_cores(config),
            random_seed=config.seed,
            target_accept=config.target_accept,
            progressbar=_progress(config),
            nuts_sampler=backend,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": False},
            model=model,
        )
        compile_s = 0.0
        reused = False
    total = time.perf_counter() - start
    return idata, {
        "compile_s": round(compile_s, 3),
        "sample_s": round(total - compile_s, 3),
        "total_s": round(total, 3),
        "compile_reused": int(reused),
    }
