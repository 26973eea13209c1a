"""Command-line conventions: --version, -q/-v, the experiment JSON Schema, progress bars."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

import bayesmmm
from bayesmmm.cli.main import app
from bayesmmm.config.schema import SCHEMA_FILE, experiment_json_schema, schema_text
from bayesmmm.progress import progress, set_verbosity

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SCHEMA = ROOT / "configs" / SCHEMA_FILE
runner = CliRunner()


def _experiment_yamls() -> list[Path]:
    """Every shipped experiment YAML (configs/ and the package's own), scenarios excluded."""
    paths = [*sorted((ROOT / "configs").glob("*.yaml")), *sorted((ROOT / "bayesmmm" / "scenarios").glob("*.yaml"))]
    return [p for p in paths if "data" in yaml.safe_load(p.read_text())]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"bayesmmm {bayesmmm.__version__}"


def test_quiet_prints_nothing_but_still_works(tmp_path):
    loud = runner.invoke(app, ["simulate", "four_channel", "-o", str(tmp_path / "a")])
    assert loud.exit_code == 0 and "wrote" in loud.output
    quiet = runner.invoke(app, ["-q", "simulate", "four_channel", "-o", str(tmp_path / "b")])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""
    assert (tmp_path / "b" / "data.csv").read_bytes() == (tmp_path / "a" / "data.csv").read_bytes()


def test_quiet_still_reports_errors():
    result = runner.invoke(app, ["-q", "fit", "nope.yaml"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_quiet_and_verbose_together_is_an_error():
    result = runner.invoke(app, ["-q", "-v", "datasets"])
    assert result.exit_code == 2 and "not both" in result.output


@pytest.mark.parametrize(("flags", "level"), [(["-q"], logging.WARNING), (["-v"], logging.INFO), (["-vv"], 10)])
def test_verbosity_sets_the_libraries_log_levels(flags, level):
    pymc = logging.getLogger("pymc")
    before = pymc.level
    try:
        assert runner.invoke(app, [*flags, "datasets"]).exit_code == 0
        assert pymc.level == level and logging.getLogger("bayesmmm").level == level
    finally:
        set_verbosity(0)
    assert pymc.level == before  # the default restores what -q / -v changed


def test_progress_bar_is_off_when_quiet():
    try:
        set_verbosity(-1)
        assert progress(range(3)).disable
    finally:
        set_verbosity(0)
    assert list(progress(range(3))) == [0, 1, 2]


def test_datasets_command_lists_the_bundled_data():
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0
    assert "meridian_national_media" in result.output and "Apache-2.0" in result.output and "MIT" in result.output


def test_committed_schema_equals_the_generated_one():
    """Regenerate with: bayesmmm schema -o configs/experiment.schema.json"""
    assert COMMITTED_SCHEMA.read_text() == schema_text()
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0 and result.output == schema_text()
    # the package's experiment YAMLs sit beside a link to the same file
    assert (ROOT / "bayesmmm" / "scenarios" / SCHEMA_FILE).read_text() == schema_text()


def test_schema_describes_the_experiment_keys():
    schema = experiment_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"data", "model", "sampler", "diagnostics", "output", "selection", "tracking"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False and "dataset" in schema["$defs"]["DataConfig"]["properties"]


@pytest.mark.parametrize("path", _experiment_yamls(), ids=lambda p: p.name)
def test_shipped_experiments_point_at_the_schema_and_satisfy_it(path):
    first = path.read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema={SCHEMA_FILE}"
    assert (path.parent / SCHEMA_FILE).is_file()  # resolves from the YAML's folder (configs/, the package's)
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(schema_text()))


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ("data: {channel_columns: [a]}\nsamplr: {draws: 10}", "samplr"),
        ("data: {channel_columns: [a], targt_column: y}", "targt_column"),
        ("data: {channel_columns: [a]}\ndiagnostics: {on_fail: explode}", "explode"),
        ("data: {channel_columns: [a]}\nsampler: {chains: 0}", "minimum"),
        ("data: {channel_columns: [a]}\nmodel: {priors: {beta: {dist: HalfNormal, sigma: wide}}}", "wide"),
        ("data: {channel_columns: [a]}\ntracking: {mlflow: {uri: x}}", "uri"),
    ],
)
def test_schema_flags_what_the_loader_rejects(snippet, where):
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(yaml.safe_load(snippet), experiment_json_schema())
    assert where in str(info.value)


def test_schema_accepts_the_yaml_shorthands():
    raw = yaml.safe_load(
        "data: {dataset: robyn_simulated, channel_columns: [tv_S]}\n"
        "model: {adstock: weibull_cdf, saturation: {name: hill, priors: {slope: {dist: Gamma, alpha: 2, beta: 1}}},\n"
        "        priors: {beta: {dist: HalfNormal, sigma: [0.5]}}}\n"
        "tracking: {mlflow: {tracking_uri: 'file:///tmp/mlruns', experiment: e, run_name: r}}\n"
    )
    jsonschema.validate(raw, experiment_json_schema())


def _console(tmp_path: Path, args: list[str], prelude: str = "") -> tuple[int, str, str]:
    """Run the console script's entry point (``bayesmmm.cli:run``) in a fresh interpreter."""
    import subprocess
    import sys

    code = f"import sys\n{prelude}\nfrom bayesmmm.cli import run\nsys.argv = ['bayesmmm', *{args!r}]\nrun()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_console_script_quick_exit_keeps_status_output_and_exit_handlers(tmp_path):
    """The entry point skips the interpreter's teardown, not the exit handlers, the flush or the status."""
    marker = tmp_path / "atexit.txt"
    prelude = f"import atexit, pathlib\natexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('ran'))"
    rc, out, _err = _console(tmp_path, ["--version"], prelude)
    assert (rc, out.strip()) == (0, f"bayesmmm {bayesmmm.__version__}")
    assert marker.read_text() == "ran"
    rc, out, err = _console(tmp_path, ["fit", str(tmp_path / "missing.yaml")])
    assert rc == 2 and "missing.yaml" in err, (rc, out, err)
    rc, _out, err = _console(tmp_path, ["no-such-command"])
    assert rc == 2 and "No such command" in err
