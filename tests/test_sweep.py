"""Sweeps on a Dask LocalCluster of 2 workers with small real fits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("distributed")

from bayesmmm.cli.main import app
from bayesmmm.workflows.simulate import builtin_scenario
from bayesmmm.workflows.sweep import load_sweep, plan_sweep

BASE = """\
name: base
data: {path: data/data.csv, channel_columns: [tiktok, facebook, google_ads], control_columns: [promo]}
model: {adstock: geometric, saturation: logistic, yearly_seasonality: 1}
sampler: {chains: 2, draws: 100, tune: 150, seed: 4}
"""
SWEEP = """\
base: base.yaml
grid:
  model.saturation.name: [logistic, hill]
  data.target_column: [sales, revenue]      # 'revenue' does not exist: two runs broken on purpose
"""


@pytest.fixture
def sweep_dir(tmp_path):
    runner = CliRunner()
    sim = runner.invoke(app, ["simulate", str(builtin_scenario("intermittent")), "-o", str(tmp_path / "data")])
    assert sim.exit_code == 0
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    return tmp_path


def test_plan_is_content_hashed(sweep_dir):
    sweep, base, _ = load_sweep(sweep_dir / "sweep.yaml")
    a = plan_sweep(sweep, base, sweep_dir / "out")
    b = plan_sweep(sweep, base, sweep_dir / "out")
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert len({r.run_id for r in a}) == 4
    assert a[0].config["data"]["path"].endswith("data/data.csv")


def test_sweep_isolates_failures_and_skips_finished_runs(sweep_dir):
    runner = CliRunner()
    out = sweep_dir / "out"
    args = ["sweep", str(sweep_dir / "sweep.yaml"), "-o", str(out), "--workers", "2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 4, first.output  # some runs failed, the others finished
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    ok = table[table["status"] == "ok"]
    failed = table[table["status"] == "failed"]
    assert len(ok) == 2 and len(failed) == 2
    assert all("'revenue'" in e and "not found" in e for e in failed["error"])
    assert all(json.loads(o)["data.target_column"] == "sales" for o in ok["overrides"])
    assert ok["elpd"].notna().all() and ok["max_rhat"].notna().all()
    assert {"roas_tiktok", "roas_facebook", "roas_google_ads"} <= set(table.columns)
    for run_dir in ok["run_dir"]:
        assert (Path(run_dir) / "metadata.json").exists()
    assert "Dask dashboard" in first.output

    start = time.perf_counter()
    second = runner.invoke(app, args)
    elapsed = time.perf_counter() - start
    again = pd.read_csv(out / "results.csv")
    assert second.exit_code == 4
    assert (again.set_index("run_id").loc[ok["run_id"], "skipped"] == True).all()  # noqa: E712
    assert elapsed < 60, f"re-run took {elapsed:.0f} s"


def test_a_run_that_switches_the_trend_drops_the_base_trends_options(tmp_path):
    """Options belong to their trend: the base's hsgp options do not follow a run to linear or spline
    (which would make those runs invalid); a run that keeps hsgp, or sets its own options, keeps them."""
    (tmp_path / "data.csv").write_text("date,sales,a\n2024-01-01,1,1\n")
    (tmp_path / "base.yaml").write_text(
        "data: {path: data.csv, channel_columns: [a]}\nmodel: {trend: hsgp, trend_options: {m: 12}}\n"
    )
    (tmp_path / "sweep.yaml").write_text(
        "base: base.yaml\nruns:\n"
        "  - {model.trend: linear}\n"
        "  - {model.trend: spline}\n"
        "  - {model.trend: spline, model.trend_options: {n_knots: 9}}\n"
        "  - {model.trend: hsgp}\n"
        "  - {model.trend_options.m: 30}\n"
        "  - {model.trend: spline, model.trend_options.m: 30}\n"  # another trend's option: still an error
    )
    sweep, base, _ = load_sweep(tmp_path / "sweep.yaml")
    runs = plan_sweep(sweep, base, tmp_path / "out")
    assert [r.error for r in runs[:5]] == [None] * 5, [r.error for r in runs]
    options = [r.config["model"]["trend_options"] for r in runs[:5]]
    assert options == [{}, {}, {"n_knots": 9}, {"m": 12}, {"m": 30}]
    assert "has no setting 'm'" in runs[5].error


def test_bad_sweep_file(tmp_path):
    (tmp_path / "s.yaml").write_text("base: none.yaml\ngrd: {}\n")
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2 and "did you mean 'grid'" in result.output


def test_groups_spread_over_workers():
    from bayesmmm.workflows.distributed import assign_groups

    placement = assign_groups(["a", "a", "b", "b", "c", "d", "d", "d"], ["w1", "w2"])
    load = {"w1": 0, "w2": 0}
    for g, n in {"a": 2, "b": 2, "c": 1, "d": 3}.items():
        load[placement[g]] += n
    assert sorted(load.values()) == [4, 4]
