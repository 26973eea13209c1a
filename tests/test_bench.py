"""Benchmark suites (``bayesmmm bench``): shipped suites resolve, and a tiny suite runs end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bayesmmm.config.experiment import ConfigError, load_experiment
from bayesmmm.workflows.bench import RESULT_COLUMNS, load_suite, run_suite
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "benchmarks" / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suites_resolve(path):
    """Every data set's experiment validates and, on simulated data, names channels the scenario has."""
    suite = load_suite(path)
    for ds in suite.datasets:
        for backend in suite.backends:  # as the suite runs it: the backend set per fit
            overrides = {**ds.overrides, "sampler.backend": backend, "data.path": "unused.csv"}
            config = load_experiment(ds.experiment, overrides)
        if ds.scenario:
            source = Path(ds.scenario) if ds.scenario.endswith(".yaml") else builtin_scenario(ds.scenario)
            scenario = load_scenario(source)
            missing = set(config.data.channel_columns) - set(scenario.channels)
            assert not missing, (ds.name, missing)
            assert (config.data.geo_column is not None) == (scenario.geos is not None), ds.name


def test_gpu_suite_pairs_every_gpu_fit_with_a_cpu_fit_where_feasible():
    suite = load_suite(ROOT / "benchmarks" / "suites" / "gpu.yaml")
    devices = {ds.name: ds.overrides.get("sampler.device") for ds in suite.datasets}
    assert set(devices.values()) == {"cpu", "gpu"}
    assert set(suite.backends) <= {"numpyro", "blackjax"}  # device applies to the JAX backends only
    for name, device in devices.items():
        if device == "cpu":
            assert devices.get(name.removesuffix("_cpu") + "_gpu") == "gpu", name


def test_bad_suite_is_a_clear_error(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("datasets: [{name: a, experiment: nowhere.yaml}]\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_suite(path)
    path.write_text("datasets: [{name: a, experiment: x.yaml}]\nbackend: [numpyro]\n")
    with pytest.raises(ConfigError, match="backend"):
        load_suite(path)


def test_tiny_suite_runs_cold_and_warm(tmp_path):
    """Real fits in fresh processes: one row per cache state, every column, the device recorded."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"""name: tiny
chains: 2
draws: 40
tune: 40
seeds: [3]
backends: [numpyro]
caches: [cold, warm]
datasets:
  - name: four
    scenario: four_channel
    experiment: {ROOT / "configs" / "four_channel.yaml"}
    overrides: {{model.saturation: logistic, model.trend: linear, model.adstock.l_max: 4,
                 model.yearly_seasonality: 1}}
"""
    )
    table = run_suite(load_suite(path), tmp_path / "out")
    assert list(table.columns) == RESULT_COLUMNS
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    assert table["cache"].tolist() == ["cold", "warm"]
    assert (table["device"] == "cpu").all()
    assert (table["grad_evals"] > 0).all() and (table["min_ess_bulk"] > 0).all()
    # ESS per second is the ratio of the two recorded figures
    pd.testing.assert_series_equal(
        table["ess_per_s"], (table["min_ess_bulk"] / table["wall_s"]).round(3), check_names=False, atol=0.01
    )
    written = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(written) == 2 and (tmp_path / "out" / "results.md").exists()
    assert "device" in (tmp_path / "out" / "results.md").read_text()
