"""Rolling-origin time-slice cross-validation: ``bayesmmm validate EXPERIMENT.yaml``.

With ``T`` periods, ``K`` folds and a horizon of ``N`` periods, fold ``k`` (0-based) fits the
experiment's model on periods ``[0, T − (K − k)·N)`` and predicts the next ``N``
(:func:`fold_bounds`): the last fold predicts the final ``N`` periods. Forecasts are the
model's own posterior predictive (:meth:`~bayesmmm.model.mmm.MMM.predict` with observation
noise, adstock carried over from the training periods).

Per fold (``DIR/folds.csv``): ``crps`` (mean over the held-out periods of the CRPS of the
predictive draws, :func:`~bayesmmm.evaluation.criteria.crps`), ``mape`` and ``rmse`` of the
predictive mean, ``coverage``: the share of held-out periods inside the central
``interval_prob`` (``output.hdi_prob``, default 90%) interval of the posterior predictive (noise
included), and the fit's diagnostics. Per fold and channel (``DIR/stability.csv``): ROAS and
marginal ROAS over the fold's training periods, means and HDIs. Geo panels are scored on the
national totals. Lift tests enter a fold's fit when they are steady-state or ended before its
held-out periods begin (:func:`lift_tests_before`).

Folds are independent fits: with ``jobs > 1`` or a Dask ``scheduler`` they run as tasks on the
distributed engine (:mod:`bayesmmm.workflows.distributed`), as ``sweep`` and ``select`` do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ConfigError, ExperimentConfig

__all__ = [
    "FOLD_COLUMNS",
    "STABILITY_COLUMNS",
    "ValidationResult",
    "cv_scores",
    "fold_bounds",
    "lift_tests_before",
    "run_fold",
    "run_validation",
]

DEFAULT_FOLDS = 3
DEFAULT_HORIZON = 13
MARKER = "validate.json"

FOLD_COLUMNS = [
    "fold",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "n_train",
    "n_test",
    "crps",
    "mape",
    "rmse",
    "coverage",
    "interval_prob",
    "divergences",
    "max_rhat",
    "status",
    "error",
    "wall_s",
]
STABILITY_COLUMNS = [
    "fold",
    "channel",
    "roas_mean",
    "roas_hdi_low",
    "roas_hdi_high",
    "mroas_mean",
    "mroas_hdi_low",
    "mroas_hdi_high",
]


def fold_bounds(n_periods: int, folds: int, horizon: int) -> list[tuple[int, int]]:
    """``(train_end, test_end)`` per fold: fold ``k`` trains on ``[0, T − (K−k)·N)`` and tests on
    ``[T − (K−k)·N, T − (K−k−1)·N)`` (half-open period indices)."""
    if folds < 1:
        raise ConfigError(f"--folds must be at least 1, got {folds}")
    if horizon < 1:
        raise ConfigError(f"--horizon must be at least 1 period, got {horizon}")
    first = n_periods - folds * horizon
    if first < 2:
        raise ConfigError(
            f"{folds} folds of {horizon} periods need more than {folds * horizon} periods; the data have "
            f"{n_periods}: use fewer folds or a shorter horizon"
        )
    return [(n_periods - (folds - k) * horizon, n_periods - (folds - k - 1) * horizon) for k in range(folds)]


def lift_tests_before(config: ExperimentConfig, cutoff: pd.Timestamp) -> pd.DataFrame | None:
    """The experiment's lift tests a fit on the periods before ``cutoff`` may use: steady-state ones
    and those that ended before it (None when there are none)."""
    lift = config.calibration.lift_tests if config.calibration is not None else None
    if lift is None:
        return None
    from bayesmmm.model.calibration import read_lift_tests

    tests = read_lift_tests(lift.path)
    tests = tests[tests["end"].isna() | (tests["end"] < cutoff)]
    return tests if len(tests) else None


@dataclass
class FoldTask:
    """One fold: the experiment (as a dict, for Dask), its periods and the interval probability."""

    fold: int
    config: dict[str, Any]
    train_end: int
    test_end: int
    interval_prob: float


def _split(frame: pd.DataFrame, config: ExperimentConfig, train_end: int, test_end: int):
    """Rows of the training and held-out periods (every geo's rows of a date for a panel)."""
    dates = pd.to_datetime(frame[config.data.date_column])
    grid = pd.DatetimeIndex(sorted(dates.unique()))
    train = frame[dates < grid[train_end]]
    test = frame[(dates >= grid[train_end]) & (dates <= grid[test_end - 1])]
    return train, test, grid


def run_fold(task: FoldTask, frame: pd.DataFrame | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit one fold and score its forecast; errors are captured in the row (``status: failed``)."""
    from bayesmmm.data.loading import frame_to_data, read_csv
    from bayesmmm.decisions.response import marginal_roas
    from bayesmmm.evaluation.criteria import crps
    from bayesmmm.evaluation.summaries import diagnostics, hdi_bounds
    from bayesmmm.model.mmm import MMM
    from bayesmmm.workflows.distributed import worker_cores

    start = time.perf_counter()
    row: dict[str, Any] = {"fold": task.fold, "interval_prob": task.interval_prob}
    stability: list[dict[str, Any]] = []
    try:
        config = ExperimentConfig.model_validate(task.config)
        sampler = config.sampler.model_copy(update={"progressbar": False})
        if sampler.cores is None:  # on a Dask worker: its share of its host's cores
            sampler = sampler.model_copy(update={"cores": min(worker_cores(), sampler.chains)})
        frame = read_csv(config.data.source_path) if frame is None else frame
        train, test, grid = _split(frame, config, task.train_end, task.test_end)
        row.update(
            {
                "train_start": str(grid[0].date()),
                "train_end": str(grid[task.train_end - 1].date()),
                "test_start": str(grid[task.train_end].date()),
                "test_end": str(grid[task.test_end - 1].date()),
                "n_train": task.train_end,
                "n_test": task.test_end - task.train_end,
            }
        )
        mmm = MMM(config.data, config.model, lift_tests=lift_tests_before(config, grid[task.train_end]))
        mmm.fit(train, sampler)
        pred = mmm.predict(test, noise=True, seed=config.sampler.seed or 0)
        observed = frame_to_data(test, config.data).target
        draws = pred["y"].to_numpy().reshape(-1, len(observed))
        mean = draws.mean(axis=0)
        lo, hi = np.quantile(draws, [(1 - task.interval_prob) / 2, (1 + task.interval_prob) / 2], axis=0)
        nonzero = observed != 0
        diag = diagnostics(mmm.idata, config.diagnostics)
        row.update(
            {
                "crps": float(crps(draws, observed).mean()),
                "mape": float(np.mean(np.abs((mean - observed)[nonzero] / observed[nonzero]))),
                "rmse": float(np.sqrt(np.mean((mean - observed) ** 2))),
                "coverage": float(np.mean((observed >= lo) & (observed <= hi))),
                "divergences": int(diag["divergences"]),
                "max_rhat": float(diag["max_rhat"]),
                "status": "ok",
            }
        )
        contribution = mmm.posterior_components()["media"].sum("date")
        roas = (contribution / mmm.data.media.sum(axis=0)).stack(sample=("chain", "draw"))
        mroas = marginal_roas(mmm).stack(sample=("chain", "draw"))
        for ch in mmm.channels:
            entry: dict[str, Any] = {"fold": task.fold, "channel": ch}
            for name, da in (("roas", roas), ("mroas", mroas)):
                x = da.sel(channel=ch).to_numpy()
                low, high = hdi_bounds(x, task.interval_prob)
                entry.update({f"{name}_mean": float(x.mean()), f"{name}_hdi_low": low, f"{name}_hdi_high": high})
            stability.append(entry)
    except Exception as exc:  # one failing fold never stops the others
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["wall_s"] = round(time.perf_counter() - start, 2)
    return row, stability


def _task_row(task: FoldTask) -> dict[str, Any]:
    """:func:`run_fold` for the distributed engine: one dict (the stability rows inside)."""
    row, stability = run_fold(task)
    return {**row, "_stability": stability}


@dataclass
class ValidationResult:
    """The fold and stability tables and the summary (also written to ``DIR``)."""

    folds: pd.DataFrame
    stability: pd.DataFrame
    summary: dict[str, Any]
    out_dir: Path | None


def _tasks(config: ExperimentConfig, n_periods: int, folds: int, horizon: int) -> list[FoldTask]:
    payload = config.model_dump(mode="json")
    return [
        FoldTask(k, payload, train_end, test_end, config.output.hdi_prob)
        for k, (train_end, test_end) in enumerate(fold_bounds(n_periods, folds, horizon))
    ]


def cv_scores(config: ExperimentConfig, frame: pd.DataFrame, folds: int, horizon: int) -> dict[str, float]:
    """Mean CRPS, MAPE and coverage over the folds, fitted one after another in this process (what
    ``select``'s ``criterion: cv`` ranks by: ``cv_crps``); raises if a fold failed."""
    from bayesmmm.data.loading import frame_to_data

    n = frame_to_data(frame, config.data).n_dates
    rows = [run_fold(task, frame)[0] for task in _tasks(config, n, folds, horizon)]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"cross-validation fold {failed[0]['fold']} failed: {failed[0]['error']}")
    return {
        "cv_crps": float(np.mean([r["crps"] for r in rows])),
        "cv_mape": float(np.mean([r["mape"] for r in rows])),
        "cv_coverage": float(np.mean([r["coverage"] for r in rows])),
    }


def run_validation(
    config: ExperimentConfig,
    out_dir: str | Path | None,
    *,
    folds: int = DEFAULT_FOLDS,
    horizon: int = DEFAULT_HORIZON,
    jobs: int = 1,
    scheduler: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> ValidationResult:
    """Cross-validate ``config`` on rolling origins (module docstring); writes ``out_dir/folds.csv``,
    ``out_dir/stability.csv`` and ``out_dir/validate.json`` (the settings and the means over folds)."""
    from bayesmmm.data.loading import frame_to_data, read_csv
    from bayesmmm.io import atomic_run_dir, check_run_dir, write_json, write_text

    if out_dir is not None:
        check_run_dir(out_dir, MARKER, "validate")
    source = config.data.source_path
    if source is None:
        raise ConfigError("no data: set data.path or data.dataset in the experiment, or pass --data")
    frame = read_csv(source)
    n_periods = frame_to_data(frame, config.data).n_dates
    tasks = _tasks(config, n_periods, folds, horizon)
    jobs = max(1, min(jobs, len(tasks)))
    log(
        f"Validating on {folds} rolling-origin folds of {horizon} periods ({n_periods} periods; first fold trains on "
        f"{tasks[0].train_end}){f', {jobs} at a time' if jobs > 1 else ''}"
    )
    from bayesmmm.progress import progress

    bar = progress(total=len(tasks), desc="folds", unit="fit")

    def done(row: dict[str, Any]) -> None:
        bar.update()
        if row.get("status") == "ok":
            log(
                f"  fold {row['fold']} ({row['test_start']} to {row['test_end']}): CRPS {row['crps']:.4g}, "
                f"MAPE {row['mape']:.1%}, {row['interval_prob']:.0%} coverage {row['coverage']:.0%} "
                f"({row['wall_s']:.0f} s)"
            )
        else:
            log(f"  fold {row['fold']}: FAILED {row.get('error')}")

    with bar:
        if jobs == 1 and scheduler is None:
            rows = []
            for task in tasks:
                row, stability = run_fold(task, frame)
                rows.append({**row, "_stability": stability})
                done(row)
        else:
            from bayesmmm.workflows.distributed import dask_client, map_tasks

            with dask_client(scheduler, None if scheduler else jobs) as client:
                rows = map_tasks(_task_row, tasks, client, on_result=lambda _i, row: done(row))
            rows = [{**r, "fold": r.get("fold", t.fold)} for r, t in zip(rows, tasks, strict=True)]
    stability = pd.DataFrame([s for r in rows for s in r.get("_stability", [])], columns=STABILITY_COLUMNS).reset_index(
        drop=True
    )
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_stability"} for r in rows])
    for col in FOLD_COLUMNS:
        if col not in table:
            table[col] = np.nan
    table = table[FOLD_COLUMNS].sort_values("fold").reset_index(drop=True)
    ok = table[table["status"] == "ok"]
    summary = {
        "folds": folds,
        "horizon": horizon,
        "n_periods": n_periods,
        "interval_prob": config.output.hdi_prob,
        "folds_ok": len(ok),
        "mean_crps": float(ok["crps"].mean()) if len(ok) else None,
        "mean_mape": float(ok["mape"].mean()) if len(ok) else None,
        "mean_coverage": float(ok["coverage"].mean()) if len(ok) else None,
        "held_out_periods": int(ok["n_test"].sum()) if len(ok) else 0,
    }
    if out_dir is not None:
        with atomic_run_dir(out_dir, MARKER, "validate") as tmp:
            write_text(tmp / "folds.csv", table.to_csv(index=False))
            write_text(tmp / "stability.csv", stability.to_csv(index=False))
            write_json(tmp / MARKER, summary)
    return ValidationResult(table, stability, summary, Path(out_dir) if out_dir is not None else None)
