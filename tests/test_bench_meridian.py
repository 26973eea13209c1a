"""benchmarks/meridian_side_by_side.py without fits: Meridian's columns, the thread limits, the table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_meridian", ROOT / "benchmarks" / "meridian_side_by_side.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["national", "geo"])
def test_meridian_gets_the_experiments_columns_and_every_one_is_in_the_data(name):
    bench = _bench()
    args = type("Args", (), {"n_chains": 4, "n_adapt": 500, "n_burnin": 500, "n_keep": 500, "seed": 1})()
    args.hdi_prob = 0.9
    spec = bench.meridian_spec(bench.DATASETS[name], args)
    header = set(pd.read_csv(spec["data_path"], nrows=1).columns)
    assert list(spec["channels"]) == [f"Channel{i}" for i in range(5)]
    for channel, cols in spec["channels"].items():  # impressions as exposure, spend for ROI
        assert cols == {"spend": f"{channel}_spend", "exposure": f"{channel}_impression"}
    assert spec["organic"] == ["Organic_channel0_impression"] and spec["treatments"] == ["Promo"]
    assert spec["revenue_per_kpi_column"] == "revenue_per_conversion" and spec["kpi_column"] == "conversions"
    assert spec["geo"] == (name == "geo")
    assert (spec["population_column"] == "population") == (name == "geo")
    named = [
        *(c for cols in spec["channels"].values() for c in cols.values()),
        *spec["organic"],
        *spec["treatments"],
        *spec["controls"],
        spec["time_column"],
        spec["kpi_column"],
        spec["revenue_per_kpi_column"],
        *([spec["geo_column"], spec["population_column"]] if spec["geo"] else []),
    ]
    assert set(named) <= header, set(named) - header
    # every data column is used, but the row index of geo_all_channels
    assert header - set(named) <= {"Unnamed: 0"}


def test_thread_env_limits_every_pool():
    env = _bench().thread_env(1)
    assert env["OMP_NUM_THREADS"] == env["RAYON_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]


def _result(library, roi, **extra):
    return {
        "dataset": "national",
        "library": library,
        "experiment": "configs/meridian_national_all_channels.yaml",
        "status": "ok",
        "hdi_prob": 0.9,
        "n_chains": 4,
        "threads": 1,
        "wall_s": 100.0,
        "cpu_s": 90.0,
        "max_rhat": 1.01,
        "min_ess_bulk": 400.0,
        "divergences": 0,
        "measured_at": "2026-12-06T00:00:00+00:00",
        "roi": roi,
        **extra,
    }


def test_side_by_side_joins_the_two_libraries_by_channel(tmp_path):
    bench = _bench()
    row = {"spend": 1.0, "roi_mean": 2.0, "roi_median": 1.9, "roi_hdi_low": 1.0, "roi_hdi_high": 3.0}
    theirs = _result("meridian", [{"channel": "a", **row}], n_adapt=5, n_burnin=5, n_keep=5)
    ours = _result("bayesmmm", [{"channel": "a", **row, "roi_mean": 4.0}], tune=10, draws=5)
    (tmp_path / "meridian_national.json").write_text(json.dumps(theirs))
    (tmp_path / "bayesmmm_national.json").write_text(json.dumps(ours))
    bench.write_tables(tmp_path)
    table = (tmp_path / "side_by_side.md").read_text()
    assert "| a | 2.00 [1.00, 3.00] | 1.90 | 4.00 [1.00, 3.00] | 1.90 |" in table
    assert "5 adapt + 5 burn-in + 5 kept" in table and "10 tune + 5 draws" in table
    assert len(pd.read_csv(tmp_path / "roi.csv")) == 2


def test_side_by_side_says_which_side_failed_or_did_not_run(tmp_path):
    bench = _bench()
    failed = {**_result("bayesmmm", []), "status": "failed", "error": "data.channels: extra inputs"}
    (tmp_path / "bayesmmm_national.json").write_text(json.dumps(failed))
    bench.write_tables(tmp_path)
    table = (tmp_path / "side_by_side.md").read_text()
    assert "- Meridian: not run" in table and "failed: data.channels: extra inputs" in table


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rf_data_reaches_meridian_as_reach_frequency_and_spend(tmp_path):
    """benchmarks/meridian_rf.py's data set: youtube as Meridian's R&F inputs, the others as media with spend."""
    rf_bench = _load("bench_meridian_rf", ROOT / "benchmarks" / "meridian_rf.py")
    fit = _load("meridian_fit", ROOT / "benchmarks" / "meridian_fit.py")
    experiment = rf_bench.simulate_seed(2700, tmp_path)
    args = type("Args", (), {"n_chains": 2, "n_adapt": 5, "n_burnin": 5, "n_keep": 5, "seed": 2700})()
    args.hdi_prob = 0.9
    spec = _bench().meridian_spec(experiment, args)
    assert Path(spec["data_path"]) == (tmp_path / "seed2700" / "data.csv").resolve()  # relative to the experiment
    assert spec["kpi_type"] == "revenue" and spec["revenue_per_kpi_column"] is None
    frame = pd.read_csv(spec["data_path"])
    converted, media, rf = fit.split_channels(frame, spec["channels"])
    assert rf == {"youtube": {"spend": "youtube_spend", "reach": "youtube_reach", "frequency": "youtube_frequency"}}
    assert media == {
        "search": {"spend": "search", "exposure": "search__media"},
        "tv": {"spend": "tv", "exposure": "tv__media"},
    }
    assert (converted["tv__media"] == frame["tv"]).all() and "tv__media" not in frame  # a copy, the input untouched
    truth = rf_bench.truth_rows(experiment)
    assert truth["youtube"]["optimal_frequency_true"] == pytest.approx(2 * 1.5 ** (1 / 2.5))
    assert set(truth) == {"search", "tv", "youtube"} and "optimal_frequency_true" not in truth["tv"]


def test_rf_side_by_side_scores_both_libraries_against_the_truth(tmp_path):
    rf_bench = _load("bench_meridian_rf", ROOT / "benchmarks" / "meridian_rf.py")
    truth = {"yt": {"roas_true": 1.0, "optimal_frequency_true": 2.35}}
    row = {"channel": "yt", "spend": 1.0, "roi_median": 1.0, "roi_hdi_low": 0.5, "roi_hdi_high": 1.5}
    theirs = {
        **_result("meridian", [{**row, "roi_mean": 0.8}], n_adapt=5, n_burnin=5, n_keep=5),
        "dataset": "seed1",
        "truth": truth,
        "optimal_frequency": [{"channel": "yt", "optimal_frequency": 1.5, "roi_at_optimal_mean": 0.9}],
    }
    ours = {
        **_result("bayesmmm", [{**row, "roi_mean": 1.1, "roi_hdi_low": 1.05}], tune=10, draws=5),
        "dataset": "seed1",
        "truth": truth,
        "report_s": 20.0,
        "rf": [
            {
                "channel": "yt",
                "optimal_frequency": 2.2,
                "optimal_frequency_hdi_low": 1.0,
                "optimal_frequency_hdi_high": 3.0,
                "roas_at_optimal": 1.2,
            }
        ],
    }
    (tmp_path / "meridian_seed1.json").write_text(json.dumps(theirs))
    (tmp_path / "bayesmmm_seed1.json").write_text(json.dumps(ours))
    rf_bench.write_tables(tmp_path)
    table = (tmp_path / "side_by_side.md").read_text()
    assert "| yt | 1.00 | 0.80 [0.50, 1.50] | 1.10 [1.05, 1.50] |" in table
    roi = pd.read_csv(tmp_path / "roi.csv").set_index("library")
    assert roi.loc["meridian", "roi_rel_error"] == pytest.approx(-0.2) and roi.loc["meridian", "hdi_covers_truth"]
    assert roi.loc["bayesmmm", "roi_rel_error"] == pytest.approx(0.1) and not roi.loc["bayesmmm", "hdi_covers_truth"]
    freq = pd.read_csv(tmp_path / "frequency.csv").set_index("library")
    assert freq.loc["meridian", "error"] == pytest.approx(1.5 - 2.35) and freq.loc["bayesmmm", "hdi_high"] == 3.0
    assert "optimal frequency of yt: 2.2 [1.0, 3.0] (true 2.35" in table
