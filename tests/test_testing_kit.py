"""The public contract kit (bayesmmm.testing) and the prior helpers of transforms.

The kit must pass every built-in and the example plugin, and fail, naming the transform
and the property, on transforms broken on purpose. Prior draws are checked against the
distributions' closed-form moments (scipy.stats).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayesmmm import ADSTOCKS, SATURATIONS, Adstock, Prior, Saturation
from bayesmmm.components import HillSaturation
from bayesmmm.components.adstock import lag_tensor
from bayesmmm.testing import (
    check_adstock,
    check_registered_components,
    check_saturation,
    check_transform,
)

BUILTIN_ADSTOCKS = {"geometric", "weibull_cdf", "weibull_pdf"}
BUILTIN_SATURATIONS = {"logistic", "hill", "michaelis_menten", "tanh"}


@pytest.fixture
def register(monkeypatch):
    """Register a class for one test only (the registries are global)."""

    def _register(registry, name, cls):
        monkeypatch.setitem(registry._items, name, cls)
        monkeypatch.setattr(cls, "name", name, raising=False)
        return cls

    return _register


# --- transforms broken on purpose ------------------------------------------------------------


class RiseAndFall(Saturation):
    """Peaks at x = k, then decreases: (x/k) e^(1 - x/k)."""

    function = staticmethod(lambda x, k: (x / k) * pt.exp(1.0 - x / k))
    default_priors = {"k": Prior(dist="Gamma", alpha=2, beta=2)}


class NanAtZero(Saturation):
    """1 - e^(-x/lam), but NaN at zero spend."""

    function = staticmethod(lambda x, lam: pt.switch(pt.gt(x, 0), 1.0 - pt.exp(-x / lam), np.nan))
    default_priors = {"lam": Prior(dist="Gamma", alpha=2, beta=2)}


class SqrtSaturation(Saturation):
    """1 - e^(-sqrt(x/lam)): fine values, infinite slope at zero spend."""

    function = staticmethod(lambda x, lam: 1.0 - pt.exp(-pt.sqrt(x / lam)))
    default_priors = {"lam": Prior(dist="Gamma", alpha=2, beta=2)}


class NaiveHill(Saturation):
    """Hill as x^s / (x^s + k^s): d/ds involves log(0) at zero spend."""

    function = staticmethod(lambda x, slope, kappa: x**slope / (x**slope + kappa**slope))
    default_priors = {"slope": Prior(dist="Gamma", alpha=3, beta=2), "kappa": Prior(dist="Gamma", alpha=2, beta=2)}


class Unbounded(Saturation):
    """x / kappa: no saturation at all."""

    function = staticmethod(lambda x, kappa: x / kappa)
    default_priors = {"kappa": Prior(dist="Gamma", alpha=2, beta=2)}


class ShapeLosing(Saturation):
    """Keeps only the first channel."""

    function = staticmethod(lambda x, c: pt.tanh(x / c)[..., :1])
    default_priors = {"c": Prior(dist="Gamma", alpha=2, beta=2)}


class NegativeWeights(Adstock):
    """w_l = 1 - alpha l: negative from lag 1/alpha on."""

    function = staticmethod(lambda lags, alpha: 1.0 - alpha * lags)
    default_priors = {"alpha": Prior(dist="Beta", alpha=2, beta=2)}


class ForgetsToNormalize(Adstock):
    """Overrides weights() and drops the normalization."""

    function = staticmethod(lambda lags, alpha: alpha**lags)
    default_priors = {"alpha": Prior(dist="Beta", alpha=2, beta=2)}

    def weights(self, **params):
        params = {k: pt.as_tensor_variable(v) for k, v in params.items()}
        ndim = max(v.ndim for v in params.values())
        return type(self).function(lag_tensor(self.l_max, ndim), **params)


class MyHill(HillSaturation):
    """Inherits HillSaturation's name 'hill' without being registered."""


