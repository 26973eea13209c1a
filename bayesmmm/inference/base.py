"""The backend registry: what a sampler backend is, what it can do, and the statistics it returns.

A backend is one registered :class:`Backend`: its name, its functions (``sample``, and
optionally ``precompile`` and ``start``), its own names of the :data:`SAMPLE_STATS`, its
:class:`Capabilities` and its default mass matrix. Everything that depends on the backend
(:mod:`bayesmmm.inference.sampling`, ``SamplerConfig``'s validation, the benchmarks) asks
the registry; adding a backend is one :func:`register_backend` call. Functions may be given
as ``"module:function"`` and are imported on first use, so a heavy library (JAX, numba) is
imported only when its backend runs: the built-ins are registered that way.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, Protocol


class SamplerConfig(Protocol):
    """What this module reads of the sampler settings
    (:class:`bayesmmm.config.experiment.SamplerConfig`, which validates itself against this
    registry: the dependency runs one way, so the settings are described here, not imported)."""

    backend: str
    device: str
    precision: str
    mass_matrix: str
    chains: int
    cores: int | None
    progressbar: bool | None


__all__ = [
    "MAX_TREE_DEPTH",
    "SAMPLE_STATS",
    "Backend",
    "Capabilities",
    "SampleFn",
    "SamplerError",
    "backend_names",
    "backends",
    "get_backend",
    "harmonize_stats",
    "register_backend",
    "resolve_backend",
    "unregister_backend",
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
#: trajectory doublings at most, on every backend that lets us set it
MAX_TREE_DEPTH = 10


class SamplerError(RuntimeError):
    """A sampler backend is unavailable or failed."""


class SampleFn(Protocol):
    """``sample(model, config, cache_key, prepare) -> (idata, timings)``.

    ``idata``: a DataTree with ``posterior`` and ``sample_stats`` (the backend's own names:
    :attr:`Backend.stat_names` maps them); ``timings``: ``compile_s``, ``sample_s``,
    ``total_s``, ``compile_reused``. ``config.backend`` is the registered name (the backend
    resolves ``mass_matrix: auto`` with :meth:`Backend.mass_matrix`); ``prepare`` is work the caller needs after
    sampling anyway (a backend may run it while it compiles, or ignore it). A backend whose
    capabilities have ``warm_metric`` also takes ``warm=`` (a :class:`~bayesmmm.inference.warm.WarmStart`);
    the others are called without it.
    """

    def __call__(
        self, model: Any, config: SamplerConfig, cache_key: str | None, prepare: Callable[[], Any] | None
    ) -> tuple[Any, dict[str, float]]: ...


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; ``SamplerConfig`` accepts only the options its backend supports."""

    gpu: bool = False  #: honours ``device: gpu``
    float32: bool = False  #: honours ``precision: float32``
    mass_matrices: tuple[str, ...] = ("diag",)  #: the ``mass_matrix`` values it adapts (``auto`` always)
    #: the same seed gives bit-identical draws in this process, and in another for the backends that run
    #: the cached JAX translation; those that compile PyTensor's graph in each process (pymc, nutpie_numba)
    #: need a fixed ``PYTHONHASHSEED`` for that (docs/reproducibility.md)
    reproducible: bool = False
    #: takes a :class:`~bayesmmm.inference.warm.WarmStart`'s starts, mass matrix and step size
    #: (``sample(..., warm=...)``) and adapts only the step size in its shorter warm-up; the others
    #: are called without it (they start from the model's initial point)
    warm_metric: bool = False


