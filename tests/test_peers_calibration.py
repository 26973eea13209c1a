"""The scoring of benchmarks/peers_calibration.py: one error table for both libraries (no fits)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("peers_calibration", ROOT / "benchmarks" / "peers_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_error_rows_and_tables(tmp_path):
    bench = _bench()
    truth = {
        "channels": {"a": {"spend": 100.0, "roas": 2.0}, "b": {"spend": 50.0, "roas": 1.0}},
        "lift_tests": [{"channel": "a"}],
    }
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    data = {"scenario": "s", "index": 0, "truth": str(tmp_path / "truth.json")}
    rng = np.random.default_rng(0)
    # a: centred on the truth (contribution 200); b: 50% too high and tight (truth 50, draws near 75)
    result = {
        "max_rhat": 1.01,
        "divergences": 0,
        "contribution_draws": {
            "a": (200 + 20 * rng.normal(size=1000)).tolist(),
            "b": (75 + rng.normal(size=1000)).tolist(),
        },
    }
    rows = pd.DataFrame(
        bench.error_rows(result, data, "bayesmmm", "calibrated")
        + bench.error_rows(result, data, "pymc-marketing", "calibrated")
    )
    a, b = rows.iloc[0], rows.iloc[1]
    assert a["tested"] and not b["tested"] and a["converged"]
    assert a["covered_roas_90"] and not b["covered_roas_90"] and not b["covered_roas_50"]
    assert abs(a["roas_rel_error"]) < 0.02 and abs(b["roas_rel_error"] - 0.5) < 0.01
    table = bench.summarize(rows)
    assert (
        "| s | all | calibrated | bayesmmm | 2 |" in table
        and "| s | untested | calibrated | pymc-marketing | 1 |" in table
    )
    assert "| s | b | no |" in bench.per_channel(rows)