class Unregistered(Saturation):
    function = staticmethod(lambda x, c: pt.tanh(x / c))
    default_priors = {"c": Prior(dist="Gamma", alpha=2, beta=2)}


BROKEN = [
    # (class, registry, registered name or None, failing checks, text the message must hold)
    (RiseAndFall, SATURATIONS, "rise_and_fall", {"monotone"}, "decreases in x"),
    (NanAtZero, SATURATIONS, "nan_at_zero", {"domain", "zero"}, "output nan at x=0,"),
    (SqrtSaturation, SATURATIONS, "sqrt_saturation", {"gradients"}, "d output / d x is inf at x=0,"),
    (NaiveHill, SATURATIONS, "naive_hill", {"gradients"}, "is nan at x=0,"),
    (Unbounded, SATURATIONS, "unbounded", {"bounded"}, "outside [0, 1]"),
    (ShapeLosing, SATURATIONS, "shape_losing", {"shapes", "domain"}, "gives shape (13, 1)"),
    (NegativeWeights, ADSTOCKS, "negative_weights", {"weights"}, "negative weight"),
    (ForgetsToNormalize, ADSTOCKS, "forgets_to_normalize", {"normalized"}, "not 1"),
    (MyHill, SATURATIONS, None, {"registered"}, "SATURATIONS.get('hill') is"),
    (Unregistered, SATURATIONS, None, {"registered"}, "has no name"),
]


def failed_checks(message: str) -> set[str]:
    return {line.strip()[2:].split(":")[0] for line in message.splitlines()[1:] if line.strip().startswith("- ")}


