"""Flexible baselines (``trend: hsgp`` and ``trend: spline``): the math against independent
references, the YAML settings, and a real fit on a sigmoid trend (recovery, forecasts, save/load)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import BSpline

from bayesmmm import ConfigError, ModelConfig, load_experiment
from bayesmmm.components import TRENDS
from bayesmmm.components.baseline import (
    HSGPTrend,
    SplineTrend,
    expquad_psd,
    hsgp_basis,
    hsgp_basis_mean,
    hsgp_frequencies,
    matern52_psd,
)
from bayesmmm.evaluation.criteria import holdout_scores
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import ScenarioConfig, simulate


# ------------------------------------------------------------------------------- HSGP math
def _numpy_hsgp_basis(t: np.ndarray, m: int, c: float) -> np.ndarray:
    """Solin & Särkkä's Dirichlet eigenfunctions on [-L, L] around the midpoint of [0, 1]."""
    L = c * 0.5
    j = np.arange(1, m + 1)
    return np.sin(np.pi * j[None, :] * (t[:, None] - 0.5 + L) / (2 * L)) / np.sqrt(L)


def test_hsgp_basis_matches_numpy_and_pymc():
    import pymc as pm

    t = np.linspace(0.0, 1.0, 37)
    m, c = 12, 2.5
    ours = hsgp_basis(t, m, c * 0.5).eval()
    np.testing.assert_allclose(ours, _numpy_hsgp_basis(t, m, c), atol=1e-12)
    with pm.Model():
        gp = pm.gp.HSGP(m=[m], c=c, cov_func=pm.gp.cov.ExpQuad(1, ls=0.3))
        phi, sqrt_psd = gp.prior_linearized(t[:, None])
        phi, sqrt_psd = phi.eval(), sqrt_psd.eval()
    np.testing.assert_allclose(ours, phi, atol=1e-12)
    omega = hsgp_frequencies(m, c * 0.5)
    np.testing.assert_allclose(np.sqrt(expquad_psd(omega, 1.0, 0.3).eval()), sqrt_psd, rtol=1e-10)


@pytest.mark.parametrize("kernel", ["expquad", "matern52"])
def test_spectral_densities_match_pymc_and_closed_forms(kernel):
    import pymc as pm

    omega = np.linspace(0.1, 20.0, 25)
    ls, eta = 0.37, 1.7
    if kernel == "expquad":
        ours = expquad_psd(omega, eta, ls).eval()
        closed = eta**2 * np.sqrt(2 * np.pi) * ls * np.exp(-0.5 * (omega * ls) ** 2)
        cov = pm.gp.cov.ExpQuad(1, ls=ls)
    else:
        ours = matern52_psd(omega, eta, ls)
        lam = np.sqrt(5.0) / ls
        closed = eta**2 * (16.0 / 3.0) * lam**5 / (lam**2 + omega**2) ** 3
        cov = pm.gp.cov.Matern52(1, ls=ls)
    np.testing.assert_allclose(ours, closed, rtol=1e-10)
    np.testing.assert_allclose(ours, eta**2 * cov.power_spectral_density(omega[:, None]).eval(), rtol=1e-10)


def test_hsgp_covariance_approximates_the_kernel_and_centering_is_exact():
    """Φ diag(S(ω)) Φᵀ ≈ η² exp(-(t-t')²/2ℓ²) inside the training span; the centered basis has mean 0."""
    t = np.linspace(0.0, 1.0, 41)
    m, c, ls, eta = 40, 3.0, 0.3, 0.8
    phi = _numpy_hsgp_basis(t, m, c)
    psd = eta**2 * np.sqrt(2 * np.pi) * ls * np.exp(-0.5 * (hsgp_frequencies(m, c * 0.5) * ls) ** 2)
    approx = phi @ np.diag(psd) @ phi.T
    exact = eta**2 * np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / ls**2)
    assert np.abs(approx - exact).max() < 0.01 * eta**2
    fine = np.linspace(0.0, 1.0, 200_001)
    np.testing.assert_allclose(
        hsgp_basis_mean(m, c * 0.5), _numpy_hsgp_basis(fine, m, c).mean(axis=0), atol=2e-5
    )  # closed form against the grid average
    trend = HSGPTrend(m=m, c=c)
    np.testing.assert_allclose(trend.basis(fine[::1000]).eval().mean(axis=0), 0.0, atol=2e-2)


