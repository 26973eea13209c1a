"""The daily recovery study's second generator (benchmarks/external_daily.py) and weekly arm:
truth consistent with the data, NumPy loops for the carry-over, the weekly sums."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # daily_recovery imports external_daily beside it
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def external():
    ext = _script("external_daily")
    frame, truth = ext.generate(5)
    return ext, frame, truth


def test_carryover_kernels_match_loops(external):
    ext, _, _ = external
    x = np.random.default_rng(0).gamma(2.0, 1.0, 60)
    ref = [sum(0.6**j * x[t - j] for j in range(t + 1)) for t in range(60)]
    np.testing.assert_allclose(ext.geometric_carryover(x, 0.6), ref, rtol=1e-10)
    w = 0.7 ** ((np.arange(21) - 2.5) ** 2)
    ref = [sum(w[j] * x[t - j] for j in range(21) if t - j >= 0) for t in range(60)]
    np.testing.assert_allclose(ext.delayed_carryover(x, 0.7, 2.5), ref, rtol=1e-10)


def test_external_truth_is_consistent(external):
    ext, frame, truth = external
    assert len(frame) == 1092 and set(frame["event"]) == {"none", "black_friday", "spring_sale", "summer_sale"}
    rpk = frame["revenue_per_conversion"].to_numpy()
    for ch in truth["channels"].values():
        c = np.asarray(ch["period_contribution"])
        spend = frame[ch["spend_column"]].sum()
        assert ch["roas"] == ch["roas_revenue"] == pytest.approx(np.sum(c * rpk) / spend, rel=1e-6)
        assert ch["roas_kpi"] == pytest.approx(c.sum() / spend, rel=1e-6)
        if "exposure_column" in ch:  # exposure moves apart from spend: the cost per unit drifts
            cost = frame[ch["spend_column"]] / frame[ch["exposure_column"]]
            assert cost.std() / cost.mean() > 0.1
    # the Hill half-saturation is in the adstocked exposure's own units, as stated
    search = truth["channels"]["search"]
    a = ext.geometric_carryover(frame["search_clicks"].to_numpy(), search["params"]["lam"])
    ref = search["params"]["peak"] * ext.hill(a, search["params"]["half_saturation"], search["params"]["s"])
    np.testing.assert_allclose(search["period_contribution"], ref, rtol=1e-6, atol=1e-5)
    tr = truth["treatments"]["price_index"]
    assert tr["baseline_value"] == pytest.approx(frame["price_index"].mean())
    levels = truth["categorical_events"]["event"]["levels"]
    assert {lv: v["periods"] for lv, v in levels.items()} == frame["event"].value_counts().drop("none").to_dict()
    # Black Friday falls on the Friday after the 4th Thursday of November
    assert frame.loc[frame["date"] == "2024-11-29", "event"].item() == "black_friday"


def test_weekly_arm_sums_days_to_monday_weeks(external):
    _, frame, _ = external
    study = _script("daily_recovery")
    weeks = study.to_weeks(frame)
    assert len(weeks) == 156 and (pd.to_datetime(weeks["date"]).dt.day_of_week == 0).all()
    revenue = (frame["conversions"] * frame["revenue_per_conversion"]).to_numpy()
    np.testing.assert_allclose(weeks["revenue"], revenue.reshape(156, 7).sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(weeks["tv_spend"], frame["tv_spend"].to_numpy().reshape(156, 7).sum(axis=1))
    np.testing.assert_allclose(weeks["price_index"], frame["price_index"].to_numpy().reshape(156, 7).mean(axis=1))
    assert weeks["event_black_friday"].sum() == (frame["event"] == "black_friday").sum()


def _geometric_normalized(x: np.ndarray, alpha: float, l_max: int) -> np.ndarray:
    """NumPy loop: Σ_l w_l x_{t-l}, w_l ∝ alpha^l, l < l_max, weights summing to 1."""
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    return np.array([sum(w[j] * x[t - j] for j in range(l_max) if t - j >= 0) for t in range(len(x))])


def test_true_mroas_matches_the_curves_rerun_at_scaled_spend(external):
    """true_mroas (inverting the true daily contributions) equals re-running each generator's
    true carry-over and curve on the exposure scaled by 1 ± 1%."""
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

    ext, frame, truth = external
    study = _script("daily_recovery")
    rpk = frame["revenue_per_conversion"].to_numpy()
    step = 0.01
    search = truth["channels"]["search"]
    p = search["params"]

    def ext_curve(m: float) -> np.ndarray:
        a = ext.geometric_carryover(m * frame["search_clicks"].to_numpy(), p["lam"])
        return p["peak"] * ext.hill(a, p["half_saturation"], p["s"])

    ref = np.sum((ext_curve(1 + step) - ext_curve(1 - step)) * rpk) / (2 * step * frame["search_spend"].sum())
    assert study.true_mroas(search, rpk, step) == pytest.approx(ref, rel=1e-4)

    scenario = load_scenario(builtin_scenario("daily_exposure"))
    sim, sim_truth = simulate(scenario)
    rpk = sim["revenue_per_conversion"].to_numpy()
    for name, column in (("search", "search_clicks"), ("tv", "tv_spend")):
        ch = sim_truth["channels"][name]
        scale = ch.get("exposure_scale", ch["spend_scale"])

        def sim_curve(m: float, ch=ch, column=column, scale=scale) -> np.ndarray:
            a = _geometric_normalized(
                m * sim[column].to_numpy() / scale, ch["adstock"]["alpha"], ch["adstock"]["l_max"]
            )
            k, s = ch["saturation"]["kappa"], ch["saturation"]["slope"]
            return ch["beta"] * np.where(a > 0, a**s / (a**s + k**s), 0.0)

        np.testing.assert_allclose(sim_curve(1.0), ch["period_contribution"], rtol=1e-5, atol=1e-5)
        ref = np.sum((sim_curve(1 + step) - sim_curve(1 - step)) * rpk) / (2 * step * ch["spend"])
        assert study.true_mroas(ch, rpk, step) == pytest.approx(ref, rel=1e-4)
        # a concave-enough curve: the marginal return is below the average return
        assert 0 < study.true_mroas(ch, rpk, step) < ch["roas"]


def test_organic_block_counts_the_misses_the_check_flagged():
    study = _script("daily_recovery")
    fits = pd.DataFrame(
        {
            "organic_rel_error": [0.1, -0.5, 2.0, 4.0],
            "organic_covered_90": [True, True, False, False],
            "organic_prior_driven": [True, False, False, True],
            "organic_extrapolated": [False, False, True, False],
        }
    )
    b = study.organic_block(fits)
    assert b["organic_fits"] == 4 and b["organic_median_abs_error"] == pytest.approx(1.25)
    assert b["organic_coverage_90"] == 0.5 and b["organic_prior_driven_share"] == 0.5
    assert b["organic_extrapolated_share"] == 0.25 and (b["organic_misses"], b["organic_misses_flagged"]) == (2, 2)
    fits.loc[2, "organic_extrapolated"] = False  # a confident miss the check did not flag
    assert study.organic_block(fits)["organic_misses_flagged"] == 1
    old = fits.drop(columns="organic_extrapolated")  # rows scored before the column existed
    assert study.organic_block(old)["organic_misses"] == -1