@pytest.mark.parametrize(("cls", "registry", "name", "failing", "text"), BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_kit_fails_broken_transforms(register, cls, registry, name, failing, text):
    if name is not None:
        register(registry, name, cls)
    check = check_adstock if registry is ADSTOCKS else check_saturation
    with pytest.raises(AssertionError) as info:
        check(cls)
    message = str(info.value)
    first = message.splitlines()[0]
    assert cls.__qualname__ in first and repr(cls.name or "(unnamed)") in first, message
    assert failed_checks(message) == failing, message
    assert f"fails {len(failing)} of" in first, message
    assert text in message, message


def test_kit_reports_prior_draws_outside_the_valid_domain():
    hill = SATURATIONS.get("hill")(priors={"kappa": {"dist": "Normal", "mu": 0, "sigma": 1}})
    with pytest.raises(AssertionError) as info:
        check_saturation(hill)
    message = str(info.value)
    assert "domain" in failed_checks(message)
    assert "kappa=-" in message.split("domain:")[1].splitlines()[0], message  # names the offending draw


def test_kit_fails_a_wrong_reference():
    check_saturation(SATURATIONS.get("tanh"), reference=lambda x, c: np.tanh(x / c))
    with pytest.raises(AssertionError, match="numpy-pytensor: vs the reference"):
        check_saturation(SATURATIONS.get("tanh"), reference=lambda x, c: np.tanh(x / c) * (1 + 1e-6))
    with pytest.raises(AssertionError, match="weights vs the reference"):
        check_adstock(ADSTOCKS.get("geometric"), reference=lambda lags, alpha: alpha ** (lags + 1e-6))


def test_kit_rejects_what_is_not_a_transform():
    with pytest.raises(TypeError, match="Saturation"):
        check_saturation(ADSTOCKS.get("geometric"))
    with pytest.raises(TypeError, match="Adstock"):
        check_adstock(SATURATIONS.get("hill")())
    with pytest.raises(TypeError, match="Adstock or a Saturation"):
        check_transform(int)


# --- the kit passes what it should --------------------------------------------------------------


def test_kit_passes_every_registered_transform_and_the_example_plugin():
    checked = check_registered_components(n_draws=50)
    assert BUILTIN_ADSTOCKS | {"delayed_geometric"} <= set(checked["adstock"])
    assert BUILTIN_SATURATIONS | {"power"} <= set(checked["saturation"])


def test_check_registered_components_lists_every_failure(monkeypatch, register):
    monkeypatch.setattr(ADSTOCKS, "_items", {"geometric": ADSTOCKS.get("geometric")})
    monkeypatch.setattr(SATURATIONS, "_items", {"tanh": SATURATIONS.get("tanh")})
    register(SATURATIONS, "rise_and_fall", RiseAndFall)
    register(ADSTOCKS, "negative_weights", NegativeWeights)
    with pytest.raises(AssertionError) as info:
        check_registered_components(n_draws=20)
    message = str(info.value)
    assert message.startswith("2 registered transform(s) fail the contract")
    assert "'rise_and_fall'" in message and "'negative_weights'" in message
    assert "'geometric'" not in message


def test_kit_accepts_instances_with_their_own_priors_and_settings():
    check_saturation(SATURATIONS.get("hill")(priors={"kappa": {"dist": "Gamma", "alpha": [2, 4, 8], "beta": 2}}))
    check_adstock(ADSTOCKS.get("weibull_pdf")(l_max=3))
    check_adstock(ADSTOCKS.get("geometric")(l_max=12, normalize=False))
    check_transform(ADSTOCKS.get("geometric"), n_draws=5, seed=3, l_max=1)


def test_unnormalized_adstock_instances_skip_normalization(register):
    register(ADSTOCKS, "forgets_to_normalize", ForgetsToNormalize)
    check_adstock(ForgetsToNormalize(normalize=False))
    with pytest.raises(AssertionError, match="normalized"):
        check_adstock(ForgetsToNormalize(normalize=True))


def test_adstock_gradients_of_the_kit_equal_the_full_graph():
    """The kit differentiates a plain convolution through its weights; that must be exact."""
    from bayesmmm.testing import _adstock_symbolic, _Context, _symbolic

    for name in ADSTOCKS.names():
        ctx = _Context(ADSTOCKS.get(name), "adstock", seed=1, n_draws=6, l_max=5)
        x = np.random.default_rng(2).gamma(2.0, 1.0, size=(11, ctx.columns))
        x[[0, 4]] = 0.0
        out, grads = _adstock_symbolic(ctx, x, None)
        full_out, *full_grads = _symbolic(ctx, 2, None)(x, *ctx.draws.values())
        np.testing.assert_allclose(out, full_out, rtol=1e-12)
        for fast, full in zip(grads, full_grads, strict=True):
            np.testing.assert_allclose(fast, full, rtol=1e-9, atol=1e-12, err_msg=name)


# --- sample_prior, sample_curve, plot_curve -------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "param", "reference"),
    [
        ("adstock", "geometric", "alpha", stats.beta(1, 3)),
        ("adstock", "weibull_cdf", "scale", stats.gamma(2, scale=1 / 1)),
        ("saturation", "hill", "slope", stats.gamma(3, scale=1 / 2)),
        ("adstock", "delayed_geometric", "theta", stats.halfnorm(scale=1.5)),
    ],
)
def test_sample_prior_matches_the_distribution(kind, name, param, reference):
    registry = ADSTOCKS if kind == "adstock" else SATURATIONS
    transform = registry.get(name)()
    n = 20_000
    draws = transform.sample_prior(n, seed=5)
    assert set(draws) == set(transform.param_names)
    assert all(v.shape == (n,) for v in draws.values())
    x = draws[param]
    mean, var, _, excess_kurtosis = (float(v) for v in reference.stats(moments="mvsk"))
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(x.var(ddof=1) - var) < 5 * var * np.sqrt((excess_kurtosis + 2) / n)
    assert stats.kstest(x, reference.cdf).pvalue > 1e-4


