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
    results, table = study.run_study(k=2, out=tmp_path, draws=300, chains=2, workers=1)
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
    assert "| all converged |" in summary and "| every fit, non-converged included | 7 |" in summary
    assert (tmp_path / "coverage.csv").exists()
