"""The scoring of benchmarks/peers_tvm.py: per-year ROAS from contribution draws (no fits)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("peers_tvm", ROOT / "benchmarks" / "peers_tvm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_yearly_roas_draws_matches_a_loop():
    bench = _bench()
    rng = np.random.default_rng(3)
    dates = pd.date_range("2023-01-02", periods=110, freq="W-MON")  # 2023, 2024 and part of 2025
    contribution = rng.gamma(2.0, 5.0, size=(7, len(dates), 2))
    spend = rng.gamma(3.0, 100.0, size=(len(dates), 2))
    spend[dates.year == 2025, 1] = 0.0  # channel 1 dark in the last year
    out = bench.yearly_roas_draws(dates, contribution, spend)
    assert list(out) == ["2023", "2024", "2025"]
    for year, got in out.items():
        assert got.shape == (7, 2)
        for s in range(7):
            for c in range(2):
                num = den = 0.0
                for t, d in enumerate(dates):
                    if str(d.year) == year:
                        num += contribution[s, t, c]
                        den += spend[t, c]
                if den == 0:
                    assert np.isnan(got[s, c])
                else:
                    assert got[s, c] == pytest.approx(num / den, rel=1e-12)
    with pytest.raises(ValueError, match="disagree"):
        bench.yearly_roas_draws(dates, contribution, spend[:, :1])


def test_score_rows_errors_and_coverage():
    bench = _bench()
    rng = np.random.default_rng(0)
    draws = {
        # a: centred on the truth (1.0) both years; b: 50% too high and tight in the last year
        "2023": np.column_stack([1.0 + 0.1 * rng.normal(size=2000), 2.0 + 0.1 * rng.normal(size=2000)]),
        "2025": np.column_stack([1.0 + 0.1 * rng.normal(size=2000), 1.5 + 0.01 * rng.normal(size=2000)]),
    }
    truth = {"a": {"2023": 1.0, "2025": 1.0}, "b": {"2023": 2.0, "2025": 1.0}}
    a, b = bench.score_rows(draws, truth, ["a", "b"])
    assert a["year_first"] == "2023" and a["year_last"] == "2025"
    assert abs(a["rel_error_first"]) < 0.01 and a["covered90_first"] and a["covered90_last"]
    assert b["rel_error_last"] == pytest.approx(0.5, abs=0.01) and not b["covered90_last"]
    assert b["covered90_first"]