def test_sample_prior_uses_the_instance_priors_and_its_seed():
    transform = ADSTOCKS.get("geometric")(priors={"alpha": {"dist": "Beta", "alpha": 2, "beta": 2}})
    draws = transform.sample_prior(10_000, seed=1)["alpha"]
    assert abs(draws.mean() - 0.5) < 5 * np.sqrt(0.05 / 10_000)  # Beta(2, 2): mean 1/2, variance 1/20
    np.testing.assert_array_equal(draws, transform.sample_prior(10_000, seed=1)["alpha"])
    assert not np.array_equal(draws, transform.sample_prior(10_000, seed=2)["alpha"])
    per_channel = SATURATIONS.get("hill")(priors={"kappa": {"dist": "Gamma", "alpha": [2, 20], "beta": 2}})
    draws = per_channel.sample_prior(8_000, seed=3)
    assert draws["kappa"].shape == (8_000, 2) and draws["slope"].shape == (8_000,)
    np.testing.assert_allclose(draws["kappa"].mean(axis=0), [1.0, 10.0], rtol=0.05)
    with pytest.raises(ValueError, match="n must be"):
        per_channel.sample_prior(0)


def test_sample_curve_of_a_saturation_is_its_formula_at_the_draws():
    mm = SATURATIONS.get("michaelis_menten")()
    x = np.array([0.0, 0.5, 1.0, 3.0])
    grid, curves = mm.sample_curve(n=50, x=x, seed=4)
    kappa = mm.sample_prior(50, seed=4)["kappa"]
    np.testing.assert_array_equal(grid, x)
    np.testing.assert_allclose(curves, x[None, :] / (kappa[:, None] + x[None, :]), rtol=1e-12)
    _, per_channel = SATURATIONS.get("hill")(
        priors={"kappa": {"dist": "Gamma", "alpha": [2, 3, 4], "beta": 2}}
    ).sample_curve(n=7)
    assert per_channel.shape == (7, 3, 81)


def test_sample_curve_of_an_adstock_is_its_normalized_weights():
    geometric = ADSTOCKS.get("geometric")(l_max=5)
    lags, curves = geometric.sample_curve(n=30, seed=6)
    alpha = geometric.sample_prior(30, seed=6)["alpha"][:, None]
    np.testing.assert_array_equal(lags, np.arange(5.0))
    np.testing.assert_allclose(curves, alpha**lags * (1 - alpha) / (1 - alpha**5), rtol=1e-10)
    with pytest.raises(ValueError, match="l_max"):
        geometric.sample_curve(x=[0.0, 1.0])


@pytest.mark.parametrize("transform", [SATURATIONS.get("hill")(), ADSTOCKS.get("weibull_pdf")(l_max=6)], ids=str)
def test_plot_curve_draws_median_bands_and_draws(transform):
    ax = transform.plot_curve(n=40, seed=2, n_lines=3)
    try:
        grid, curves = transform.sample_curve(n=40, seed=2)
        lines = ax.get_lines()
        assert len(lines) == 1 + 3 and len(ax.collections) == 2  # median, 3 draws; 50% and 90% bands
        np.testing.assert_allclose(lines[0].get_xdata(), grid)
        np.testing.assert_allclose(lines[0].get_ydata(), np.median(curves, axis=0))
        np.testing.assert_allclose(lines[1].get_ydata(), curves[0])
        assert repr(transform.name) in ax.get_title()
    finally:
        plt.close(ax.figure)


def test_plot_curve_on_given_axes_one_band_per_channel():
    fig, ax = plt.subplots()
    try:
        hill = SATURATIONS.get("hill")(priors={"kappa": {"dist": "Gamma", "alpha": [2, 3], "beta": 2}})
        assert hill.plot_curve(ax=ax, n=20, x=np.linspace(0, 2, 11), n_lines=0) is ax
        assert len(ax.get_lines()) == 2 and len(ax.collections) == 4
        assert all(len(line.get_xdata()) == 11 for line in ax.get_lines())
    finally:
        plt.close(fig)
