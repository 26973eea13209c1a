"""A PyMC model's log-density and transforms translated to JAX, cached in this process and on disk.

The joint log-density on the unconstrained space is translated with PyTensor's JAX linker
(the same rewrites as ``pymc.sampling.jax``), with the model's data (``pm.Data``) as
*arguments*, not baked-in constants, so that one compiled program serves every data set of
the same shape (and the persistent JAX compilation cache hits across processes). Exported as
StableHLO into the cache folder, a translation is reused by later processes too.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayesmmm.inference.jax.runtime import cache_dir

__all__ = ["JaxModel", "data_dtype", "initial_points", "jax_model", "posterior_tree"]

#: translations kept in memory (least recently used are dropped)
_TRANSLATIONS_MAX = 8


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


@functools.cache
def source_digest() -> str:
    """SHA-256 of the source of the packages that build a model's graph (components, data, model,
    this translation): a development checkout's edits change the graph without changing the
    version, so the disk cache must not serve a translation made by other code."""
    import hashlib

    root = Path(__file__).resolve().parents[2]
    files = [Path(__file__)]
    for folder in ("components", "data", "model"):
        files += sorted((root / folder).glob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
        "source": source_digest(),
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
    data = [jax.ShapeDtypeStruct(np.shape(v), data_dtype(v, jnp.float64)) for v in data_values]
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


def data_dtype(value, float_dtype):
    """The dtype a data array is passed to the program with (as the program places it)."""
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
        while len(_TRANSLATIONS) > _TRANSLATIONS_MAX:
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


def posterior_tree(model, names: list[str], values: list[np.ndarray], stats: dict[str, np.ndarray], library: str):
    """A DataTree of constrained draws ``values`` (``(chain, draw, ...)``, named ``names``) with the
    model's dims and coords, and ``stats`` (``(chain, draw)`` each) as ``sample_stats``."""
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
    posterior.attrs["inference_library"] = library
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})
