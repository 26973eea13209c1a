"""The sampling program shared by the JAX backends, and :class:`JaxSampler`, one such backend.

1. the model's log-density is translated to JAX (:mod:`bayesmmm.inference.jax.translate`);
2. one chain = warm-up + NUTS draws in a ``lax.scan``, built by the backend's
   :class:`ChainBuilder` (NumPyro's or BlackJAX's kernel); chains are ``pmap``-ed over
   the available devices (on CPU, XLA host devices: one per chain, see
   :func:`~bayesmmm.inference.jax.runtime.configure_jax`), and ``vmap``-ed where there are
   more chains than devices (one GPU);
3. the whole program is compiled ahead of time (``jit(...).lower(...).compile()``), so
   compile time is measured apart from sampling time;
4. draws are mapped back to the constrained space with PyMC's transforms (also translated
   to JAX) and returned as a DataTree with the same layout as the other backends.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import available_cores, get_backend
from bayesmmm.inference.jax.precondition import (
    from_scaled,
    laplace_hessian,
    metric_factor,
    scaled_logp,
    to_scaled,
)
from bayesmmm.inference.jax.runtime import precision, resolve_devices, start, warn_once
from bayesmmm.inference.jax.translate import JaxModel, initial_points, jax_model, posterior_tree
from bayesmmm.inference.warm import WarmStart

__all__ = ["ChainBuilder", "JaxSampler"]


class ChainBuilder(Protocol):
    """``(logp, tune, draws, target_accept, dense) -> run``: one chain's warm-up and draws.

    ``run(key, position, data) -> (positions, stats)``: ``draws`` positions (a list of
    arrays, as ``position``) and statistics named as :data:`~bayesmmm.inference.base.SAMPLE_STATS`;
    ``logp(position, data)`` is the log-density; ``dense``: adapt a dense mass matrix.
    A backend with the ``warm_metric`` capability also accepts ``warm=True``: then
    ``run(key, position, data, inverse_mass_matrix, step_size)`` keeps that mass matrix
    (``(dim, dim)`` when ``dense``, else ``(dim,)``) and adapts only the step size from there.
    """

    def __call__(self, logp: Callable, tune: int, draws: int, target_accept: float, dense: bool) -> Callable: ...


@dataclass
class _Program:
    run: Callable  # (keys, positions, data) -> (positions, stats), jitted
    constrain: Callable  # batched constrained draws
    logp_batch: Callable  # (positions with a chain axis, data) -> log-density per chain
    devices: list
    #: (position, data) -> the sampled coordinates' factor ``L`` (``θ = L u``, precondition.py): per-coordinate
    #: scales, or a matrix where the metric is dense; jitted; None: ``sampler.precondition: none`` (``L = 1``)
    factor: Callable | None = None
    dense_factor: bool = False  # ``factor`` returns a (dim, dim) matrix, not (dim,) scales
    compiled: Any = None  # the compiled ``run`` (shapes and devices are fixed by the program's key)


#: with a dense metric, also rotate by the Laplace correlations (``θ = L u``, L a Cholesky factor), not
#: only scale (precondition.py)
DENSE_FACTOR = False

_PROGRAMS: OrderedDict[tuple, tuple[_Program, JaxModel]] = OrderedDict()
_PROGRAMS_MAX = 8
_PROGRAMS_LOCK = threading.Lock()  # a precompile on a background thread and a fit share the cache


def _split_devices(devices: list, chains: int) -> list:
    """The most devices (at most one per chain) that divide the chains evenly."""
    n = min(len(devices), chains)
    while chains % n:
        n -= 1
    return devices[:n]


def _dense(jm: JaxModel, config: SamplerConfig) -> bool:
    dim = sum(int(np.prod(shape)) for shape in jm.value_shapes)
    return get_backend(config.backend).mass_matrix(config.mass_matrix, dim) == "dense"


def _build_program(
    jax, jm: JaxModel, chain: ChainBuilder, config: SamplerConfig, devices: list, warm: bool = False
) -> _Program:
    dense = _dense(jm, config)
    extra = {"warm": True} if warm else {}
    # the chains sample u = L⁻¹ θ (precondition.py): L is the data list's last entry
    logp_u = scaled_logp(jm.logp, len(jm.data_values), jm.value_shapes)
    chain_fn = chain(logp_u, config.tune, config.draws, config.target_accept, dense, **extra)
    used = _split_devices(devices, config.chains)
    # the warm program also takes the mass matrix and the step size, shared by the chains
    axes = (0, 0, None, None, None) if warm else (0, 0, None)
    # one chain per device (CPU host devices): no vmap. A vmap turns every while loop of
    # the NUTS tree builder into a masked loop (a select over the whole carry at every
    # step): 2-3x the program, 2.5x the trace+compile time, and no benefit with one chain.
    per_device = chain_fn if len(used) == config.chains else jax.vmap(chain_fn, in_axes=axes)
    # pmap: one executable replicated over the devices, each running its chains on its own
    run = jax.pmap(per_device, in_axes=axes, devices=used) if len(used) > 1 else jax.jit(per_device)
    if jm.exported:  # exported functions have no batching rule: map over chains and draws instead
        from jax import lax

        constrain = jax.jit(lambda draws: lax.map(lambda chain: lax.map(jm.constrain, chain), draws))
        logp_batch = jax.jit(lambda points, data: lax.map(lambda p: jm.logp(p, data), points))
    else:
        constrain = jax.jit(jax.vmap(jax.vmap(jm.constrain)))
        logp_batch = jax.jit(jax.vmap(jm.logp, in_axes=(0, None)))
    factor, dense_factor = None, False
    if config.precondition == "laplace":
        dense_factor = dense and DENSE_FACTOR
        factor = jax.jit(lambda p, d: metric_factor(laplace_hessian(jm.logp, p, d), dense_factor))
    return _Program(run, constrain, logp_batch, used, factor=factor, dense_factor=dense_factor)


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
    metric: tuple = ()  # a warm start's (inverse mass matrix, step size), placed; () for a cold fit


def _prepare(
    jax, model, config: SamplerConfig, cache_key: str | None, chain: ChainBuilder, warm: WarmStart | None = None
) -> _Prepared:
    """Translate ``model`` (or reuse the translation) and build (or reuse) its program.

    ``jax`` is the module :func:`~bayesmmm.inference.jax.runtime.start` returned; runs inside
    the caller's :func:`~bayesmmm.inference.jax.runtime.precision` context."""
    import jax.numpy as jnp

    devices = resolve_devices(config.device, jax)
    platform = devices[0].platform
    wanted = min(config.chains, config.cores or available_cores())
    if platform == "cpu" and len(devices) < wanted:
        warn_once(
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
        config.backend,
        config.chains,
        config.draws,
        config.tune,
        config.target_accept,
        config.mass_matrix,
        config.precondition,
        platform,
        len(devices),
        config.precision,
        warm is not None,
    )
    with _PROGRAMS_LOCK:
        reused = cache_key is not None and program_key in _PROGRAMS
        if reused:
            _PROGRAMS.move_to_end(program_key)
            program, old = _PROGRAMS[program_key]
            jm.logp, jm.constrain = old.logp, old.constrain  # the compiled program closes over these
        else:
            program = _build_program(jax, jm, chain, config, devices, warm is not None)
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
    metric: tuple = ()
    if warm is not None:
        inv = np.asarray(warm.inverse_mass_matrix, dtype=float)
        dense = _dense(jm, config)
        if dense and inv.ndim == 1:
            inv = np.diag(inv)
        elif not dense and inv.ndim == 2:
            inv = np.diag(inv).copy()
        dim = sum(int(np.prod(shape)) for shape in jm.value_shapes)
        if inv.shape[-1] != dim:
            raise ValueError(f"the warm start's mass matrix is for {inv.shape[-1]} parameters, the model has {dim}")
        metric = (jnp.asarray(inv, dtype=dtype), jnp.asarray(warm.step_size, dtype=dtype))
        if n_dev == 1:
            metric = tuple(jax.device_put(metric, program.devices[0]))
    return _Prepared(jax, jm, program, reused, platform, dtype, data, keys, placed, metric)


