"""Posterior scales for the JAX samplers: sample ``u = L⁻¹ θ`` where ``L = diag(s)``, ``s`` an estimate of each
coordinate's posterior standard deviation, so that the warm-up adapts a metric of order one.

Why: NumPyro's and BlackJAX's warm-ups start from the identity metric and regularize every
estimated (co)variance toward ``1e-3`` (``Σ̂ n/(n+5) + 1e-3 · 5/(n+5) I``, Stan's rule): on the
unconstrained space they assume coordinates of order one. On daily data the intercept, trend,
day-of-week and yearly terms are pinned to ``σ / √T`` (posterior sd ~1e-3 of the scaled target on
365 days of 1.5% noise). Measured on one year of daily data with 10 channels
(``benchmarks/daily_geometry.py``): the day-of-week terms' adapted inverse mass was 4.8e-5 against
a posterior variance of 8.5e-7 — the regularization floor, 60× too large — so the step size fell
to 0.08 and trees to ~70 leapfrog steps; and the warm-up's first windows, with the identity
metric, ran at the maximum tree depth (~1000 steps per iteration): 88% of all gradients.

The scales are the Laplace approximation's: the mode of the log-density on the unconstrained space
(BFGS from the initial point) and ``s = √diag(H⁻¹)`` of the negative Hessian ``H`` there (central
differences of the gradient; ``1/√H_ii`` where ``H`` is not positive definite), clipped to
``[1e-10, 1]``: a coordinate is only ever scaled *down*, so a poor estimate leaves it no worse off
than the identity (a scale too small only widens ``u``, which the adaptation then measures; one
too large would put the regularization floor above its variance). Where the backend adapts a
dense metric, ``L`` also carries the Laplace correlations (:func:`curvature_factor`,
``θ = L u``). Either way ``θ = L u`` is a fixed linear change of variables: the target
distribution, the draws (mapped back) and the log-density are those of the model (the constant
Jacobian ``log |det L|`` is left out, so ``lp`` stays the model's log-density).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "MAX_SCALE",
    "MIN_SCALE",
    "REGULARIZATION",
    "apply_factor",
    "curvature_factor",
    "curvature_scales",
    "from_scaled",
    "laplace_hessian",
    "metric_factor",
    "scaled_logp",
    "to_scaled",
]

#: the constant NumPyro's, BlackJAX's (and Stan's) warm-ups shrink each window's covariance estimate toward
#: (``n/(n+5) Σ̂ + 5/(n+5) · 1e-3 · I``)
REGULARIZATION = 1e-3
#: scales are clipped to ``[MIN_SCALE, MAX_SCALE]``: coordinates are only ever scaled down
MAX_SCALE = 1.0
MIN_SCALE = 1e-10


def curvature_scales(hessian: Any) -> Any:
    """Per-coordinate scales from the negative log-density's Hessian ``H`` (JAX or NumPy array).

    ``√diag(H⁻¹)`` (the Laplace approximation's marginal sd) where ``H`` is positive definite;
    otherwise ``1/√H_ii`` for coordinates with positive curvature and :data:`MAX_SCALE` for the
    others; non-finite values become :data:`MAX_SCALE`; all clipped to ``[MIN_SCALE, MAX_SCALE]``.
    """
    import jax.numpy as jnp

    h = jnp.asarray(hessian)
    h = 0.5 * (h + h.T)
    diag = jnp.diagonal(h)
    chol = jnp.linalg.cholesky(h)
    eye = jnp.eye(h.shape[0], dtype=h.dtype)
    inverse = jnp.linalg.solve(h, eye) if h.shape[0] else eye
    from_inverse = jnp.sqrt(jnp.diagonal(inverse))
    positive_definite = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(from_inverse))
    from_diag = jnp.where(diag > 0, 1.0 / jnp.sqrt(jnp.where(diag > 0, diag, 1.0)), MAX_SCALE)
    scales = jnp.where(positive_definite, from_inverse, from_diag)
    scales = jnp.where(jnp.isfinite(scales) & (scales > 0), scales, MAX_SCALE)
    return jnp.clip(scales, MIN_SCALE, MAX_SCALE)


def curvature_factor(hessian: Any) -> Any:
    """A factor ``L`` of the Laplace covariance with clipped marginal scales: ``L = diag(s) chol(C)``,
    ``C`` the correlation matrix of ``H⁻¹`` and ``s`` :func:`curvature_scales`; ``diag(s)`` where ``H``
    is not positive definite. ``θ = L u`` then has ``u`` about white where the Laplace approximation
    holds (a diagonal metric suffices) and is the diagonal scaling otherwise."""
    import jax.numpy as jnp

    h = jnp.asarray(hessian)
    h = 0.5 * (h + h.T)
    scales = curvature_scales(h)
    n = h.shape[0]
    cov = jnp.linalg.solve(h, jnp.eye(n, dtype=h.dtype)) if n else h
    sd = jnp.sqrt(jnp.diagonal(cov))
    corr = cov / (sd[:, None] * sd[None, :])
    chol = jnp.linalg.cholesky(0.5 * (corr + corr.T))
    ok = jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.isfinite(jnp.linalg.cholesky(h)))
    return jnp.where(ok, scales[:, None] * chol, jnp.diag(scales))


def metric_factor(hessian: Any, dense: bool = False) -> Any:
    """The sampled coordinates' factor ``L`` (``θ = L u``) from the negative Hessian at the mode:
    ``diag(s) / √REGULARIZATION`` (:func:`curvature_scales`), or with ``dense`` the clipped Laplace
    covariance's factor (:func:`curvature_factor`) over the same constant.

    Dividing by ``√REGULARIZATION`` gives every ``u`` the variance :data:`REGULARIZATION` where the
    Laplace approximation holds: the warm-ups' fixed shrinkage of each window's covariance estimate,
    ``n/(n+5) Σ̂ + 5/(n+5) · 1e-3 · I``, then shrinks toward the Laplace variances themselves (a
    ``5/(n+5)`` shrinkage toward a diagonal target) instead of toward a constant that is a thousand
    times a daily intercept's variance, or a thousandth of a weakly identified parameter's. A global
    scale does not change NUTS's trees (the step size adapts to it), only this shrinkage's target.
    """
    import jax.numpy as jnp

    factor = curvature_factor(hessian) if dense else curvature_scales(hessian)
    return factor / jnp.sqrt(REGULARIZATION)


def laplace_hessian(logp: Callable, position: list, data: list, maxiter: int = 500) -> Any:
    """The negative Hessian of ``logp(position, data)`` at its mode, over the flattened coordinates (JAX; jit it).

    BFGS on ``-logp`` from ``position`` (at most ``maxiter`` iterations; its result is used only
    if finite and no worse than the start), then the Hessian there by central differences of the
    gradient, one coordinate at a time (``lax.map``: the memory of one gradient).
    :func:`curvature_scales` or :func:`curvature_factor` turn it into the sampler's ``L``.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from jax.scipy.optimize import minimize

    flat0, unravel = ravel_pytree(list(position))  # the order of _flatten: blocks in turn, C order

    def objective(x):
        value = -logp(unravel(x), data)
        return jnp.where(jnp.isfinite(value), value, jnp.inf)

    result = minimize(objective, flat0, method="BFGS", options={"maxiter": maxiter})
    better = jnp.all(jnp.isfinite(result.x)) & (objective(result.x) <= objective(flat0))
    mode = jnp.where(better, result.x, flat0)
    grad = jax.grad(objective)
    # central differences of the gradient (first derivatives only: an exported log-density has no
    # second), each coordinate's step 1e-4 of BFGS's own estimate of its sd
    steps = 1e-4 * jnp.clip(jnp.sqrt(jnp.abs(jnp.diagonal(result.hess_inv))), 1e-8, 1.0)
    steps = jnp.where(better & jnp.isfinite(steps), steps, 1e-6)
    eye = jnp.eye(flat0.shape[0], dtype=flat0.dtype)

    def column(i):
        e = eye[i] * steps[i]
        return (grad(mode + e) - grad(mode - e)) / (2.0 * steps[i])

    hessian = jax.lax.map(column, jnp.arange(flat0.shape[0]))
    return 0.5 * (hessian + hessian.T)


def _flatten(blocks: list, lead: int, xp: Any) -> Any:
    """Blocks ``(*lead_shape, *shape_b)`` → one array ``(*lead_shape, Σ size_b)``."""
    if not blocks:
        return xp.zeros(0)
    lead_shape = blocks[0].shape[:lead]
    return xp.concatenate([xp.reshape(b, (*lead_shape, -1)) for b in blocks], axis=-1)


def _split(flat: Any, shapes: list[tuple[int, ...]], xp: Any) -> list:
    """Inverse of :func:`_flatten`."""
    out, start = [], 0
    lead_shape = flat.shape[:-1]
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(xp.reshape(flat[..., start : start + size], (*lead_shape, *shape)))
        start += size
    return out


def apply_factor(factor: Any, flat: Any, xp: Any = None) -> Any:
    """``θ = L u`` for ``u`` with leading axes: ``L`` a ``(dim, dim)`` matrix or a ``(dim,)`` vector of scales."""
    if xp is None:
        import jax.numpy as xp
    return flat * factor if factor.ndim == 1 else xp.einsum("ij,...j->...i", factor, flat)


def scaled_logp(logp: Callable, n_data: int, shapes: list[tuple[int, ...]]) -> Callable:
    """``logp`` on the sampled coordinates: ``(u, data + [L]) ↦ logp(L u, data)`` (JAX).

    ``L`` (:func:`apply_factor`: scales or a matrix over the flattened coordinates) travels as the last
    entry of the data list, an argument of the compiled program (which then serves any ``L``); the
    first ``n_data`` entries are the model's data. ``shapes``: the blocks of ``u``.
    """
    import jax.numpy as jnp

    def logp_u(position: list, data: list):
        theta = apply_factor(data[n_data], _flatten(list(position), 0, jnp))
        return logp(_split(theta, shapes, jnp), data[:n_data])

    return logp_u


def to_scaled(points: list[np.ndarray], factor: np.ndarray) -> list[np.ndarray]:
    """``u = L⁻¹ θ`` of points with one leading (chain) axis, as blocks like ``points``."""
    shapes = [np.shape(p)[1:] for p in points]
    flat = _flatten([np.asarray(p, dtype=np.float64) for p in points], 1, np)
    factor = np.asarray(factor, dtype=np.float64)
    u = flat / factor if factor.ndim == 1 else np.linalg.solve(factor, flat.T).T
    return _split(u, shapes, np)


def from_scaled(draws: list, factor: Any, shapes: list[tuple[int, ...]]) -> list:
    """``θ = L u`` of sampled blocks with leading (chain, draw) axes (JAX arrays)."""
    import jax.numpy as jnp

    flat = _flatten(list(draws), 2, jnp)
    return _split(apply_factor(jnp.asarray(factor, dtype=flat.dtype), flat), shapes, jnp)
