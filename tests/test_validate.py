"""bayesmmm validate: fold boundaries, CRPS against a closed form, a real rolling-origin run, select by cv."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from bayesmmm.cli import app
from bayesmmm.config.experiment import ConfigError, ExperimentConfig
from bayesmmm.evaluation.criteria import crps
from bayesmmm.workflows.validate import FOLD_COLUMNS, STABILITY_COLUMNS, fold_bounds
from tests.conftest import MMM_EXAMPLE_DATA, SMALL_SAMPLER

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_fold_bounds_are_exact():
    assert fold_bounds(100, 3, 10) == [(70, 80), (80, 90), (90, 100)]
    assert fold_bounds(52, 1, 13) == [(39, 52)]
    for k, (train_end, test_end) in enumerate(fold_bounds(179, 4, 12)):
        assert train_end == 179 - (4 - k) * 12 and test_end - train_end == 12
    with pytest.raises(ConfigError, match="fewer folds or a shorter horizon"):
        fold_bounds(30, 3, 10)
    with pytest.raises(ConfigError, match="--folds"):
        fold_bounds(100, 0, 10)
    with pytest.raises(ConfigError, match="--horizon"):
        fold_bounds(100, 2, 0)


def normal_crps(mu: float, sigma: float, y: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma²) (Gneiting & Raftery 2007; properscoring.crps_gaussian)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_crps_of_predictive_draws_matches_the_normal_closed_form():
    rng = np.random.default_rng(7)
    mu, sigma = 3.0, 2.0
    y = np.array([3.0, 0.0, 7.5, -1.0])
    draws = rng.normal(mu, sigma, size=(400_000, len(y)))
    np.testing.assert_allclose(crps(draws, y), normal_crps(mu, sigma, y), rtol=5e-3, atol=5e-3)


def _experiment(tmp_path, frame: pd.DataFrame, **extra) -> tuple:
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    config = {
        "name": "example",
        "data": {**MMM_EXAMPLE_DATA, "path": str(csv)},
        "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
        "sampler": {**SMALL_SAMPLER, "draws": 200, "tune": 300},
        **extra,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, csv


def test_validate_cli_writes_folds_and_stability(tmp_path, mmm_example_frame):
    exp, _ = _experiment(tmp_path, mmm_example_frame)
    out = tmp_path / "cv"
    res = CliRunner().invoke(app, ["-q", "validate", str(exp), "--folds", "2", "--horizon", "8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    folds = pd.read_csv(out / "folds.csv")
    assert list(folds.columns) == FOLD_COLUMNS
    dates = pd.DatetimeIndex(pd.to_datetime(mmm_example_frame["date_week"]))
    n = len(dates)
    assert list(folds["n_train"]) == [n - 16, n - 8] and list(folds["n_test"]) == [8, 8]
    assert list(folds["test_start"]) == [str(dates[n - 16].date()), str(dates[n - 8].date())]
    assert list(folds["train_end"]) == [str(dates[n - 17].date()), str(dates[n - 9].date())]
    assert list(folds["test_end"]) == [str(dates[n - 9].date()), str(dates[-1].date())]
    assert (folds["status"] == "ok").all() and folds["crps"].gt(0).all()
    assert folds["coverage"].between(0, 1).all() and (folds["interval_prob"] == 0.9).all()
    # the predictive includes the noise: at least half of 16 held-out weeks fall inside 90% intervals
    assert folds["coverage"].mean() >= 0.5
    stability = pd.read_csv(out / "stability.csv")
    assert list(stability.columns) == STABILITY_COLUMNS and len(stability) == 2 * 2
    assert (stability["roas_hdi_low"] <= stability["roas_mean"]).all()
    assert (stability["mroas_mean"] <= stability["mroas_hdi_high"]).all()
    summary = json.loads((out / "validate.json").read_text())
    assert summary["mean_crps"] == pytest.approx(folds["crps"].mean())
    assert summary["held_out_periods"] == 16


def test_validate_cli_errors(tmp_path, mmm_example_frame):
    exp, _ = _experiment(tmp_path, mmm_example_frame.iloc[:40])
    res = CliRunner().invoke(app, ["validate", str(exp), "--folds", "4", "--horizon", "10"])
    assert res.exit_code == 2 and "fewer folds or a shorter horizon" in ANSI.sub("", res.output)
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "does not exist" in ANSI.sub("", res.output)


def test_selection_accepts_criterion_cv():
    config = ExperimentConfig.model_validate(
        {"data": {"channel_columns": ["a"]}, "selection": {"criterion": "cv", "cv_folds": 2, "cv_horizon": 8}}
    )
    assert (config.selection.criterion, config.selection.cv_folds, config.selection.cv_horizon) == ("cv", 2, 8)


@pytest.mark.slow
def test_select_ranks_by_cv_crps(tmp_path, mmm_example_frame):
    from bayesmmm.workflows.selection import run_selection

    selection = {
        "saturation": ["logistic", "hill"],
        "criterion": "cv",
        "cv_folds": 2,
        "cv_horizon": 8,
        "holdout_weeks": 0,
    }
    exp, _ = _experiment(tmp_path, mmm_example_frame, selection=selection)
    from bayesmmm.config.experiment import load_experiment

    table = run_selection(load_experiment(exp), tmp_path / "select")
    assert table["cv_crps"].notna().all() and (table["status"] == "ok").all()
    assert table.iloc[0]["cv_crps"] == table["cv_crps"].min() and table.iloc[0]["rank"] == 1