# ----------------------------------------------------------------------------- spline math
def test_spline_basis_matches_scipy_and_continues_linearly():
    trend = SplineTrend(n_knots=7, horizon=0.4)
    h = trend.h
    knots = [center + h * np.arange(-2, 3) for center in trend.centers]
    elements = [BSpline.basis_element(k, extrapolate=False) for k in knots]
    inside = np.linspace(0.0, trend.hi, 53)
    ref = np.stack([np.nan_to_num(e(inside)) for e in elements], axis=1)
    np.testing.assert_allclose(trend.basis(inside).eval(), ref, atol=1e-12)
    np.testing.assert_allclose(ref.sum(axis=1), 1.0, atol=1e-12)  # partition of unity on [0, hi]
    # past the last knot: value and slope of each basis function at hi, continued linearly
    beyond = trend.hi + np.array([0.1, 0.5, 2.0])
    end = np.array([float(np.nan_to_num(e(trend.hi - 1e-12))) for e in elements])
    slope = np.array([float(np.nan_to_num(e.derivative()(trend.hi - 1e-12))) for e in elements])
    np.testing.assert_allclose(
        trend.basis(beyond).eval(), end[None, :] + (beyond - trend.hi)[:, None] * slope[None, :], atol=1e-9
    )
    # the coefficients' second differences are the innovations, and over the training knots
    # the coefficients have no constant or linear part (those are the intercept's and the slope's)
    M = trend.coefficient_matrix()
    z = np.random.default_rng(0).normal(size=trend.n_free)
    a = M @ z
    np.testing.assert_allclose(a[2:] - 2 * a[1:-1] + a[:-2], z, atol=1e-10)
    k = np.arange(trend.n_fitted)
    np.testing.assert_allclose([a[: trend.n_fitted].sum(), (k * a[: trend.n_fitted]).sum()], 0.0, atol=1e-10)
    assert trend.centers[trend.n_fitted - 1] == pytest.approx(1.0 + h)


def test_spline_apply_is_slope_plus_basis_times_coefficients():
    import pytensor.tensor as pt

    trend = SplineTrend(n_knots=5, horizon=0.5)
    rng = np.random.default_rng(1)
    z, sigma, slope = rng.normal(size=trend.n_free), 0.7, -0.3
    t = np.linspace(-0.2, 2.0, 30)
    params = {"trend_slope": pt.as_tensor(slope), "trend_spline_sigma": pt.as_tensor(sigma), "trend_spline_z": z}
    got = trend.apply(pt.as_tensor(t), params, geo=False).eval()
    coef = trend.coefficients(sigma, z)
    expected = slope * t + trend.basis(t).eval() @ coef
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(coef, sigma * trend.h**1.5 * (trend.coefficient_matrix() @ z), atol=1e-12)


# ---------------------------------------------------------------------------------- config
def test_trend_options_default_and_old_model_json():
    assert ModelConfig().trend_options == {}
    old = json.loads(ModelConfig().model_dump_json())
    del old["trend_options"]  # a model saved before the key existed
    assert ModelConfig.model_validate(old).trend_options == {}
    cfg = ModelConfig(trend="hsgp", trend_options={"m": 8, "c": 4})
    mmm = MMM({"channel_columns": ["a"]}, cfg)
    assert (mmm.trend.m, mmm.trend.c, mmm.trend.kernel) == (8, 4.0, "expquad")
    assert MMM({"channel_columns": ["a"]}, {"trend": "piecewise", "n_changepoints": 3}).trend.n_changepoints == 3
    spline_model = MMM({"channel_columns": ["a"]}, {"trend": "spline", "trend_options": {"n_knots": 9}})
    assert spline_model.trend.n_knots == 9
    assert set(spline_model.trend.variables()) <= set(spline_model.priors)  # every variable has a prior
    assert set(mmm.trend.variables()) <= set(mmm.priors)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"trend": "hsgp", "trend_options": {"mm": 10}}, "trend 'hsgp' has no setting 'mm'; did you mean 'm'?"),
        ({"trend": "hsgp", "trend_options": {"m": 1}}, "trend_options.m of trend 'hsgp': Input should be greater"),
        ({"trend": "hsgp", "trend_options": {"kernel": "rbf"}}, "trend_options.kernel of trend 'hsgp'"),
        ({"trend": "spline", "trend_options": {"n_knots": "many"}}, "trend_options.n_knots of trend 'spline'"),
        ({"trend": "linear", "trend_options": {"m": 5}}, "trend 'linear' has no setting 'm' (it takes no settings)"),
    ],
)
def test_bad_trend_options_one_line_error(tmp_path, model, expected):
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps({"data": {"channel_columns": ["a"]}, "model": model}))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    message = str(err.value)
    assert expected in message and "\n" not in message
    assert message.startswith(f"{path}: model: ")
    with pytest.raises(ValueError, match="trend_options"):
        ModelConfig.model_validate(model)


