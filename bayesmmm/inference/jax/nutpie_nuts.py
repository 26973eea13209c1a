"""The ``nutpie`` backend: nutpie's Rust NUTS over the model's JAX log-density (the translation the
JAX backends cache on disk).

nutpie calls a Python function for every gradient (``from_pyfunc``); that function runs
the log-density and its gradient compiled by XLA from the exported translation
(:func:`~bayesmmm.inference.jax.translate.jax_model`), so a later process fitting the same
structure and shapes reuses both the translation and, through JAX's persistent cache, the
compiled code: no numba compile per process. Draws are stored unconstrained and mapped
to the constrained space once, batched, after sampling.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import timings
from bayesmmm.inference.jax import runtime
from bayesmmm.inference.jax.translate import JaxModel, data_dtype, jax_model, posterior_tree
from bayesmmm.inference.nutpie_backend import run_nutpie

__all__ = ["NutpieModel", "nutpie_model", "precompile", "sample", "start"]

_FLAT = "__position__"  # the one variable nutpie stores: the flat unconstrained position


@dataclass
class NutpieModel:
    """A model ready for ``nutpie.sample`` (:attr:`compiled`), and how to read its draws back."""

    compiled: Any  # nutpie's PyFuncModel
    jm: JaxModel
    constrain: Callable  # (n, dim) flat positions -> constrained variables, (n, ...) each
    reused: bool  # the compiled functions came from this process's cache
    translation: str  # new, memory or disk (see JaxModel.translation)

    def tree(self, model, idata):
        """nutpie's result as the common layout: constrained ``posterior`` with the model's coords."""
        flat = np.asarray(idata["posterior"][_FLAT].values)
        chains, draws = flat.shape[:2]
        values = [
            np.asarray(v).reshape(chains, draws, *np.shape(v)[1:])
            for v in self.constrain(flat.reshape(chains * draws, -1))
        ]
        stats = idata["sample_stats"].to_dataset()
        stats = {k: v.values for k, v in stats.data_vars.items() if v.dims == ("chain", "draw")}
        return posterior_tree(model, self.jm.var_names, values, stats, "nutpie")


_FUNCTIONS: OrderedDict[tuple, tuple[Callable, Callable]] = OrderedDict()
_FUNCTIONS_MAX = 8
_LOCK = threading.Lock()  # a precompile on a background thread and a fit share the cache


def _split(jm: JaxModel) -> Callable:
    import jax.numpy as jnp

    sizes = [int(np.prod(s)) for s in jm.value_shapes]
    cuts = np.cumsum(sizes)[:-1].tolist()
    return lambda x: [p.reshape(s) for p, s in zip(jnp.split(x, cuts), jm.value_shapes, strict=True)]


def nutpie_model(model, config: SamplerConfig, cache_key: str | None) -> NutpieModel:
    """``model`` translated (or its translation reused) and wrapped for nutpie.

    The log-density's value and gradient are compiled ahead for a flat position, with the
    data as arguments: compiled once per structure and process, reused for new data."""
    jax = runtime.start(config, "nutpie")
    import jax.numpy as jnp
    from jax import lax
    from nutpie.compiled_pyfunc import from_pyfunc

    jm = jax_model(model, config.seed, cache_key, exportable=True)
    data = [jnp.asarray(v, dtype=data_dtype(v, jnp.float64)) for v in jm.data_values]
    x0 = np.concatenate([np.ravel(jm.initial_point[n]).astype(np.float64) for n in jm.value_names])
    key = (cache_key or id(model), jm.key)
    with _LOCK:
        reused = cache_key is not None and key in _FUNCTIONS
        if reused:
            _FUNCTIONS.move_to_end(key)
            value_and_grad, constrain = _FUNCTIONS[key]
        else:
            split = _split(jm)

            def value_and_grad_flat(x, d):  # one output array: one transfer back per call
                value, grad = jax.value_and_grad(lambda y: jm.logp(split(y), d))(x)
                return jnp.concatenate([value[None], grad])

            value_and_grad = jax.jit(value_and_grad_flat).lower(x0, data).compile()
            constrain = jax.jit(lambda xs: lax.map(lambda x: jm.constrain(split(x)), xs))
            if cache_key is not None:
                _FUNCTIONS[key] = (value_and_grad, constrain)
                while len(_FUNCTIONS) > _FUNCTIONS_MAX:
                    _FUNCTIONS.popitem(last=False)

    def make_logp():
        def logp(x):
            out = np.asarray(value_and_grad(x, data))
            return float(out[0]), out[1:]

        return logp

    def make_expand(_seed1, _seed2, _chain):
        return lambda x: {_FLAT: np.array(x, dtype=np.float64)}

    def initial_point(seed) -> np.ndarray:  # PyMC's initial point jittered by U(-1, 1), as the JAX backends
        return x0 + np.random.default_rng(seed).uniform(-1, 1, size=x0.shape)

    compiled = from_pyfunc(
        ndim=x0.size,
        make_logp_fn=make_logp,
        make_expand_fn=make_expand,
        expanded_dtypes=[np.dtype(np.float64)],
        expanded_shapes=[x0.shape],
        expanded_names=[_FLAT],
        make_initial_point_fn=initial_point,
    )
    return NutpieModel(compiled, jm, constrain, reused, jm.translation)


def start(config: SamplerConfig) -> None:
    """JAX (configured) and nutpie imported on this thread."""
    runtime.start(config, "nutpie")


def precompile(model, config: SamplerConfig, cache_key: str) -> None:
    """Translate and compile ``model`` now, for a later fit with ``cache_key`` to reuse."""
    nutpie_model(model, config, cache_key)


def sample(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Sample with nutpie over the JAX translation (the registry's ``sample``).

    Timings as the JAX backends': ``compile_s`` (translation, or its reuse from memory or
    disk, and XLA's compile, or JAX's persistent cache), ``sample_s`` (sampling and the
    constrained draws), ``total_s``, ``compile_reused``, ``translation``."""
    begin = time.perf_counter()
    nm = nutpie_model(model, config, cache_key)
    compiled_at = time.perf_counter()
    tree = nm.tree(model, run_nutpie(nm.compiled, config))
    return tree, {**timings(begin, compiled_at, nm.reused), "translation": nm.translation}