@dataclass(frozen=True)
class Backend:
    """A registered sampler backend (see the module docstring).

    ``sample``, ``precompile`` (``(model, config, cache_key) -> None``: compile now for a
    later fit with ``cache_key``) and ``start`` (``(config) -> None``: import and configure
    the libraries on the calling thread) are functions or ``"module:function"`` strings
    (``"module:object.method"`` too).
    ``dense_max_dim``: ``mass_matrix: auto`` adapts a dense mass matrix up to this many free
    parameters (0: always diagonal), a diagonal one above (a dense metric's cost per step
    grows with the square of the dimension, and the warm-up must estimate it from its draws).
    """

    name: str
    sample: SampleFn | str
    precompile: Callable[..., Any] | str | None = None
    start: Callable[..., Any] | str | None = None
    stat_names: Mapping[str, str] = field(default_factory=dict)
    capabilities: Capabilities = Capabilities()
    dense_max_dim: int = 0

    def function(self, role: Literal["sample", "precompile", "start"]) -> Callable[..., Any] | None:
        """The function registered for ``role``, imported now if it was given by path."""
        entry = getattr(self, role)
        if isinstance(entry, str):  # "module:name" or "module:object.method"
            module, _, path = entry.partition(":")
            entry = importlib.import_module(module)
            for attr in path.split("."):
                entry = getattr(entry, attr)
        return entry

    def mass_matrix(self, requested: str, dim: int) -> Literal["diag", "dense"]:
        """``requested`` (``auto``, ``diag`` or ``dense``) for a model of ``dim`` free parameters."""
        if requested == "auto":
            return "dense" if "dense" in self.capabilities.mass_matrices and dim <= self.dense_max_dim else "diag"
        return "dense" if requested == "dense" else "diag"

    def check(self, config: SamplerConfig) -> list[str]:
        """The options of ``config`` this backend does not support, as messages (empty: all are)."""
        caps, problems = self.capabilities, []
        if config.device == "gpu" and not caps.gpu:
            problems.append(f"device: gpu needs a backend that runs on a GPU ({_able('gpu')})")
        if config.precision == "float32" and not caps.float32:
            problems.append(f"precision: float32 needs a backend that samples in float32 ({_able('float32')})")
        if config.mass_matrix not in ("auto", *caps.mass_matrices):
            problems.append(f"mass_matrix: {config.mass_matrix} is not supported by {self.name}")
        return [f"{p}; got backend {self.name!r}" for p in problems]


_REGISTRY: dict[str, Backend] = {}


def register_backend(
    name: str,
    backend: SampleFn | str | Backend,
    *,
    stat_names: Mapping[str, str] | None = None,
    capabilities: Capabilities | None = None,
    precompile: Callable[..., Any] | str | None = None,
    start: Callable[..., Any] | str | None = None,
    dense_max_dim: int = 0,
) -> Backend:
    """Register a sampler backend under ``name``: a :class:`Backend`, or its ``sample`` function
    (or ``"module:function"``) with the other fields as keywords. Returns what was registered.

    ``stat_names`` maps :data:`SAMPLE_STATS` names to the backend's own statistic names.
    Registering an existing name replaces that backend.
    """
    if not name or not name.replace("_", "").isalnum() or name == "auto":
        raise ValueError(f"backend name {name!r} must be a non-empty identifier-like string other than 'auto'")
    if isinstance(backend, Backend):
        entry = replace(backend, name=name)
    else:
        entry = Backend(
            name=name,
            sample=backend,
            precompile=precompile,
            start=start,
            stat_names=dict(stat_names or {}),
            capabilities=capabilities or Capabilities(),
            dense_max_dim=dense_max_dim,
        )
    entry = replace(entry, stat_names=MappingProxyType(dict(entry.stat_names)))
    _REGISTRY[name] = entry
    return entry


def unregister_backend(name: str) -> Backend:
    """Remove the backend registered as ``name`` (a plugin's, or a test's); returns it."""
    if name not in _REGISTRY:
        raise SamplerError(f"sampler backend {name!r} is not registered")
    return _REGISTRY.pop(name)


def backend_names() -> list[str]:
    """Names of the registered backends, in registration order."""
    return list(_REGISTRY)


def backends() -> list[Backend]:
    """The registered backends, in registration order."""
    return list(_REGISTRY.values())


def get_backend(name: str) -> Backend:
    """The backend registered as ``name`` (``auto`` resolved); a clear :class:`SamplerError` otherwise."""
    entry = _REGISTRY.get(resolve_backend(name))
    if entry is None:
        raise SamplerError(f"sampler backend {name!r} is not available; choose one of {', '.join(_REGISTRY)}")
    return entry


def resolve_backend(name: str) -> str:
    """``auto`` → the backend measured fastest on CPU where it is installed (numpyro: on the
    four-channel demo model, 4 × 1000 draws, whole ``bayesmmm fit`` process, 2.5× nutpie's
    min-bulk-ESS per wall second cold and warm; ``benchmarks/README.md``), else nutpie; on a
    GPU numpyro too. Any other name is returned unchanged."""
    if name != "auto":
        return name
    from importlib.util import find_spec

    return "numpyro" if find_spec("jax") is not None and find_spec("numpyro") is not None else "nutpie"


def _able(capability: str) -> str:
    names = [b.name for b in _REGISTRY.values() if getattr(b.capabilities, capability)]
    return "set backend: " + " or ".join(names) if names else "none is registered"


