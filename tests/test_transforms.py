"""Shared contract tests: every registered transform joins them automatically.

The contract itself is the public kit, :mod:`bayesmmm.testing` (shapes, monotonicity,
normalization, priors, NumPy vs PyTensor, finite gradients), run here on every registered
transform. The references below are independent of it: closed forms, scipy.stats, and a
plain NumPy loop for the convolution.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayesmmm import ADSTOCKS, SATURATIONS, Adstock, Prior, Saturation
from bayesmmm.components import UnknownNameError, convolve
from bayesmmm.components.base import Registry, numpy_mode
from bayesmmm.testing import check_adstock, check_saturation

RNG = np.random.default_rng(0)

# Independent references for the built-in transforms (lags l = 0..L-1, unnormalized weights).
WEIGHT_REFERENCES = {
    "geometric": lambda lags, alpha: alpha**lags,
    "weibull_cdf": lambda lags, scale, shape: stats.weibull_min(c=shape, scale=scale).sf(lags),
    "weibull_pdf": lambda lags, scale, shape: stats.weibull_min(c=shape, scale=scale).pdf(lags + 1),
    "delayed_geometric": lambda lags, alpha, theta: alpha ** ((lags - theta) ** 2),  # examples/custom_transform.py
}
SATURATION_REFERENCES = {
    "logistic": lambda x, lam: (1 - np.exp(-lam * x)) / (1 + np.exp(-lam * x)),
    "hill": lambda x, slope, kappa: x**slope / (x**slope + kappa**slope),
    "michaelis_menten": lambda x, kappa: x / (kappa + x),
    "tanh": lambda x, c: np.tanh(x / c),
    "power": lambda x, exponent: 1 - (1 + x) ** (-exponent),  # examples/custom_transform.py
}


def prior_draws(transform, n_channels: int, seed: int) -> dict[str, np.ndarray]:
    """One value per channel for each parameter, drawn from the transform's priors."""
    return transform.sample_prior(n_channels, seed=seed)