def test_registered_with_their_options():
    assert TRENDS.get("hsgp") is HSGPTrend and TRENDS.get("spline") is SplineTrend
    assert HSGPTrend.check_options({}) == {"m": 20, "c": 3.0, "kernel": "expquad"}
    assert SplineTrend.check_options({"horizon": 1}) == {"n_knots": 6, "horizon": 1.0}


# ------------------------------------------------------------------------ a real fit (MCMC)
HOLDOUT = 12
DATA = {"date_column": "date", "target_column": "sales", "channel_columns": ["search", "tv"]}
SAMPLER = {"backend": "numpyro", "chains": 2, "draws": 300, "tune": 300, "seed": 5, "progressbar": False}


def sigmoid_scenario() -> ScenarioConfig:
    """Always-on spend on two channels and an S-shaped trend that flattens before the hold-out."""
    return ScenarioConfig.model_validate(
        {
            "seed": 3,
            "start_date": "2024-01-01",
            "n_weeks": 80,
            "base": 100.0,
            "trend": {"kind": "sigmoid", "total": 60.0, "steepness": 14.0, "midpoint": 0.5},
            "channels": {
                "search": {
                    "spend": {"shape": 6.0, "scale": 100.0},
                    "adstock": {"name": "geometric", "l_max": 4, "params": {"alpha": 0.2}},
                    "saturation": {"name": "hill", "params": {"kappa": 1.0, "slope": 1.0}},
                    "beta": 20.0,
                },
                "tv": {
                    "spend": {"shape": 8.0, "scale": 200.0},
                    "adstock": {"name": "geometric", "l_max": 4, "params": {"alpha": 0.5}},
                    "saturation": {"name": "hill", "params": {"kappa": 1.0, "slope": 1.5}},
                    "beta": 25.0,
                },
            },
            "noise": {"sigma": 2.0},
        }
    )


@pytest.fixture(scope="module")
def sigmoid_fits():
    frame, _truth = simulate(sigmoid_scenario())
    train, test = frame.iloc[:-HOLDOUT], frame.iloc[-HOLDOUT:]
    fits = {}
    options = {"linear": {}, "hsgp": {"m": 16}, "spline": {}}
    for trend in ("linear", "hsgp", "spline"):
        config = {"trend": trend, "trend_options": options[trend], "yearly_seasonality": 0}
        model = MMM(DATA, {**config, "adstock": {"name": "geometric", "l_max": 4}})
        model.fit(train, SAMPLER)
        fits[trend] = model
    return fits, train, test


def _holdout_rmse(model: MMM, test: pd.DataFrame) -> float:
    pred = model.predict(test.drop(columns="sales"), noise=True, seed=1)
    y = pred["y"].stack(sample=("chain", "draw")).transpose("sample", "date").to_numpy()
    return holdout_scores(y, test["sales"].to_numpy())["holdout_rmse"]


def test_flexible_baseline_beats_linear_on_a_sigmoid_trend(sigmoid_fits):
    fits, _train, test = sigmoid_fits
    rmse = {trend: _holdout_rmse(model, test) for trend, model in fits.items()}
    assert rmse["hsgp"] < 0.6 * rmse["linear"], rmse
    assert rmse["spline"] < 0.6 * rmse["linear"], rmse
    for model in fits.values():  # a rate with a margin: exact counts on 600 draws move with upstream releases
        assert float(model.idata["sample_stats"]["diverging"].mean()) <= 0.03


