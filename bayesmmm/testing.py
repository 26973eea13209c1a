"""The contract every adstock and saturation must meet, as checks for your own test suite.

The built-in transforms pass these checks; run them on yours (from pytest or a plain
script) before fitting with it::

    # test_my_transforms.py
    from bayesmmm.testing import check_adstock, check_saturation

    from my_transforms import MyAdstock, MySaturation


    def test_my_saturation():
        check_saturation(MySaturation)


    def test_my_adstock():
        check_adstock(MyAdstock, reference=lambda lags, alpha: alpha**lags)

Each check draws parameters from the transform's priors and raises :class:`AssertionError`
naming the transform and every property it fails:

- **registered**: ``SATURATIONS.get(cls.name) is cls`` (``ADSTOCKS`` for adstocks), so
  YAML can name it;
- **priors**: one prior per parameter; every prior creates a PyMC random variable with
  one value per channel; draws are finite;
- **shapes**: ``(date, channel)`` input with one parameter value per channel gives
  ``(date, channel)``; a ``(date, geo, channel)`` input with ``(geo, channel)`` parameters
  gives what each geo gives on its own;
- **domain**: outputs are finite at every prior draw (the draws lie in the function's
  valid domain), including zero and large inputs;
- saturations, **zero**: 0 maps to 0; **monotone**: non-decreasing in ``x`` and not
  constant; **bounded**: between 0 and 1, so the channel coefficient is the maximum effect;
- adstocks, **weights**: lag weights are non-negative and finite; **normalized**: with
  ``normalize`` on, they sum to 1 and adstock conserves the total (carried-over spend is
  neither created nor lost); **zero**: no spend gives no effect; **convolution**: the
  output equals a NumPy loop over the weights;
- **numpy-pytensor**: :meth:`~bayesmmm.components.base.Transform.evaluate` (NumPy
  inputs) agrees with a compiled PyTensor graph of symbolic inputs, and with your NumPy
  ``reference`` function if you pass one;
- **gradients**: ``pytensor.grad`` with respect to every parameter and the input is finite
  at every prior draw, zero spend included (NUTS needs them).

Checks compile with :func:`~bayesmmm.components.base.numpy_mode`, so each transform takes
well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["check_adstock", "check_registered_components", "check_saturation", "check_transform"]

#: inputs at which saturations are checked, in multiples of the channel's mean spend
SATURATION_GRID = np.unique(np.concatenate([np.linspace(0.0, 10.0, 101), np.geomspace(1e-6, 1e4, 41)]))
#: tolerance for "non-decreasing", "0 at 0" and "bounded by 1"
TOLERANCE = 1e-9


class _Context:
    """A transform instance, its prior draws (one column per draw) and what the checks share."""

    def __init__(self, obj: Any, kind: str, seed: int, n_draws: int, l_max: int) -> None:
        from bayesmmm.components import ADSTOCKS, SATURATIONS, Adstock, Saturation

        base, registry = {"adstock": (Adstock, ADSTOCKS), "saturation": (Saturation, SATURATIONS)}[kind]
        cls = obj if isinstance(obj, type) else type(obj)
        if not issubclass(cls, base):
            raise TypeError(f"check_{kind} needs a {base.__name__} subclass or instance, got {obj!r}")
        self.kind = kind
        self.cls = cls
        self.registry = registry
        self.label = f"{kind} {getattr(cls, 'name', '') or '(unnamed)'!r} ({cls.__module__}.{cls.__qualname__})"
        if obj is cls:
            try:
                obj = cls(l_max=l_max) if kind == "adstock" else cls()
            except Exception as exc:
                raise AssertionError(
                    f"{self.label} fails 'defaults': {cls.__name__}() raised {type(exc).__name__}: {exc}"
                ) from exc
        self.transform = obj
        self.seed = seed
        self.n_draws = int(n_draws)
        if self.n_draws < 1:
            raise ValueError(f"n_draws must be >= 1, got {n_draws}")
        self._draws: dict[str, np.ndarray] | None = None

    @property
    def draws(self) -> dict[str, np.ndarray]:
        """Parameter → 1-D array: every prior draw (per-channel priors flattened)."""
        if self._draws is None:
            from bayesmmm.components.base import flatten_draws

            _, self._draws = flatten_draws(self.transform.sample_prior(self.n_draws, seed=self.seed), self.n_draws)
        return self._draws

    @property
    def columns(self) -> int:
        return len(next(iter(self.draws.values()))) if self.draws else self.n_draws

    def at(self, j: int) -> str:
        """The parameters of draw ``j``, for messages."""
        return "{" + ", ".join(f"{p}={v[j]:.6g}" for p, v in self.draws.items()) + "}"


def _evaluate(outputs: Any, rewrite: bool = True) -> Any:
    """Evaluate graphs of constants with NumPy; ``rewrite=False`` skips graph rewrites (2x faster
    to compile, for checks of shapes only)."""
    import pytensor
    from pytensor.compile.mode import Mode

    from bayesmmm.components.base import numpy_mode

    return pytensor.function([], outputs, mode=numpy_mode() if rewrite else Mode(linker="py", optimizer=None))()


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_registered(ctx: _Context) -> None:
    name = getattr(ctx.cls, "name", "")
    decorator = f"@{ctx.kind.upper()}S.register(name)"
    if not name:
        raise AssertionError(f"{ctx.cls.__name__} has no name: register it with {decorator}")
    if name not in ctx.registry.names():
        raise AssertionError(f"{name!r} is not in {ctx.kind.upper()}S: register {ctx.cls.__name__} with {decorator}")
    found = ctx.registry.get(name)
    if found is not ctx.cls:
        raise AssertionError(
            f"{ctx.kind.upper()}S.get({name!r}) is {found.__module__}.{found.__qualname__}, "
            f"not {ctx.cls.__qualname__}; the name is inherited or registered by another class: "
            f"register {ctx.cls.__name__} under its own name with {decorator}"
        )


def _check_priors(ctx: _Context) -> None:
    import pymc as pm

    t = ctx.transform
    if set(t.priors) != set(t.param_names):
        raise AssertionError(f"priors {sorted(t.priors)} do not match the parameters {list(t.param_names)}")
    draws = t.sample_prior(ctx.n_draws, seed=ctx.seed)
    for p, v in draws.items():
        if v.shape[0] != ctx.n_draws:
            raise AssertionError(f"sample_prior({ctx.n_draws}) gives {p!r} the shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise AssertionError(f"the prior of {p!r}, {t.priors[p]}, draws non-finite values")
    n_channels = max([v.shape[-1] for v in draws.values() if v.ndim > 1] or [3])
    coords: dict[str, Any] = {"channel": [f"c{i}" for i in range(n_channels)]}
    for prior in t.priors.values():
        for dim in prior.dims or ():
            coords.setdefault(dim, [f"{dim}{i}" for i in range(2)])
    with pm.Model(coords=coords) as model:
        rvs = t.create_priors(("channel",))
    if set(rvs) != set(t.param_names):
        raise AssertionError(f"create_priors returns {sorted(rvs)}, not the parameters {list(t.param_names)}")
    free = set(model.free_RVs)
    for p, rv in rvs.items():
        if rv not in free:
            raise AssertionError(f"the prior of {p!r} does not create a free random variable in the model")
        if rv.name != t.variable_name(p):
            raise AssertionError(f"the prior of {p!r} creates {rv.name!r}, not {t.variable_name(p)!r}")
    if rvs:
        from bayesmmm.components.base import numpy_mode

        values = pm.draw(list(rvs.values()), random_seed=ctx.seed, mode=numpy_mode())
        for (p, rv), v in zip(rvs.items(), values, strict=True):
            if not np.all(np.isfinite(v)):
                raise AssertionError(f"the model variable {rv.name!r} draws non-finite values")
            if t.priors[p].dims is None and np.shape(v) != (n_channels,):
                raise AssertionError(
                    f"the model variable {rv.name!r} has shape {np.shape(v)}, not one value per channel ({n_channels},)"
                )


def _small_draws(ctx: _Context, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The first ``prod(shape)`` draws, reshaped (cycling if there are fewer)."""
    size = int(np.prod(shape))
    index = np.arange(size) % ctx.columns
    return {p: v[index].reshape(shape) for p, v in ctx.draws.items()}