def numpy_convolve(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Plain loop reference: out[t, c] = sum_l w[l, c] x[t - l, c]."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for lag in range(w.shape[0]):
            if t - lag >= 0:
                out[t] += w[lag] * x[t - lag]
    return out


def evaluate(expr):
    return pytensor.function([], expr)()


@pytest.mark.parametrize("name", ADSTOCKS.names())
@pytest.mark.parametrize("normalize", [True, False])
def test_adstock_matches_numpy_convolution(name, normalize):
    adstock = ADSTOCKS.get(name)(l_max=6, normalize=normalize)
    params = prior_draws(adstock, 3, seed=1)
    x = RNG.gamma(2.0, 1.0, size=(20, 3))
    w = evaluate(adstock.weights(**params))
    assert w.shape == (6, 3)
    np.testing.assert_allclose(adstock.evaluate(x, **params), numpy_convolve(x, w), rtol=1e-10)
    if normalize:
        np.testing.assert_allclose(w.sum(axis=0), 1.0, rtol=1e-12)


def test_every_registered_transform_has_an_independent_reference():
    assert set(ADSTOCKS.names()) == set(WEIGHT_REFERENCES)
    assert set(SATURATIONS.names()) == set(SATURATION_REFERENCES)


@pytest.mark.parametrize("name", sorted(WEIGHT_REFERENCES))
def test_adstock_weights_match_reference(name):
    adstock = ADSTOCKS.get(name)(l_max=10, normalize=False)
    params = prior_draws(adstock, 4, seed=2)
    w = evaluate(adstock.weights(**params))
    lags = np.arange(10.0)[:, None]
    np.testing.assert_allclose(w, WEIGHT_REFERENCES[name](lags, **params), rtol=1e-9)


@pytest.mark.parametrize("name", ADSTOCKS.names())
def test_adstock_contract(name):
    """Shapes, non-negative weights summing to 1, conservation of the total, 0 -> 0, NumPy vs
    PyTensor, finite gradients at prior draws; against scipy where there is a reference."""
    check_adstock(ADSTOCKS.get(name), reference=WEIGHT_REFERENCES.get(name), seed=3)
    check_adstock(ADSTOCKS.get(name)(l_max=5, normalize=False), seed=4, n_draws=20)


def test_weibull_pdf_gradients_finite_where_weights_underflow():
    """Found by bayesmmm.testing: where every Weibull-PDF weight underflows to 0 (small scale, large
    shape; 0.6% of the default prior) the normalized weights were finite but their gradient NaN."""
    adstock = ADSTOCKS.get("weibull_pdf")(l_max=8)
    scale, shape = pt.vector("scale"), pt.vector("shape")
    x = RNG.gamma(2.0, 1.0, size=(20, 2))
    total = pt.sum(adstock.apply(x, scale=scale, shape=shape))
    fn = pytensor.function([scale, shape], pytensor.grad(total, [scale, shape]), mode=numpy_mode())
    for g in fn(np.array([0.168222, 0.0374136]), np.array([3.6245, 2.74312])):
        assert np.all(np.isfinite(g))
    # and the softmax weights equal the direct normalization where that one is finite
    w = adstock.weights(scale=np.array([2.0, 0.7]), shape=np.array([1.5, 0.8])).eval()
    lags = np.arange(8.0)[:, None]
    ref = stats.weibull_min(c=np.array([1.5, 0.8]), scale=np.array([2.0, 0.7])).pdf(lags + 1)
    np.testing.assert_allclose(w, ref / ref.sum(axis=0), rtol=1e-12)


def test_geometric_closed_form():
    # normalized geometric adstock of a constant series reaches the constant after l_max - 1 weeks,
    # and of an impulse is alpha**t (1 - alpha) / (1 - alpha**L)
    alpha, L = 0.6, 8
    adstock = ADSTOCKS.get("geometric")(l_max=L)
    out = adstock.evaluate(np.ones((15, 1)), alpha=np.array([alpha]))
    np.testing.assert_allclose(out[L - 1 :, 0], 1.0)
    np.testing.assert_allclose(out[: L - 1, 0], (1 - alpha ** np.arange(1, L)) / (1 - alpha**L))


def test_adstock_broadcasts_over_a_geo_axis():
    adstock = ADSTOCKS.get("geometric")(l_max=4)
    x = RNG.gamma(2.0, 1.0, size=(10, 3, 2))  # (date, geo, channel)
    alpha = np.array([[0.2, 0.5], [0.3, 0.6], [0.1, 0.9]])  # (geo, channel)
    out = adstock.evaluate(x, alpha=alpha)
    for g in range(3):
        ref = adstock.evaluate(x[:, g, :], alpha=alpha[g])
        np.testing.assert_allclose(out[:, g, :], ref)


@pytest.mark.parametrize("name", SATURATIONS.names())
def test_saturation_contract(name):
    """Shapes, 0 -> 0, non-decreasing, within [0, 1], NumPy vs PyTensor, finite gradients at
    prior draws and zero spend; against a closed form where there is a reference."""
    check_saturation(SATURATIONS.get(name), reference=SATURATION_REFERENCES.get(name), seed=4)


@pytest.mark.parametrize("name", sorted(SATURATION_REFERENCES))
def test_saturation_matches_reference(name):
    saturation = SATURATIONS.get(name)()
    params = prior_draws(saturation, 3, seed=4)
    x = np.linspace(0.0, 10.0, 200)[:, None] * np.ones((1, 3))
    y = saturation.evaluate(x, **params)
    np.testing.assert_array_equal(y[0], 0.0)
    np.testing.assert_allclose(y, SATURATION_REFERENCES[name](x, **params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SATURATION_REFERENCES))
def test_saturation_gradients_match_finite_differences(name):
    """Finite is not enough: the gradient NUTS follows must be the closed form's."""
    saturation = SATURATIONS.get(name)()
    params = {p: pt.vector(p) for p in saturation.param_names}
    x = np.array([[0.3, 0.5], [1.0, 2.0]])
    total = pt.sum(saturation.apply(x, **params))
    fn = pytensor.function(list(params.values()), pytensor.grad(total, list(params.values())), mode=numpy_mode())
    values = prior_draws(saturation, 2, seed=6)
    for k, (p, g) in enumerate(zip(saturation.param_names, fn(*values.values()), strict=True)):
        h = 1e-6 * values[p]
        up, down = dict(values), dict(values)
        up[p], down[p] = values[p] + h, values[p] - h
        ref = SATURATION_REFERENCES[name]
        numeric = (ref(x, **up).sum(axis=0) - ref(x, **down).sum(axis=0)) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, err_msg=f"{name}: d/d{p} (parameter {k})")


def test_convolve_needs_static_lags():
    w = pt.matrix("w")
    with pytest.raises(ValueError, match="static"):
        convolve(np.ones((3, 2)), w)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        ADSTOCKS.get("geometrik")
    message = str(info.value)
    assert "did you mean 'geometric'" in message.lower()
    for name in ADSTOCKS.names():
        assert name in message


def test_definition_time_check_rejects_mismatched_priors():
    def f(x, a, b):
        return x * a * b

    with pytest.raises(TypeError, match="parameters without a prior: \\['b'\\]"):

        class Bad(Saturation):
            function = staticmethod(f)
            default_priors = {"a": Prior(dist="HalfNormal", sigma=1)}


def test_registration_and_duplicate_names():
    registry = Registry("adstock", base=Adstock)

    @registry.register("flat")
    class Flat(Adstock):
        function = staticmethod(lambda lags, level: pt.ones_like(lags) * level)
        default_priors = {"level": Prior(dist="HalfNormal", sigma=1)}

    assert registry.get("flat") is Flat and Flat.name == "flat"
    with pytest.raises(ValueError, match="already registered"):

        @registry.register("flat")
        class Other(Adstock):
            function = staticmethod(lambda lags, level: lags * level)
            default_priors = {"level": Prior(dist="HalfNormal", sigma=1)}

    with pytest.raises(TypeError, match="subclass"):
        registry.register("x")(int)


def test_transform_rejects_unknown_prior_and_setting():
    with pytest.raises(ValueError, match="no parameter"):
        SATURATIONS.get("hill")(priors={"kapa": {"dist": "Gamma", "alpha": 1, "beta": 1}})
    with pytest.raises(ValueError, match="no setting"):
        SATURATIONS.get("hill")(lmax=3)
    with pytest.raises(ValueError, match="l_max"):
        ADSTOCKS.get("geometric")(l_max=0)