def cores(config: SamplerConfig) -> int:
    """Chains run at once: the chains, at most the configured or available cores."""
    return max(1, min(config.chains, config.cores or available_cores()))


def available_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def timings(start: float, compiled_at: float, reused: bool) -> dict[str, float]:
    """A backend's timings (``compile_s``, ``sample_s``, ``total_s``, ``compile_reused``) from
    ``time.perf_counter()`` at its start and once compiled, measured to now."""
    import time

    total = time.perf_counter() - start
    compile_s = compiled_at - start
    return {
        "compile_s": round(compile_s, 3),
        "sample_s": round(total - compile_s, 3),
        "total_s": round(total, 3),
        "compile_reused": int(reused),
    }


def progress(config: SamplerConfig) -> bool:
    """Whether to show a progress bar (default: when stderr is a terminal)."""
    return sys.stderr.isatty() if config.progressbar is None else config.progressbar


def harmonize_stats(stats, backend: str):
    """``sample_stats`` reduced to :data:`SAMPLE_STATS`: same names, dtypes and order for every backend."""
    import numpy as np
    import xarray as xr

    names = _REGISTRY[backend].stat_names if backend in _REGISTRY else {}
    out = xr.Dataset(coords={k: stats.coords[k] for k in ("chain", "draw") if k in stats.coords})
    for name, dtype in SAMPLE_STATS.items():
        source = names.get(name, name)
        if source in stats:
            out[name] = stats[source].astype(dtype)
        elif name == "reached_max_treedepth" and "tree_depth" in out:
            out[name] = out["tree_depth"] >= MAX_TREE_DEPTH
        else:
            shape = (stats.sizes["chain"], stats.sizes["draw"])
            fill = False if dtype == "bool" else (-1 if dtype == "int64" else np.nan)
            out[name] = (("chain", "draw"), np.full(shape, fill, dtype=dtype))
    return out


# --------------------------------------------------------------------------- built-ins
# Defaults (``dense_max_dim``: what ``mass_matrix: auto`` adapts) measured at 4 × 1000 + 1000
# on the benchmark data sets (benchmarks/README.md, "Backends at their defaults (issue 24)").
_NUTPIE_STATS = {  # nutpie's names
    "tree_depth": "depth",
    "lp": "logp",
    "acceptance_rate": "mean_tree_accept",
    "reached_max_treedepth": "maxdepth_reached",
}
_CPU = Capabilities(mass_matrices=("diag", "dense"), reproducible=True)
_JAX = Capabilities(gpu=True, float32=True, mass_matrices=("diag", "dense"), reproducible=True)
_NUMPYRO = replace(_JAX, warm_metric=True)
_BUILTINS = (
    Backend(
        "nutpie",
        sample="bayesmmm.inference.jax.nutpie_nuts:sample",
        precompile="bayesmmm.inference.jax.nutpie_nuts:precompile",
        start="bayesmmm.inference.jax.nutpie_nuts:start",
        stat_names=_NUTPIE_STATS,
        capabilities=_CPU,
        dense_max_dim=200,
    ),
    Backend(
        "pymc",
        sample="bayesmmm.inference.pymc_backend:sample_pymc",
        capabilities=_CPU,
        dense_max_dim=200,
    ),
    Backend(
        "numpyro",
        sample="bayesmmm.inference.jax.numpyro_nuts:SAMPLER.sample",
        precompile="bayesmmm.inference.jax.numpyro_nuts:SAMPLER.precompile",
        start="bayesmmm.inference.jax.numpyro_nuts:SAMPLER.start",
        capabilities=_NUMPYRO,
        dense_max_dim=200,
    ),
    Backend(
        "blackjax",
        sample="bayesmmm.inference.jax.blackjax_nuts:SAMPLER.sample",
        precompile="bayesmmm.inference.jax.blackjax_nuts:SAMPLER.precompile",
        start="bayesmmm.inference.jax.blackjax_nuts:SAMPLER.start",
        capabilities=_JAX,
        dense_max_dim=200,
    ),
    Backend(
        "nutpie_numba",
        sample="bayesmmm.inference.nutpie_backend:sample_numba",
        precompile="bayesmmm.inference.nutpie_backend:precompile_numba",
        start="bayesmmm.inference.nutpie_backend:start_nutpie",
        stat_names=_NUTPIE_STATS,
        capabilities=_CPU,
        dense_max_dim=200,
    ),
)
for _builtin in _BUILTINS:
    register_backend(_builtin.name, _builtin)