def _check_shapes(ctx: _Context) -> None:
    t = ctx.transform
    rng = np.random.default_rng(ctx.seed)
    n_dates, n_geos, n_channels = 13, 2, 3
    x = rng.gamma(2.0, 1.0, size=(n_dates, n_channels))
    xg = rng.gamma(2.0, 1.0, size=(n_dates, n_geos, n_channels))
    params = _small_draws(ctx, (n_channels,))
    pg = _small_draws(ctx, (n_geos, n_channels))
    outputs = [t.apply(x, **params), t.apply(xg, **pg)]
    outputs += [t.apply(xg[:, g], **{p: v[g] for p, v in pg.items()}) for g in range(n_geos)]
    if ctx.kind == "adstock":
        outputs.append(t.weights(**params))
    out, out_geo, *rest = (np.asarray(v) for v in _evaluate(outputs, rewrite=False))
    if out.shape != x.shape:
        raise AssertionError(
            f"(date, channel) input {x.shape} with one parameter value per channel gives shape {out.shape}"
        )
    if ctx.kind == "adstock" and rest[-1].shape != (t.l_max, n_channels):
        raise AssertionError(
            f"weights() with {n_channels} channels has shape {rest[-1].shape}, not {(t.l_max, n_channels)}"
        )
    if out_geo.shape != xg.shape:
        raise AssertionError(
            f"(date, geo, channel) input {xg.shape} with (geo, channel) parameters gives {out_geo.shape}"
        )
    for g in range(n_geos):
        if not np.allclose(out_geo[:, g], rest[g], rtol=1e-10, atol=1e-12, equal_nan=True):
            raise AssertionError(f"geo {g} of a (date, geo, channel) input differs from that geo on its own")


