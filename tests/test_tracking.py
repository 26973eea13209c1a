"""MLflow tracking: a real fit logged to real local MLflow stores, read back with MLflow's own client."""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bayesmmm import ConfigError, load_experiment
from bayesmmm.cli.main import app
from bayesmmm.config.experiment import ExperimentConfig, MlflowConfig
from bayesmmm.workflows.tracking import TrackingError, flatten_params, log_run

runner = CliRunner()
# MLflow's SQLAlchemy store uses an option SQLAlchemy 2.1 deprecates (MLflow's business, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

# the session's example structure (geometric l_max 8 + logistic + linear trend): the compiled sampler is reused
EXPERIMENT = {
    "name": "tracked",
    "data": {
        "dataset": "pymc_marketing_example",
        "date_column": "date_week",
        "target_column": "y",
        "channel_columns": ["x1", "x2"],
        "control_columns": ["event_1", "event_2"],
    },
    "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
    "sampler": {"chains": 2, "draws": 60, "tune": 100, "seed": 8, "progressbar": False},
    "output": {"figures": False},
    "tracking": {"mlflow": {"experiment": "bayesmmm-tests", "run_name": "tiny", "tags": {"team": "growth"}}},
}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """`bayesmmm fit --mlflow sqlite:///...` on a bundled data set: (run folder, store URI, MLflow run id)."""
    root = tmp_path_factory.mktemp("tracked")
    (root / "exp.yaml").write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = runner.invoke(app, ["fit", str(root / "exp.yaml"), "-o", str(root / "run"), "--mlflow", uri])
    assert result.exit_code == 0, result.output
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("bayesmmm-tests").experiment_id])
    assert len(runs) == 1
    assert f"MLflow run {runs[0].info.run_id}" in result.output
    return root / "run", uri, runs[0].info.run_id


def test_fit_is_tracked_in_a_local_sqlite_store(tracked):
    run_dir, uri, run_id = tracked
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.adstock.name"] == "geometric" and params["model.adstock.l_max"] == "8"
    assert params["data.dataset"] == "pymc_marketing_example" and params["data.channel_columns"] == '["x1", "x2"]'
    assert params["sampler.draws"] == "60" and not any(k.startswith("tracking") for k in params)
    metrics = run.data.metrics
    diag = yaml.safe_load((run_dir / "diagnostics.json").read_text())
    assert metrics["max_rhat"] == pytest.approx(diag["max_rhat"])
    assert metrics["loo.elpd"] == pytest.approx(diag["loo"]["elpd"]) and metrics["fit.r2"] == pytest.approx(
        diag["fit"]["r2"]
    )
    roas = pd.read_csv(run_dir / "roas.csv").set_index("channel")
    assert metrics["roas.x1"] == pytest.approx(roas.loc["x1", "roas_mean"])
    assert metrics["diagnostics_passed"] in (0.0, 1.0) and "time.sample_s" in metrics
    tags = run.data.tags
    assert tags["team"] == "growth" and tags["bayesmmm.dataset"] == "pymc_marketing_example"
    assert tags["bayesmmm.run_dir"] == str(run_dir.resolve())
    logged = {a.path for a in client.list_artifacts(run_id, "run")}
    assert {f"run/{name}" for name in ("posterior.nc", "config.yaml", "diagnostics.json", "roas.csv")} <= logged
    # artifacts sit beside the database, not in the working folder
    assert (run_dir.parent / "mlartifacts").is_dir()


def test_logged_model_predicts_like_bayesmmm_and_registers(tracked, tmp_path):
    from bayesmmm import MMM, forecast_table
    from bayesmmm.datasets import load_dataset
    from tests.test_model import future_rows

    run_dir, uri, run_id = tracked
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    future = future_rows(load_dataset("pymc_marketing_example"), 5)
    got = model.predict(future, params={"hdi_prob": 0.8, "seed": 3})
    expected = forecast_table(MMM.load(run_dir), future, 0.8, False, 3)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    version = mlflow.register_model(f"runs:/{run_id}/model", "bayesmmm-tracked")
    assert MlflowClient(uri).get_model_version("bayesmmm-tracked", version.version).status == "READY"


def test_file_store_gets_the_same_run(tracked, tmp_path, monkeypatch):
    """A file:// store (maintenance mode in MLflow 3: opted in with MLFLOW_ALLOW_FILE_STORE)."""
    run_dir, _, _ = tracked
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_run(run_dir, MlflowConfig(tracking_uri=uri, experiment="files", log_model=False))
    run = MlflowClient(uri).get_run(run_id)
    assert run.data.params["data.dataset"] == "pymc_marketing_example" and "loo.elpd" in run.data.metrics
    assert "run/posterior.nc" in {a.path for a in MlflowClient(uri).list_artifacts(run_id, "run")}


def test_a_store_mlflow_refuses_fails_before_fitting(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(EXPERIMENT, sort_keys=False))
    uri = (tmp_path / "mlruns").as_uri()
    result = runner.invoke(app, ["fit", str(tmp_path / "exp.yaml"), "-o", str(tmp_path / "run"), "--mlflow", uri])
    assert result.exit_code == 2
    assert "MLflow tracking store" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # nothing fitted


def test_without_mlflow_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed
    with pytest.raises(TrackingError, match=r"pip install 'bayesmmm\[tracking\]'"):
        log_run(tmp_path, MlflowConfig(), ExperimentConfig.model_validate(EXPERIMENT))


def test_flatten_params_dotted_and_json():
    params = flatten_params(ExperimentConfig.model_validate(EXPERIMENT))
    assert params["model.saturation.name"] == "logistic" and params["data.control_columns"] == '["event_1", "event_2"]'
    assert params["model.priors"] == "{}" and "data.path" not in params  # None left out
    assert all(len(v) <= 6000 for v in params.values())


def test_tracking_block_is_validated(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data: {dataset: robyn_simulated, channel_columns: [tv_S]}\ntracking: {mlflow: {tracking_url: x}}")
    with pytest.raises(ConfigError, match="did you mean 'tracking_uri'"):
        load_experiment(path)
