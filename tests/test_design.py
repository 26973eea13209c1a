"""The experiment designer (``bayesmmm design``): preposterior maths, the ranking, its files and CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from bayesmmm.decisions import design as design_module
from bayesmmm.decisions.design import (
    DESIGN_COLUMNS,
    DesignError,
    as_lift_test,
    candidate_lengths,
    design_tests,
    importance_weights,
    preposterior_sd,
    spend_changes,
)
from bayesmmm.model.calibration import read_lift_tests

runner = CliRunner()


def test_importance_weights_equal_the_conjugate_normal_posterior():
    """θ ~ N(m0, s0²), the test measures a·θ with standard error se: the reweighted draws give the
    closed-form posterior (mean and sd), and the preposterior sd is that posterior sd for any outcome."""
    rng = np.random.default_rng(3)
    m0, s0, a, se, y = 1.0, 0.5, 2.0, 0.4, 1.7
    theta = rng.normal(m0, s0, size=400_000)
    w = importance_weights(a * theta, np.array([[y]]), np.array([se]))[0]
    precision = 1 / s0**2 + a**2 / se**2
    mean = (m0 / s0**2 + a * y / se**2) / precision
    sd = precision**-0.5
    got_mean = float(w @ theta)
    got_sd = float(np.sqrt(w @ theta**2 - got_mean**2))
    assert got_mean == pytest.approx(mean, abs=0.005)
    assert got_sd == pytest.approx(sd, rel=0.01)
    sd_after, ess, _ = preposterior_sd(theta[:20_000], a * theta[:20_000], np.array([se]), n_outcomes=50, seed=1)
    assert np.mean(sd_after) == pytest.approx(sd, rel=0.03)
    # ESS of a Normal update: n · sqrt(1 - rho²)·..., here about n · sd / s0 · sqrt(2 - sd²/s0²) ≈ a third of n
    assert 0.2 * 20_000 < np.median(ess) < 0.6 * 20_000


def test_candidate_lengths_and_changes():
    assert candidate_lengths(12) == [2, 4, 8, 12]
    assert candidate_lengths(6) == [2, 4, 6]
    assert candidate_lengths(1) == [1]
    assert spend_changes(0.5) == [
        ("go_dark", -1.0),
        ("pull_back", -0.25),
        ("scale_up", 0.25),
        ("pull_back", -0.5),
        ("scale_up", 0.5),
    ]
    assert ("pull_back", -1.0) not in spend_changes(1.0)  # that is the go-dark test
    for bad in (0.0, -0.2, float("nan"), 11.0):
        with pytest.raises(DesignError, match="--max-change"):
            spend_changes(bad)
    with pytest.raises(DesignError, match="--weeks"):
        candidate_lengths(0)


@pytest.fixture(scope="module")
def designed(example_run, tmp_path_factory):
    """``bayesmmm design`` on the example's run folder (a copy), through the CLI."""
    run = tmp_path_factory.mktemp("design") / "run"
    shutil.copytree(example_run, run)
    result = runner.invoke(app, ["design", str(run), "--weeks", "8", "--max-change", "0.5"])
    assert result.exit_code == 0, result.output
    return run, result.output