def _symbolic(ctx: _Context, ndim: int, mode: Any):
    """Compile x, *params → (output, d sum / dx, d sum / dparam...) with symbolic inputs."""
    import pytensor
    import pytensor.tensor as pt

    from bayesmmm.components.base import numpy_mode

    x = pt.tensor("x", shape=(None,) * ndim, dtype="float64")
    params = {p: pt.vector(p, dtype="float64") for p in ctx.transform.param_names}
    out = ctx.transform.apply(x, **params)
    grads = pytensor.grad(pt.sum(out), [x, *params.values()])
    return pytensor.function([x, *params.values()], [out, *grads], mode=numpy_mode() if mode is None else mode)


def _compare(name: str, got: np.ndarray, expected: np.ndarray, rtol: float, where: Callable[[tuple], str]) -> None:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: shape {got.shape} vs {expected.shape}")
    close = np.isclose(got, expected, rtol=rtol, atol=1e-12, equal_nan=True)
    if not close.all():
        i = _first_bad(~close)
        raise AssertionError(
            f"{name}: {got[i]:.12g} vs {expected[i]:.12g} {where(i)} ({int((~close).sum())} values differ)"
        )


def _check_gradients(ctx: _Context, grads: list[np.ndarray], where: Callable[[tuple], str]) -> None:
    """``grads``: d sum(output) / d x (one value per input), then per parameter (one per draw)."""
    names = ["x", *ctx.transform.param_names]
    for name, g in zip(names, grads, strict=True):
        g = np.asarray(g)
        bad = ~np.isfinite(g)
        if bad.any():
            i = _first_bad(bad)
            if name == "x":
                raise AssertionError(f"d output / d x is {g[i]:.6g} {where(i)}")
            raise AssertionError(f"d sum(output) / d {name} is {g[i]:.6g} at {ctx.at(i[-1])}")


def _shorten(message: str, lines: int = 3, chars: int = 500) -> str:
    """The start of a long (PyTensor) error message, indented under its check."""
    kept = message.strip().splitlines()[:lines]
    short = "\n    ".join(kept)[:chars]
    return short + (" [...]" if len(short) < len(message.strip()) else "")


def _run(ctx: _Context, checks: list[tuple[str, Callable[[], None]]]) -> None:
    failures = []
    for name, check in checks:
        try:
            check()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # user code raising is a failure of that property
            failures.append(f"{name}: raised {type(exc).__name__}: {_shorten(str(exc))}")
    if failures:
        lines = "\n".join(f"  - {f}" for f in failures)
        raise AssertionError(f"{ctx.label} fails {len(failures)} of {len(checks)} checks:\n{lines}")


