"""Artifacts: atomic writes, a fit killed midway, damaged or foreign model files, no unpickling."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from bayesmmm.io import PARTIAL_SUFFIX, atomic_path, atomic_run_dir, write_text
from bayesmmm.model.mmm import MMM, ModelFileError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

# A real (small) fit, SIGKILLed inside the run-folder writer right after posterior.nc is
# saved: the worst moment, a complete model file in an incomplete run folder.
KILL_WHILE_WRITING = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, pandas as pd
    import bayesmmm.workflows.experiment as experiment
    from bayesmmm import ExperimentConfig

    n = 52
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
        "sales": 100 + rng.normal(0, 3, n),
        "a": rng.gamma(2, 10, n),
        "b": rng.gamma(2, 10, n),
    })
    config = ExperimentConfig.model_validate({
        "data": {"channel_columns": ["a", "b"]},
        "model": {"adstock": {"name": "geometric", "l_max": 2}, "yearly_seasonality": 0, "trend": "none"},
        "sampler": {"chains": 1, "draws": 30, "tune": 20, "progressbar": False},
        "output": {"figures": False},
    })

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    experiment.contributions_table = killed
    experiment.run_experiment(config, sys.argv[1], frame=frame)
    """
)


def test_fit_killed_while_writing_leaves_nothing_a_later_command_accepts(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING, str(out)], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert not out.exists()
    (partial,) = tmp_path.glob(f".run.*{PARTIAL_SUFFIX}")
    assert (partial / "posterior.nc").exists() and not (partial / "metadata.json").exists()

    future = tmp_path / "future.csv"
    future.write_text("date,a,b\n2025-01-06,1,1\n")
    for target, message in [
        (out, "does not exist"),
        (partial, "did not finish"),
        (partial / "posterior.nc", "did not finish"),
    ]:
        result = runner.invoke(app, ["predict", str(target), "--data", str(future), "-o", str(tmp_path / "f.csv")])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["compare", str(partial), str(partial)])
    assert result.exit_code == 2 and "did not finish" in result.output
    assert not (tmp_path / "f.csv").exists()

    # a truncated model file (what a non-atomic writer would leave) is a clear error too
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes((partial / "posterior.nc").read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="not a readable NetCDF"):
        MMM.load(truncated)

    # the next write of the same run folder clears the dead process's leftovers
    with atomic_run_dir(out) as tmp:
        write_text(tmp / "metadata.json", "{}")
    assert not partial.exists() and (out / "metadata.json").exists()


def test_live_partials_are_kept(tmp_path):
    live = tmp_path / f".run.1-abc{PARTIAL_SUFFIX}"  # pid 1 is alive (and not ours)
    live.mkdir()
    with atomic_run_dir(tmp_path / "run") as tmp:
        write_text(tmp / "metadata.json", "{}")
    assert live.exists()


def test_folder_without_marker_is_not_a_run(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "posterior.nc").write_bytes(b"whatever")
    with pytest.raises(ModelFileError, match=r"not a finished run folder \(no metadata\.json\)"):
        MMM.load(folder)


def test_atomic_path_failure_keeps_the_old_file(tmp_path):
    path = write_text(tmp_path / "a.csv", "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_foreign_output_folder_refused_before_any_work(tmp_path):
    """A fit must not run only to be refused at the end: the -o check comes first."""
    (tmp_path / "keep.txt").write_text("precious")
    exp = tmp_path / "exp.yaml"
    exp.write_text("data: {path: nowhere.csv, channel_columns: [a]}\n")
    result = runner.invoke(app, ["fit", str(exp), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not a bayesmmm run folder" in result.output  # not "nowhere.csv"


def test_damaged_metadata_is_a_model_file_error(tmp_path):
    tree = xr.DataTree.from_dict({"/posterior": xr.Dataset({"beta": (("chain", "draw"), np.zeros((1, 2)))})})
    tree.attrs.update(
        bayesmmm_data_config="{not json", bayesmmm_model_config="{}", bayesmmm_scales=json.dumps({"target": 1})
    )
    path = tmp_path / "damaged.nc"
    tree.to_netcdf(path, engine="netcdf4")
    with pytest.raises(ModelFileError, match="bayesmmm metadata that cannot be read"):
        MMM.load(path)


UNPICKLING = re.compile(
    r"^\s*(import|from)\s+(c?pickle|cloudpickle|dill|joblib|shelve)\b|pickle\.loads?\(|allow_pickle\s*=\s*True"
    r"|torch\.load\(|pd\.read_pickle|read_pickle\(",
    re.MULTILINE,
)


def test_nothing_is_ever_unpickled():
    """Artifacts are NetCDF, CSV, JSON and YAML (safe_load) only; no module of the package unpickles."""
    offenders = []
    for path in sorted((ROOT / "bayesmmm").rglob("*.py")):
        text = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for m in UNPICKLING.finditer(text)]
        offenders += [f"{path.relative_to(ROOT)}: yaml.load(" for _ in re.finditer(r"yaml\.load\(", text)]
    assert not offenders, offenders


@pytest.mark.parametrize("column", ["a", "b"])
def test_repair_options_reach_the_model(column):
    """data.negative_spend / data.missing_weeks apply before compilation, in MMM's own validation."""
    n = 40
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
            "sales": 100 + rng.normal(0, 3, n),
            "a": rng.gamma(2, 10, n),
            "b": rng.gamma(2, 10, n),
        }
    )
    frame.loc[3, column] = -1.0
    frame = frame.drop(index=[10, 11])
    data = {"channel_columns": ["a", "b"], "negative_spend": "clip", "missing_weeks": "fill_zero"}
    mmm = MMM(data, {"adstock": {"name": "geometric", "l_max": 2}, "yearly_seasonality": 0, "trend": "none"})
    with pytest.warns(UserWarning):
        mmm.build_model(frame)
    assert mmm.data.n_dates == n and (mmm.data.media >= 0).all()
