"""Time-varying media effects (``model.time_varying_media``): the multiplier math against NumPy and
SciPy references, the contribution-weighted centring, the YAML contract, and a real fit on simulated
data whose social effect halves mid-history (direction and rough size recovered, roas_by_period,
predict past the data, save/load, the optimizer planning on the latest level, dated lift tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import BSpline

from bayesmmm import ConfigError, ModelConfig
from bayesmmm.components.multiplier import (
    MULTIPLIERS,
    VARYING_DIM,
    HSGPMultiplier,
    Multiplier,
    SplineMultiplier,
    random_walk_matrix,
)
from bayesmmm.components.priors import Prior
from bayesmmm.config.varying import TimeVaryingMediaConfig
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate
from bayesmmm.workflows.simulate_varying import EffectChangeSpec, effect_path

DATA = {"date_column": "date", "target_column": "sales", "channel_columns": ["search", "social", "tv"]}


# ------------------------------------------------------------------------------ the math
def _numpy_hsgp_log_curve(t, amplitude, lengthscale, z, m, c):
    """Matérn-5/2 HSGP with the basis mean over [0, 1] removed (closed form by quadrature here)."""
    L = c * 0.5
    j = np.arange(1, m + 1)
    omega = np.pi * j / (2 * L)

    def phi(x):
        return np.sin(omega[None, :] * (x[:, None] - 0.5 + L)) / np.sqrt(L)

    grid = np.linspace(0.0, 1.0, 20001)
    mean = np.trapezoid(phi(grid), grid, axis=0)
    lam = np.sqrt(5.0) / lengthscale[:, None]
    psd = amplitude[:, None] ** 2 * (16.0 / 3.0) * lam**5 / (lam**2 + omega[None, :] ** 2) ** 3
    return (phi(t) - mean) @ (np.sqrt(psd) * z).T  # (date, k)


def test_hsgp_multiplier_curve_matches_numpy():
    rng = np.random.default_rng(0)
    comp = HSGPMultiplier(["a", "b"], m=10, c=2.5)
    t = np.linspace(-0.1, 1.3, 31)
    params = {
        "tvm_gp_amplitude": np.array([0.3, 0.7]),
        "tvm_gp_lengthscale": np.array([0.25, 0.6]),
        "tvm_gp_z": rng.normal(size=(2, 10)),
    }
    ours = comp.log_curve(t, params).eval()
    ref = _numpy_hsgp_log_curve(t, *params.values(), m=10, c=2.5)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert comp.variables()["tvm_gp_z"] == (VARYING_DIM, "tvm_basis")


def test_spline_multiplier_matches_scipy_and_holds_past_its_horizon():
    rng = np.random.default_rng(1)
    comp = SplineMultiplier(["a"], n_knots=5, horizon=0.5)
    sigma, z = np.array([0.8]), rng.normal(size=(1, comp.n_free))
    t = np.linspace(0.0, 2.0, 41)
    ours = comp.log_curve(t, {"tvm_spline_sigma": sigma, "tvm_spline_z": z}).eval()[:, 0]
    coef = random_walk_matrix(comp.n_fitted, comp.n_free) @ z[0] * sigma[0] * np.sqrt(comp.h)
    knots = comp.h * np.arange(-3, len(coef) + 1)  # cardinal cubic B-splines centred at comp.centers
    spline = BSpline(knots, coef, 3, extrapolate=False)
    inside = t <= comp.hi
    np.testing.assert_allclose(ours[inside], spline(t[inside]), atol=1e-10)
    np.testing.assert_allclose(ours[~inside], spline(comp.hi), atol=1e-10)  # held flat past 1 + horizon
    # the random walk: first differences of the coefficients are the innovations; no constant part in [0, 1]
    m = random_walk_matrix(comp.n_fitted, comp.n_free)
    np.testing.assert_allclose(np.diff(m, axis=0), np.eye(comp.n_free), atol=1e-12)
    np.testing.assert_allclose(m[: comp.n_fitted].sum(axis=0), 0.0, atol=1e-12)


def _spec_like(channels, varying, geo=False):
    """The few members of a ModelSpec that :func:`media_multiplier` reads."""
    from types import SimpleNamespace

    config = SimpleNamespace(media_prior=SimpleNamespace(type="share"))
    return SimpleNamespace(
        channels=tuple(channels),
        varying=varying,
        is_geo=geo,
        model_config=config,
        data=SimpleNamespace(has_revenue=False),
    )


@pytest.mark.parametrize("geo", [False, True])
def test_multiplier_is_centred_on_the_contribution_weighted_training_mean(geo):
    """m_c(t) = exp f_c(t) / w_c with w_c the contribution-weighted mean of exp f_c over the training rows
    (NumPy reference); constant channels get 1; the weighted mean of m is exactly 1."""
    from bayesmmm.model.multiplier import media_multiplier

    rng = np.random.default_rng(2)
    comp = HSGPMultiplier(["tv"], m=8)
    spec = _spec_like(["search", "tv"], comp, geo)
    n = 40
    t = np.linspace(0.0, 1.0, n)
    q = rng.gamma(2.0, size=(n, 3, 2) if geo else (n, 2))
    q[:5] = 0.0  # weeks without spend weigh nothing
    params = {
        "tvm_gp_amplitude": np.array([0.5]),
        "tvm_gp_lengthscale": np.array([0.3]),
        "tvm_gp_z": rng.normal(size=(1, 8)),
    }
    ours = media_multiplier(spec, params, t, t, q).eval()
    f = comp.log_curve(t, params).eval()[:, 0]
    weight = q.sum(axis=1)[:, 1] if geo else q[:, 1]
    w = np.sum(np.exp(f) * weight) / np.sum(weight)
    expected = np.exp(f) / w
    got = ours[:, 0, :] if geo else ours
    np.testing.assert_allclose(got[:, 1], expected, rtol=1e-9)
    np.testing.assert_allclose(got[:, 0], 1.0)
    np.testing.assert_allclose(np.sum(got[:, 1] * weight) / np.sum(weight), 1.0, rtol=1e-12)
    # on other rows (a forecast) the centring stays the training rows'
    later = media_multiplier(spec, params, t + 0.2, t, q).eval()
    later = later[:, 0, :] if geo else later
    np.testing.assert_allclose(later[:, 1], np.exp(comp.log_curve(t + 0.2, params).eval()[:, 0]) / w, rtol=1e-9)


# ------------------------------------------------------------------------ YAML contract
def test_yaml_contract_and_errors():
    config = ModelConfig.model_validate({"time_varying_media": {"channels": ["tv", "social"], "kind": "hsgp"}})
    assert config.time_varying_media.kind == "hsgp" and config.time_varying_media.plan == "latest"
    assert ModelConfig.from_yaml(config.to_yaml()) == config
    assert ModelConfig().time_varying_media is None  # today's configs: constant effects
    with pytest.raises(ValueError, match="Valid multiplier names: hsgp, spline"):
        TimeVaryingMediaConfig(channels=["tv"], kind="hsgpp")
    with pytest.raises(ValueError, match="did you mean 'n_knots'"):
        TimeVaryingMediaConfig(channels=["tv"], kind="spline", options={"n_knot": 5})
    with pytest.raises(ValueError, match="no variable 'tvm_gp_amp'"):
        TimeVaryingMediaConfig(channels=["tv"], priors={"tvm_gp_amp": {"dist": "HalfNormal", "sigma": 1}})
    with pytest.raises(ValueError, match="latest, average or a multiplier > 0"):
        TimeVaryingMediaConfig(channels=["tv"], plan=-1.0)
    with pytest.raises(ConfigError, match="'radio', which is not a channel"):
        MMM(DATA, {"time_varying_media": {"channels": ["radio"]}})
    # the fewest-periods check counts a curve's effective parameters, not its m basis coefficients
    hsgp = MMM(DATA, {"time_varying_media": {"channels": ["tv", "social"]}})
    spline = MMM(DATA, {"time_varying_media": {"channels": ["tv"], "kind": "spline"}})
    assert hsgp.n_mean_parameters == MMM(DATA).n_mean_parameters + 2 * 6
    assert spline.n_mean_parameters == MMM(DATA).n_mean_parameters + 1 + 8


def test_a_registered_multiplier_is_usable_by_name():
    @MULTIPLIERS.register("test_linear_tvm")
    class LinearMultiplier(Multiplier):
        default_priors = {"tvm_slope": Prior(dist="Normal", mu=0.0, sigma=0.5)}

        def variables(self):
            return {"tvm_slope": (VARYING_DIM,)}

        def log_curve(self, t, params):
            return (t - 0.5)[:, None] * params["tvm_slope"][None, :]

    mmm = MMM(DATA, {"time_varying_media": {"channels": ["tv"], "kind": "test_linear_tvm"}})
    assert isinstance(mmm.varying, LinearMultiplier) and mmm.varying.channels == ("tv",)


def test_simulated_effect_change_has_known_truth():
    np.testing.assert_array_equal(effect_path(EffectChangeSpec(factor=0.5, at=0.5), 4), [1.0, 1.0, 0.5, 0.5])
    _frame, truth = simulate(load_scenario(builtin_scenario("effect_change")))
    social = truth["channels"]["social"]
    years = social["roas_by_year"]
    assert years["2025"] < 0.6 * years["2023"]  # halved (saturation moves it a little)
    assert social["beta_latest"] == pytest.approx(0.5 * social["beta"])
    assert "effect_multiplier" not in truth["channels"]["tv"]


# ------------------------------------------------------------------------------ a real fit
@pytest.fixture(scope="module")
def halving_fit():
    scenario = load_scenario(builtin_scenario("effect_change"))
    frame, truth = simulate(scenario)
    fits = {}
    for name, model in (
        ("varying", {"time_varying_media": {"channels": ["social"], "kind": "hsgp"}}),
        ("constant", {}),
    ):
        mmm = MMM(DATA, {"yearly_seasonality": 2, **model})
        mmm.fit(frame, draws=250, tune=300, chains=2, seed=7)
        fits[name] = mmm
    return frame, truth, fits


def test_halving_effect_is_recovered_in_direction_and_roughly_in_size(halving_fit):
    from bayesmmm.evaluation.varying import multiplier_table, roas_by_period_table

    _frame, truth, fits = halving_fit
    mmm = fits["varying"]
    assert float(mmm.idata["sample_stats"]["diverging"].mean()) <= 0.02  # a rate, not an exact count
    table = roas_by_period_table(mmm)
    years = table[(table.channel == "social") & (table.kind == "year")].set_index("period")
    ratio = years.loc["2025", "roas_mean"] / years.loc["2023", "roas_mean"]
    true_ratio = (
        truth["channels"]["social"]["roas_by_year"]["2025"] / truth["channels"]["social"]["roas_by_year"]["2023"]
    )
    assert ratio < 0.85  # the effect fell (truth: halved)
    assert abs(np.log(ratio / true_ratio)) < np.log(1.6)  # roughly its size
    mult = multiplier_table(mmm)
    assert set(mult.channel) == {"social"} and len(mult) == mmm.data.n_dates
    first, last = mult.multiplier_mean.iloc[:26].mean(), mult.multiplier_mean.iloc[-26:].mean()
    assert last < first
    # the constant model reports the same ROAS every year, up to the spend's saturation
    const = roas_by_period_table(fits["constant"])
    cyears = const[(const.channel == "social") & (const.kind == "year")].set_index("period")
    assert cyears.loc["2025", "roas_mean"] / cyears.loc["2023", "roas_mean"] > ratio


def test_the_change_itself_is_identified(halving_fit):
    """Prior vs posterior of the log change from the first to the last quarter: the halving is learned."""
    from bayesmmm.evaluation.identifiability import prior_draws, varying_identifiability

    _frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    out = varying_identifiability(mmm, prior_draws(mmm, 400, seed=1))
    social = out["social"]
    assert set(out) == {"social"} and social["window_periods"] == 39
    assert social["p_decline"] > 0.9
    assert social["change"]["log_change_posterior_mean"] < -0.2
    assert social["change"]["contraction"] > 0.3
    assert "amplitude_prior_sd" in social["amplitude"]


def test_centring_keeps_the_training_total(halving_fit):
    """Σ_t m_c(t) q_c(t) = Σ_t q_c(t) per draw: ROAS priors stay valid."""
    _frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    draws = mmm.posterior_draws()
    mult = mmm.predictive.multiplier(mmm.data.dates, draws)  # (sample, date, channel)
    media = mmm.posterior_components()["media"].to_numpy().reshape(mult.shape)
    q = media / mult  # the constant-effect contributions
    np.testing.assert_allclose((mult * q).sum(axis=1) / q.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(mult[:, :, [0, 2]], 1.0)  # search and tv stay constant


def test_predict_past_the_data_continues_the_multiplier_with_wider_intervals(halving_fit):
    frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    future = frame.iloc[-26:].copy()
    future["date"] = (pd.to_datetime(future["date"]) + pd.Timedelta(weeks=26)).dt.strftime("%Y-%m-%d")
    out = mmm.predict(future)
    assert np.isfinite(out["mu"].to_numpy()).all()
    dates = pd.DatetimeIndex(pd.to_datetime(future["date"]))
    ahead = mmm.predictive.multiplier(dates)[:, :, 1]
    last = mmm.predictive.multiplier(mmm.data.dates[-1:])[:, :, 1]
    assert np.std(np.log(ahead[:, -1])) > np.std(np.log(last[:, 0]))  # honest: wider the further out
    # the same mean function: the history's media component equals the decomposition's
    hist = mmm.predict(frame, include_history=False)
    np.testing.assert_allclose(
        hist["media"].to_numpy(), mmm.posterior_components()["media"].to_numpy(), rtol=1e-8, atol=1e-8
    )


def test_optimizer_plans_on_the_latest_level(halving_fit):
    from bayesmmm.decisions.response import FlightResponse

    _frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    level = mmm.predictive.planning_level()
    draws = mmm.posterior_draws()
    expected = mmm.predictive.multiplier(mmm.data.dates[-13:], draws)[:, :, 1].mean(axis=1)
    np.testing.assert_allclose(level[:, 1], expected)
    np.testing.assert_allclose(level[:, [0, 2]], 1.0)
    spend = np.array([20000.0, 20000.0, 20000.0])
    latest = FlightResponse(mmm, 8, max_draws=None).per_channel(spend)[0]
    average = FlightResponse(mmm, 8, max_draws=None, plan="average").per_channel(spend)[0]
    stated = FlightResponse(mmm, 8, max_draws=None, plan=0.5).per_channel(spend)[0]
    np.testing.assert_allclose(latest[:, 1], average[:, 1] * level[:, 1], rtol=1e-9)
    np.testing.assert_allclose(stated[:, 1], average[:, 1] * 0.5, rtol=1e-9)
    np.testing.assert_allclose(latest[:, [0, 2]], average[:, [0, 2]], rtol=1e-12)


def test_save_load_round_trip_and_old_files_load_constant(halving_fit, tmp_path):
    frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    mmm.save(tmp_path / "posterior.nc")
    back = MMM.load(tmp_path / "posterior.nc")
    assert back.model_config.time_varying_media == mmm.model_config.time_varying_media
    np.testing.assert_allclose(
        back.predictive.multiplier(back.data.dates), mmm.predictive.multiplier(mmm.data.dates), rtol=1e-12
    )
    np.testing.assert_allclose(
        back.predict(frame.iloc[-8:], include_history=False)["mu"].to_numpy(),
        mmm.predict(frame.iloc[-8:], include_history=False)["mu"].to_numpy(),
        rtol=1e-10,
    )
    const = fits["constant"]
    const.save(tmp_path / "constant.nc")
    assert MMM.load(tmp_path / "constant.nc").model_config.time_varying_media is None


def test_dated_lift_test_pins_the_effect_at_its_dates(halving_fit):
    """A dated test's model lift is the constant-effect lift times the multiplier over its weeks."""
    from bayesmmm.model.calibration import check_lift_tests

    _frame, _truth, fits = halving_fit
    mmm = fits["varying"]
    dates = mmm.data.dates
    tests = check_lift_tests(
        pd.DataFrame(
            {
                "channel": ["social", "social", "social"],
                "x": [1500.0] * 3,
                "delta_x": [-1500.0] * 3,
                "delta_y": [50.0] * 3,
                "sigma": [10.0] * 3,
                "start": [dates[10], dates[-14], None],
                "end": [dates[13], dates[-11], None],
            }
        )
    )
    draws = mmm.posterior_draws()
    lifts = mmm.lift_draws(draws, tests)
    mult = mmm.predictive.multiplier(dates, draws)[:, :, 1]
    # strip the multiplier: the same tests on the constant-effect curve, per draw
    import dataclasses

    from bayesmmm.model.calibration import design_lift_draws, lift_design

    design = lift_design(mmm.require_spec(), tests)
    flat = design_lift_draws(mmm.require_spec(), draws, dataclasses.replace(design, t=None, dated=None))
    assert np.all(np.sign(lifts) == np.sign(flat))
    early, late = lifts[:, 0] / flat[:, 0], lifts[:, 1] / flat[:, 1]
    assert np.median(early) > np.median(late)  # the earlier test meets the higher effect
    np.testing.assert_allclose(lifts[:, 2], flat[:, 2], rtol=1e-12)  # undated: the training average
    assert np.all(early > mult[:, 10:14].min(axis=1) - 1e-9) and np.all(early < mult[:, 10:14].max(axis=1) + 1e-9)


