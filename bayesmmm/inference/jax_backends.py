"""JAX backends driven by bayesmmm: BlackJAX and NumPyro NUTS over the model's JAX log-density.

Both backends share one path:

1. the PyMC model's joint log-density on the unconstrained space is translated to JAX
   (PyTensor's JAX linker, the same rewrites as ``pymc.sampling.jax``), with the
   model's data (``pm.Data``) as *arguments*, not baked-in constants, so that one
   compiled program serves every data set of the same shape (and the persistent
   JAX compilation cache hits across processes);
2. one chain = window adaptation + NUTS draws in a ``lax.scan``; chains are
   ``pmap``-ed over the available devices (on CPU, XLA host devices: one per chain,
   see :func:`configure_jax`), and ``vmap``-ed where there are more chains than devices
   (one GPU);
3. the whole program is compiled ahead of time (``jit(...).lower(...).compile()``), so
   compile time is measured apart from sampling time;
4. draws are mapped back to the constrained space with PyMC's transforms (also
   translated to JAX) and returned as a DataTree with the same layout as the other
   backends (see :data:`bayesmmm.inference.sampling.SAMPLE_STATS`).

JAX, BlackJAX and NumPyro are imported only here, and only when a JAX backend is used.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import MAX_TREE_DEPTH, SamplerError

__all__ = [
    "JaxModel",
    "cache_dir",
    "configure_jax",
    "jax_model",
    "precompile_jax",
    "resolve_devices",
    "sample_jax",
    "start_jax",
]

_CACHE_ENV = "BAYESMMM_JAX_CACHE"


def _sampler_error(msg: str) -> Exception:
    return SamplerError(msg)


def cache_dir() -> Path:
    """Persistent JAX compilation cache: ``$BAYESMMM_JAX_CACHE`` or ``~/.cache/bayesmmm/jax``."""
    env = os.environ.get(_CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bayesmmm" / "jax"


def available_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _jax_backend_started() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved: assume started
        return True


def configure_jax(devices: int | None = None):
    """Import JAX set up for sampling; returns the ``jax`` module.

    Before JAX's backend first starts: unless the user set it in ``XLA_FLAGS``, ask
    XLA for ``devices`` host (CPU) devices (default: one per core;
    ``--xla_force_host_platform_device_count``) so that chains run in parallel on CPU. Every time: 64-bit floats on, the
    persistent compilation cache in :func:`cache_dir` on. PyMC's JAX module is
    imported after the backend started: on import it rewrites ``XLA_FLAGS`` (100
    devices), which then has no effect; the user's ``XLA_FLAGS`` are restored.
    """
    if not _jax_backend_started():
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            count = max(1, devices or available_cores())
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    user_flags = os.environ.get("XLA_FLAGS")
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        path = cache_dir()
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except OSError:  # read-only home: run without the persistent cache
        pass
    jax.devices()  # start the backend with the flags above
    import pymc.sampling.jax  # noqa: F401  (registers JAX versions of PyMC's Assert ops)

    if user_flags is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = user_flags
    return jax


def resolve_devices(device: str, jax) -> list:
    """JAX devices for ``sampler.device``: ``cpu``, ``gpu`` (error if none) or ``auto`` (GPU if any)."""
    if device in ("gpu", "auto"):
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as exc:
            gpus = []
            reason = str(exc).splitlines()[0]
        else:
            reason = ""
        if gpus:
            return list(gpus)
        if device == "gpu":
            raise _sampler_error(
                "sampler.device is 'gpu' but JAX finds no GPU"
                + (f" ({reason})" if reason else "")
                + "; install JAX with CUDA (pip install -U 'jax[cuda12]') or set sampler.device: cpu"
            )
    return list(jax.devices("cpu"))


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------------- model
@dataclass
class JaxModel:
    """A PyMC model's log-density and transforms as JAX functions.

    ``logp(position, data)``: joint log-density on the unconstrained space;
    ``position`` is a list of arrays in the order of ``value_names``, ``data`` a list
    in the order of ``data_names``. ``constrain(position)`` returns the constrained
    free variables, named ``var_names``. ``initial_point``: PyMC's initial point on the
    unconstrained space, by value name.
    """

    logp: Callable
    constrain: Callable
    value_names: list[str]
    value_shapes: list[tuple[int, ...]]
    data_names: list[str]
    data_values: list[np.ndarray]
    var_names: list[str]
    key: tuple
    initial_point: dict[str, np.ndarray]
    translation: str = "new"  # where the translation came from: new, memory (this process) or disk
    exported: bool = False  # logp/constrain call exported StableHLO: batch them with lax.map, not vmap


def _rewritten(inputs: list, outputs: list):
    """The graph of ``outputs`` rewritten for JAX (PyTensor's JAX mode): a FunctionGraph."""
    from pytensor.compile import mode
    from pytensor.graph.fg import FunctionGraph

    fgraph = FunctionGraph(inputs=inputs, outputs=outputs, clone=True)
    mode.JAX.optimizer.rewrite(fgraph)
    return fgraph


@dataclass
class _Translation:
    """A model's log-density and transform in JAX (from PyTensor's rewritten graphs, or from
    their exported StableHLO), with the names and key that go with them."""

    var_names: list[str]
    data_names: list[str]
    key: tuple
    log_density: Callable | None = None
    constrain: Callable | None = None
    logp_graph: Any = None  # FunctionGraph: (value vars..., data...) -> logp (a fresh translation)
    constrain_graph: Any = None  # FunctionGraph: (value vars...) -> free variables
    exported: bool = False  # the functions call exported StableHLO: no vmap over them (lax.map instead)

    def functions(self) -> _Translation:
        """Fill ``log_density`` / ``constrain`` from the graphs (jax_funcify: fast once rewritten)."""
        import jax
        from pytensor.link.jax.dispatch import jax_funcify

        if self.log_density is None:
            logp_fn = jax_funcify(self.logp_graph)
            constrain_fn = jax_funcify(self.constrain_graph)

            def log_density(position: list, data: list):
                return logp_fn(*position, *data)[0]

            def constrain(position: list) -> list:
                return list(constrain_fn(*position))

            # jitted: the samplers call it at several places; JAX then traces the graph's Python once
            self.log_density, self.constrain = jax.jit(log_density), constrain
        return self


#: translations by lookup key (structure, shapes, versions): a refit of the same structure
#: in this process (new data, a sweep's next run, a precompiled model) skips the translation
_TRANSLATIONS: OrderedDict[str, _Translation] = OrderedDict()


def _lookup_key(model, cache_key: str, shapes: list[tuple[int, ...]]) -> str:
    """What a translation depends on, computed without building the log-density graph.

    ``cache_key`` (``MMM.structure_key``) identifies the graph up to its ``pm.Data`` (values
    that shape it, such as a media prior's data totals, are part of it); add the shapes of
    the parameters and data, the dim lengths, and the library versions that translate it.
    """
    import hashlib
    import json
    from importlib.metadata import version

    def length(v) -> int:
        return int(np.asarray(v.get_value() if hasattr(v, "get_value") else getattr(v, "data", v)))

    parts = {
        "structure": cache_key,
        "values": [[v.name, list(s)] for v, s in zip(model.value_vars, shapes, strict=True)],
        "data": [[d.name, list(d.get_value().shape), str(d.dtype)] for d in model.data_vars],
        "dims": {k: length(v) for k, v in sorted(model.dim_lengths.items())},
        "versions": [version(p) for p in ("bayesmmm", "pymc", "pytensor", "jax")],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _disk_paths(lookup: str) -> dict[str, Path]:
    folder = cache_dir() / "translations"
    return {part: folder / f"{lookup}.{part}" for part in ("logp.bin", "constrain.bin", "json")}


def _tuples(value):
    """JSON lists back to the nested tuples of a key (hashable)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _exported(tr: _Translation, value_shapes: list, data_values: list) -> tuple[bytes, bytes]:
    """``tr``'s functions exported as StableHLO (the log-density with its first derivative)."""
    import jax
    import jax.numpy as jnp
    from jax import export

    position = [jax.ShapeDtypeStruct(s, jnp.float64) for s in value_shapes]
    data = [jax.ShapeDtypeStruct(np.shape(v), _data_dtype(v, jnp.float64)) for v in data_values]
    logp = export.export(jax.jit(lambda p, d: tr.log_density(p, d)))(position, data)
    constrain = export.export(jax.jit(lambda p: tr.constrain(p)))(position)
    return bytes(logp.serialize(vjp_order=1)), bytes(constrain.serialize())


def _from_exported(logp_blob: bytes, constrain_blob: bytes, meta: dict[str, Any]) -> _Translation:
    import jax
    from jax import export

    logp = export.deserialize(bytearray(logp_blob))
    constrain = export.deserialize(bytearray(constrain_blob))

    def constrain_fn(position: list) -> list:
        return list(constrain.call(position))

    return _Translation(
        var_names=list(meta["var_names"]),
        data_names=list(meta["data_names"]),
        key=_tuples(meta["key"]),
        log_density=jax.jit(lambda p, d: logp.call(p, d)),
        constrain=constrain_fn,
        exported=True,
    )


def _load_translation(lookup: str) -> _Translation | None:
    """A translation exported by an earlier process (None if absent or unreadable).

    The cache holds StableHLO (JAX's serialization) and JSON: loading it runs no Python
    code from the cache folder."""
    import json

    paths = _disk_paths(lookup)
    try:
        meta = json.loads(paths["json"].read_text())  # written last: the entry is complete
        return _from_exported(paths["logp.bin"].read_bytes(), paths["constrain.bin"].read_bytes(), meta)
    except FileNotFoundError:
        return None
    except Exception:  # a stale or partial entry: translate again (and overwrite it)
        return None


def _save_translation(lookup: str, blobs: tuple[bytes, bytes], tr: _Translation) -> None:
    """Write the exported functions for later processes; never fails a fit (a read-only cache just misses)."""
    import json
    import tempfile

    paths = _disk_paths(lookup)
    meta = json.dumps({"var_names": tr.var_names, "data_names": tr.data_names, "key": tr.key})
    try:
        paths["json"].parent.mkdir(parents=True, exist_ok=True)
        for part, blob in (("logp.bin", blobs[0]), ("constrain.bin", blobs[1]), ("json", meta.encode())):
            with tempfile.NamedTemporaryFile(dir=paths[part].parent, delete=False, suffix=".tmp") as fh:
                fh.write(blob)
            os.replace(fh.name, paths[part])  # atomic; the JSON goes last and marks the entry complete
    except OSError:  # a read-only cache folder: later processes translate again
        pass


def _data_dtype(value, float_dtype):
    """The dtype a data array is passed to the program with (as :func:`_prepare` places it)."""
    return float_dtype if np.issubdtype(np.asarray(value).dtype, np.floating) else np.asarray(value).dtype


def _translate(model) -> _Translation:
    """Build the log-density graph, rewrite it and the transform for JAX."""
    import pytensor.tensor as pt
    from pymc.sampling.jax import _replace_shared_variables
    from pymc.util import get_default_varnames
    from pytensor.compile import SharedVariable
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs

    logp = model.logp()
    data_vars = [v for v in graph_inputs([logp]) if isinstance(v, SharedVariable) and v in set(model.data_vars)]
    # static shapes: JAX needs them, and the rewrites fold every shape computation away
    data_inputs = [pt.tensor(name=v.name, dtype=v.type.dtype, shape=v.get_value().shape) for v in data_vars]
    replace: dict = dict(zip(data_vars, data_inputs, strict=True))
    constants = {}
    for v in graph_inputs([logp]):
        if isinstance(v, SharedVariable) and v not in replace:
            value = v.get_value(borrow=True)
            replace[v] = pt.constant(value)
            constants[v.name] = np.asarray(value).tolist() if np.ndim(value) == 0 else np.shape(value)
    (logp_graph,) = clone_replace([logp], replace=replace)
    free = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    key = (
        tuple(v.name for v in model.value_vars),
        tuple((v.name, tuple(v.get_value().shape), str(v.dtype)) for v in data_vars),
        tuple(sorted(constants.items())),
    )
    return _Translation(
        logp_graph=_rewritten([*model.value_vars, *data_inputs], [logp_graph]),
        constrain_graph=_rewritten(list(model.value_vars), _replace_shared_variables(free)),
        var_names=[v.name for v in free],
        data_names=[v.name for v in data_vars],
        key=key,
    )


def jax_model(model, seed: int | None = None, cache_key: str | None = None, exportable: bool = False) -> JaxModel:
    """Translate ``model``'s log-density to JAX with its ``pm.Data`` as arguments.

    Other shared variables (dim lengths) become constants: they fix shapes, and are
    part of :attr:`JaxModel.key` together with the data shapes. With ``cache_key`` (the
    model's structure key) the translation is cached in this process; with ``exportable``
    too (float64, one chain per device: nothing ``vmap``-s the log-density) it is exported
    as StableHLO into the cache folder next to JAX's compilation cache (:func:`cache_dir`)
    and used from there, in this process and the next: a later process fitting the same
    structure and shapes skips building the log-density graph and PyTensor's rewrites
    (~2-3 s of the four-channel model's fit) and runs the very same program (same draws).
    """
    ip = model.initial_point(random_seed=seed)  # compiles a function: once per fit
    shapes = [tuple(np.shape(ip[v.name])) for v in model.value_vars]
    lookup = _lookup_key(model, cache_key, shapes) if cache_key is not None else None
    memory = None if lookup is None else f"{lookup}:{'exported' if exportable else 'traced'}"
    tr = _TRANSLATIONS.get(memory) if memory is not None else None
    source = "memory"
    if tr is None and lookup is not None and exportable:
        tr, source = _load_translation(lookup), "disk"
    data = {v.name: v for v in model.data_vars}
    if tr is None:
        tr, source = _translate(model).functions(), "new"
        if lookup is not None and exportable:
            values = [data[name].get_value() for name in tr.data_names]
            try:
                blobs = _exported(tr, shapes, values)
            except Exception:  # an op JAX cannot export: keep the traced functions
                blobs = None
            if blobs is not None:
                _save_translation(lookup, blobs, tr)
                # this process runs the exported functions too: a cold and a warm fit sample alike
                meta = {"var_names": tr.var_names, "data_names": tr.data_names, "key": tr.key}
                tr = _from_exported(*blobs, meta)
    if memory is not None:
        _TRANSLATIONS[memory] = tr
        _TRANSLATIONS.move_to_end(memory)
        while len(_TRANSLATIONS) > _PROGRAMS_MAX:
            _TRANSLATIONS.popitem(last=False)
    values = [np.asarray(data[name].get_value()) for name in tr.data_names]
    return JaxModel(
        logp=tr.log_density,
        constrain=tr.constrain,
        value_names=[v.name for v in model.value_vars],
        value_shapes=shapes,
        data_names=list(tr.data_names),
        data_values=values,
        var_names=list(tr.var_names),
        key=(tr.key[0], tuple(shapes), *tr.key[1:]),
        initial_point={n: np.asarray(ip[n]) for n in (v.name for v in model.value_vars)},
        translation=source,
        exported=tr.exported,
    )


def initial_points(jm: JaxModel, chains: int, seed: int | None, logp_batch: Callable) -> list[np.ndarray]:
    """PyMC's initial point (``jm.initial_point``) jittered by U(-1, 1) on the unconstrained
    space, one per chain.

    Seeded by ``seed``; a chain whose jittered start has a non-finite log-density is
    redrawn (up to 10 times).
    """
    base = jm.initial_point
    rng = np.random.default_rng(seed)
    points = [
        np.asarray(base[n], dtype=float) + rng.uniform(-1, 1, size=(chains, *np.shape(base[n]))) for n in jm.value_names
    ]
    for _ in range(10):
        lp = np.asarray(logp_batch(points))
        bad = ~np.isfinite(lp)
        if not bad.any():
            break
        for i, n in enumerate(jm.value_names):
            shape = (int(bad.sum()), *np.shape(base[n]))
            points[i][bad] = np.asarray(base[n], dtype=float) + rng.uniform(-1, 1, size=shape)
    return points


# ----------------------------------------------------------------------------- one chain
#: ``mass_matrix: auto`` adapts a dense mass matrix up to this many free parameters: its
#: cost per leapfrog step grows with the square of the dimension, and the warm-up must
#: estimate a covariance of that size from the draws of its slow windows
DENSE_MAX_DIM = 200


def dense_mass(mass_matrix: str, dim: int) -> bool:
    """Whether the JAX backends adapt a dense mass matrix for ``dim`` free parameters."""
    return mass_matrix == "dense" or (mass_matrix == "auto" and dim <= DENSE_MAX_DIM)


def _blackjax_chain(logp: Callable, tune: int, draws: int, target_accept: float, dense: bool = False) -> Callable:
    """``(key, position, data) → (positions, stats)`` for one chain: window adaptation + NUTS."""
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    def run(key, position, data):
        density = partial(_bound, logp, data)
        warm_key, sample_key = jax.random.split(key)
        if tune > 0:
            adapt = blackjax.window_adaptation(
                blackjax.nuts,
                density,
                is_mass_matrix_diagonal=not dense,
                target_acceptance_rate=target_accept,
                adaptation_info_fn=get_filter_adapt_info_fn(),
            )
            (state, params), _ = adapt.run(warm_key, position, num_steps=tune)
        else:
            state = blackjax.nuts.init(position, density)
            size = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(position))
            params = {"step_size": jnp.asarray(0.1), "inverse_mass_matrix": jnp.eye(size) if dense else jnp.ones(size)}
        kernel = blackjax.nuts(density, max_num_doublings=MAX_TREE_DEPTH, **params).step
        step_size = params["step_size"]

        def one(state, k):
            state, info = kernel(k, state)
            stats = {
                "diverging": info.is_divergent,
                "tree_depth": info.num_trajectory_expansions,
                "step_size": step_size,
                "energy": info.energy,
                "n_steps": info.num_integration_steps,
                "lp": state.logdensity,
                "acceptance_rate": info.acceptance_rate,
            }
            return state, (state.position, stats)

        _, (positions, stats) = jax.lax.scan(one, state, jax.random.split(sample_key, draws))
        return positions, stats

    return run


def _bound(logp: Callable, data: list, position: list):
    return logp(position, data)


def _numpyro_chain(logp: Callable, tune: int, draws: int, target_accept: float, dense: bool = False) -> Callable:
    """``(key, position, data) → (positions, stats)`` for one chain: NumPyro's NUTS kernel."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.hmc import hmc

    def potential_gen(*data):
        return lambda position: -logp(position, list(data))

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def run(key, position, data):
        state = init_kernel(
            position,
            num_warmup=tune,
            target_accept_prob=target_accept,
            max_tree_depth=MAX_TREE_DEPTH,
            dense_mass=dense,
            model_args=tuple(data),
            rng_key=key,
        )

        def one(state, _):
            state = sample_kernel(state, model_args=tuple(data))
            n = state.num_steps
            stats = {
                "diverging": state.diverging,
                "tree_depth": jnp.floor(jnp.log2(jnp.maximum(n, 1))).astype(jnp.int64) + 1,
                "step_size": state.adapt_state.step_size,
                "energy": state.energy,
                "n_steps": n,
                "lp": -state.potential_energy,
                "acceptance_rate": state.accept_prob,
            }
            return state, (state.z, stats)

        # one scan over warm-up and draws (the kernel adapts while i < tune): the NUTS
        # kernel is traced once, not twice; the warm-up part is dropped
        _, out = jax.lax.scan(one, state, None, length=tune + draws)
        return jax.tree.map(lambda x: x[tune:], out)

    return run


# ------------------------------------------------------------------------------ programs
@dataclass
class _Program:
    run: Callable  # (keys, positions, data) -> (positions, stats), jitted
    constrain: Callable  # batched constrained draws
    logp_batch: Callable  # (positions with a chain axis, data) -> log-density per chain
    devices: list
    compiled: Any = None  # the compiled ``run`` (shapes and devices are fixed by the program's key)


_PROGRAMS: OrderedDict[tuple, tuple[_Program, JaxModel]] = OrderedDict()
_PROGRAMS_MAX = 8
_PROGRAMS_LOCK = threading.Lock()  # a precompile on a background thread and a fit share the cache


@contextmanager
def _precision(jax, precision: str) -> Iterator[None]:
    """Trace, compile and run in 32-bit floats when ``precision == 'float32'``."""
    if precision == "float32":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not available, and will be truncated.*")
            with jax.enable_x64(False):
                yield
    else:
        yield


def _split_devices(devices: list, chains: int) -> list:
    """The most devices (at most one per chain) that divide the chains evenly."""
    n = min(len(devices), chains)
    while chains % n:
        n -= 1
    return devices[:n]


def _build_program(jax, jm: JaxModel, backend: str, config: SamplerConfig, devices: list) -> _Program:
    dim = sum(int(np.prod(shape)) for shape in jm.value_shapes)
    chain_fn = (_blackjax_chain if backend == "blackjax" else _numpyro_chain)(
        jm.logp, config.tune, config.draws, config.target_accept, dense_mass(config.mass_matrix, dim)
    )
    used = _split_devices(devices, config.chains)
    # one chain per device (CPU host devices): no vmap. A vmap turns every while loop of
    # the NUTS tree builder into a masked loop (a select over the whole carry at every
    # step): 2-3x the program, 2.5x the trace+compile time, and no benefit with one chain.
    per_device = chain_fn if len(used) == config.chains else jax.vmap(chain_fn, in_axes=(0, 0, None))
    # pmap: one executable replicated over the devices, each running its chains on its own
    run = jax.pmap(per_device, in_axes=(0, 0, None), devices=used) if len(used) > 1 else jax.jit(per_device)
    if jm.exported:  # exported functions have no batching rule: map over chains and draws instead
        from jax import lax

        constrain = jax.jit(lambda draws: lax.map(lambda chain: lax.map(jm.constrain, chain), draws))
        logp_batch = jax.jit(lambda points, data: lax.map(lambda p: jm.logp(p, data), points))
    else:
        constrain = jax.jit(jax.vmap(jax.vmap(jm.constrain)))
        logp_batch = jax.jit(jax.vmap(jm.logp, in_axes=(0, None)))
    return _Program(run=run, constrain=constrain, logp_batch=logp_batch, devices=used)


def _chain_layout(n_dev: int, chains: int) -> Callable:
    """Chain-major arrays → the program's input layout: ``(device, chain per device, ...)``
    when devices run several chains each, no chain axis for a single chain, else as is."""
    if chains == 1:
        return lambda x: x[0]
    if 1 < n_dev < chains:
        return lambda x: x.reshape(n_dev, -1, *x.shape[1:])
    return lambda x: x


@dataclass
class _Prepared:
    """A model translated and its sampling program (built or reused), with its inputs placed."""

    jax: Any
    jm: JaxModel
    program: _Program
    reused: bool
    platform: str
    dtype: Any
    data: list
    keys: Any
    placed: Callable


def start_jax(config: SamplerConfig):
    """JAX (configured: :func:`configure_jax`) and the backend's library imported; the ``jax`` module."""
    try:
        # one host device per chain, at least one per core: chains never run in lockstep
        # (a vmap over chains waits for the longest trajectory at every draw); the OS
        # shares the cores among the devices' threads
        jax = configure_jax(max(config.chains, config.cores or available_cores()))
        if config.backend == "blackjax":
            import blackjax  # noqa: F401
        else:
            import numpyro  # noqa: F401
    except ImportError as exc:
        raise _sampler_error(
            f"the {config.backend} backend needs the JAX extra ({exc.name} is missing): pip install 'bayesmmm[jax]'"
        ) from exc
    return jax


def _prepare(jax, model, config: SamplerConfig, cache_key: str | None) -> _Prepared:
    """Translate ``model`` (or reuse the translation) and build (or reuse) its program.

    ``jax`` is the module :func:`start_jax` returned; runs inside the caller's :func:`_precision` context."""
    import jax.numpy as jnp

    backend = config.backend

    devices = resolve_devices(config.device, jax)
    platform = devices[0].platform
    wanted = min(config.chains, config.cores or available_cores())
    if platform == "cpu" and len(devices) < wanted:
        _warn_once(
            f"JAX started with {len(devices)} CPU device(s) before bayesmmm could ask for {wanted}: the chains "
            "share one core. Set XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX is first used "
            "(or import bayesmmm's sampler before numpyro) to run chains in parallel."
        )
    # exported log-densities cannot be vmap-ed: only where every device runs one chain (CPU), in float64
    exportable = len(_split_devices(devices, config.chains)) == config.chains and config.precision == "float64"
    jm = jax_model(model, config.seed, cache_key, exportable)
    dtype = jnp.float32 if config.precision == "float32" else jnp.float64
    program_key = (
        cache_key or id(model),
        jm.key,
        backend,
        config.chains,
        config.draws,
        config.tune,
        config.target_accept,
        config.mass_matrix,
        platform,
        len(devices),
        config.precision,
    )
    with _PROGRAMS_LOCK:
        reused = cache_key is not None and program_key in _PROGRAMS
        if reused:
            _PROGRAMS.move_to_end(program_key)
            program, old = _PROGRAMS[program_key]
            jm.logp, jm.constrain = old.logp, old.constrain  # the compiled program closes over these
        else:
            program = _build_program(jax, jm, backend, config, devices)
            if cache_key is not None:
                _PROGRAMS[program_key] = (program, jm)
                while len(_PROGRAMS) > _PROGRAMS_MAX:
                    _PROGRAMS.popitem(last=False)
    data = [jnp.asarray(v, dtype=dtype if np.issubdtype(v.dtype, np.floating) else None) for v in jm.data_values]
    seed = config.seed if config.seed is not None else int(np.random.default_rng().integers(2**31))
    n_dev = len(program.devices)
    layout = _chain_layout(n_dev, config.chains)

    def placed(arrays):  # on the program's device, in its chain layout
        arrays = jax.tree.map(layout, arrays)
        return jax.device_put(arrays, program.devices[0]) if n_dev == 1 else arrays

    keys = placed(jax.random.split(jax.random.key(seed), config.chains))
    if n_dev == 1:
        data = jax.device_put(data, program.devices[0])
    return _Prepared(jax, jm, program, reused, platform, dtype, data, keys, placed)


def _lowered(prep: _Prepared, config: SamplerConfig):
    """The program traced and lowered for its input shapes (XLA compiles the result)."""
    import jax.numpy as jnp

    zeros = prep.placed([jnp.zeros((config.chains, *s), prep.dtype) for s in prep.jm.value_shapes])
    return prep.program.run.lower(prep.keys, zeros, prep.data)


def precompile_jax(model, config: SamplerConfig, cache_key: str) -> None:
    """Translate ``model`` and compile its sampling program now, for a later fit to reuse.

    ``cache_key`` is the model's structure key (``MMM.structure_key``): a fit of a model
    with that key and the same sampler settings then skips translation and compilation.
    Meant for a background thread (XLA compiles without the GIL) while the caller does
    other work, e.g. the demo's report while its calibrated model compiles.
    """
    from bayesmmm.inference.base import resolve_backend

    config = config.model_copy(update={"backend": resolve_backend(config.backend)})
    jax = start_jax(config)
    with _precision(jax, config.precision):
        prep = _prepare(jax, model, config, cache_key)
        if prep.program.compiled is None:
            prep.program.compiled = _lowered(prep, config).compile()


def sample_jax(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Sample ``model`` with the ``blackjax`` or ``numpyro`` backend.

    Returns the DataTree (``posterior`` with the model's dims and coords,
    ``sample_stats`` in the common layout) and timings ``compile_s`` (translating the
    model and compiling the sampling program: 0-ish when reused in this process),
    ``sample_s``, ``total_s``, ``compile_reused``. ``prepare`` (optional) runs while XLA
    compiles the sampling program: work the caller needs afterwards anyway.
    """
    start = time.perf_counter()
    jax = start_jax(config)
    with _precision(jax, config.precision):
        prep = _prepare(jax, model, config, cache_key)
        jm, program, dtype = prep.jm, prep.program, prep.dtype
        # compiled once per program: traced here (JAX's precision setting is per thread),
        # XLA compiles on a worker thread (C++, without the GIL, mostly on one core) while
        # this thread draws the initial points and does the caller's ``prepare`` work
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bayesmmm-xla") as pool:
            if program.compiled is None:
                compiling = pool.submit(_lowered(prep, config).compile)
            points = initial_points(jm, config.chains, config.seed, lambda p: program.logp_batch(p, prep.data))
            positions = prep.placed([jax.numpy.asarray(p, dtype=dtype) for p in points])
            if prepare is not None:
                prepare()
            if program.compiled is None:
                program.compiled = compiling.result()
        compiled = program.compiled
        compiled_at = time.perf_counter()
        compile_wall = compiled_at - start
        draws, stats = compiled(prep.keys, positions, prep.data)
        jax.block_until_ready((draws, stats))
        n_dev = len(program.devices)
        if config.chains == 1:  # restore the chain axis
            draws, stats = jax.tree.map(lambda x: x[None], (draws, stats))
        elif 1 < n_dev < config.chains:
            draws, stats = jax.tree.map(lambda x: x.reshape(config.chains, *x.shape[2:]), (draws, stats))
        sampled_at = time.perf_counter()
        constrained = program.constrain(draws)
        constrained = [np.asarray(c, dtype=np.float64) for c in constrained]
        stats = {k: np.asarray(v) for k, v in stats.items()}
    tree = _to_datatree(model, jm.var_names, constrained, stats, config.backend)
    total = time.perf_counter() - start
    sample_s = sampled_at - compiled_at
    return tree, {
        "compile_s": round(compile_wall, 3),
        "sample_s": round(sample_s, 3),
        "total_s": round(total, 3),
        "compile_reused": int(prep.reused),
        "translation": jm.translation,
        "devices": n_dev,
        "platform": prep.platform,
    }


def _to_datatree(model, names: list[str], values: list[np.ndarray], stats: dict[str, np.ndarray], backend: str):
    import xarray as xr
    from pymc.backends.arviz import coords_and_dims_for_inferencedata

    coords, dims = coords_and_dims_for_inferencedata(model)
    chains, draws = values[0].shape[:2] if values else next(iter(stats.values())).shape[:2]
    base = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset()
    for name, arr in zip(names, values, strict=True):
        var_dims = list(dims.get(name, []))
        extra = arr.ndim - 2 - len(var_dims)
        var_dims += [f"{name}_dim_{i}" for i in range(max(extra, 0))]
        var_coords = {d: coords[d] for d in var_dims if d in coords}
        posterior[name] = xr.DataArray(arr, dims=("chain", "draw", *var_dims), coords={**base, **var_coords})
    sample_stats = xr.Dataset(
        {k: xr.DataArray(v, dims=("chain", "draw"), coords=base) for k, v in stats.items()},
    )
    posterior.attrs["inference_library"] = backend
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})
