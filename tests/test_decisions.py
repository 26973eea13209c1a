"""Decisions: flight response, marginal ROAS, response curves, the budget optimizer and insights.

Numbers are checked against independent references: a plain NumPy loop over draws for
the flight response, finite differences for gradients and marginal ROAS, brute-force
grids for the optimizer, and the simulator's true curves for the decision's real value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmmm.decisions.optimizer import (
    OptimizationError,
    maximize_allocation,
    optimize_budget,
    project_to_budget,
    run_scenarios,
)
from bayesmmm.decisions.response import FlightResponse, marginal_roas, response_curves

WEEKS = 12


def _budget(mmm, weeks: int = WEEKS) -> float:
    """The historical average weekly total spend over ``weeks`` weeks."""
    return float(mmm.data.media.sum(axis=1).mean() * weeks)


# ------------------------------------------------------------------ constraints
def test_projection_is_exact_and_feasible():
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(2, 8))
        lower = rng.uniform(0, 10, k)
        upper = lower + rng.uniform(0, 50, k)
        total = float(rng.uniform(lower.sum(), upper.sum()))
        s = project_to_budget(rng.normal(0, 40, k), lower, upper, total)
        assert abs(s.sum() - total) <= 1e-9 * total
        assert np.all(s >= lower) and np.all(s <= upper)


def test_projection_refuses_infeasible_bounds():
    with pytest.raises(OptimizationError, match="no allocation sums to"):
        project_to_budget(np.ones(2), np.array([6.0, 6.0]), np.array([9.0, 9.0]), 10.0)


def test_maximize_matches_brute_force_on_three_concave_channels():
    """Three log-response channels: SLSQP within 0.5% of (and never above) a fine 2-D grid optimum."""
    a, b = np.array([3.0, 2.0, 5.0]), np.array([10.0, 4.0, 30.0])
    total = 60.0

    def fun(s):
        return float(np.sum(a * np.log1p(s / b))), a / (b + s)

    s, status = maximize_allocation(fun, total, np.zeros(3), np.full(3, total), np.full(3, total / 3))
    grid = np.linspace(0.0, total, 1201)
    s1, s2 = np.meshgrid(grid, grid, indexing="ij")
    s3 = total - s1 - s2
    ok = s3 >= 0
    values = np.where(ok, sum(a[i] * np.log1p(x / b[i]) for i, x in enumerate((s1, s2, np.clip(s3, 0, None)))), -1)
    brute = values.max()
    assert abs(s.sum() - total) < 1e-9 and np.all(s >= 0)
    assert fun(s)[0] >= brute * (1 - 0.005)
    assert fun(s)[0] <= brute * (1 + 1e-3)  # the grid is fine enough to be within 0.1% of the optimum
    assert status["success"]


# ------------------------------------------------------------ flight response
def _numpy_flight(mmm, totals, weeks, draws):
    """Plain NumPy loop: geometric adstock (normalized) + logistic saturation, draw by draw."""
    l_max = mmm.adstock.l_max
    out = np.zeros((len(draws["beta"]), len(mmm.channels)))
    for d in range(len(draws["beta"])):
        for c in range(len(mmm.channels)):
            x = np.zeros(weeks + l_max - 1)
            x[:weeks] = totals[c] / weeks / mmm.scales.media[c]
            w = draws["adstock_alpha"][d, c] ** np.arange(l_max)
            w = w / w.sum()
            ad = np.array([sum(w[lag] * x[t - lag] for lag in range(l_max) if t - lag >= 0) for t in range(len(x))])
            lam = draws["saturation_lam"][d, c]
            sat = (1 - np.exp(-lam * ad)) / (1 + np.exp(-lam * ad))
            out[d, c] = draws["beta"][d, c] * sat.sum() * mmm.scales.target
    return out


def test_flight_response_matches_numpy_loop_and_finite_differences(fitted_example):
    mmm = fitted_example
    engine = FlightResponse(mmm, WEEKS, max_draws=40, seed=3)
    totals = np.array([0.7, 1.3]) * _budget(mmm) / 2
    response, grad = engine.per_channel(totals)
    draws = mmm.posterior_draws(max_draws=40, seed=3)
    np.testing.assert_allclose(response, _numpy_flight(mmm, totals, WEEKS, draws), rtol=1e-10)
    h = 1e-3 * totals
    for c in range(2):
        step = np.zeros(2)
        step[c] = h[c]
        fd = (engine.per_channel(totals + step)[0][:, c] - engine.per_channel(totals - step)[0][:, c]) / (2 * h[c])
        np.testing.assert_allclose(grad[:, c], fd, rtol=1e-5)
    assert np.all(engine.per_channel(np.zeros(2))[0] == 0)  # zero in, zero out


def test_marginal_roas_is_the_slope_of_the_response_curve(fitted_example):
    mmm = fitted_example
    mroas = marginal_roas(mmm).mean(("chain", "draw")).to_numpy()
    curves = response_curves(mmm, multipliers=[0.98, 1.0, 1.02])
    for i, ch in enumerate(mmm.channels):
        c = curves[curves["channel"] == ch].set_index("multiplier")
        slope = (c.loc[1.02, "response_mean"] - c.loc[0.98, "response_mean"]) / (
            c.loc[1.02, "spend"] - c.loc[0.98, "spend"]
        )
        assert mroas[i] == pytest.approx(slope, rel=1e-3)
    # at multiplier 1 the curve is the contribution behind roas.csv
    from bayesmmm.evaluation.summaries import roas_table

    roas = roas_table(mmm).set_index("channel")
    at_one = curves[curves["multiplier"] == 1.0].set_index("channel")
    np.testing.assert_allclose(at_one["response_mean"], roas.loc[at_one.index, "contribution_mean"], rtol=1e-10)


def _totals_by_evaluation(mmm, multiplier, draws):
    """The reference: the whole mean evaluated at the scaled history, media summed over dates (and geos)."""
    comps = mmm.evaluate(*mmm.history_inputs(multiplier), draws=draws, components=("media",))
    media = comps["media"]
    return media.reshape(media.shape[0], -1, media.shape[-1]).sum(axis=1)


@pytest.mark.parametrize("linear", [True, False])
def test_media_totals_equal_the_mean_evaluated_at_scaled_spend(fitted_example, monkeypatch, linear):
    """The response-curve shortcut (adstock once per draw, saturation per multiplier) against the
    mean function evaluated at each scaled history; ``linear=False`` is the path of a plugin adstock."""
    mmm = fitted_example
    if not linear:
        monkeypatch.setattr(type(mmm.adstock), "linear", property(lambda self: False))
    assert mmm.adstock.linear is linear
    draws = mmm.posterior_draws(max_draws=200, seed=3)
    multipliers = [0.0, 0.37, 1.0, 1.9, np.array([0.5, 1.6])]
    got = mmm.media_totals(multipliers, draws, batch_size=64)  # batches that do not divide the draws
    assert got.shape == (5, 200, 2)
    for k, m in enumerate(multipliers):
        np.testing.assert_allclose(got[k], _totals_by_evaluation(mmm, m, draws), rtol=1e-10, atol=1e-9)
    assert np.all(got[0] == 0)


# ------------------------------------------------------------------ optimizer
def test_optimizer_matches_brute_force_on_fitted_two_channel_model(fitted_example):
    mmm = fitted_example
    budget = _budget(mmm)
    result = optimize_budget(mmm, budget, WEEKS, max_draws=400)
    engine = FlightResponse(mmm, WEEKS, max_draws=400, seed=0)
    grid = np.linspace(0.0, budget, 801)
    brute = max(engine.total(np.array([x, budget - x]))[0].mean() for x in grid)
    best = result.summary["response"]["optimized"]["mean"]
    assert best >= brute * (1 - 0.005)
    assert best <= brute * (1 + 0.005)
    alloc = result.allocation
    assert alloc["optimized_spend"].sum() == pytest.approx(budget, rel=1e-12)
    assert result.summary["response"]["optimized"]["mean"] >= result.summary["response"]["current"]["mean"]
    assert result.summary["response"]["optimized"]["mean"] >= result.summary["response"]["equal_split"]["mean"]
    # the current mix is the historical average weekly mix scaled to the budget
    mix = mmm.data.media.mean(axis=0)
    np.testing.assert_allclose(alloc["current_spend"], mix / mix.sum() * budget, rtol=1e-12)


def test_constraints_hold_exactly_and_results_are_deterministic(fitted_example):
    mmm = fitted_example
    budget = _budget(mmm)
    kwargs = {"max_change": 0.15, "max_draws": 300, "seed": 1}
    a = optimize_budget(mmm, budget * 1.1, WEEKS, **kwargs)
    b = optimize_budget(mmm, budget * 1.1, WEEKS, **kwargs)
    assert a.allocation.equals(b.allocation)
    assert a.summary == b.summary
    alloc = a.allocation
    assert alloc["optimized_spend"].sum() == pytest.approx(budget * 1.1, rel=1e-12)
    assert np.all(alloc["optimized_spend"] >= alloc["lower_bound"])
    assert np.all(alloc["optimized_spend"] <= alloc["upper_bound"])
    np.testing.assert_allclose(alloc["lower_bound"], alloc["current_spend"] * 0.85, rtol=1e-12)
    # fixed and absolute bounds
    x1 = mmm.channels[0]
    fixed = optimize_budget(mmm, budget, WEEKS, fixed=[x1], max_draws=200).allocation.set_index("channel")
    assert fixed.loc[x1, "optimized_spend"] == fixed.loc[x1, "current_spend"]
    bounded = optimize_budget(mmm, budget, WEEKS, bounds={x1: (0.1 * budget, 0.2 * budget)}, max_draws=200)
    spend = bounded.allocation.set_index("channel").loc[x1, "optimized_spend"]
    assert 0.1 * budget <= spend <= 0.2 * budget


def test_risk_objectives(fitted_example):
    mmm = fitted_example
    budget = _budget(mmm)
    mean = optimize_budget(mmm, budget, WEEKS, max_draws=300)
    same = optimize_budget(mmm, budget, WEEKS, objective="mean_sd", risk=0.0, max_draws=300)
    np.testing.assert_allclose(mean.allocation["optimized_spend"], same.allocation["optimized_spend"], rtol=1e-4)
    cvar = optimize_budget(mmm, budget, WEEKS, objective="cvar", risk=0.1, max_draws=300)
    t = cvar.draws["optimized"]
    worst = np.sort(t)[: int(np.ceil(0.1 * len(t)))].mean()
    t_mean = mean.draws["optimized"]
    worst_of_mean_plan = np.sort(t_mean)[: int(np.ceil(0.1 * len(t_mean)))].mean()
    assert worst >= worst_of_mean_plan - 1e-9 * abs(worst)  # CVaR plan is best in the tail
    assert t_mean.mean() >= t.mean() - 1e-9 * abs(t.mean())  # mean plan is best on average


def test_target_response_finds_least_spend(fitted_example):
    mmm = fitted_example
    budget = _budget(mmm)
    reference = optimize_budget(mmm, budget, WEEKS, max_draws=200).summary["response"]["optimized"]["mean"]
    target = 0.8 * reference
    res = optimize_budget(mmm, budget, WEEKS, target_response=target, max_draws=200)
    spent = res.summary["budget"]
    assert spent < budget
    assert res.summary["response"]["optimized"]["mean"] >= target * (1 - 1e-6)
    less = optimize_budget(mmm, spent * 0.99, WEEKS, max_draws=200)
    assert less.summary["response"]["optimized"]["mean"] < target
    with pytest.raises(OptimizationError, match="out of reach"):
        optimize_budget(mmm, budget, WEEKS, target_response=reference * 10, max_draws=200)


def test_target_roas_finds_largest_spend(fitted_example):
    mmm = fitted_example
    budget = _budget(mmm)
    at_budget = optimize_budget(mmm, budget, WEEKS, max_draws=200).summary["roas"]["optimized"]
    target = at_budget * 1.2  # reachable only with less spend (diminishing returns)
    res = optimize_budget(mmm, budget, WEEKS, target_roas=target, max_draws=200)
    spent = res.summary["budget"]
    assert spent < budget and res.summary["roas"]["optimized"] >= target * (1 - 1e-6)
    more = optimize_budget(mmm, spent * 1.02, WEEKS, max_draws=200)
    assert more.summary["roas"]["optimized"] < target


def test_scenarios_table(fitted_example):
    mmm = fitted_example
    table, results = run_scenarios(mmm, _budget(mmm), WEEKS, [-0.2, 0.0, 0.2], max_draws=200)
    assert list(table["change"]) == [-0.2, 0.0, 0.2]
    assert np.all(np.diff(table["optimized_response_mean"]) > 0)  # more budget, more response
    for row, res in zip(table.itertuples(), results, strict=True):
        assert res.allocation["optimized_spend"].sum() == pytest.approx(row.budget, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -5.0}, "budget must be a positive"),
        ({"bounds": {"nope": (0, 1)}}, "unknown channel 'nope'"),
        ({"objective": "max"}, "unknown objective"),
        ({"objective": "cvar", "risk": 1.5}, "tail fraction"),
        ({"bounds": {"x1": (0.0, 1.0), "x2": (0.0, 1.0)}}, "no allocation sums to"),
        ({"bounds": {"x1": (5.0, 1.0)}}, "0 <= LO <= HI"),
        ({"target_response": 1.0, "target_roas": 1.0}, "at most one"),
    ],
)
def test_bad_optimizer_inputs(fitted_example, kwargs, message):
    kwargs = dict(kwargs)
    budget = kwargs.pop("budget", _budget(fitted_example))
    with pytest.raises(OptimizationError, match=message):
        optimize_budget(fitted_example, budget, WEEKS, max_draws=50, **kwargs)


def test_optimized_mix_beats_current_on_the_true_curves(four_channel_fit):
    """The decision's real value: under the simulator's TRUE curves, the optimized plan earns more."""
    from bayesmmm.workflows.simulate import true_flight_response

    result, truth = four_channel_fit
    mmm = result.model
    budget = _budget(mmm)
    alloc = optimize_budget(mmm, budget, WEEKS, max_draws=500).allocation.set_index("channel")
    current = sum(true_flight_response(truth, alloc["current_spend"].to_dict(), WEEKS).values())
    optimized = sum(true_flight_response(truth, alloc["optimized_spend"].to_dict(), WEEKS).values())
    assert optimized > current


# ------------------------------------------------------------------- insights
def test_channel_insights_agree_with_roas_table(fitted_example):
    from bayesmmm.decisions.insights import channel_insights, findings, saturation_status
    from bayesmmm.evaluation.summaries import roas_table

    ins = channel_insights(fitted_example)
    roas = roas_table(fitted_example)
    np.testing.assert_allclose(ins["roas_mean"], roas["roas_mean"], rtol=1e-12)
    assert ins["prob_best_mroas"].sum() == pytest.approx(1.0)
    assert (ins["mroas_hdi_low"] <= ins["mroas_hdi_high"]).all()
    # logistic saturation is concave: the next unit earns less than the average one
    assert (ins["elasticity"] < 1).all()
    assert saturation_status(0.1) == "saturated" and saturation_status(0.9) == "room to grow"
    lines = findings(ins)
    assert lines and ins.sort_values("mroas_mean").iloc[-1]["channel"] in lines[0]


def test_findings_oversaturation_depends_on_the_roas_unit():
    """'Does not pay for itself' needs ROAS in revenue: for a KPI per unit of spend it is stated as a
    condition naming data.revenue_per_kpi_column (the target may be a count such as conversions)."""
    from bayesmmm.decisions.insights import findings
    from bayesmmm.model.value import KPI_UNIT, REVENUE_UNIT

    table = pd.DataFrame(
        {
            "channel": ["tv", "search"],
            "mroas_mean": [0.5, 2.0],
            "mroas_hdi_low": [0.3, 1.5],
            "mroas_hdi_high": [0.8, 2.5],
            "roas_mean": [1.6, 2.2],
            "roas_hdi_low": [1.4, 2.0],
            "roas_hdi_high": [1.8, 2.4],
            "prob_best_mroas": [0.0, 1.0],
            "status": ["room to grow", "room to grow"],
            "spend_share": [0.5, 0.5],
            "share_mean": [0.5, 0.5],
            "efficiency": [1.0, 1.0],
        }
    )
    table.attrs["roas_unit"] = REVENUE_UNIT
    assert any("tv is oversaturated" in f and "does not pay for itself" in f for f in findings(table))
    table.attrs["roas_unit"] = KPI_UNIT
    kpi = [f for f in findings(table) if f.startswith("tv:")]
    assert len(kpi) == 1 and "revenue_per_kpi_column" in kpi[0] and "If the target is revenue" in kpi[0]
    assert not any("is oversaturated" in f for f in findings(table))
    assert not any(f.startswith("tv") and "below 1" in f for f in findings(table, currency_target=False))
