"""Run an experiment end to end: data → fit → diagnostics → run folder.

The CLI, the service and sweeps call :func:`run_experiment`; it writes the run folder
atomically (built aside, moved into place when complete).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bayesmmm.config.experiment import ConfigError, ExperimentConfig
from bayesmmm.data.loading import file_hash, read_csv
from bayesmmm.evaluation.criteria import loo_summary
from bayesmmm.evaluation.identifiability import add_calibration_diagnostics
from bayesmmm.evaluation.summaries import (
    contributions_table,
    diagnostics,
    fit_metrics,
    geo_contributions_table,
    parameter_summary,
    roas_geo_table,
    roas_table,
    roles_table,
)
from bayesmmm.evaluation.varying import multiplier_table, roas_by_period_table
from bayesmmm.io import atomic_run_dir, check_run_dir, write_json, write_text
from bayesmmm.model.mmm import MMM

__all__ = ["RunResult", "default_run_dir", "load_run", "run_experiment"]


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    roas: pd.DataFrame
    diagnostics: dict[str, Any]
    metrics: dict[str, float]
    timings: dict[str, float]
    model: MMM = field(repr=False)


def default_run_dir(config: ExperimentConfig, root: str | Path = "runs", kind: str | None = None) -> Path:
    """``runs/<name>[-<kind>]-<UTC timestamp>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = [config.name or "experiment", *([kind] if kind else []), stamp]
    return Path(root) / "-".join(parts)


