"""Lift-test calibration, the identifiability check and simulated lift tests.

References are independent: closed forms (normalized geometric adstock + logistic
saturation written in NumPy), the simulator's true curves, and small real MCMC fits with
fixed seeds (2 chains × 200 draws).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmmm import MMM
from bayesmmm.data.loading import DataError
from bayesmmm.evaluation.identifiability import expected_test_lift, identifiability, prior_draws
from bayesmmm.workflows.simulate import ScenarioConfig, simulate, write_simulation

SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 200, "tune": 300, "seed": 3, "progressbar": False}
L_MAX = 6
DATA = {"channel_columns": ["a", "b"]}
MODEL = {
    "adstock": {"name": "geometric", "l_max": L_MAX},
    "saturation": "logistic",
    "trend": "linear",
    "yearly_seasonality": 0,
}
SCENARIO = {
    "name": "always_on",
    "seed": 7,
    "start_date": "2024-01-01",
    "n_weeks": 78,
    "base": 500,
    "trend": {"kind": "linear", "total": 40},
    "channels": {
        # always on, little variation, saturating: the level is confounded with the intercept
        "a": {
            "spend": {"shape": 12, "scale": 100},
            "adstock": {"name": "geometric", "l_max": L_MAX, "params": {"alpha": 0.3}},
            "saturation": {"name": "logistic", "params": {"lam": 1.5}},
            "beta": 60,
        },
        "b": {
            "spend": {"shape": 10, "scale": 300},
            "adstock": {"name": "geometric", "l_max": L_MAX, "params": {"alpha": 0.6}},
            "saturation": {"name": "logistic", "params": {"lam": 1.0}},
            "beta": 50,
        },
    },
    "noise": {"sigma": 10},
    "lift_tests": {"channels": ["a", "b"], "change": -1.0, "noise": 0.05, "weeks": 4},
}


# ------------------------------------------------------------------ NumPy references
def np_adstock(x: np.ndarray, alpha: float, l_max: int = L_MAX) -> np.ndarray:
    """Normalized geometric adstock along axis 0, zero before the first week."""
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    out = np.zeros_like(x, dtype=float)
    for lag in range(l_max):
        out[lag:] += w[lag] * x[: len(x) - lag]
    return out


def np_contribution(spend: np.ndarray, scale: float, beta: float, alpha: float, lam: float) -> np.ndarray:
    return beta * np.tanh(lam * np_adstock(spend / scale, alpha) / 2.0)


# -------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The always-on scenario: (frame, truth, simulated lift tests, folder)."""
    folder = tmp_path_factory.mktemp("always_on")
    data_path, truth_path = write_simulation(ScenarioConfig.model_validate(SCENARIO), folder)
    return pd.read_csv(data_path), json.loads(truth_path.read_text()), pd.read_csv(folder / "lift_tests.csv"), folder


@pytest.fixture(scope="module")
def pinned_tests(sim):
    """A go-dark steady-state test on ``a`` with a TINY sigma (0.5% of the true lift) and
    the simulator's dated test on ``b``."""
    frame, truth, simulated, _ = sim
    ch = truth["channels"]["a"]
    x = float(frame["a"].mean())
    true = -ch["beta"] * np.tanh(ch["saturation"]["lam"] * x / ch["spend_scale"] / 2)  # steady state: adstock(x) = x
    steady = {"channel": "a", "x": x, "delta_x": -x, "delta_y": true, "sigma": 0.005 * abs(true)}
    dated = simulated[simulated["channel"] == "b"].iloc[0].to_dict()
    return pd.DataFrame([steady, dated])


@pytest.fixture(scope="module")
def uncalibrated(sim):
    mmm = MMM(DATA, MODEL)
    mmm.fit(sim[0], SAMPLER)
    return mmm


@pytest.fixture(scope="module")
def calibrated(sim, pinned_tests):
    mmm = MMM(DATA, MODEL, lift_tests=pinned_tests)
    mmm.fit(sim[0], SAMPLER)
    return mmm


def posterior_means(mmm: MMM) -> dict[str, np.ndarray]:
    return {k: v.mean(axis=0, keepdims=True) for k, v in mmm.posterior_draws().items()}