def check_saturation(
    saturation: Any,
    *,
    reference: Callable[..., Any] | None = None,
    seed: int = 0,
    n_draws: int = 100,
    rtol: float = 1e-9,
    mode: Any = None,
) -> None:
    """Check that a saturation meets the contract the built-ins meet.

    Parameters
    ----------
    saturation : Saturation subclass or instance
        A class is checked with its default priors; an instance with its own priors
        and settings.
    reference : callable, optional
        An independent NumPy version, ``reference(x, **params) -> array``, that the
        transform must match (within ``rtol``) at every prior draw.
    seed : int, default 0
        Seed of the prior draws.
    n_draws : int, default 100
        Number of prior draws (per channel value of a per-channel prior).
    rtol : float, default 1e-9
        Relative tolerance against ``reference``.
    mode : pytensor Mode or str, optional
        Mode of the compiled symbolic graph (default
        :func:`~bayesmmm.components.base.numpy_mode`); ``"NUMBA"`` checks the sampler's
        backend too, at the cost of seconds of compilation.

    Raises
    ------
    AssertionError
        Naming the transform and every property it fails (see :mod:`bayesmmm.testing`).
    TypeError
        If ``saturation`` is not a :class:`~bayesmmm.components.saturation.Saturation`.

    Examples
    --------
    >>> from bayesmmm import SATURATIONS
    >>> check_saturation(SATURATIONS.get("tanh"), reference=lambda x, c: np.tanh(x / c))
    """
    ctx = _Context(saturation, "saturation", seed, n_draws, l_max=8)
    state: dict[str, Any] = {}

    def grid() -> np.ndarray:
        """Every input of the grid for every draw: shape (len(SATURATION_GRID), draws)."""
        return SATURATION_GRID[:, None] * np.ones((1, ctx.columns))

    def values() -> np.ndarray:
        if "y" not in state:
            state["y"] = np.asarray(ctx.transform.evaluate(grid(), **ctx.draws), dtype=float)
        return state["y"]

    def where(i: tuple) -> str:
        return f"at x={SATURATION_GRID[i[0]]:.6g}, {ctx.at(i[1])}" if len(i) == 2 else f"at {i}"

    def domain() -> None:
        y = values()
        if y.shape != grid().shape:
            raise AssertionError(f"input of shape {grid().shape} gives shape {y.shape}")
        bad = ~np.isfinite(y)
        if bad.any():
            i = _first_bad(bad)
            raise AssertionError(f"output {y[i]:.6g} {where(i)} ({int(bad.sum())} non-finite values)")

    def zero() -> None:
        y0 = values()[0]
        bad = ~(np.abs(y0) <= TOLERANCE)
        if bad.any():
            j = _first_bad(bad)[0]
            raise AssertionError(f"maps 0 to {y0[j]:.6g}, not 0, at {ctx.at(j)}")

    def monotone() -> None:
        y = values()
        step = np.diff(y, axis=0)
        bad = step < -TOLERANCE * np.maximum(1.0, np.abs(y[1:]))  # non-finite values: see 'domain'
        if bad.any():
            i, j = _first_bad(bad)
            raise AssertionError(
                f"decreases in x: {y[i, j]:.6g} at x={SATURATION_GRID[i]:.6g} to {y[i + 1, j]:.6g} at "
                f"x={SATURATION_GRID[i + 1]:.6g}, {ctx.at(j)}"
            )
        flat = y[-1] <= y[0]
        if flat.any():
            j = _first_bad(flat)[0]
            raise AssertionError(f"constant in x (no response to spend) at {ctx.at(j)}")

    def bounded() -> None:
        y = values()
        bad = (y < -TOLERANCE) | (y > 1.0 + TOLERANCE)  # non-finite values: see 'domain'
        if bad.any():
            i = _first_bad(bad)
            raise AssertionError(
                f"output {y[i]:.6g} outside [0, 1] {where(i)}; the channel coefficient is the maximum effect "
                "only if the saturation is bounded by 1"
            )

    def agree() -> None:
        x = grid()
        out, *grads = _symbolic(ctx, 2, mode)(x, *ctx.draws.values())
        state["grads"] = grads
        _compare("Transform.evaluate vs compiled PyTensor graph", values(), out, 1e-10, where)
        if reference is not None:
            expected = reference(x, **ctx.draws)
            _compare("vs the reference", values(), expected, rtol, where)

    def gradients() -> None:
        if "grads" not in state:
            _, *state["grads"] = _symbolic(ctx, 2, mode)(grid(), *ctx.draws.values())
        _check_gradients(ctx, state["grads"], where)

    _run(
        ctx,
        [
            ("registered", lambda: _check_registered(ctx)),
            ("priors", lambda: _check_priors(ctx)),
            ("shapes", lambda: _check_shapes(ctx)),
            ("domain", domain),
            ("zero", zero),
            ("monotone", monotone),
            ("bounded", bounded),
            ("numpy-pytensor", agree),
            ("gradients", gradients),
        ],
    )


