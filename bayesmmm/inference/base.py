"""The sampler protocol, the backend registry and the statistics every backend returns.

A backend is a function ``sample(model, config, cache_key, prepare) -> (idata, timings)``
(:class:`Backend`) registered under a name with :func:`register_backend`; it returns a
DataTree with ``posterior`` and ``sample_stats`` (any names: :func:`harmonize_stats` maps
them to :data:`SAMPLE_STATS`) and timings ``compile_s``, ``sample_s``, ``total_s``,
``compile_reused``. Built-ins are registered lazily by module path, so a heavy library
(JAX, numba) is imported only when its backend runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bayesmmm.config.experiment import SamplerConfig

__all__ = [
    "BACKENDS",
    "JAX_BACKENDS",
    "MAX_TREE_DEPTH",
    "SAMPLE_STATS",
    "Backend",
    "SamplerError",
    "get_backend",
    "harmonize_stats",
    "register_backend",
]

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

MAX_TREE_DEPTH = 10


class SamplerError(RuntimeError):
    """A sampler backend is unavailable or failed."""


class Backend(Protocol):
    """What a sampler backend is: one function."""

    def __call__(
        self, model: Any, config: SamplerConfig, cache_key: str | None, prepare: Callable[[], Any] | None
    ) -> tuple[Any, dict[str, float]]: ...


#: name -> "module:function" (imported on first use) or the function itself
_REGISTRY: dict[str, str | Backend] = {
    "nutpie": "bayesmmm.inference.nutpie_backend:sample_nutpie",
    "pymc": "bayesmmm.inference.pymc_backend:sample_pymc",
    "numpyro": "bayesmmm.inference.jax_backends:sample_jax",
    "blackjax": "bayesmmm.inference.jax_backends:sample_jax",
}
BACKENDS = tuple(_REGISTRY)
JAX_BACKENDS = ("numpyro", "blackjax")


def register_backend(name: str, backend: Backend | str, *, stat_names: dict[str, str] | None = None) -> None:
    """Register a sampler backend under ``name`` (a function or ``"module:function"``).

    ``stat_names`` maps :data:`SAMPLE_STATS` names to the backend's own statistic names.
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"backend name {name!r} must be a non-empty identifier-like string")
    _REGISTRY[name] = backend
    _STAT_NAMES[name] = dict(stat_names or {})


def resolve_backend(name: str) -> str:
    """``auto`` → the backend measured fastest on CPU where it is installed (numpyro: on the
    four-channel demo model, 4 × 1000 draws, whole ``bayesmmm fit`` process, 2.5× nutpie's
    min-bulk-ESS per wall second cold and warm; ``benchmarks/README.md``), else nutpie; on a
    GPU numpyro too. Any other name is returned unchanged."""
    if name != "auto":
        return name
    from importlib.util import find_spec

    return "numpyro" if find_spec("jax") is not None and find_spec("numpyro") is not None else "nutpie"


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend function registered as ``name``; a clear :class:`SamplerError` otherwise."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise SamplerError(f"sampler backend {name!r} is not available; choose one of {', '.join(_REGISTRY)}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def cores(config: SamplerConfig) -> int:
    """Chains run at once: the chains, at most the configured or available cores."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(config.chains, config.cores or available))


def progress(config: SamplerConfig) -> bool:
    """Whether to show a progress bar (default: when stderr is a terminal)."""
    return sys.stderr.isatty() if config.progressbar is None else config.progressbar


# each backend's own names of the statistics above
_STAT_NAMES: dict[str, dict[str, str]] = {
    "nutpie": {"tree_depth": "depth", "lp": "logp", "acceptance_rate": "mean_tree_accept"},
    "pymc": {},
    "numpyro": {},
    "blackjax": {},
}


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
