"""Optional MLflow tracking of fits (``tracking: {mlflow: {...}}`` or ``bayesmmm fit --mlflow URI``).

One MLflow run per fit, holding

- **params**: the resolved experiment, flattened to dotted keys (``model.adstock.l_max``;
  lists as JSON), the ``tracking`` block left out (its URI may carry credentials);
- **metrics**: the diagnostics (``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``,
  ``divergences``, ``diagnostics_passed``), each channel's identifiability
  (``identifiability.CHANNEL.contraction``, ``.log_contraction``), the fit (``fit.r2``, ``fit.mape``, ``fit.nrmse``),
  PSIS-LOO (``loo.elpd``, ``loo.se``, ``loo.p_loo``, ...), the timings (``time.sample_s``, ...) and
  each channel's ROAS (``roas.<channel>`` with its HDI);
- **tags**: bayesmmm's version, the run folder, the data's SHA-256 (and bundled data set);
- **artifacts**: the whole run folder under ``run/``, and the fitted model under ``model/``
  as an MLflow pyfunc model (``posterior.nc`` inside; ``predict(frame)`` gives the forecast
  table of ``bayesmmm predict``), so it can be registered in MLflow's model registry
  (``mlflow.register_model(f"runs:/{run_id}/model", NAME)``).

MLflow is imported only when tracking is on: ``pip install 'bayesmmm[tracking]'``. Local stores:
``sqlite:///mlflow.db`` (MLflow 3's local backend); a ``file://`` store needs
``MLFLOW_ALLOW_FILE_STORE=true`` since MLflow 3 put it in maintenance mode.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmmm.config.experiment import ExperimentConfig, MlflowConfig
from bayesmmm.progress import is_quiet

__all__ = ["TrackingError", "flatten_params", "log_run", "mlflow_config", "start_tracking"]

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value


class TrackingError(ValueError):
    """Tracking is misconfigured or its store refused the run; the message names the fix."""


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "MLflow tracking needs MLflow: pip install 'bayesmmm[tracking]' (or remove tracking.mlflow / --mlflow)"
        ) from None
    return mlflow


def mlflow_config(config: ExperimentConfig, uri: str | None = None) -> MlflowConfig | None:
    """The MLflow settings of an experiment, with a ``--mlflow URI`` applied; ``None`` when tracking is off."""
    settings = config.tracking.mlflow
    if uri is not None:
        settings = (settings or MlflowConfig()).model_copy(update={"tracking_uri": uri})
    return settings


def flatten_params(config: ExperimentConfig) -> dict[str, str]:
    """The experiment as MLflow params: dotted keys, scalars as text, lists and empty mappings as JSON.

    ``None`` values are left out and ``tracking`` is not logged.
    """
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif value is None:
            return
        else:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            out[prefix] = text[:MAX_PARAM_CHARS]

    walk("", {k: v for k, v in config.to_dict().items() if k != "tracking"})
    return out


def _metric_key(text: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . / space``)."""
    return re.sub(r"[^\w\-./ ]", "_", text)


def _metrics(run_dir: Path) -> dict[str, float]:
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    meta = json.loads((run_dir / "metadata.json").read_text())
    metrics: dict[str, float] = {}
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences"):
        if diag.get(key) is not None:
            metrics[key] = float(diag[key])
    metrics["diagnostics_passed"] = float(bool(diag.get("passed")))
    for group in ("fit", "loo"):
        for key, value in (diag.get(group) or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[f"{group}.{key}"] = float(value)
    for channel, entry in ((diag.get("identifiability") or {}).get("channels") or {}).items():
        for key in ("contraction", "log_contraction"):
            if isinstance(entry.get(key), int | float):
                metrics[f"identifiability.{_metric_key(str(channel))}.{key}"] = float(entry[key])
    for key, value in (meta.get("timings") or {}).items():
        if isinstance(value, int | float):
            metrics[f"time.{key}"] = float(value)
    roas = pd.read_csv(run_dir / "roas.csv")
    for row in roas.itertuples():
        name = _metric_key(str(row.channel))
        metrics[f"roas.{name}"] = float(row.roas_mean)
        metrics[f"roas.{name}.hdi_low"] = float(row.roas_hdi_low)
        metrics[f"roas.{name}.hdi_high"] = float(row.roas_hdi_high)
    return {k: v for k, v in metrics.items() if pd.notna(v)}


def start_tracking(settings: MlflowConfig, config: ExperimentConfig) -> str:
    """Open the tracking store and the experiment before fitting, so a bad URI fails before any work.

    Returns
    -------
    str
        The MLflow experiment's name.
    """
    mlflow = _mlflow()
    name = settings.experiment or config.name or "bayesmmm"
    try:
        if settings.tracking_uri:
            mlflow.set_tracking_uri(settings.tracking_uri)
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=_artifact_location(settings))
        mlflow.set_experiment(name)
    except Exception as exc:  # MlflowException and the stores' own errors
        raise TrackingError(f"MLflow tracking store {settings.tracking_uri!r}: {_first_line(exc)}") from None
    return name


def _artifact_location(settings: MlflowConfig) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifact_location``, else beside a SQLite store's file.

    MLflow's own default for a database store is ``./mlruns`` in the working folder, wherever that is.
    """
    if settings.artifact_location:
        return settings.artifact_location
    uri = settings.tracking_uri or ""
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        db = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


def _signature():
    """The pyfunc model's signature: its predict params (the input columns depend on the experiment)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    params = [ParamSpec("hdi_prob", "double", 0.9), ParamSpec("contributions", "boolean", False)]
    return ModelSignature(inputs=None, params=ParamSchema([*params, ParamSpec("seed", "long", 0)]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def log_run(run_dir: str | Path, settings: MlflowConfig, config: ExperimentConfig | None = None) -> str:
    """Record a finished run folder as one MLflow run; return the MLflow run id.

    Parameters
    ----------
    run_dir : a run folder written by ``bayesmmm fit`` (or :func:`bayesmmm.run_experiment`).
    settings : where and how to log (:class:`~bayesmmm.config.experiment.MlflowConfig`).
    config : the experiment; default: the run folder's ``config.yaml``.
    """
    from bayesmmm import __version__

    run_dir = Path(run_dir)
    if config is None:
        config = ExperimentConfig.from_yaml((run_dir / "config.yaml").read_text())
    mlflow = _mlflow()
    start_tracking(settings, config)
    meta = json.loads((run_dir / "metadata.json").read_text())
    tags = {
        "bayesmmm.version": __version__,
        "bayesmmm.run_dir": str(run_dir.resolve()),
        "bayesmmm.data_sha256": str(meta.get("data_sha256", "")),
        **({"bayesmmm.dataset": meta["dataset"]} if meta.get("dataset") else {}),
        **settings.tags,
    }
    if is_quiet():
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        with (
            mlflow.start_run(run_name=settings.run_name or run_dir.name, tags=tags) as run,
            warnings.catch_warnings(),
        ):
            # the model's input columns depend on the experiment: no input example, and no warning about it
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            mlflow.log_params(flatten_params(config))
            mlflow.log_metrics(_metrics(run_dir))
            mlflow.log_artifacts(str(run_dir), artifact_path="run")
            if settings.log_model:
                mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(Path(__file__).with_name("tracking_model.py")),  # a model from code
                    signature=_signature(),
                    artifacts={"posterior": str(run_dir / "posterior.nc")},
                    pip_requirements=[f"bayesmmm=={__version__}"],
                )
            return run.info.run_id
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"MLflow did not record the run (the run folder {run_dir} is complete): {_first_line(exc)}"
        ) from None