def numpy_convolve(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Reference adstock: ``out[t] = sum_l weights[l] * x[t - l]`` as a plain loop over lags."""
    out = np.zeros(np.broadcast_shapes(x.shape, weights.shape[1:]))
    for lag in range(weights.shape[0]):
        out[lag:] += weights[lag] * x[: x.shape[0] - lag]
    return out


def _adstock_symbolic(ctx: _Context, x: np.ndarray, mode: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """The adstocked ``x`` from a compiled graph of symbolic inputs, and the gradients of its sum.

    With the base class's ``apply`` (a convolution, linear in ``x``), the gradients follow from
    the weights' alone, exactly, and compile several times faster:
    ``d sum(out) / d param = sum_l c_l d w_l / d param`` with ``c_l`` the sum of ``x`` over the
    dates that lag ``l`` reaches, and ``d sum(out) / d x_t = sum_l w_l`` over ``l < T - t``.
    An adstock overriding ``apply`` is differentiated as a whole.
    """
    import pytensor
    import pytensor.tensor as pt

    from bayesmmm.components import Adstock
    from bayesmmm.components.base import numpy_mode

    t = ctx.transform
    mode = numpy_mode() if mode is None else mode
    if type(t).apply is not Adstock.apply:
        out, *grads = _symbolic(ctx, x.ndim, mode)(x, *ctx.draws.values())
        return out, grads
    xs = pt.matrix("x", dtype="float64")
    params = {p: pt.vector(p, dtype="float64") for p in t.param_names}
    reach = pt.matrix("reach", dtype="float64")  # (l_max, columns): c_l
    w = t.weights(**params)
    grads = pytensor.grad(pt.sum(reach * w), list(params.values())) if params else []
    fn = pytensor.function([xs, reach, *params.values()], [t.apply(xs, **params), w, *grads], mode=mode)
    n = x.shape[0]
    c = np.stack([x[: max(n - lag, 0)].sum(axis=0) for lag in range(t.l_max)])
    out, w_value, *grads = fn(x, c, *ctx.draws.values())
    w_value = np.broadcast_to(w_value, (t.l_max, x.shape[1]))
    cumulative = np.cumsum(w_value, axis=0)
    dx = cumulative[np.minimum(n - 1 - np.arange(n), t.l_max - 1)]
    return out, [dx, *grads]


def check_adstock(
    adstock: Any,
    *,
    reference: Callable[..., Any] | None = None,
    seed: int = 0,
    n_draws: int = 100,
    l_max: int = 8,
    rtol: float = 1e-9,
    mode: Any = None,
) -> None:
    """Check that an adstock meets the contract the built-ins meet.

    Parameters
    ----------
    adstock : Adstock subclass or instance
        A class is checked as ``cls(l_max=l_max)`` (default priors, ``normalize=True``);
        an instance with its own priors and settings (normalization is checked only when
        its ``normalize`` is on).
    reference : callable, optional
        An independent NumPy version of the lag weights before normalization,
        ``reference(lags, **params) -> array`` with ``lags`` of shape ``(l_max, 1)`` and
        parameters of shape ``(n,)``; the weights and the adstocked series must match it.
    seed : int, default 0
        Seed of the prior draws.
    n_draws : int, default 100
        Number of prior draws (per channel value of a per-channel prior).
    l_max : int, default 8
        Number of lags when ``adstock`` is a class.
    rtol : float, default 1e-9
        Relative tolerance against ``reference``.
    mode : pytensor Mode or str, optional
        Mode of the compiled symbolic graph (default
        :func:`~bayesmmm.components.base.numpy_mode`).

    Raises
    ------
    AssertionError
        Naming the transform and every property it fails (see :mod:`bayesmmm.testing`).
    TypeError
        If ``adstock`` is not an :class:`~bayesmmm.components.adstock.Adstock`.

    Examples
    --------
    >>> from bayesmmm import ADSTOCKS
    >>> check_adstock(ADSTOCKS.get("geometric"), reference=lambda lags, alpha: alpha**lags)
    """
    ctx = _Context(adstock, "adstock", seed, n_draws, l_max=l_max)
    t = ctx.transform
    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {}

    def series() -> np.ndarray:
        """Spend over 3 l_max dates, zero weeks included, then l_max - 1 empty weeks at the end."""
        if "x" not in state:
            n = 3 * t.l_max
            x = rng.gamma(2.0, 1.0, size=(n, ctx.columns)) * (rng.random((n, ctx.columns)) > 0.3)
            x[0] = 0.0
            state["x"] = np.concatenate([x, np.zeros((t.l_max - 1, ctx.columns))])
        return state["x"]

    def constants() -> dict[str, np.ndarray]:
        """The function's raw weights, the weights, the adstocked series and of no spend: one compile."""
        if "constants" not in state:
            from bayesmmm.components.adstock import lag_tensor

            params = {p: np.asarray(v) for p, v in ctx.draws.items()}
            outputs = {
                "raw": type(t).function(lag_tensor(t.l_max, 1), **params, **t.settings),
                "weights": t.weights(**params),
                "output": t.apply(series(), **params),
                "zero": t.apply(np.zeros((t.l_max + 2, ctx.columns)), **params),
            }
            values = _evaluate(list(outputs.values()))
            state["constants"] = {k: np.asarray(v, dtype=float) for k, v in zip(outputs, values, strict=True)}
            raw = state["constants"]["raw"]
            if raw.ndim == 1 and raw.shape[0] == t.l_max:  # a function of the lags only (no parameters)
                state["constants"]["raw"] = np.broadcast_to(raw[:, None], (t.l_max, ctx.columns))
        return state["constants"]

    def raw_weights() -> np.ndarray:
        return constants()["raw"]

    def weights() -> np.ndarray:
        return constants()["weights"]

    def output() -> np.ndarray:
        return constants()["output"]

    def at_lag(i: tuple) -> str:
        return f"at lag {i[0]}, {ctx.at(i[1])}" if len(i) == 2 else f"at {i}"

    def at_date(i: tuple) -> str:
        return f"at date {i[0]}, {ctx.at(i[1])}" if len(i) == 2 else f"at {i}"

    def check_weights() -> None:
        for label, w in (("function", raw_weights()), ("weights()", weights())):
            if w.shape != (t.l_max, ctx.columns):
                raise AssertionError(f"{label} gives lag weights of shape {w.shape}, not {(t.l_max, ctx.columns)}")
            bad = ~np.isfinite(w)
            if bad.any():
                i = _first_bad(bad)
                raise AssertionError(f"{label} gives the weight {w[i]:.6g} {at_lag(i)}")
            bad = w < -TOLERANCE * np.maximum(1.0, np.abs(w).max(axis=0))
            if bad.any():
                i = _first_bad(bad)
                raise AssertionError(f"{label} gives the negative weight {w[i]:.6g} {at_lag(i)}")

    def normalized() -> None:
        if not t.normalize:
            return
        total = weights().sum(axis=0)
        bad = ~np.isclose(total, 1.0, rtol=1e-10, atol=0.0)
        if bad.any():
            j = _first_bad(bad)[0]
            raise AssertionError(f"normalized weights sum to {total[j]:.6g}, not 1, at {ctx.at(j)}")
        x, y = series(), output()
        bad = ~np.isclose(y.sum(axis=0), x.sum(axis=0), rtol=1e-10, atol=1e-12)
        if bad.any():
            j = _first_bad(bad)[0]
            raise AssertionError(
                f"carry-over does not conserve the total: {x[:, j].sum():.6g} in, {y[:, j].sum():.6g} out, "
                f"at {ctx.at(j)}"
            )

    def domain() -> None:
        y = output()
        if y.shape != series().shape:
            raise AssertionError(f"input of shape {series().shape} gives shape {y.shape}")
        bad = ~np.isfinite(y)
        if bad.any():
            i = _first_bad(bad)
            raise AssertionError(f"output {y[i]:.6g} {at_date(i)} ({int(bad.sum())} non-finite values)")

    def zero() -> None:
        y = constants()["zero"]
        bad = ~(np.abs(y) <= TOLERANCE)
        if bad.any():
            i = _first_bad(bad)
            raise AssertionError(f"no spend gives {y[i]:.6g} {at_date(i)}")

    def convolution() -> None:
        _compare(
            "adstock vs a NumPy loop over its weights", output(), numpy_convolve(series(), weights()), 1e-10, at_date
        )

    def symbolic() -> tuple[np.ndarray, list[np.ndarray]]:
        if "symbolic" not in state:
            state["symbolic"] = _adstock_symbolic(ctx, series(), mode)
        return state["symbolic"]

    def agree() -> None:
        out, _ = symbolic()
        _compare("Transform.evaluate vs compiled PyTensor graph", output(), out, 1e-10, at_date)
        if reference is not None:
            lags = np.arange(t.l_max, dtype=float)[:, None]
            expected = np.broadcast_to(np.asarray(reference(lags, **ctx.draws), dtype=float), (t.l_max, ctx.columns))
            _compare("weights vs the reference", raw_weights(), expected, rtol, at_lag)
            if t.normalize:
                expected = expected / expected.sum(axis=0, keepdims=True)
            _compare("adstock vs the reference", output(), numpy_convolve(series(), expected), rtol, at_date)

    def gradients() -> None:
        _check_gradients(ctx, symbolic()[1], at_date)

    _run(
        ctx,
        [
            ("registered", lambda: _check_registered(ctx)),
            ("priors", lambda: _check_priors(ctx)),
            ("shapes", lambda: _check_shapes(ctx)),
            ("weights", check_weights),
            ("normalized", normalized),
            ("domain", domain),
            ("zero", zero),
            ("convolution", convolution),
            ("numpy-pytensor", agree),
            ("gradients", gradients),
        ],
    )


def check_transform(transform: Any, **kwargs: Any) -> None:
    """:func:`check_adstock` or :func:`check_saturation`, whichever ``transform`` is."""
    from bayesmmm.components import Adstock, Saturation

    cls = transform if isinstance(transform, type) else type(transform)
    if issubclass(cls, Adstock):
        check_adstock(transform, **kwargs)
    elif issubclass(cls, Saturation):
        check_saturation(transform, **kwargs)
    else:
        raise TypeError(f"check_transform needs an Adstock or a Saturation, got {transform!r}")


def check_registered_components(
    *,
    seed: int = 0,
    n_draws: int = 100,
    references: Mapping[str, Mapping[str, Callable[..., Any]]] | None = None,
) -> dict[str, list[str]]:
    """Run the contract on every registered adstock and saturation (plugins included).

    Load your plugins first (``bayesmmm.components.load_plugins([...])``, an import, or an
    installed entry point); the built-ins are checked too.

    Parameters
    ----------
    seed, n_draws
        As in :func:`check_saturation`.
    references : mapping, optional
        ``{"adstock": {name: reference}, "saturation": {name: reference}}``: NumPy
        references for some names (see the ``reference`` of each check).

    Returns
    -------
    dict of str to list of str
        The names checked, by kind (``"adstock"``, ``"saturation"``).

    Raises
    ------
    AssertionError
        Listing every transform that fails and how.
    """
    from bayesmmm.components import ADSTOCKS, SATURATIONS

    references = references or {}
    checked: dict[str, list[str]] = {}
    failures = []
    for kind, registry, check in (("adstock", ADSTOCKS, check_adstock), ("saturation", SATURATIONS, check_saturation)):
        checked[kind] = []
        for name, cls in registry.items().items():
            try:
                check(cls, reference=references.get(kind, {}).get(name), seed=seed, n_draws=n_draws)
            except AssertionError as exc:
                failures.append(str(exc))
            checked[kind].append(name)
    if failures:
        raise AssertionError(f"{len(failures)} registered transform(s) fail the contract:\n" + "\n".join(failures))
    return checked