# ----------------------------------------------------------------------- tests
def test_simulated_lift_tests_follow_the_true_curves(sim):
    """lift_tests.csv: the contract's columns; the true lift is the NumPy counterfactual of the true curve."""
    frame, truth, tests, _ = sim
    assert list(tests.columns) == ["channel", "x", "delta_x", "delta_y", "sigma", "start", "end"]
    dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    for row, rec in zip(tests.itertuples(), truth["lift_tests"], strict=True):
        ch = truth["channels"][row.channel]
        window = (dates >= pd.Timestamp(row.start)) & (dates <= pd.Timestamp(row.end))
        assert window.sum() == 4
        spend = frame[row.channel].to_numpy(float)
        assert row.x == pytest.approx(spend[window].mean()) and row.delta_x == pytest.approx(-row.x)
        base, treat = spend.copy(), spend.copy()
        base[window], treat[window] = row.x, 0.0
        args = (ch["spend_scale"], ch["beta"], ch["adstock"]["alpha"], ch["saturation"]["lam"])
        true = (np_contribution(treat, *args) - np_contribution(base, *args))[window].mean()
        assert rec["true_lift"] == pytest.approx(true, rel=1e-9)
        assert row.sigma == pytest.approx(0.05 * abs(true))
        assert abs(row.delta_y - true) < 4 * row.sigma
    # the data do not change when a scenario asks for lift tests
    plain = {k: v for k, v in SCENARIO.items() if k != "lift_tests"}
    from bayesmmm.workflows.simulate import simulate

    assert simulate(ScenarioConfig.model_validate(plain))[0].equals(frame.assign(date=frame["date"].astype(str)))


def test_model_lift_matches_closed_forms_for_prior_draws(sim, pinned_tests):
    """The likelihood's lift term equals the NumPy steady-state closed form and the dated
    counterfactual for arbitrary parameter values (prior draws; no fit)."""
    frame = sim[0]
    mmm = MMM(DATA, MODEL, lift_tests=pinned_tests)
    mmm.build_model(frame)
    draws = prior_draws(mmm, 6, seed=1)
    got = mmm.lift_draws(draws)  # (sample, test), original units
    s_y, s_c = mmm.scales.target, np.asarray(mmm.scales.media)
    steady, dated = pinned_tests.iloc[0], pinned_tests.iloc[1]
    dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    window = (dates >= pd.Timestamp(dated["start"])) & (dates <= pd.Timestamp(dated["end"]))
    for i in range(6):
        beta, alpha, lam = draws["beta"][i], draws["adstock_alpha"][i], draws["saturation_lam"][i]
        x, dx = steady["x"], steady["delta_x"]
        ref_a = beta[0] * (np.tanh(lam[0] * (x + dx) / s_c[0] / 2) - np.tanh(lam[0] * x / s_c[0] / 2)) * s_y
        spend = frame["b"].to_numpy(float)
        base, treat = spend.copy(), spend.copy()
        base[window], treat[window] = dated["x"], dated["x"] + dated["delta_x"]
        args = (s_c[1], beta[1], alpha[1], lam[1])
        ref_b = (np_contribution(treat, *args) - np_contribution(base, *args))[window].mean() * s_y
        np.testing.assert_allclose(got[i], [ref_a, ref_b], rtol=1e-9)


def test_tiny_sigma_pins_beta_times_delta_saturation(calibrated, pinned_tests):
    """A go-dark test with sigma = 0.5% of the lift pins beta · [sat(0) − sat(x/s)] · s_y (closed form,
    per posterior draw) to the measured lift."""
    mmm = calibrated
    d = mmm.posterior_draws()
    test = pinned_tests.iloc[0]
    s_c = np.asarray(mmm.scales.media)[0]
    closed = -d["beta"][:, 0] * np.tanh(d["saturation_lam"][:, 0] * test["x"] / s_c / 2) * mmm.scales.target
    assert abs(closed.mean() - test["delta_y"]) < 2 * test["sigma"]
    assert closed.std() < 2 * test["sigma"]
    np.testing.assert_allclose(mmm.lift_draws()[:, 0], closed, rtol=1e-9)


