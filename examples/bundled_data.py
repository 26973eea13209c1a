"""Fit a public data set bundled with bayesmmm, from Python, and optionally track it in MLflow.

    python examples/bundled_data.py [--out runs/bundled] [--draws 1000] [--mlflow sqlite:///mlflow.db]

The same experiment as ``configs/pymc_marketing_example.yaml`` (``bayesmmm fit`` on that file
does the same): PyMC-Marketing's example data, whose generating process is published, fitted
with its true functional forms (geometric adstock, logistic saturation). ``bayesmmm datasets``
lists the other bundled data sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bayesmmm import ExperimentConfig, RunResult, run_experiment
from bayesmmm.datasets import load_dataset

EXPERIMENT = {
    "name": "pymc_marketing_example",
    "data": {
        "dataset": "pymc_marketing_example",
        "date_column": "date_week",
        "target_column": "y",
        "channel_columns": ["x1", "x2"],
        "control_columns": ["event_1", "event_2"],
    },
    "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
}


def main(
    out: str | Path = "runs/bundled",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    mlflow: str | None = None,
) -> RunResult:
    """Fit the bundled example into ``out``; print its ROAS; log it to MLflow at ``mlflow`` if given."""
    frame = load_dataset("pymc_marketing_example")
    print(f"{len(frame)} weeks, columns {list(frame.columns)}")
    sampler = {"chains": chains, "draws": draws, "tune": tune, "seed": 1}
    config = ExperimentConfig.model_validate({**EXPERIMENT, "sampler": sampler})
    result = run_experiment(config, out, log=print)
    print(result.roas[["channel", "roas_mean", "roas_hdi_low", "roas_hdi_high"]].to_string(index=False))
    if mlflow is not None:
        from bayesmmm.config.experiment import MlflowConfig
        from bayesmmm.workflows.tracking import log_run

        print(f"MLflow run {log_run(result.run_dir, MlflowConfig(tracking_uri=mlflow), config)}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bundled")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--mlflow", default=None, help="MLflow tracking URI, e.g. sqlite:///mlflow.db")
    args = parser.parse_args()
    main(args.out, args.draws, args.tune, args.chains, args.mlflow)