@pytest.mark.parametrize("trend", ["hsgp", "spline"])
def test_forecast_intervals_widen_beyond_the_data(sigmoid_fits, trend):
    fits, train, _test = sigmoid_fits
    model = fits[trend]
    n = len(train)
    span = pd.Timestamp(train["date"].iloc[-1]) - pd.Timestamp(train["date"].iloc[0])
    # weeks from the end of training to t ≈ 1.3
    ahead = round(0.3 * span.days / 7)
    dates = pd.date_range(pd.Timestamp(train["date"].iloc[-1]), periods=ahead + 1, freq="7D")[1:]
    all_dates = pd.DatetimeIndex(pd.to_datetime(train["date"])).append(dates)
    media = np.vstack([train[DATA["channel_columns"]].to_numpy(), np.ones((ahead, 2)) * 100.0])
    comps = model.evaluate(all_dates, media, np.zeros((n + ahead, 0)))
    lo, hi = np.quantile(comps["trend"], [0.05, 0.95], axis=0)
    width = hi - lo
    t = model.design(all_dates, media, np.zeros((n + ahead, 0)))["t"]
    assert t[n - 1] == pytest.approx(1.0) and t[-1] == pytest.approx(1.3, abs=0.02)
    assert width[-1] > 1.5 * width[n - 1], (width[n - 1], width[-1])
    assert np.all(np.diff(width[n - 1 :]) > -1e-9 * width.max())  # monotone beyond the data