def test_dated_lift_equals_numpy_counterfactual_at_posterior_means(calibrated, sim, pinned_tests):
    mmm, frame = calibrated, sim[0]
    means = posterior_means(mmm)
    row = pinned_tests.iloc[1]
    dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    window = (dates >= pd.Timestamp(row["start"])) & (dates <= pd.Timestamp(row["end"]))
    spend = frame["b"].to_numpy(float)
    base, treat = spend.copy(), spend.copy()
    base[window], treat[window] = row["x"], row["x"] + row["delta_x"]
    args = (
        np.asarray(mmm.scales.media)[1],
        means["beta"][0, 1],
        means["adstock_alpha"][0, 1],
        means["saturation_lam"][0, 1],
    )
    ref = (np_contribution(treat, *args) - np_contribution(base, *args))[window].mean() * mmm.scales.target
    assert mmm.lift_draws(means)[0, 1] == pytest.approx(ref, rel=1e-9)
    # and the fit agrees with the measurement (5% standard error)
    assert abs(mmm.lift_draws()[:, 1].mean() - row["delta_y"]) < 3 * row["sigma"]


def test_identifiability_flags_prior_driven_channels_and_tests_contract_them(uncalibrated, calibrated):
    before = identifiability(uncalibrated, n_prior=1000)
    after = identifiability(calibrated, n_prior=1000)
    keys = {"roas_prior_sd", "roas_posterior_sd", "contraction", "log_contraction", "shift", "prior_driven"}
    assert keys <= set(before["channels"]["a"])
    # always-on, saturating data without tests: the prior decides, for every channel (with the default share
    # prior the log-contractions were 0.63 / 0.53, with the coefficient prior 0.71 / 0.47: threshold 0.9)
    assert before["prior_driven"] == ["a", "b"], before
    for ch in ("a", "b"):
        assert after["channels"][ch]["log_contraction"] > before["channels"][ch]["log_contraction"]
    assert not after["channels"]["a"]["prior_driven"]  # pinned by the tiny-sigma test
    flagged = before["channels"][before["prior_driven"][0]]
    test = flagged["expected_test"]
    assert test["weeks"] == 4 and test["plus"]["mean"] > 0 > test["minus"]["mean"]
    assert test["plus"]["hdi"][0] <= test["plus"]["mean"] <= test["plus"]["hdi"][1]
    assert "run a lift test" in flagged["advice"] and f"{max(flagged['log_contraction'], 0):.1%}" in flagged["advice"]
    # the check's own numbers: sd and contraction from the prior and posterior ROAS draws
    c = before["channels"]["a"]
    assert c["contraction"] == pytest.approx(1 - c["roas_posterior_sd"] ** 2 / c["roas_prior_sd"] ** 2)


def test_calibrated_model_saves_loads_predicts_and_optimizes(calibrated, sim, tmp_path):
    from bayesmmm.decisions.optimizer import optimize_budget

    mmm, frame = calibrated, sim[0]
    path = mmm.save(tmp_path / "posterior.nc")
    loaded = MMM.load(path)
    pd.testing.assert_frame_equal(
        loaded.lift_tests.drop(columns=["geo"]), mmm.lift_tests.drop(columns=["geo"]), check_dtype=False
    )
    np.testing.assert_allclose(loaded.lift_draws(), mmm.lift_draws())
    future = pd.DataFrame(
        {"date": pd.date_range(pd.Timestamp(frame["date"].iloc[-1]) + pd.Timedelta(days=7), periods=4, freq="7D")}
    ).assign(a=1200.0, b=3000.0)
    future["date"] = future["date"].dt.strftime("%Y-%m-%d")
    np.testing.assert_allclose(loaded.predict(future)["mu"].to_numpy(), mmm.predict(future)["mu"].to_numpy())
    result = optimize_budget(loaded, float(frame[["a", "b"]].sum(axis=1).mean() * 4), 4, max_change=0.5)
    assert result.allocation["optimized_spend"].sum() == pytest.approx(result.allocation["current_spend"].sum())
    assert MMM.load(path).structure_key() == mmm.structure_key()


