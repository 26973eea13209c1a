"""Sweeps: many experiments from one base YAML, one Dask task per run.

``SWEEP.yaml``::

    base: base.yaml                       # an experiment YAML, relative to this file
    grid:                                 # dotted keys → lists (Cartesian product)
      model.adstock.name: [geometric, weibull_cdf]
      model.saturation.name: [logistic, hill]
    runs:                                 # and/or explicit override sets
      - {model.trend: piecewise}

Each run's id is a content hash of its resolved experiment and its data file, so a
re-run skips runs that already finished (their run folder is complete) and retries
failed ones. ``DIR/results.csv`` is rewritten atomically after every finished run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bayesmmm.config.experiment import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    format_validation_error,
    load_plugins,
    yaml_problem,
)
from bayesmmm.progress import is_quiet

__all__ = ["SweepConfig", "SweepRun", "load_sweep", "plan_sweep", "run_sweep"]

RESULT_COLUMNS = ["run_id", "overrides", "status", "error", "wall_s", "elpd", "max_rhat", "min_ess_bulk", "divergences"]


class SweepConfig(BaseModel):
    """The sweep file: a base experiment and the runs to derive from it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base: str
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)


@dataclass
class SweepRun:
    """One planned run: its overrides, the resolved config (or why it is invalid), its id."""

    run_id: str
    overrides: dict[str, Any]
    config: dict[str, Any] | None
    error: str | None
    run_dir: str


def load_sweep(path: str | Path) -> tuple[SweepConfig, dict[str, Any], Path]:
    """Read a sweep file and its base experiment (raw mapping); returns (sweep, base, base_dir)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    try:
        sweep = SweepConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), SweepConfig)) from None
    base_path = (path.parent / sweep.base).resolve()
    if not base_path.exists():
        raise ConfigError(f"{path}: base experiment {str(base_path)!r} does not exist")
    base = yaml.safe_load(base_path.read_text())
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: expected an experiment mapping")
    for key in ("data",):
        if key not in base:
            raise ConfigError(f"{base_path}: the base experiment has no '{key}:' block")
    data = base["data"]
    if isinstance(data, dict) and data.get("path") and not Path(data["path"]).is_absolute():
        data["path"] = str((base_path.parent / data["path"]).resolve())
    if base.get("plugins"):
        base["plugins"] = [
            p if not p.endswith(".py") or Path(p).is_absolute() else str((base_path.parent / p).resolve())
            for p in base["plugins"]
        ]
    return sweep, base, base_path.parent


def _override_sets(sweep: SweepConfig) -> list[dict[str, Any]]:
    sets: list[dict[str, Any]] = []
    if sweep.grid:
        keys = list(sweep.grid)
        sets += [dict(zip(keys, values, strict=True)) for values in itertools.product(*sweep.grid.values())]
    sets += [dict(r) for r in sweep.runs]
    return sets or [{}]


def _data_hash(path: str | None) -> str:
    from bayesmmm.data.loading import file_hash

    return file_hash(path) if path and Path(path).exists() else "no-data"


def plan_sweep(sweep: SweepConfig, base: dict[str, Any], out_dir: str | Path) -> list[SweepRun]:
    """Resolve every run's experiment; invalid ones are kept with their error."""
    load_plugins(list(base.get("plugins") or []))
    runs = []
    for overrides in _override_sets(sweep):
        raw = copy.deepcopy(base)
        apply_overrides(raw, overrides)
        try:
            config = ExperimentConfig.model_validate(raw)
            resolved = config.model_dump(mode="json")
            error = None
            source = config.data.source_path
            digest_src = json.dumps(resolved, sort_keys=True) + _data_hash(str(source) if source else None)
        except ValidationError as exc:
            resolved = None
            error = format_validation_error(exc, "run").replace("\n", "; ")
            digest_src = json.dumps(raw, sort_keys=True, default=str)
        except ValueError as exc:
            resolved, error, digest_src = None, str(exc), json.dumps(raw, sort_keys=True, default=str)
        run_id = hashlib.sha256(digest_src.encode()).hexdigest()[:12]
        runs.append(SweepRun(run_id, overrides, resolved, error, str(Path(out_dir) / "runs" / run_id)))
    return runs


def _execute(task: tuple[dict[str, Any], str]) -> dict[str, Any]:
    """Fit one run on a worker; never raises."""
    config_dict, run_dir = task
    start = time.perf_counter()
    row: dict[str, Any] = {}
    try:
        from bayesmmm.workflows.distributed import worker_cores
        from bayesmmm.workflows.experiment import run_experiment

        config = ExperimentConfig.model_validate(config_dict)
        config.sampler = config.sampler.model_copy(
            update={"cores": config.sampler.cores or min(worker_cores(), config.sampler.chains), "progressbar": False}
        )
        result = run_experiment(config, run_dir)
        row.update(_metrics(result.diagnostics, result.roas))
        row["status"] = "ok"
    except Exception as exc:
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["wall_s"] = round(time.perf_counter() - start, 2)
    return row