def test_design_writes_a_ranked_table_whose_top_row_is_a_calibration_row(designed):
    from bayesmmm.model.mmm import MMM

    run, output = designed
    table = pd.read_csv(run / "design" / "designs.csv")
    assert (run / "design" / "design.html").read_text().count("<tr>") > 5
    assert "Best lift tests" in output
    assert list(table.columns) == [c for c in DESIGN_COLUMNS if c != "geo"]  # national: no geo column
    assert table["rank"].is_monotonic_increasing and table["rank"].iloc[0] == 1
    assert table["value"].is_monotonic_decreasing
    assert set(table["weeks"]) == {2, 4, 8}
    assert set(table["kind"]) == {"go_dark", "pull_back", "scale_up"}
    assert (table["roas_sd_after"] <= table["roas_sd_now"] + 1e-12).all()
    # go-dark and pull-backs lower the target, scale-ups raise it
    assert (np.sign(table["expected_delta_y"]) == np.sign(table["delta_x"])).all()
    mmm = MMM.load(run)
    last = pd.Timestamp(mmm.data.dates[-1])
    top = table.iloc[[0]]
    assert pd.Timestamp(top["start"].iloc[0]) == last + pd.Timedelta(days=7)
    assert pd.Timestamp(top["end"].iloc[0]) == last + pd.Timedelta(days=7 * int(top["weeks"].iloc[0]))
    # the chosen row plus its measured delta_y and sigma loads through the lift-test loader
    path = run / "measured.csv"
    rows = as_lift_test(top, [float(top["expected_delta_y"].iloc[0])], [float(top["expected_sigma"].iloc[0])])
    rows.to_csv(path, index=False)
    loaded = read_lift_tests(path)
    assert loaded["channel"].iloc[0] == top["channel"].iloc[0]
    assert loaded["x"].iloc[0] == pytest.approx(top["x"].iloc[0])
    assert loaded["delta_x"].iloc[0] == pytest.approx(top["delta_x"].iloc[0])
    assert loaded["end"].iloc[0] > last
    # the same columns written by hand from designs.csv: the contract's columns, nothing else needed
    by_hand = table.loc[[0], ["channel", "x", "delta_x", "start", "end"]].assign(delta_y=-1.0, sigma=0.5)
    by_hand.to_csv(path, index=False)
    assert len(read_lift_tests(path)) == 1


def test_expected_lift_is_the_calibration_likelihoods_lift(designed):
    """The designer's lift of a test (window after the data) equals the calibration's lift_draws of the
    same test dated inside data that continue with the planned spend: one lift model."""
    from bayesmmm.model.mmm import MMM
    from tests.conftest import MMM_EXAMPLE_DATA

    run, _ = designed
    mmm = MMM.load(run)
    table = pd.read_csv(run / "design" / "designs.csv")
    row = table[(table["kind"] == "pull_back") & (table["weeks"] == 4)].iloc[0]
    # the data continued by 8 planned periods at x of every channel (only the tested one matters)
    frame = pd.DataFrame(
        {
            MMM_EXAMPLE_DATA["date_column"]: pd.DatetimeIndex(mmm.data.dates).append(
                pd.date_range(mmm.data.dates[-1] + pd.Timedelta(days=7), periods=8, freq="7D")
            )
        }
    )
    x_plan = mmm.data.media[-design_module.RECENT_PERIODS :].mean(axis=0)
    for c, name in enumerate(mmm.channels):
        frame[name] = np.concatenate([mmm.data.media[:, c], np.full(8, x_plan[c])])
    for k, name in enumerate(mmm.controls):
        frame[name] = np.concatenate([mmm.data.controls[:, k], np.zeros(8)])
    frame[MMM_EXAMPLE_DATA["target_column"]] = 0.0
    longer = MMM(mmm.data_config, mmm.model_config)
    longer.bind(*_data_and_scales(longer, frame, mmm))
    tests = as_lift_test(table.loc[[row.name]], [0.0], [1.0])
    draws = mmm.posterior_draws(max_draws=200, seed=0)
    lift = longer.lift_draws(draws=draws, tests=tests)[:, 0]
    assert lift.mean() == pytest.approx(row["expected_delta_y"], rel=0.03)


def _data_and_scales(mmm, frame, fitted):
    from bayesmmm.data.loading import frame_to_data

    return frame_to_data(frame, mmm.data_config), fitted.scales