def test_numpyro_samples_a_calibrated_model(sim, pinned_tests):
    pytest.importorskip("numpyro")
    mmm = MMM(DATA, MODEL, lift_tests=pinned_tests)
    mmm.fit(sim[0], {**SAMPLER, "backend": "numpyro"})
    test = pinned_tests.iloc[0]
    assert abs(mmm.lift_draws()[:, 0].mean() - test["delta_y"]) < 2 * test["sigma"]


def test_geo_lift_uses_the_geos_parameters_and_scales():
    """On a two-geo panel the geo column picks the geo's pooled beta and transforms and its scales."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=40, freq="7D").strftime("%Y-%m-%d")
    rows = []
    for g, size in (("north", 1.0), ("south", 2.5)):
        for d in dates:
            a, b = rng.gamma(10, 100) * size, rng.gamma(10, 200) * size
            rows.append({"date": d, "geo": g, "a": a, "b": b, "sales": size * 500 + 0.01 * a + rng.normal(0, 5)})
    panel = pd.DataFrame(rows)
    tests = pd.DataFrame(
        [
            {"channel": "a", "geo": "south", "x": 2000.0, "delta_x": -1000.0, "delta_y": -5.0, "sigma": 1.0},
            {"channel": "b", "geo": "north", "x": 1500.0, "delta_x": 500.0, "delta_y": 3.0, "sigma": 1.0},
        ]
    )
    mmm = MMM({**DATA, "geo_column": "geo"}, {**MODEL, "geo": {"adstock": "pooled", "saturation": "pooled"}}, tests)
    mmm.build_model(panel)
    draws = prior_draws(mmm, 4, seed=2)
    got = mmm.lift_draws(draws)
    per_geo = mmm.geo_media_parameters(draws)  # (sample, geo, channel)
    s_c, s_y = np.asarray(mmm.scales.media), np.asarray(mmm.scales.target)
    for i, (c, g) in enumerate(((0, 1), (1, 0))):
        x, dx = tests.loc[i, "x"], tests.loc[i, "delta_x"]
        beta, lam = per_geo["beta"][:, g, c], per_geo["saturation_lam"][:, g, c]
        ref = beta * (np.tanh(lam * (x + dx) / s_c[g, c] / 2) - np.tanh(lam * x / s_c[g, c] / 2)) * s_y[g]
        np.testing.assert_allclose(got[:, i], ref, rtol=1e-9)
    # a real (small) fit of the calibrated panel; the identifiability check works per national channel
    backend = "numpyro" if importlib.util.find_spec("numpyro") else "nutpie"  # numpyro compiles this faster
    mmm.fit(panel, {**SAMPLER, "backend": backend, "draws": 100, "tune": 200})
    ident = identifiability(mmm, n_prior=300)
    assert set(ident["channels"]) == {"a", "b"}
    test = expected_test_lift(mmm, "a")
    assert test["x"] == pytest.approx(panel.groupby("date")["a"].sum().iloc[-4 - (L_MAX - 1) : -(L_MAX - 1)].mean())
    bad = tests.assign(geo=["south", "west"])
    with pytest.raises(DataError, match=r"row 3 \(b\): unknown geo 'west'"):
        MMM({**DATA, "geo_column": "geo"}, MODEL, bad).build_model(panel)
    with pytest.raises(DataError, match="give the test's geo"):
        MMM({**DATA, "geo_column": "geo"}, MODEL, tests.drop(columns="geo")).build_model(panel)


GOOD = "channel,x,delta_x,delta_y,sigma\na,1000,-500,-10,2\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,x,delta_x,delta_y\na,1000,-500,-10\n", r"column\(s\) \['sigma'\] missing"),
        ("channel,x,delta_x,delta_y,sigma,sigam\na,1,1,1,1,1\n", "unknown lift-test column 'sigam'"),
        ("channel,x,delta_x,delta_y,sigma\na,1000,-500,-10,0\n", r"row 2 \(a\): sigma must be > 0"),
        ("channel,x,delta_x,delta_y,sigma\na,1000,-500,-10,2\na,1000,-1500,-10,2\n", r"row 3 \(a\): x \+ delta_x < 0"),
        ("channel,x,delta_x,delta_y,sigma\na,1000,0,-10,2\n", "delta_x = 0"),
        ("channel,x,delta_x,delta_y,sigma\na,lots,-500,-10,2\n", "row 2: x = 'lots' is not a number"),
        ("channel,x,delta_x,delta_y,sigma\nc,1000,-500,-10,2\n", "unknown channel 'c'"),
        (GOOD, None),
        ("channel,x,delta_x,delta_y,sigma,start\na,1000,-500,-10,2,2024-03-04\n", "give both start and end"),
        ("channel,x,delta_x,delta_y,sigma,start,end\na,1000,-500,-10,2,2019-01-07,2019-01-28\n", "outside the data"),
        ("channel,x,delta_x,delta_y,sigma,geo\na,1000,-500,-10,2,north\n", "the model is national"),
    ],
)
def test_bad_lift_test_files_give_one_line_errors(sim, tmp_path, text, message):
    path = tmp_path / "lift.csv"
    path.write_text(text)
    if message is None:  # the good file builds
        MMM(DATA, MODEL, lift_tests=path).build_model(sim[0])
        return
    with pytest.raises(DataError, match=message) as info:
        MMM(DATA, MODEL, lift_tests=path).build_model(sim[0])
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_experiment_yaml_calibration_block_and_cli_error(sim, tmp_path):
    """``calibration.lift_tests.path`` resolves against the YAML; a bad file exits 2 with one line."""
    from typer.testing import CliRunner

    from bayesmmm.cli import app
    from bayesmmm.config.experiment import ConfigError, load_experiment

    folder = sim[3]
    exp = folder / "exp.yaml"
    exp.write_text(
        "data: {path: data.csv, channel_columns: [a, b]}\n"
        "model: {adstock: {name: geometric, l_max: 6}, saturation: logistic, yearly_seasonality: 0}\n"
        "calibration: {lift_tests: {path: bad.csv}}\n"
    )
    config = load_experiment(exp)
    assert config.calibration.lift_tests.path == (folder / "bad.csv").resolve()
    (folder / "bad.csv").write_text("channel,x,delta_x,delta_y,sigma\na,1000,-500,-10,-1\n")
    result = CliRunner().invoke(app, ["fit", str(exp), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "sigma must be > 0" in result.output and len(result.output.strip().splitlines()) == 1
    typo = tmp_path / "typo.yaml"
    typo.write_text(exp.read_text().replace("lift_tests:", "lift_test:"))
    with pytest.raises(ConfigError, match="lift_test"):
        load_experiment(typo)


def test_four_channel_calibrated_config_validates():
    from bayesmmm.config.experiment import load_experiment

    root = Path(__file__).resolve().parents[1]
    config = load_experiment(root / "configs" / "four_channel_calibrated.yaml")
    assert config.calibration.lift_tests.path.name == "lift_tests.csv"
    assert config.data.path.parent == config.calibration.lift_tests.path.parent


def _registered_pairs() -> list[tuple[str, str]]:
    from bayesmmm.components import ADSTOCKS, SATURATIONS

    return [(a, "logistic") for a in ADSTOCKS.names()] + [
        ("geometric", s) for s in SATURATIONS.names() if s != "logistic"
    ]


@pytest.mark.parametrize(("adstock", "saturation"), _registered_pairs())
def test_steady_state_lift_for_every_registered_transform(sim, adstock, saturation):
    """Every registered adstock and saturation (the example plugin's included): the steady-state
    lift is ``beta · [sat((x+Δx)/s) − sat(x/s)] · s_y`` (a normalized adstock's steady state of a
    constant spend is the spend), with ``sat`` evaluated by the component on NumPy input."""
    from bayesmmm.components import SATURATIONS

    tests = pd.DataFrame([{"channel": "b", "x": 2500.0, "delta_x": 1250.0, "delta_y": 5.0, "sigma": 1.0}])
    model = {**MODEL, "adstock": {"name": adstock, "l_max": L_MAX}, "saturation": saturation}
    mmm = MMM(DATA, model, lift_tests=tests)
    mmm.build_model(sim[0])
    draws = prior_draws(mmm, 3, seed=4)
    got = mmm.lift_draws(draws)[:, 0]
    sat = SATURATIONS.get(saturation)()
    s_c = np.asarray(mmm.scales.media)[1]
    for i in range(3):
        params = {p: draws[v][i, 1] for p, v in mmm.saturation.variable_names.items()}
        levels = np.array([2500.0, 3750.0]) / s_c
        y = sat.evaluate(levels, **params)
        assert got[i] == pytest.approx(draws["beta"][i, 1] * (y[1] - y[0]) * mmm.scales.target, rel=1e-8)


def test_steady_state_of_an_unnormalized_adstock_is_the_weights_sum(sim):
    tests = pd.DataFrame([{"channel": "a", "x": 1200.0, "delta_x": -1200.0, "delta_y": -5.0, "sigma": 1.0}])
    model = {**MODEL, "adstock": {"name": "geometric", "l_max": L_MAX, "normalize": False}}
    mmm = MMM(DATA, model, lift_tests=tests)
    mmm.build_model(sim[0])
    draws = prior_draws(mmm, 3, seed=5)
    alpha, lam, beta = draws["adstock_alpha"][:, 0], draws["saturation_lam"][:, 0], draws["beta"][:, 0]
    level = 1200.0 / np.asarray(mmm.scales.media)[0] * (1 - alpha**L_MAX) / (1 - alpha)
    np.testing.assert_allclose(mmm.lift_draws(draws)[:, 0], -beta * np.tanh(lam * level / 2) * mmm.scales.target)


def test_compiled_calibrated_model_serves_new_measurements(calibrated, sim, pinned_tests):
    """Same tests' structure, new measurements: nutpie reuses the compiled model with the new
    ``pm.Data`` (no stale constants) and the fit follows the new measurement."""
    moved = pinned_tests.copy()
    moved.loc[0, "delta_y"] *= 0.8
    moved.loc[0, "sigma"] *= 0.8
    mmm = MMM(DATA, MODEL, lift_tests=moved)
    mmm.fit(sim[0], SAMPLER)
    assert mmm.structure_key() == calibrated.structure_key() and mmm.timings["compile_reused"] == 1
    assert abs(mmm.lift_draws()[:, 0].mean() - moved.loc[0, "delta_y"]) < 2 * moved.loc[0, "sigma"]


def test_expected_test_lift_is_the_predictive_cores_counterfactual(uncalibrated):
    """The advice's ±50% lift equals the full mean function (Predictive.evaluate) on the
    counterfactual spend, averaged over the test's weeks."""
    mmm = uncalibrated
    test = expected_test_lift(mmm, "b")
    dates, media, controls = mmm.history_inputs()
    start, end = (pd.Timestamp(d) for d in test["window"].split(".."))
    window = (dates >= start) & (dates <= end)
    mu = {}
    for factor in (1.0, 1.5):
        m = media.copy()
        m[window, 1] = test["x"] * factor
        comps = mmm.evaluate(dates, m, controls)
        mu[factor] = (comps["intercept"] + comps["media"].sum(axis=-1) + comps["trend"])[:, window].mean(axis=1)
    lift = mu[1.5] - mu[1.0]
    assert test["plus"]["mean"] == pytest.approx(lift.mean(), rel=1e-9)
    assert test["plus"]["delta_x"] == pytest.approx(0.5 * test["x"])


def test_gate_fails_on_prior_driven_channels_when_asked(uncalibrated):
    from bayesmmm.config.experiment import DiagnosticsConfig
    from bayesmmm.evaluation.identifiability import add_calibration_diagnostics

    for fail, passed in ((False, True), (True, False)):
        diag = {"passed": True, "problems": []}
        add_calibration_diagnostics(uncalibrated, diag, DiagnosticsConfig(fail_on_prior_driven=fail))
        assert diag["passed"] is passed and "calibration" not in diag
        assert bool(diag["problems"]) is fail and diag["identifiability"]["prior_driven"]
    diag = {"passed": True, "problems": []}
    add_calibration_diagnostics(uncalibrated, diag, DiagnosticsConfig(identifiability=False))
    assert "identifiability" not in diag


@pytest.mark.parametrize("alpha", [0.05, 0.5, 0.8])
@pytest.mark.parametrize("weeks", [1, 4, 12])
def test_window_capture_is_the_mean_readout_of_a_go_dark_test(alpha, weeks):
    """A plain NumPy counterfactual: constant spend, dark for `weeks` weeks, linear response through the
    adstock; the mean weekly loss over the window over the steady-state level."""
    from bayesmmm.evaluation.identifiability import weeks_to_capture, window_capture

    l_max = 8
    w = alpha ** np.arange(l_max)
    spend = np.ones(40)
    dark = spend.copy()
    dark[20 : 20 + weeks] = 0.0
    response = lambda x: np.array([sum(w[l] / w.sum() * x[t - l] for l in range(l_max)) for t in range(len(x))])  # noqa: E731, E741
    loss = (response(spend) - response(dark))[20 : 20 + weeks].mean()
    assert window_capture(w, weeks) == pytest.approx(loss, rel=1e-12)
    needed = weeks_to_capture(w)
    assert window_capture(w, needed) >= 0.8 > (window_capture(w, needed - 1) if needed > 1 else 0.0)


def test_advice_for_a_channel_with_a_go_dark_test_names_the_test_length_it_needs(calibrated, uncalibrated):
    """`b` has the simulator's dated 4-week go-dark test, `a` a steady-state one (its whole level)."""
    from bayesmmm.decisions.response import adstock_weights
    from bayesmmm.evaluation.identifiability import (
        lift_advice,
        posterior_adstock_weights,
        weeks_to_capture,
        window_capture,
    )

    table = adstock_weights(calibrated, max_draws=200)
    weights = table[table["channel"] == "b"].sort_values("lag")["weight_mean"].to_numpy()
    shown, needed = window_capture(weights, 4), weeks_to_capture(weights)
    advice = lift_advice(calibrated, "b")
    assert shown < 0.8 and needed > 4  # true alpha 0.6 (0.70 at the truth); measured 0.63 and 8 weeks
    assert f"4-week go-dark test shows only about {shown:.0%}" in advice
    assert f"a go-dark test of {needed} weeks would show 80%" in advice
    assert "pins the curve's level at the tested spend" in lift_advice(calibrated, "a")
    # untested: run one, as long as the posterior carry-over needs (true alpha 0.3 for a, 0.6 for b)
    weights = posterior_adstock_weights(uncalibrated)
    need_a, need_b = weeks_to_capture(weights["a"]), weeks_to_capture(weights["b"])
    assert need_a <= 4 < need_b, (need_a, need_b)
    assert lift_advice(uncalibrated, "a") == "run a lift test (a go-dark test pins the level)"
    advice_b = lift_advice(uncalibrated, "b", weights)
    assert advice_b.startswith("run a lift test: a go-dark test pins the level")
    assert (
        f"should run {need_b} weeks to show 80% of it (4 weeks would show {window_capture(weights['b'], 4):.0%})"
        in advice_b
    )


def test_simulated_dated_test_in_a_dark_window_is_a_clear_error(tmp_path):
    """A flighted channel that spends nothing in its test's weeks cannot be tested there: the simulator
    says which channel, which weeks and the fix, and writes nothing (it used to write a test with x = 0,
    which the calibration then rejected)."""
    from bayesmmm.config.experiment import ConfigError

    spec = {
        **SCENARIO,
        "channels": {
            **SCENARIO["channels"],
            "b": {
                **SCENARIO["channels"]["b"],
                "spend": {"shape": 10, "scale": 300, "flighting": {"mean_on_weeks": 2, "mean_off_weeks": 30}},
            },
        },
        "lift_tests": {"channels": ["a", "b"], "change": -1.0, "noise": 0.05, "weeks": 12},
    }
    # the first seed whose b is dark over its test's weeks (b is the last channel: the last 12 weeks)
    for seed in range(100):
        scenario = ScenarioConfig.model_validate({**spec, "seed": seed})
        if (simulate(scenario)[0]["b"].to_numpy()[-12:] == 0).all():
            break
    else:
        pytest.fail("no seed below 100 leaves b dark for 12 weeks")
    with pytest.raises(ConfigError, match=r"12-week test of channel 'b' falls in weeks .* spends nothing.*steady"):
        write_simulation(scenario, tmp_path / "out")
    assert not (tmp_path / "out" / "lift_tests.csv").exists()