def _lowered(prep: _Prepared, config: SamplerConfig):
    """The program traced and lowered for its input shapes (XLA compiles the result)."""
    import jax.numpy as jnp

    zeros = prep.placed([jnp.zeros((config.chains, *s), prep.dtype) for s in prep.jm.value_shapes])
    return prep.program.run.lower(prep.keys, zeros, [*prep.data, _identity(prep)], *prep.metric)


def _identity(prep: _Prepared):
    """``L = 1`` in the layout the program's ``factor`` returns (its shape is part of the compiled program)."""
    import jax.numpy as jnp

    dim = sum(int(np.prod(shape)) for shape in prep.jm.value_shapes)
    dense = prep.program.factor is not None and prep.program.dense_factor
    return jnp.eye(dim, dtype=prep.dtype) if dense else jnp.ones(dim, dtype=prep.dtype)


def _factor(prep: _Prepared, points: list[np.ndarray]) -> np.ndarray:
    """The sampled coordinates' factor ``L`` (``θ = L u``, :mod:`.precondition`): from the Laplace
    approximation found from the first chain's initial point, shared by all chains; ones with
    ``sampler.precondition: none`` and for a warm start (its mass matrix is already the first
    posterior's covariance in θ's coordinates)."""
    program = prep.program
    if program.factor is None or prep.metric:  # a warm start brings its metric, in θ's coordinates
        return np.asarray(_identity(prep))
    start = [prep.jax.numpy.asarray(p[0], dtype=prep.dtype) for p in points]
    data = prep.data
    if len(program.devices) > 1:  # a pmap-ed program's data live on the host: compute on the first device
        data = prep.jax.device_put(data, program.devices[0])
        start = prep.jax.device_put(start, program.devices[0])
    return np.asarray(program.factor(start, data), dtype=np.float64)


