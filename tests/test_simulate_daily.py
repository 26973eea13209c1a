"""The simulator's richer scenarios (issue 25): frequencies, exposure, organic media, treatments,
categorical events and a KPI valued by a revenue per KPI, checked against NumPy loops and the
truth's own consistency; the earlier scenarios simulate the same data as before."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from bayesmmm import ConfigError
from bayesmmm.workflows.simulate import (
    ScenarioConfig,
    builtin_scenario,
    experiment_for,
    load_scenario,
    simulate,
    true_contribution,
    write_simulation,
)
from bayesmmm.workflows.simulate_series import DriftSpec, drift_series


def numpy_geometric_hill(x, alpha, l_max, kappa, slope):
    """Normalized geometric adstock then Hill, on ``x`` scaled by its mean where positive (a loop)."""
    x = x / x[x > 0].mean()
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    ad = np.array([sum(w[j] * x[t - j] for j in range(l_max) if t - j >= 0) for t in range(len(x))])
    return ad**slope / (ad**slope + kappa**slope)


@pytest.fixture(scope="module")
def daily():
    scenario = load_scenario(builtin_scenario("daily_exposure"))
    frame, truth = simulate(scenario)
    return scenario, frame, truth


def _small(**update) -> ScenarioConfig:
    """A short daily scenario built from the built-in one (fast)."""
    raw = load_scenario(builtin_scenario("daily_exposure")).model_dump(mode="json")
    raw.update({"n_periods": 120, "start_date": "2023-01-02"})
    raw["categorical_events"][0]["levels"] = {"sale": {"effect": 50.0, "spans": [["2023-02-06", "2023-02-09"]]}}
    raw.update(update)
    return ScenarioConfig.model_validate(raw)


def test_daily_grid_and_columns(daily):
    scenario, frame, truth = daily
    dates = pd.to_datetime(frame["date"])
    assert len(frame) == scenario.n_periods == 1092
    assert (dates.diff().dropna() == pd.Timedelta(days=1)).all()
    assert dates.iloc[0] == pd.Timestamp("2023-01-02") and dates.iloc[0].day_of_week == 0
    expected = {
        "date", "conversions", "search_spend", "search_clicks", "social_spend", "social_impressions",
        "tv_spend", "newsletter_sends", "price_index", "event", "revenue_per_conversion",
    }  # fmt: skip
    assert set(frame.columns) == expected
    assert truth["frequency"] == "daily" and "period_contribution" in truth["channels"]["search"]
    # newsletter sends only on Tuesdays and Thursdays; tv is flighted in runs of days
    sends = frame.loc[frame["newsletter_sends"] > 0, "date"]
    assert set(pd.to_datetime(sends).dt.day_of_week) == {1, 3}
    on = (frame["tv_spend"] > 0).to_numpy()
    assert 0.2 < on.mean() < 0.8 and np.mean(np.diff(on.astype(int)) != 0) < 0.1  # runs, not noise


def test_exposure_is_spend_over_a_drifting_cost(daily):
    _scenario, frame, truth = daily
    for name, exposure in (("search", "search_clicks"), ("social", "social_impressions")):
        ch = truth["channels"][name]
        cost = np.asarray(ch["cost_per_unit_series"])
        np.testing.assert_allclose(frame[exposure], frame[ch["spend_column"]] / cost, rtol=1e-8)
        assert ch["exposure_column"] == exposure
        assert ch["cost_per_unit"] == pytest.approx(frame[ch["spend_column"]].sum() / frame[exposure].sum())
        # the cost drifts: its first and last quarters differ, and it moves independently of spend
        q = len(cost) // 4
        assert abs(np.log(cost[-q:].mean() / cost[:q].mean())) > 0.1
        assert abs(np.corrcoef(np.log(cost), frame[ch["spend_column"]])[0, 1]) < 0.2
    assert "exposure_column" not in truth["channels"]["tv"]


def test_contributions_match_a_numpy_loop_on_exposure(daily):
    scenario, frame, truth = daily
    rpk = frame["revenue_per_conversion"].to_numpy()
    for name, spec in scenario.channels.items():
        ch = truth["channels"][name]
        x = frame[spec.exposure.column if spec.exposure else spec.spend_column].to_numpy()
        ref = spec.beta * numpy_geometric_hill(
            x, spec.adstock.params["alpha"], spec.adstock.l_max, **spec.saturation.params
        )
        np.testing.assert_allclose(ch["period_contribution"], ref, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(true_contribution(ch, x[:, None])[:, 0], ref, rtol=1e-6, atol=1e-6)
        spend = frame[spec.spend_column].sum()
        assert ch["spend"] == pytest.approx(spend)
        assert ch["roas_kpi"] == pytest.approx(ref.sum() / spend, rel=1e-6)
        assert ch["contribution_revenue"] == pytest.approx(np.sum(ref * rpk), rel=1e-6)
        assert ch["roas"] == ch["roas_revenue"] == pytest.approx(np.sum(ref * rpk) / spend, rel=1e-6)
    og, spec = truth["organic"]["newsletter"], scenario.organic["newsletter"]
    x = frame["newsletter_sends"].to_numpy()
    ref = spec.beta * numpy_geometric_hill(
        x, spec.adstock.params["alpha"], spec.adstock.l_max, **spec.saturation.params
    )
    np.testing.assert_allclose(og["period_contribution"], ref, rtol=1e-6, atol=1e-5)
    assert og["contribution_revenue"] == pytest.approx(np.sum(ref * rpk), rel=1e-6)
    assert "newsletter" not in truth["channels"]  # organic media are never paid channels
    assert sum(c["share"] for c in truth["channels"].values()) == pytest.approx(1.0)


def test_treatment_and_event_truth(daily):
    scenario, frame, truth = daily
    tr = truth["treatments"]["price_index"]
    x = frame["price_index"].to_numpy()
    assert tr["baseline"] == "mean" and tr["baseline_value"] == pytest.approx(x.mean())
    np.testing.assert_allclose(tr["period_contribution"], -800 * (x - x.mean()), rtol=1e-6, atol=1e-5)
    assert tr["contribution"] == pytest.approx(0.0, abs=1e-6)  # against the mean: sums to zero
    rpk = frame["revenue_per_conversion"].to_numpy()
    assert tr["contribution_revenue"] == pytest.approx(np.sum(-800 * (x - x.mean()) * rpk), rel=1e-6)
    ev = truth["categorical_events"]["event"]
    levels = frame["event"].value_counts()
    assert ev["reference"] == "none" == levels.index[0]
    spec = scenario.categorical_events[0].levels
    for level, entry in ev["levels"].items():
        assert entry["effect"] == spec[level].effect
        assert entry["periods"] == levels[level] == sum((b - a).days + 1 for a, b in spec[level].spans)
        assert entry["contribution"] == pytest.approx(spec[level].effect * levels[level])
    assert frame.loc[frame["date"] == "2024-11-29", "event"].item() == "black_friday"


def test_target_is_the_sum_of_the_true_parts(daily):
    """Target minus every true component leaves the noise: mean ~0, sd ~ sigma."""
    scenario, frame, truth = daily
    dates = pd.to_datetime(frame["date"])
    parts = scenario.base + np.asarray(truth["baseline"]["trend"]) + np.asarray(truth["baseline"]["seasonality"])
    parts = parts + np.asarray(scenario.day_of_week)[dates.dt.day_of_week]
    for block in ("channels", "organic", "treatments", "categorical_events"):
        for entry in truth[block].values():
            parts = parts + np.asarray(entry["period_contribution"])
    resid = frame["conversions"].to_numpy() - parts
    assert abs(resid.mean()) < 4 * scenario.noise.sigma / np.sqrt(len(resid))
    assert resid.std() == pytest.approx(scenario.noise.sigma, rel=0.1)


def test_drift_series_matches_its_formula():
    spec = DriftSpec(level=2.0, trend_log=0.3, walk_sd_log=0.1, ar=0.9, noise_sd_log=0.05)
    dates = pd.date_range("2024-01-01", periods=50, freq="D")
    x = drift_series(spec, dates, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    e, u = rng.standard_normal(50), rng.standard_normal(50)
    w = [0.0]
    for t in range(1, 50):
        w.append(0.9 * w[-1] + 0.1 * e[t])
    ref = 2.0 * np.exp(0.3 * np.arange(50) / 49 + np.array(w) + 0.05 * u)
    np.testing.assert_allclose(x, ref, rtol=1e-12)


def test_monthly_grid_events_and_flighting():
    raw = load_scenario(builtin_scenario("four_channel")).model_dump(mode="json")
    raw.update({"frequency": "monthly", "n_weeks": None, "n_periods": 36, "start_date": "2023-01-01"})
    raw["events"] = [{"name": "prime_day", "dates": ["2023-07-11", "2024-07-16"], "effect": 90}]
    raw["channels"]["tv"]["spend"]["flighting"] = {"mean_on_weeks": 12, "mean_off_weeks": 8}
    raw.pop("lift_tests")
    frame, truth = simulate(ScenarioConfig.model_validate(raw))
    dates = pd.to_datetime(frame["date"])
    assert len(frame) == 36 and (dates.dt.day == 1).all() and dates.iloc[-1] == pd.Timestamp("2025-12-01")
    assert list(frame.loc[frame["prime_day"] == 1, "date"]) == ["2023-07-01", "2024-07-01"]
    assert truth["frequency"] == "monthly" and len(truth["channels"]["tv"]["period_contribution"]) == 36
    assert 0 < (frame["tv"] > 0).mean() < 1


def test_length_and_frequency_errors():
    raw = load_scenario(builtin_scenario("four_channel")).model_dump(mode="json")
    with pytest.raises(ValueError, match="give n_periods"):
        ScenarioConfig.model_validate({**raw, "frequency": "daily"})
    with pytest.raises(ValueError, match="differ"):
        ScenarioConfig.model_validate({**raw, "n_periods": 50})
    with pytest.raises(ValueError, match="1st of a month"):
        ScenarioConfig.model_validate(
            {**raw, "frequency": "monthly", "n_weeks": None, "n_periods": 24, "start_date": "2024-01-08"}
        )
    with pytest.raises(ValueError, match="set n_periods"):
        ScenarioConfig.model_validate({**raw, "n_weeks": None})
    weekly = ScenarioConfig.model_validate({**raw, "n_weeks": None, "n_periods": 52, "lift_tests": None})
    assert weekly.n_weeks == weekly.periods == 52
    with pytest.raises(ValueError, match="day_of_week"):
        ScenarioConfig.model_validate({**raw, "day_of_week": [1, 2, 3, 4, 5, 6, 7]})
    daily = load_scenario(builtin_scenario("daily_exposure")).model_dump(mode="json")
    clash = copy.deepcopy(daily)
    clash["organic"]["newsletter"]["column"] = "price_index"
    with pytest.raises(ValueError, match="price_index"):
        ScenarioConfig.model_validate(clash)
    with pytest.raises(ValueError, match="geo panels"):
        ScenarioConfig.model_validate({**daily, "geos": {"n": 3}})


def test_weekly_event_spans_and_clashes():
    scenario = _small()
    frame, _ = simulate(scenario)
    assert frame.loc[frame["event"] == "sale", "date"].tolist() == [
        "2023-02-06",
        "2023-02-07",
        "2023-02-08",
        "2023-02-09",
    ]
    clash = _small().model_dump(mode="json")
    clash["categorical_events"][0]["levels"]["other"] = {"effect": 1.0, "dates": ["2023-02-07"]}
    with pytest.raises(ConfigError, match="same period"):
        simulate(ScenarioConfig.model_validate(clash))
    # a level more frequent than the stated reference becomes the reference
    busy = _small().model_dump(mode="json")
    busy["categorical_events"][0]["levels"]["sale"]["spans"] = [["2023-01-02", "2023-04-01"]]
    _, t = simulate(ScenarioConfig.model_validate(busy))
    ev = t["categorical_events"]["event"]
    assert ev["reference"] == "sale" and ev["levels"]["none"]["effect"] == -50.0


def test_treatment_baseline_min_and_value():
    raw = _small().model_dump(mode="json")
    raw["treatments"][0]["baseline"] = "min"
    frame, truth = simulate(ScenarioConfig.model_validate(raw))
    x = frame["price_index"].to_numpy()
    assert truth["treatments"]["price_index"]["baseline_value"] == pytest.approx(x.min())
    assert truth["treatments"]["price_index"]["contribution"] == pytest.approx(-800 * (x - x.min()).sum())
    raw["treatments"][0]["baseline"] = 1.0
    _, truth = simulate(ScenarioConfig.model_validate(raw))
    assert truth["treatments"]["price_index"]["baseline_value"] == 1.0
    assert experiment_for(ScenarioConfig.model_validate(raw))["data"]["treatment_baseline"] == 1.0


def test_experiment_yaml_uses_the_issue_25_keys(tmp_path):
    scenario = _small()
    data_path, _ = write_simulation(scenario, tmp_path / "d")
    experiment = yaml.safe_load((tmp_path / "d" / "experiment.yaml").read_text())
    data = experiment["data"]
    assert data == {
        "path": "data.csv",
        "frequency": "daily",
        "date_column": "date",
        "target_column": "conversions",
        "revenue_per_kpi_column": "revenue_per_conversion",
        "channels": {
            "search": {"spend": "search_spend", "exposure": "search_clicks"},
            "social": {"spend": "social_spend", "exposure": "social_impressions"},
            "tv": {"spend": "tv_spend"},
        },
        "organic_columns": ["newsletter_sends"],
        "treatment_columns": ["price_index"],
        "treatment_baseline": "mean",
        "event_columns": ["event"],
    }
    columns = set(pd.read_csv(data_path).columns)
    named = {data["date_column"], data["target_column"], data["revenue_per_kpi_column"]}
    named |= {c for ch in data["channels"].values() for c in ch.values()}
    named |= {*data["organic_columns"], *data["treatment_columns"], *data["event_columns"]}
    assert named == columns
    assert experiment["model"]["weekly_seasonality"] == 3 and experiment["name"] == "daily_exposure"
    # scenarios without a template write no experiment (their folders are unchanged)
    assert experiment_for(load_scenario(builtin_scenario("four_channel"))) is None
    write_simulation(load_scenario(builtin_scenario("intermittent")), tmp_path / "w")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["data.csv", "truth.json"]


#: column sums and true ROAS of the built-in scenarios before issue 25 (10 significant digits)
BEFORE = {
    "four_channel": (
        104,
        {"sales": 73495.44276, "search": 189511.5022, "social": 227742.9678, "ctv": 734472.1849, "tv": 828365.4408},
        {"search": 0.02233885702, "social": 0.01434721289, "ctv": 0.0046932326, "tv": 0.002942638266},
    ),
    "intermittent": (
        156,
        {
            "sales": 201310.1435,
            "promo": 27.0,
            "tiktok": 337353.9956,
            "facebook": 575842.0786,
            "google_ads": 1291469.335,
        },
        {"tiktok": 0.02208791793, "facebook": 0.01870875409, "google_ads": 0.01216958079},
    ),
    "ten_channel": (
        260,
        {"sales": 344500.4475, "black_friday": 5.0, "tv": 2557306.326, "email": 131254.9658},
        {"search": 0.01696176428, "tv": 0.002923326442, "email": 0.02371004617},
    ),
    "geo_panel": (
        1040,
        {"sales": 661805.7827, "search": 1662070.921, "tv": 4601160.305, "population": 1620011451.0},
        {"search": 0.02389105338, "social": 0.01490168724, "tv": 0.009212611565},
    ),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_earlier_scenarios_simulate_the_same_data(name):
    rows, sums, roas = BEFORE[name]
    frame, truth = simulate(load_scenario(builtin_scenario(name)))
    assert len(frame) == rows
    for col, value in sums.items():
        assert frame[col].sum() == pytest.approx(value, rel=1e-9), col
    for ch, value in roas.items():
        assert truth["channels"][ch]["roas"] == pytest.approx(value, rel=1e-9), ch
    # and their truth.json has no key of the richer scenarios
    assert not {"frequency", "organic", "treatments", "categorical_events", "kpi"} & set(truth)
    assert not {"frequency", "n_periods", "organic", "experiment"} & set(truth["scenario"])
    assert "weekly_contribution" in next(iter(truth["channels"].values()))