def run_experiment(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    frame: pd.DataFrame | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    setup: Callable[[MMM], None] | None = None,
) -> RunResult:
    """Fit ``config`` and write the run folder.

    Parameters
    ----------
    config : the experiment; ``config.data.path`` (or the bundled ``data.dataset``) is read unless
        ``frame`` is given.
    run_dir : folder to create (replaced only if it is an earlier run folder).
    frame : data to use instead of reading the experiment's data.
    log : progress messages.
    setup : called with the model before it is fitted (a refresh fixes its scales and warm start there:
        :mod:`bayesmmm.workflows.refresh`).

    The folder holds ``posterior.nc``, ``config.yaml``, ``metadata.json``,
    ``summary.csv``, ``diagnostics.json`` (with PSIS-LOO), ``contributions.csv``, ``roas.csv``,
    ``roas_by_period.csv`` (per channel, calendar year and quarter, with HDIs:
    :func:`~bayesmmm.evaluation.varying.roas_by_period_table`) and ``fit.png`` (with
    ``model.time_varying_media`` also ``multipliers.csv`` and ``multipliers.png``, each chosen channel's
    multiplier over time) (and ``lift_tests.csv`` for a calibrated model; ``roles.csv`` for a model with organic
    media, treatments or events: :func:`~bayesmmm.evaluation.summaries.roles_table`). A geo model's ``roas.csv`` and
    ``contributions.csv`` are national (sums over geos); it adds ``roas_geo.csv`` (per geo and channel, with HDIs) and
    ``contributions_geo.csv`` (posterior-mean contributions per period by geo).
    """
    t0 = time.perf_counter()
    check_run_dir(run_dir)  # refuse a foreign -o before any work
    if frame is None:
        source = config.data.source_path
        if source is None:
            raise ConfigError("no data: set data.path or data.dataset in the experiment, or pass --data")
        frame = read_csv(source)
        data_hash = file_hash(source)
    else:
        data_hash = _frame_hash(frame)
    from bayesmmm.inference.base import resolve_backend

    lift = config.calibration.lift_tests if config.calibration is not None else None
    mmm = MMM(config.data, config.model, lift_tests=lift.path if lift is not None else None)
    if setup is not None:
        setup(mmm)
    rows = "rows (date × geo)" if mmm.is_geo else "rows"
    log(
        f"Fitting {len(mmm.channels)} channels × {len(frame)} {rows}: adstock={mmm.adstock.name}, "
        f"saturation={mmm.saturation.name}, sampler={resolve_backend(config.sampler.backend)} "
        f"({config.sampler.chains} chains × {config.sampler.draws} draws)"
    )
    mmm.fit(frame, config.sampler)
    t_fit = time.perf_counter()
    hdi_prob = config.output.hdi_prob
    comps = mmm.posterior_components()
    roas = roas_table(mmm, hdi_prob, comps)
    metrics = fit_metrics(mmm, comps)
    diag = diagnostics(mmm.idata, config.diagnostics)
    diag["fit"] = metrics
    diag["loo"] = loo_summary(mmm.idata)
    add_calibration_diagnostics(mmm, diag, config.diagnostics, hdi_prob)
    timings = {**mmm.timings, "postprocess_s": 0.0, "total_s": 0.0}
    with atomic_run_dir(run_dir) as tmp:
        mmm.save(tmp / "posterior.nc")
        write_text(tmp / "config.yaml", config.to_yaml())
        parameter_summary(mmm.idata, hdi_prob).to_csv(tmp / "summary.csv")
        write_json(tmp / "diagnostics.json", diag)
        contributions_table(mmm, hdi_prob, comps).to_csv(tmp / "contributions.csv", index=False)
        roas.to_csv(tmp / "roas.csv", index=False)
        by_period = roas_by_period_table(mmm, hdi_prob, comps)
        by_period.to_csv(tmp / "roas_by_period.csv", index=False)
        multipliers = multiplier_table(mmm, hdi_prob)
        if len(multipliers):  # model.time_varying_media: each chosen channel's multiplier over time
            multipliers.to_csv(tmp / "multipliers.csv", index=False)
        roles = roles_table(mmm, hdi_prob, comps)
        if len(roles):  # organic media, treatments, event levels: contributions by role, no ROAS
            roles.to_csv(tmp / "roles.csv", index=False)
        if mmm.lift_tests is not None:
            write_text(tmp / "lift_tests.csv", mmm.lift_tests.to_csv(index=False))
        if mmm.is_geo:
            roas_geo_table(mmm, hdi_prob, comps).to_csv(tmp / "roas_geo.csv", index=False)
            geo_contributions_table(mmm).to_csv(tmp / "contributions_geo.csv", index=False)
        if config.output.figures:
            from bayesmmm.reporting.plots import plot_fit

            plot_fit(mmm, tmp / "fit.png", hdi_prob, comps)
            if len(multipliers):
                from bayesmmm.reporting.plots import plot_multipliers

                plot_multipliers(multipliers, tmp / "multipliers.png", by_period)
        timings["postprocess_s"] = round(time.perf_counter() - t_fit, 3)
        timings["total_s"] = round(time.perf_counter() - t0, 3)
        versions = json.loads(mmm.idata.attrs["bayesmmm_versions"])
        write_json(
            tmp / "metadata.json",
            {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "name": config.name,
                "data_path": str(config.data.source_path) if config.data.source_path else None,
                **({"dataset": config.data.dataset} if config.data.dataset else {}),
                "data_sha256": data_hash,
                "n_dates": int(mmm.data.n_dates),
                "channels": list(mmm.channels),
                **({"geos": list(mmm.geos)} if mmm.is_geo else {}),
                "versions": {**versions, "python": platform.python_version()},
                "timings": timings,
                "diagnostics_passed": diag["passed"],
            },
        )
    return RunResult(Path(run_dir), roas, diag, metrics, timings, mmm)


def load_run(run_dir: str | Path) -> RunResult:
    """The :class:`RunResult` of a finished run folder (its tables, diagnostics, timings and model).

    Raises :class:`~bayesmmm.model.mmm.ModelFileError` for a folder that is not a finished run.
    """
    run_dir = Path(run_dir)
    mmm = MMM.load(run_dir)  # checks the folder first
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    meta = json.loads((run_dir / "metadata.json").read_text())
    roas = pd.read_csv(run_dir / "roas.csv")
    roas.attrs["hdi_prob"] = float((config.get("output") or {}).get("hdi_prob", 0.9))
    return RunResult(run_dir, roas, diag, diag.get("fit", {}), meta.get("timings", {}), mmm)


def _frame_hash(frame: pd.DataFrame) -> str:
    import hashlib

    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