def test_experiment_writes_roas_by_period_and_the_multiplier_plot(tmp_path):
    from bayesmmm.config.experiment import ExperimentConfig
    from bayesmmm.workflows.experiment import run_experiment

    frame, _truth = simulate(load_scenario(builtin_scenario("effect_change")))
    config = ExperimentConfig.model_validate(
        {
            "data": DATA,
            "model": {"yearly_seasonality": 1, "time_varying_media": {"channels": ["social"], "kind": "spline"}},
            "sampler": {"draws": 60, "tune": 60, "chains": 1, "seed": 3},
        }
    )
    result = run_experiment(config, tmp_path / "run", frame=frame.iloc[:110])
    table = pd.read_csv(result.run_dir / "roas_by_period.csv")
    assert set(table["kind"]) == {"year", "quarter"} and set(table["channel"]) == {"search", "social", "tv"}
    assert {"roas_mean", "roas_hdi_low", "roas_hdi_high"} <= set(table.columns)
    assert (table["roas_hdi_low"] <= table["roas_hdi_high"]).all()
    assert (result.run_dir / "multipliers.png").exists()
    assert len(pd.read_csv(result.run_dir / "multipliers.csv")) == 110
    from bayesmmm.reporting.report import write_report

    html = write_report(result.run_dir, model=result.model).read_text()
    assert "Effects over time" in html and "effect multipliers over time" in html


