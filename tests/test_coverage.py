"""The coverage study (benchmarks/coverage_study.py), small: simulate, fit on the sweep engine, score."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("coverage_study", ROOT / "benchmarks" / "coverage_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_small_coverage_study(tmp_path):
    """Two data sets (one per scenario) through the real pipeline; the full study is K >= 20."""
    study = _study()
    results, table = study.run_study(k=2, out=tmp_path, draws=300, chains=2, workers=1, arms=("uncalibrated",))
    assert (results["status"] == "ok").all(), results
    assert set(table["scenario"]) == {"four_channel", "intermittent"} and len(table) == 7
    for col in ("covered_roas_50", "covered_roas_90", "covered_contribution_50", "covered_contribution_90"):
        assert table[col].dtype == bool
    # ROAS = contribution / fixed spend: the two coverages agree pair by pair
    assert (table["covered_roas_90"] == table["covered_contribution_90"]).all()
    assert (table["weekly_covered_90"] >= table["weekly_covered_50"]).all()
    assert np.isfinite(table["rel_error"]).all()
    assert table["covered_roas_90"].mean() >= 0.5  # loose: 7 pairs; the study's figures are in benchmarks/README
    summary = study.summarize(table)
    lines = summary.splitlines()  # header, rule, one row per scenario (one arm: uncalibrated)
    assert len(lines) == 4 and "untested channel: error / bias" in lines[0]
    assert {line.split(" | ")[0].lstrip("| ") for line in lines[2:]} == {"four_channel", "intermittent"}
    assert (tmp_path / "coverage.csv").exists()


def test_seed_base_moves_the_data_sets_and_the_summary_splits_tested_from_untested(tmp_path):
    """--seed-base: data set i has seed SEED_BASE + i (other data, same scenarios); the summary reports the
    untested channel's and the tested channels' errors apart (hand-made rows: exact figures)."""
    import pandas as pd

    study = _study()
    default = study.simulate_sets(2, tmp_path / "a")
    moved = study.simulate_sets(2, tmp_path / "b", seed_base=2000)
    assert [s["scenario"] for s in moved] == [s["scenario"] for s in default]
    again = study.simulate_sets(2, tmp_path / "c", seed_base=study.SEED_BASE)
    for one, other, same in zip(default, moved, again, strict=True):
        assert not pd.read_csv(one["data"]).equals(pd.read_csv(other["data"]))
        pd.testing.assert_frame_equal(pd.read_csv(one["data"]), pd.read_csv(same["data"]))
    channels = ["search", "social", "ctv", "tv"]
    errors = [0.1, -0.2, 0.3, 0.8]  # tv: the untested channel
    table = pd.DataFrame(
        {
            "scenario": "four_channel",
            "arm": "calibrated",
            "run_id": "r1",
            "channel": channels,
            "tested": [c != "tv" for c in channels],
            "converged": True,
            "prior_driven": [False, False, False, True],
            "divergences": 0,
            "covered_roas_50": True,
            "covered_roas_90": True,
            "weekly_covered_50": 1.0,
            "weekly_covered_90": 1.0,
            "roas_rel_error": errors,
            "roas_rel_error_median": [0.05, -0.1, 0.2, 0.4],
        }
    )
    row = study.summarize(table).splitlines()[2]
    assert "| 80.0% / +80% | 20.0% / +7% |" in row  # untested tv; tested: median |e| 0.2, mean +0.067
    assert "| 15.0% / +14% |" in row  # by the posterior median: median |e| 0.15, mean +0.1375
    # the calibrated_all arm's tests: every channel, the untested one too
    for s in default:
        every = pd.read_csv(s["lift_tests_all"])
        some = pd.read_csv(s["lift_tests"])
        names = study.SCENARIOS[s["scenario"]]["channels"]
        assert list(every["channel"]) == names and list(some["channel"]) == names[:-1]
        assert (every["sigma"] > 0).all() and np.isfinite(every["delta_y"]).all()
