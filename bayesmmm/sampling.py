"""NUTS backends behind one function; every backend returns the same DataTree layout.

``nutpie`` (numba, Rust sampler) and ``pymc`` run through their own libraries;
``numpyro`` and ``blackjax`` run NUTS over the model's JAX log-density, driven by
:mod:`bayesmmm.sampling_jax`. Every backend's ``sample_stats`` is reduced to the
same variables, :data:`SAMPLE_STATS`, under the same names and dtypes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bayesmmm.config import SamplerConfig

__all__ = ["BACKENDS", "JAX_BACKENDS", "SAMPLE_STATS", "SamplerError", "harmonize_stats", "sample"]

BACKENDS = ("nutpie", "pymc", "numpyro", "blackjax")
JAX_BACKENDS = ("numpyro", "blackjax")

#: the sample statistics every backend returns (per chain and draw), with their dtypes
SAMPLE_STATS: dict[str, str] = {
    "diverging": "bool",  # the transition diverged
    "tree_depth": "int64",  # trajectory doublings
    "reached_max_treedepth": "bool",
    "step_size": "float64",
    "energy": "float64",  # Hamiltonian at the draw
    "n_steps": "int64",  # leapfrog steps = gradient evaluations
    "lp": "float64",  # log-density (unconstrained space, Jacobian included)
    "acceptance_rate": "float64",  # mean acceptance probability over the trajectory
}
MAX_TREE_DEPTH = 10

# each backend's own names of the statistics above
_STAT_NAMES: dict[str, dict[str, str]] = {
    "nutpie": {"tree_depth": "depth", "lp": "logp", "acceptance_rate": "mean_tree_accept"},
    "pymc": {},
    "numpyro": {},
    "blackjax": {},
}


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


def harmonize_stats(stats, backend: str):
    """``sample_stats`` reduced to :data:`SAMPLE_STATS`: same names, dtypes and order for every backend."""
    import numpy as np
    import xarray as xr

    names = _STAT_NAMES.get(backend, {})
    out = xr.Dataset(coords={k: stats.coords[k] for k in ("chain", "draw") if k in stats.coords})
    for name, dtype in SAMPLE_STATS.items():
        source = names.get(name, name)
        if source in stats:
            out[name] = stats[source].astype(dtype)
        elif name == "reached_max_treedepth" and "maxdepth_reached" in stats:
            out[name] = stats["maxdepth_reached"].astype(dtype)
        elif name == "reached_max_treedepth" and "tree_depth" in out:
            out[name] = out["tree_depth"] >= MAX_TREE_DEPTH
        else:
            shape = (stats.sizes["chain"], stats.sizes["draw"])
            fill = False if dtype == "bool" else (-1 if dtype == "int64" else np.nan)
            out[name] = (("chain", "draw"), np.full(shape, fill, dtype=dtype))
    return out


def sample(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Run NUTS on a PyMC ``model``.

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
    backend = config.backend
    if backend not in BACKENDS:
        raise SamplerError(f"sampler backend {backend!r} is not available; choose one of {', '.join(BACKENDS)}")
    if backend in JAX_BACKENDS:
        from bayesmmm.sampling_jax import sample_jax

        idata, timings = sample_jax(model, config, cache_key, prepare)
        return _harmonized(idata, backend), timings
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

        # PyMC's own default runs cpu_count() // 2 chains at a time; ours: up to the cores
        idata = pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=_cores(config),
            random_seed=config.seed,
            target_accept=config.target_accept,
            progressbar=_progress(config),
            nuts_sampler="pymc",
            # forking a process that runs JAX threads can deadlock: start workers afresh then
            mp_ctx="forkserver" if "jax" in sys.modules else None,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": False},
            model=model,
        )
        compile_s = 0.0
        reused = False
    total = time.perf_counter() - start
    return _harmonized(idata, backend), {
        "compile_s": round(compile_s, 3),
        "sample_s": round(total - compile_s, 3),
        "total_s": round(total, 3),
        "compile_reused": int(reused),
    }


def _harmonized(idata, backend: str):
    from xarray import DataTree

    return DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "sample_stats": harmonize_stats(idata["sample_stats"].to_dataset(), backend),
        }
    )