@pytest.mark.parametrize("kind", ["hsgp", "spline"])
def test_jax_translation_has_the_pymc_log_density(kind):
    """The JAX backends' log-density (numpyro, blackjax) equals PyMC's with a multiplier and a dated lift test."""
    from bayesmmm.inference.jax.translate import jax_model

    frame, _truth = simulate(load_scenario(builtin_scenario("effect_change")))
    dates = pd.to_datetime(frame["date"])
    lift = pd.DataFrame(
        {"channel": ["social"], "x": [1500.0], "delta_x": [-1500.0], "delta_y": [40.0], "sigma": [8.0]}
        | {"start": [dates.iloc[20].date().isoformat()], "end": [dates.iloc[23].date().isoformat()]}
    )
    mmm = MMM(DATA, {"time_varying_media": {"channels": ["social", "tv"], "kind": kind}}, lift_tests=lift)
    model = mmm.build_model(frame)
    jm = jax_model(model, seed=0)
    rng = np.random.default_rng(0)
    point = {
        name: np.asarray(value) + 0.1 * rng.normal(size=np.shape(value)) for name, value in jm.initial_point.items()
    }
    ours = float(jm.logp([point[n] for n in jm.value_names], jm.data_values))
    ref = float(model.compile_logp()(point))
    assert ours == pytest.approx(ref, rel=1e-8, abs=1e-8)
    assert "lift_t" in jm.data_names