def test_cli_design_errors_are_clear(designed, tmp_path):
    run, _ = designed
    cases = [
        (["design", str(tmp_path / "missing")], "does not exist"),
        (["design", str(run), "--max-change", "0"], "--max-change"),
        (["design", str(run), "--max-change", "-0.5"], "--max-change"),
        (["design", str(run), "--weeks", "0"], "--weeks"),
        (["design", str(run), "--channels", "tvv"], "unknown channel 'tvv'"),
        (["design", str(run), "--geos", "north"], "national"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_longer_test_ranks_above_a_shorter_one_for_a_long_carry_over_channel(four_channel_fit, monkeypatch):
    """tv carries over (true geometric alpha 0.8): at the SAME measurement error for every length (so
    only carry-over separates them), a 2-week go-dark shows less than 60% of tv's level and ranks below
    a 12-week one; search (alpha 0.05) shows more of it in 2 weeks, and its short test loses less."""
    from bayesmmm.model.mmm import MMM

    result, _ = four_channel_fit
    mmm = MMM.load(result.run_dir)
    monkeypatch.setattr(design_module, "measurement_sigma", lambda rmse, weeks: np.asarray(rmse, float) * 0.5)
    table = design_tests(mmm, weeks=12, max_draws=300, n_evsi=0, channels=["tv", "search"]).table
    dark = table[table["kind"] == "go_dark"].set_index(["channel", "weeks"])
    assert dark.loc[("tv", 2), "capture"] < 0.6 < dark.loc[("tv", 12), "capture"]
    assert dark.loc[("search", 2), "capture"] > dark.loc[("tv", 2), "capture"] + 0.15  # measured 0.76 vs 0.47
    assert dark.loc[("tv", 12), "roas_sd_after"] < dark.loc[("tv", 2), "roas_sd_after"]
    assert dark.loc[("tv", 12), "rank"] < dark.loc[("tv", 4), "rank"] < dark.loc[("tv", 2), "rank"]
    ratio_tv = dark.loc[("tv", 2), "sd_reduction"] / dark.loc[("tv", 12), "sd_reduction"]
    ratio_search = dark.loc[("search", 2), "sd_reduction"] / dark.loc[("search", 12), "sd_reduction"]
    assert ratio_tv < ratio_search  # the short test loses more for the slow channel


def test_dashboard_shows_the_plan(designed):
    from bayesmmm.serving.dashboard import plan_rows, read_design_plan

    run, _ = designed
    plan = read_design_plan(run)
    assert plan is not None
    rows = plan_rows(plan)
    assert {r["channel"] for r in rows} == set(plan["channel"])
    assert read_design_plan(run / "nowhere") is None


def test_geo_design_has_geo_sets_and_calibration_rows_per_geo():
    """A geo panel: candidates per single geo, the top geos by spend and all geos; a multi-geo test is one
    row per geo (same test and rank), each a calibration row with its geo; --geos restricts the sets."""
    from bayesmmm.model.mmm import MMM
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

    sc = load_scenario(builtin_scenario("geo_panel"))
    sc = sc.model_copy(update={"n_weeks": 60, "geos": sc.geos.model_copy(update={"n": 4})})
    frame, _ = simulate(sc)
    mmm = MMM(
        {"channel_columns": ["search", "social", "tv"], "target_column": "sales", "geo_column": "geo"},
        {"adstock": {"name": "geometric", "l_max": 4}, "yearly_seasonality": 1},
    )
    mmm.fit(frame, {"chains": 2, "draws": 150, "tune": 200, "seed": 2, "progressbar": False})
    result = design_tests(mmm, weeks=4, channels=["tv"], max_draws=100, n_outcomes=50, n_evsi=2, evsi_tests=2)
    table = result.table
    assert {"geo", "geo_set"} <= set(table.columns)
    assert set(table["geo_set"]) == {*mmm.geos, "top2", "all"}
    per_test = table.groupby("test").agg(n=("geo", "size"), ranks=("rank", "nunique"), sets=("geo_set", "first"))
    assert (per_test.loc[per_test["sets"] == "all", "n"] == 4).all()
    assert (per_test.loc[per_test["sets"] == "top2", "n"] == 2).all()
    assert (per_test["ranks"] == 1).all()
    best = table[table["rank"] == 1]
    rows = as_lift_test(best, best["expected_delta_y"].tolist(), best["expected_sigma"].tolist())
    assert list(rows["geo"]) == list(best["geo"])
    one = design_tests(mmm, weeks=2, channels=["tv"], geos=["geo_01"], max_draws=100, n_outcomes=20, n_evsi=0).table
    assert set(one["geo"]) == {"geo_01"}
    with pytest.raises(DesignError, match="unknown geo 'nowhere'"):
        design_tests(mmm, geos=["nowhere"], n_evsi=0)
