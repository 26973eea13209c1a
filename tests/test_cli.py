"""The CLI end to end on small real fits, and its clean failures."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from bayesmmm.workflows.simulate import ScenarioConfig, builtin_scenario, load_scenario, simulate
from tests.test_config import CONTRACT_YAML

runner = CliRunner()
RUN_FILES = {
    "posterior.nc",
    "config.yaml",
    "metadata.json",
    "summary.csv",
    "diagnostics.json",
    "contributions.csv",
    "roas.csv",
    "fit.png",
}
SMALL = ["--draws", "200", "--tune", "300", "--chains", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def contract_dir(tmp_path_factory):
    """The contract's minimal YAML beside simulated data with its five channels and a promo control."""
    raw = load_scenario(builtin_scenario("intermittent")).model_dump(mode="json")
    base = raw["channels"]["tiktok"]
    raw["channels"] = {
        name: {**base, "beta": beta, "spend": {**base["spend"], "scale": scale}}
        for name, beta, scale in [
            ("tiktok", 120, 1000),
            ("facebook", 150, 1500),
            ("google", 180, 2000),
            ("tv", 100, 3000),
            ("ooh", 60, 800),
        ]
    }
    frame, _ = simulate(ScenarioConfig.model_validate(raw))
    root = tmp_path_factory.mktemp("contract")
    (root / "data").mkdir()
    frame.to_csv(root / "data" / "data.csv", index=False)
    (root / "exp.yaml").write_text(CONTRACT_YAML)
    return root


def test_fit_contract_yaml_writes_complete_run_folder(contract_dir):
    out = contract_dir / "run"
    result = runner.invoke(app, ["fit", str(contract_dir / "exp.yaml"), "-o", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    roas = pd.read_csv(out / "roas.csv")
    assert list(roas.columns[:9]) == [
        "channel",
        "spend",
        "contribution_mean",
        "contribution_hdi_low",
        "contribution_hdi_high",
        "roas_mean",
        "roas_hdi_low",
        "roas_hdi_high",
        "share_mean",
    ]
    assert list(roas["channel"]) == ["tiktok", "facebook", "google", "tv", "ooh"]
    meta = json.loads((out / "metadata.json").read_text())
    assert {"pymc", "pytensor", "arviz", "bayesmmm", "python"} <= set(meta["versions"])
    assert len(meta["data_sha256"]) == 64 and meta["timings"]["compile_s"] >= 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["sampler"]["draws"] == 200  # CLI overrides are in the resolved config
    diag = json.loads((out / "diagnostics.json").read_text())
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "passed", "fit"} <= set(diag)
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert {"mean", "ess_bulk", "ess_tail", "r_hat"} <= set(summary.columns)
    assert (
        "ROAS (contribution / spend)" in result.output
        and "ROAS 90% HDI" in result.output
        and "Run folder:" in result.output
    )
    assert not [p for p in contract_dir.iterdir() if p.name.startswith(".run.")]  # no temp folders left


def test_diagnostics_gate_fails_with_exit_3(contract_dir):
    cfg = yaml.safe_load(CONTRACT_YAML)
    cfg["diagnostics"] = {"on_fail": "fail", "min_ess_bulk": 10000}
    path = contract_dir / "gate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["fit", str(path), "-o", str(contract_dir / "gate_run"), *SMALL])
    assert result.exit_code == 3, result.output
    assert "diagnostics gate failed" in result.output


def test_bad_inputs_exit_2_and_write_nothing(contract_dir, tmp_path):
    frame = pd.read_csv(contract_dir / "data" / "data.csv")
    frame.rename(columns={"google": "gogle"}).to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["fit", str(contract_dir / "exp.yaml"), "--data", str(tmp_path / "bad.csv"), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "'google' (did you mean 'gogle'?) not found" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".run*"))

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(CONTRACT_YAML.replace("target_column", "targt_column"))
    result = runner.invoke(app, ["fit", str(bad_yaml)])
    assert result.exit_code == 2 and "did you mean 'target_column'" in result.output

    result = runner.invoke(app, ["fit", str(contract_dir / "exp.yaml"), "--sampler", "stan"])
    assert result.exit_code == 2 and "sampler.backend" in result.output