def test_hsgp_forecast_past_its_limit_warns_where_the_intervals_narrow(sigmoid_fits):
    """Past t = L (c = 3: 1.5 training spans) the HSGP's intervals narrow toward the boundary t = 2:
    measured on the fit, and predict() warns with the fix; before it, and for the spline, no warning."""
    import warnings

    fits, train, _test = sigmoid_fits
    model = fits["hsgp"]
    span_days = (pd.Timestamp(train["date"].iloc[-1]) - pd.Timestamp(train["date"].iloc[0])).days
    last = pd.Timestamp(train["date"].iloc[-1])

    def future(t_end: float) -> pd.DataFrame:
        weeks = round((t_end - 1.0) * span_days / 7)
        dates = pd.date_range(last, periods=weeks + 1, freq="7D")[1:]
        return pd.DataFrame({"date": dates, **{c: 100.0 for c in DATA["channel_columns"]}})

    far = future(1.95)
    n, ahead = len(train), len(far)
    all_dates = pd.DatetimeIndex(pd.to_datetime(train["date"])).append(pd.DatetimeIndex(far["date"]))
    media = np.vstack([train[DATA["channel_columns"]].to_numpy(), np.full((ahead, 2), 100.0)])
    comps = model.evaluate(all_dates, media, np.zeros((n + ahead, 0)))
    lo, hi = np.quantile(comps["trend"], [0.05, 0.95], axis=0)
    t = model.design(all_dates, media, np.zeros((n + ahead, 0)))["t"]
    at = lambda x: int(np.argmin(np.abs(t - x)))  # noqa: E731
    width = hi - lo  # measured: 4 at t = 1, 112 at 1.5, 126 at 1.75, 88 at 1.95
    assert width[at(1.5)] > 10 * width[at(1.0)]  # widening beyond the data...
    assert width[at(1.95)] < 0.8 * width[at(1.5) :].max()  # ...then the pinch the warning is about
    with pytest.warns(
        UserWarning, match=r"t = 1\.9\d training spans.*t = 1\.50.*trend_options\.c to at least 4 \(now 3\)"
    ):
        model.predict(far)
    for trend, frame in (("hsgp", future(1.45)), ("spline", far)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            fits[trend].predict(frame)


def test_hsgp_model_saves_loads_and_predicts(sigmoid_fits, tmp_path):
    fits, _train, test = sigmoid_fits
    model = fits["hsgp"]
    path = model.save(tmp_path / "posterior.nc")
    loaded = MMM.load(path)
    assert loaded.model_config.trend == "hsgp" and loaded.model_config.trend_options == {"m": 16}
    assert isinstance(loaded.trend, HSGPTrend) and loaded.trend.m == 16
    new = test.drop(columns="sales")
    np.testing.assert_allclose(loaded.predict(new)["mu"].to_numpy(), model.predict(new)["mu"].to_numpy(), rtol=1e-10)


def test_geo_shapes_shared_curve_and_pooled_spline_slope():
    import pytensor.tensor as pt

    t = pt.as_tensor(np.linspace(0.0, 1.2, 9))
    hsgp = HSGPTrend(m=6)
    params = {"trend_gp_amplitude": pt.as_tensor(0.2), "trend_gp_lengthscale": pt.as_tensor(0.4)}
    params["trend_gp_z"] = pt.as_tensor(np.linspace(-1, 1, 6))
    national = hsgp.apply(t, params, geo=False).eval()
    np.testing.assert_allclose(hsgp.apply(t, params, geo=True).eval(), national[:, None])
    spline = SplineTrend()
    slopes = np.array([0.1, -0.2, 0.3])  # a pooled slope arrives per geo
    sp = {"trend_slope": pt.as_tensor(slopes), "trend_spline_sigma": pt.as_tensor(0.5)}
    sp["trend_spline_z"] = pt.as_tensor(np.ones(spline.n_free))
    out = spline.apply(t, sp, geo=True).eval()
    assert out.shape == (9, 3)
    np.testing.assert_allclose(out - out[:, :1], t.eval()[:, None] * (slopes - slopes[0])[None, :], atol=1e-12)


def test_selection_over_trends_keeps_options_with_their_trend():
    from bayesmmm import ExperimentConfig
    from bayesmmm.workflows.selection import candidate_configs

    config = ExperimentConfig.model_validate(
        {
            "data": {"channel_columns": ["a"]},
            "model": {"trend": "hsgp", "trend_options": {"m": 12}},
            "selection": {"trend": ["linear", "hsgp", "spline"]},
        }
    )
    options = {cfg.trend: cfg.trend_options for _name, cfg in candidate_configs(config)}
    assert options == {"linear": {}, "hsgp": {"m": 12}, "spline": {}}


def test_pooling_a_trend_without_a_per_geo_parameter_is_an_error():
    with pytest.raises(ValueError, match="trend 'hsgp' is one curve shared by every geo"):
        ModelConfig.model_validate({"trend": "hsgp", "geo": {"trend": "pooled"}})
    assert ModelConfig.model_validate({"trend": "spline", "geo": {"trend": "pooled"}}).geo.trend == "pooled"


@pytest.mark.parametrize(("trend", "options"), [("hsgp", {"m": 8, "kernel": "matern52"}), ("spline", {"n_knots": 5})])
def test_post_processing_log_likelihood_matches_pymc(trend, options):
    """The vectorized NumPy-mode mean (decomposition, log-likelihood, forecasts) equals PyMC's graph."""
    import pymc as pm
    import xarray as xr

    frame, _ = simulate(sigmoid_scenario())
    # beta free (the coefficient prior): the free RVs' draws make a whole posterior
    mmm = MMM(
        DATA,
        {"trend": trend, "trend_options": options, "yearly_seasonality": 1, "media_prior": {"type": "coefficient"}},
    )
    model = mmm.build_model(frame)
    free = [v.name for v in model.free_RVs]
    draws = pm.draw([model[n] for n in free], draws=20, random_seed=2)
    posterior = xr.Dataset(
        {
            n: (("chain", "draw", *model.named_vars_to_dims.get(n, ())), d[None])
            for n, d in zip(free, draws, strict=True)
        },
        coords={k: list(v) for k, v in model.coords.items() if k != "date"},
    )
    mmm.idata = xr.DataTree.from_dict({"posterior": posterior})
    ours = mmm.log_likelihood().to_numpy()
    ref = pm.compute_log_likelihood(mmm.idata, model=model, extend_inferencedata=False, progressbar=False)
    np.testing.assert_allclose(ours, ref["y"].to_numpy() - np.log(mmm.scales.target), rtol=1e-8, atol=1e-8)


def test_simulated_sigmoid_trend_follows_its_settings():
    scenario = sigmoid_scenario()
    _frame, truth = simulate(scenario)
    t = np.linspace(0.0, 1.0, scenario.n_weeks)
    s = 1.0 / (1.0 + np.exp(-14.0 * (t - 0.5)))
    expected = 60.0 * (s - s[0]) / (s[-1] - s[0])
    np.testing.assert_allclose(truth["baseline"]["trend"], expected, atol=1e-6)
    default = ScenarioConfig.model_validate({**scenario.model_dump(), "trend": {"kind": "sigmoid", "total": 1.0}})
    assert (default.trend.steepness, default.trend.midpoint) == (8.0, 0.5)  # the built-in scenarios' curve