@dataclass(frozen=True)
class JaxSampler:
    """A JAX NUTS backend: its one-chain builder and the library that builder imports.

    Its methods are what the registry calls (:class:`~bayesmmm.inference.base.Backend`'s
    ``start``, ``precompile`` and ``sample``).
    """

    chain: ChainBuilder
    library: str

    def start(self, config: SamplerConfig):
        """JAX configured and :attr:`library` imported on this thread; the ``jax`` module."""
        return start(config, self.library)

    def precompile(self, model, config: SamplerConfig, cache_key: str) -> None:
        """Translate ``model`` and compile its sampling program now, for a later fit to reuse.

        ``cache_key`` is the model's structure key (``MMM.structure_key``): a fit of a model
        with that key and the same sampler settings then skips translation and compilation.
        Meant for a background thread (XLA compiles without the GIL) while the caller does
        other work, e.g. the demo's report while its calibrated model compiles.
        """
        jax = self.start(config)
        with precision(jax, config.precision):
            prep = _prepare(jax, model, config, cache_key, self.chain)
            if prep.program.compiled is None:
                prep.program.compiled = _lowered(prep, config).compile()

    def sample(
        self,
        model,
        config: SamplerConfig,
        cache_key: str | None = None,
        prepare: Callable[[], Any] | None = None,
        warm: WarmStart | None = None,
    ) -> tuple[Any, dict[str, float]]:
        """Sample ``model``: the registry's ``sample`` (:class:`~bayesmmm.inference.base.SampleFn`).

        Returns the DataTree (``posterior`` with the model's dims and coords,
        ``sample_stats`` in the common layout) and timings ``compile_s`` (translating the
        model and compiling the sampling program: 0-ish when reused in this process),
        ``sample_s``, ``total_s``, ``compile_reused``, ``translation``, ``devices``,
        ``platform``. ``prepare`` (optional) runs while XLA compiles the sampling program.
        ``warm`` (only for a chain builder that accepts ``warm=True``: the registry's
        ``warm_metric`` capability): the chains start at ``warm.points`` (a point whose
        log-density is not finite is replaced by a jittered initial point) and run with its mass
        matrix and step size (``config.tune`` is the warm-up, set by the caller).
        """
        begin = time.perf_counter()
        jax = self.start(config)
        with precision(jax, config.precision):
            prep = _prepare(jax, model, config, cache_key, self.chain, warm)
            jm, program, dtype = prep.jm, prep.program, prep.dtype
            # compiled once per program: traced here (JAX's precision setting is per thread),
            # XLA compiles on a worker thread (C++, without the GIL, mostly on one core) while
            # this thread draws the initial points and does the caller's ``prepare`` work
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bayesmmm-xla") as pool:
                if program.compiled is None:
                    compiling = pool.submit(_lowered(prep, config).compile)
                logp = lambda p: program.logp_batch(p, prep.data)  # noqa: E731
                points = initial_points(jm, config.chains, config.seed, logp)
                if warm is not None:
                    points = _warm_points(warm, points, logp)
                factor = _factor(prep, points)
                points = to_scaled(points, factor)
                positions = prep.placed([jax.numpy.asarray(p, dtype=dtype) for p in points])
                if prepare is not None:
                    prepare()
                if program.compiled is None:
                    program.compiled = compiling.result()
            compiled = program.compiled
            compiled_at = time.perf_counter()
            compile_wall = compiled_at - begin
            scaled_data = [*prep.data, jax.numpy.asarray(factor, dtype=dtype)]
            if len(program.devices) == 1:
                scaled_data = jax.device_put(scaled_data, program.devices[0])
            draws, stats = compiled(prep.keys, positions, scaled_data, *prep.metric)
            jax.block_until_ready((draws, stats))
            n_dev = len(program.devices)
            if config.chains == 1:  # restore the chain axis
                draws, stats = jax.tree.map(lambda x: x[None], (draws, stats))
            elif 1 < n_dev < config.chains:
                draws, stats = jax.tree.map(lambda x: x.reshape(config.chains, *x.shape[2:]), (draws, stats))
            sampled_at = time.perf_counter()
            draws = from_scaled(draws, factor, jm.value_shapes)  # θ = L u
            constrained = program.constrain(draws)
            constrained = [np.asarray(c, dtype=np.float64) for c in constrained]
            stats = {k: np.asarray(v) for k, v in stats.items()}
        tree = posterior_tree(model, jm.var_names, constrained, stats, config.backend)
        total = time.perf_counter() - begin
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


def _warm_points(warm: WarmStart, fallback: list[np.ndarray], logp: Callable) -> list[np.ndarray]:
    """``warm.points`` stacked per value variable ``(chain, ...)``; a chain whose warm point has a
    non-finite log-density (or that has none) keeps its ``fallback`` start."""
    chains = fallback[0].shape[0] if fallback else 0
    points = [np.array(f, dtype=float) for f in fallback]
    for c in range(min(chains, len(warm.points))):
        for i, value in enumerate(warm.points[c]):
            if np.shape(value) != points[i].shape[1:]:
                return [np.array(f, dtype=float) for f in fallback]
            points[i][c] = value
    ok = np.isfinite(np.asarray(logp(points)))
    for i, f in enumerate(fallback):
        points[i][~ok] = f[~ok]
    return points