def _structure(config_dict: dict[str, Any]) -> str:
    """The run's model structure key: runs sharing it share compiled code on one worker."""
    from bayesmmm.model.mmm import MMM

    config = ExperimentConfig.model_validate(config_dict)
    return MMM(config.data, config.model).structure_key()


def _metrics(diag: dict[str, Any], roas: pd.DataFrame) -> dict[str, Any]:
    out = {
        "elpd": diag["loo"]["elpd"],
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "divergences": diag["divergences"],
    }
    out.update({f"roas_{r.channel}": r.roas_mean for r in roas.itertuples()})
    return out


def _finished_row(run_dir: str) -> dict[str, Any] | None:
    """Metrics of a finished run folder (written atomically, so complete if present)."""
    folder = Path(run_dir)
    if not (folder / "metadata.json").exists():
        return None
    diag = json.loads((folder / "diagnostics.json").read_text())
    roas = pd.read_csv(folder / "roas.csv")
    meta = json.loads((folder / "metadata.json").read_text())
    return {**_metrics(diag, roas), "status": "ok", "wall_s": meta["timings"].get("total_s"), "skipped": True}


def _write_results(path: Path, runs: list[SweepRun], rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    from bayesmmm.io import write_text

    records = []
    for run in runs:
        row = rows.get(run.run_id, {"status": "pending"})
        records.append(
            {
                "run_id": run.run_id,
                "overrides": json.dumps(run.overrides, default=str),
                **row,
                "run_dir": run.run_dir if row.get("status") == "ok" else "",
            }
        )
    table = pd.DataFrame(records)
    for col in RESULT_COLUMNS:
        if col not in table:
            table[col] = None
    table = table[RESULT_COLUMNS + [c for c in table.columns if c not in RESULT_COLUMNS]]
    write_text(path, table.to_csv(index=False))
    return table


def run_sweep(
    sweep_path: str | Path,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> pd.DataFrame:
    """Plan, skip finished runs, execute the rest on Dask, and write ``out_dir/results.csv``."""
    from bayesmmm.workflows.distributed import dask_client, map_tasks

    sweep, base, _ = load_sweep(sweep_path)
    out_dir = Path(out_dir)
    runs = plan_sweep(sweep, base, out_dir)
    results_path = out_dir / "results.csv"
    rows: dict[str, dict[str, Any]] = {}
    todo: list[SweepRun] = []
    for run in runs:
        if run.error is not None:
            rows[run.run_id] = {"status": "failed", "error": run.error, "wall_s": 0.0}
        elif (finished := _finished_row(run.run_dir)) is not None:
            rows[run.run_id] = finished
        else:
            todo.append(run)
    skipped = sum(1 for r in rows.values() if r.get("skipped"))
    log(
        f"Sweep: {len(runs)} runs, {skipped} already finished, {len(runs) - skipped - len(todo)} invalid, "
        f"{len(todo)} to fit"
    )
    _write_results(results_path, runs, rows)
    if todo:
        # default: as many workers as fits whose chains can all run at once on this machine
        chains = max(r.config["sampler"]["chains"] for r in todo)
        n_workers = workers or max(1, min(len(todo), (os.cpu_count() or 1) // chains))
        with dask_client(scheduler, None if scheduler else n_workers) as client:
            log(f"Dask dashboard: {client.dashboard_link}")
            tasks = [(r.config, r.run_dir) for r in todo]

            def on_result(i: int, row: dict[str, Any]) -> None:
                rows[todo[i].run_id] = row
                _write_results(results_path, runs, rows)
                if row.get("status") != "ok":
                    log(f"\n  run {todo[i].run_id} failed: {row.get('error')}")

            def on_progress(done: int, failed: int, running: int) -> None:
                if is_quiet():
                    return
                bar = "#" * int(30 * done / len(todo))
                end = "" if sys.stderr.isatty() else "\n"
                msg = f"[{bar:<30}] done {done - failed} · failed {failed} · running/queued {running}"
                print("\r" + msg if end == "" else msg, end=end, file=sys.stderr, flush=True)

            groups = [_structure(r.config) for r in todo]
            map_tasks(_execute, tasks, client, on_result=on_result, on_progress=on_progress, groups=groups)
            if sys.stderr.isatty() and not is_quiet():
                print(file=sys.stderr)
    return _write_results(results_path, runs, rows)