def test_geo_panel_shares_one_multiplier_per_channel():
    """A geo model: one multiplier per channel shared by the geos, centred over dates and geos; the
    decomposition, predict, curves and flight responses run through it."""
    from bayesmmm.decisions.response import FlightResponse, response_curves

    frame, _truth = simulate(load_scenario(builtin_scenario("geo_panel")))
    data = {**DATA, "geo_column": "geo"}
    model = {"yearly_seasonality": 1, "time_varying_media": {"channels": ["tv"], "kind": "spline"}}
    mmm = MMM(data, model)
    mmm.fit(frame, draws=60, tune=80, chains=1, seed=2)
    assert mmm.idata["posterior"]["tvm_spline_z"].dims[2:] == ("varying_channel", "tvm_knot")
    draws = mmm.posterior_draws()
    mult = mmm.predictive.multiplier(mmm.data.dates, draws)  # (sample, date, channel): one per channel
    spec = mmm.require_spec()
    # centring over dates and geos (scaled units): the constant-effect contributions, per draw
    from bayesmmm.model.geo import geo_media_parameters

    assert mult.shape == (60, mmm.data.n_dates, 3)
    np.testing.assert_allclose(mult[:, :, :2], 1.0)
    comps = mmm.evaluate(*spec.history_inputs(), components=("media",))["media"]  # (sample, date, geo, ch)
    scaled = comps / np.asarray(spec.scales.target)[None, None, :, None]
    q = scaled[..., 2] / mult[:, :, None, 2]
    np.testing.assert_allclose((scaled[..., 2]).sum(axis=(1, 2)) / q.sum(axis=(1, 2)), 1.0, rtol=1e-9)
    assert geo_media_parameters(spec, draws)["beta"].shape[1:] == (len(mmm.geos), 3)
    curves = response_curves(mmm, max_draws=30)
    at_one = curves[curves.multiplier == 1.0].set_index("channel")["response_mean"]
    total = mmm.posterior_components()["media"].sum("date").mean(("chain", "draw")).to_series()
    assert abs(at_one["tv"] / total["tv"] - 1) < 0.25  # 30 of 60 draws
    average = FlightResponse(mmm, 4, max_draws=None, plan="average").per_channel(np.full(3, 5000.0))[0]
    half = FlightResponse(mmm, 4, max_draws=None, plan=0.5).per_channel(np.full(3, 5000.0))[0]
    np.testing.assert_allclose(half[:, 2], 0.5 * average[:, 2], rtol=1e-9)
    future = frame[frame["date"].isin(sorted(frame["date"].unique())[-4:])].copy()
    future["date"] = (pd.to_datetime(future["date"]) + pd.Timedelta(weeks=4)).dt.strftime("%Y-%m-%d")
    assert np.isfinite(mmm.predict(future)["mu_geo"].to_numpy()).all()
