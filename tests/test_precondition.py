"""The JAX samplers' Laplace preconditioning (bayesmmm/inference/jax/precondition.py) against NumPy
references: the scales of a Gaussian are its standard deviations, the change of variables leaves the
log-density unchanged, and a fit samples the same posterior with it as without it."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("numpyro")

from bayesmmm.inference.jax import runtime  # noqa: E402

runtime.configure_jax()

import jax.numpy as jnp  # noqa: E402

from bayesmmm.inference.jax.precondition import (  # noqa: E402
    MAX_SCALE,
    curvature_factor,
    curvature_scales,
    from_scaled,
    laplace_hessian,
    scaled_logp,
    to_scaled,
)


def _spd(rng, n, scales):
    a = rng.normal(size=(n, n))
    corr = a @ a.T + n * np.eye(n)
    d = np.sqrt(np.diag(corr))
    corr = corr / np.outer(d, d)
    return corr * np.outer(scales, scales)


def test_curvature_scales_are_the_laplace_sd_clipped_to_one():
    rng = np.random.default_rng(0)
    sd = np.array([1e-3, 0.02, 0.5, 3.0])
    cov = _spd(rng, 4, sd)
    h = np.linalg.inv(cov)
    got = np.asarray(curvature_scales(h))
    np.testing.assert_allclose(got, np.minimum(np.sqrt(np.diag(cov)), MAX_SCALE), rtol=1e-8)


def test_curvature_scales_of_an_indefinite_hessian_use_the_diagonal():
    h = np.array([[4e6, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.25]])  # not positive definite
    got = np.asarray(curvature_scales(h))
    np.testing.assert_allclose(got, [1.0 / np.sqrt(4e6), MAX_SCALE, MAX_SCALE], rtol=1e-12)
    nan = np.full((2, 2), np.nan)
    np.testing.assert_array_equal(np.asarray(curvature_scales(nan)), [MAX_SCALE, MAX_SCALE])


def test_curvature_factor_reproduces_the_clipped_laplace_covariance():
    rng = np.random.default_rng(1)
    sd = np.array([2e-3, 0.1, 4.0])
    cov = _spd(rng, 3, sd)
    factor = np.asarray(curvature_factor(np.linalg.inv(cov)))
    s = np.minimum(np.sqrt(np.diag(cov)), MAX_SCALE)
    corr = cov / np.outer(np.sqrt(np.diag(cov)), np.sqrt(np.diag(cov)))
    np.testing.assert_allclose(factor @ factor.T, corr * np.outer(s, s), rtol=1e-8, atol=1e-14)
    assert np.allclose(np.triu(factor, 1), 0.0)  # a Cholesky factor: lower triangular


def test_laplace_hessian_of_a_gaussian_is_its_precision():
    rng = np.random.default_rng(2)
    sd = np.array([1e-3, 5e-3, 0.3, 0.8, 2.0])
    cov = _spd(rng, 5, sd)
    prec = np.linalg.inv(cov)
    mean = jnp.asarray(rng.normal(size=5))

    def logp(position, data):
        x = jnp.concatenate([position[0], position[1].reshape(-1)]) - data[0]
        return -0.5 * x @ jnp.asarray(prec) @ x

    start = [jnp.zeros(2), jnp.ones((3, 1))]  # two blocks of different shapes
    hess = np.asarray(jax.jit(lambda p, d: laplace_hessian(logp, p, d))(start, [mean]))
    np.testing.assert_allclose(hess, prec, rtol=1e-5, atol=1e-6 * np.abs(prec).max())
    scales = np.asarray(curvature_scales(hess))
    np.testing.assert_allclose(scales, np.minimum(sd, MAX_SCALE), rtol=1e-5)


@pytest.mark.parametrize("dense", [False, True])
def test_scaled_logp_is_the_log_density_at_the_mapped_point(dense):
    rng = np.random.default_rng(5)

    def logp(position, data):
        return -jnp.sum((position[0] - data[0]) ** 2) - jnp.sum(position[1] ** 4) * data[1]

    shapes = [(2,), (1, 2)]
    data = [jnp.asarray([1.0, 2.0]), jnp.asarray(0.5)]
    factor = np.tril(rng.normal(size=(4, 4))) + 3 * np.eye(4) if dense else np.array([1e-3, 0.2, 0.5, 1.0])
    u = [rng.normal(size=s) for s in shapes]
    flat_u = np.concatenate([b.reshape(-1) for b in u])
    theta = factor @ flat_u if dense else factor * flat_u
    want = logp([jnp.asarray(theta[:2]), jnp.asarray(theta[2:].reshape(1, 2))], data)
    got = scaled_logp(logp, 2, shapes)([jnp.asarray(b) for b in u], [*data, jnp.asarray(factor)])
    assert float(got) == pytest.approx(float(want), rel=1e-13)
    # to_scaled / from_scaled are each other's inverse (a chain axis, then chain and draw axes)
    points = [theta[None, :2], theta[None, 2:].reshape(1, 1, 2)]
    back = to_scaled(points, factor)
    np.testing.assert_allclose(np.concatenate([b.reshape(-1) for b in back]), flat_u, rtol=1e-12)
    draws = [jnp.asarray(b[None]) for b in back]  # (chain=1, draw=1, ...)
    again = from_scaled(draws, factor, shapes)
    np.testing.assert_allclose(np.asarray(again[0]).reshape(-1), theta[:2], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(again[1]).reshape(-1), theta[2:], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpyro", "blackjax"])
def test_a_preconditioned_fit_samples_the_same_posterior(backend):
    """Daily-like data (tight intercept and day-of-week terms): the posterior means with and without the
    preconditioning agree within Monte Carlo error, and the preconditioned chains need fewer steps."""
    import pandas as pd

    from bayesmmm import MMM

    rng = np.random.default_rng(3)
    n = 200
    dates = pd.date_range("2023-01-01", periods=n, freq="D")
    spend = rng.gamma(2.0, 50.0, size=(n, 2))
    dow = np.array([0.03, 0.01, 0.0, -0.01, 0.02, 0.05, 0.04])[dates.day_of_week]
    y = 1000 * (1 + dow + 0.05 * np.tanh(spend[:, 0] / 100) + 0.03 * np.tanh(spend[:, 1] / 100))
    y = y + rng.normal(0, 10, n)
    frame = pd.DataFrame({"date": dates, "a": spend[:, 0], "b": spend[:, 1], "y": y})
    means, steps = {}, {}
    for precondition in ("laplace", "none"):
        mmm = MMM({"channel_columns": ["a", "b"], "target_column": "y"}, {"yearly_seasonality": 0})
        sampler = {
            "backend": backend,
            "chains": 2,
            "draws": 300,
            "tune": 300,
            "seed": 4,
            "precondition": precondition,
        }
        idata = mmm.fit(frame, sampler=sampler)
        post = idata.posterior
        means[precondition] = {
            k: post[k].mean(("chain", "draw")).values for k in ("intercept", "gamma_fourier", "sigma")
        }
        sds = {k: post[k].std(("chain", "draw")).values for k in means[precondition]}
        steps[precondition] = float(idata.sample_stats["n_steps"].mean())
    for k, sd in sds.items():
        np.testing.assert_array_less(np.abs(means["laplace"][k] - means["none"][k]), 0.5 * sd + 1e-12)
    assert steps["laplace"] < steps["none"]