def test_simulate_command(tmp_path):
    result = runner.invoke(app, ["simulate", "four_channel", "-o", str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sim" / "data.csv").exists() and (tmp_path / "sim" / "truth.json").exists()
    result = runner.invoke(app, ["simulate", "nope", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "built-ins" in result.output


def test_refuses_to_overwrite_a_foreign_folder(contract_dir, tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = runner.invoke(app, ["fit", str(contract_dir / "exp.yaml"), "-o", str(tmp_path), *SMALL])
    assert result.exit_code == 2 and "not a bayesmmm run folder" in result.output
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_debug_flag_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {channel_columns: [a]}\nsampler: {chains: 0}\n")
    quiet = runner.invoke(app, ["fit", str(bad)])
    assert quiet.exit_code == 2 and "Traceback" not in quiet.output
    assert quiet.output.strip().count("\n") == 0 and quiet.output.startswith("error: ")
    loud = runner.invoke(app, ["--debug", "fit", str(bad)])
    assert loud.exit_code != 0 and type(loud.exception).__name__ == "ConfigError"


def test_warnings_are_one_line(contract_dir, tmp_path):
    """A repair (data.negative_spend: clip) warns in one line; here the fit then stops on too few weeks."""
    import subprocess
    import sys
    from pathlib import Path

    frame = pd.read_csv(contract_dir / "data" / "data.csv").head(10)
    frame.loc[3, "tv"] = -1.0
    frame.to_csv(tmp_path / "neg.csv", index=False)
    cfg = yaml.safe_load(CONTRACT_YAML)
    cfg["data"].update(negative_spend="clip", path=str(tmp_path / "neg.csv"))
    path = tmp_path / "clip.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cli = Path(sys.executable).with_name("bayesmmm")
    done = subprocess.run([str(cli), "fit", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "warning: data.negative_spend: clip set 1 negative spend value(s) to 0 in tv",
        done.stderr.splitlines()[1],
    ]
    assert done.stderr.splitlines()[1].startswith("error: the data has 10 weeks; this model needs at least")


def test_demo_end_to_end_in_a_fresh_process(tmp_path):
    """README command 1's job, small: simulate, fit, calibrated refit (fitted and reported by a
    child process meanwhile), optimize, two reports; the calibrated ROAS error is the smaller one."""
    import re
    import subprocess
    import sys

    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "bayesmmm.cli.main", "demo", "-o", str(out), "--draws", "150", "--tune", "200"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path in ("run/report.html", "run_calibrated/report.html", "optimization/summary.json", "data/truth.json"):
        assert (out / path).is_file(), path
    assert "Sampling: [" not in proc.stdout + proc.stderr  # PyMC's prior-sampling log stays out of the summary
    errors = re.search(r"median absolute error: uncalibrated (\d+)%, calibrated (\d+)%", proc.stdout)
    assert errors, proc.stdout[-3000:]
    uncalibrated, calibrated = map(int, errors.groups())
    assert calibrated < uncalibrated
    by_median = re.search(r"by the posterior median instead: uncalibrated (\d+)%, calibrated (\d+)%", proc.stdout)
    assert by_median and int(by_median.group(2)) < int(by_median.group(1)), proc.stdout[-3000:]
    diag = json.loads((out / "run_calibrated" / "diagnostics.json").read_text())
    assert {t["channel"] for t in diag["calibration"]["lift_tests"]} == {"search", "social", "ctv"}


def test_demo_child_fit_reports_its_error_and_writes_nothing(tmp_path):
    """The demo's calibrated fit runs in a child process: its failure comes back as the parent's own
    input error; a child given no experiment exits quietly."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.workflows.demo import ChildFit

    child = ChildFit(tmp_path / "run").start("data: {path: nowhere.csv}\nmodel: {adstock: no_such_adstock}\n")
    with pytest.raises(ConfigError, match=r"(?s)the calibrated fit: .*no_such_adstock"):
        child.result()
    assert not (tmp_path / "run").exists()
    ChildFit(tmp_path / "run").cancel()  # started, never given an experiment: exits, writes nothing
    assert not (tmp_path / "run").exists()


def test_demo_child_fit_stopped_midway_leaves_nothing(tmp_path):
    """When the demo fails or is interrupted, its calibrated fit is stopped too: no run folder, no
    half-built one beside it, whether the child takes the interrupt or has to be killed (an
    interrupt waits for the XLA program running)."""
    import time

    from bayesmmm import load_experiment, load_scenario
    from bayesmmm.workflows.demo import ChildFit
    from bayesmmm.workflows.simulate import builtin_scenario, write_simulation

    data_path, _ = write_simulation(load_scenario(builtin_scenario("four_channel")), tmp_path / "data")
    long_fit = {"data.path": str(data_path), "sampler.draws": 200_000, "sampler.chains": 2}  # minutes
    config = load_experiment(builtin_scenario("four_channel_experiment"), long_fit)
    ChildFit(tmp_path / "idle").stop()  # still waiting for its experiment: takes the interrupt
    child = ChildFit(tmp_path / "run").start(config.to_yaml())
    time.sleep(8)  # imports, then compiling or sampling: Python takes the interrupt, XLA does not
    started = time.monotonic()
    child.stop(timeout=3)
    assert time.monotonic() - started < 20  # interrupted, or killed 3 s later
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_simulate_help_names_every_built_in_scenario_and_each_simulates(tmp_path):
    from bayesmmm.workflows.simulate import BUILTIN_DIR

    names = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml") if not p.stem.endswith("_experiment"))
    assert {"four_channel", "intermittent", "ten_channel", "geo_panel"} <= set(names)
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    for name in names:
        assert name in result.output, (name, result.output)
    for name in names:
        out = runner.invoke(app, ["simulate", name, "-o", str(tmp_path / name)])
        assert out.exit_code == 0 and (tmp_path / name / "data.csv").is_file(), out.output
