"""Benchmark suites: data sets × backends × seeds, every fit in its own subprocess.

A suite YAML (see ``benchmarks/suites/``)::

    name: default
    chains: 4
    draws: 1000
    tune: 1000
    target_accept: 0.9          # optional; default: each experiment's own
    seeds: [1, 2]
    backends: [nutpie, numpyro, blackjax]
    caches: [cold, warm]        # cold: empty compile caches; warm: the cold run's caches
    datasets:
      - {name: four_channel, scenario: four_channel, experiment: ../../configs/four_channel.yaml}
      - {name: pymc_example, experiment: ../../configs/pymc_marketing_example.yaml}
      - {name: ten_channel, scenario: ten_channel, experiment: ../../configs/ten_channel.yaml,
         overrides: {model.trend: none}}

``scenario`` (a built-in name or a scenario YAML) is simulated into ``DIR/data/NAME/``
and replaces the experiment's data path; without it the experiment's own data are used.

Every run is a fresh Python process, so peak memory (``ru_maxrss`` of the process and
its children) and cold-cache timings are honest: a ``cold`` run gets empty PyTensor,
numba and JAX compilation caches; the ``warm`` run after it reuses them. Results:
``DIR/results.csv`` (rewritten after every run), ``DIR/results.md`` and ``DIR/results.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bayesmmm.config.experiment import ConfigError, format_validation_error, yaml_problem

__all__ = [
    "RESULT_COLUMNS",
    "BenchSuite",
    "fit_once",
    "load_suite",
    "peer_spec",
    "process_failure",
    "results_markdown",
    "run_child",
    "run_process",
    "run_suite",
    "sampler_overrides",
]

RESULT_COLUMNS = [
    "dataset",
    "backend",
    "device",
    "seed",
    "cache",
    "status",
    "wall_s",
    "process_s",
    "compile_s",
    "sample_s",
    "min_ess_bulk",
    "min_ess_tail",
    "ess_per_s",
    "ess_per_1k_grad",
    "grad_evals",
    "divergences",
    "max_rhat",
    "peak_mem_mb",
    "chains",
    "draws",
    "tune",
    "error",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchDataset(_Spec):
    """A data set: an experiment YAML (model + data), optionally on freshly simulated data."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    experiment: Path
    scenario: str | None = None
    overrides: dict[str, Any] = {}


class BenchSuite(_Spec):
    """A benchmark matrix: data sets × backends × seeds × cache states."""

    name: str = "bench"
    chains: int = Field(4, ge=1)
    draws: int = Field(1000, ge=10)
    tune: int = Field(1000, ge=0)
    target_accept: float | None = Field(None, gt=0.5, lt=1.0)
    seeds: list[int] = Field([1], min_length=1)
    backends: list[str] = Field(["nutpie"], min_length=1, description="registered sampler backends")
    caches: list[Literal["cold", "warm"]] = Field(["cold", "warm"], min_length=1)
    timeout_s: float = Field(3600, gt=0, description="per fit")
    datasets: list[BenchDataset] = Field(min_length=1)

    @field_validator("backends")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        from bayesmmm.inference.base import backend_names

        unknown = [b for b in value if b not in backend_names()]
        if unknown:
            raise ValueError(f"unknown sampler backend(s) {unknown}; registered: {', '.join(backend_names())}")
        return value


def load_suite(path: str | Path) -> BenchSuite:
    """Read a suite YAML; relative paths resolve against its folder."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"suite file {str(path)!r} does not exist")
    try:
        suite = BenchSuite.model_validate(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), BenchSuite)) from None
    for ds in suite.datasets:
        if not ds.experiment.is_absolute():
            ds.experiment = (path.parent / ds.experiment).resolve()
        if not ds.experiment.exists():
            raise ConfigError(f"{path}: dataset {ds.name!r}: experiment {str(ds.experiment)!r} does not exist")
        if ds.scenario and ds.scenario.endswith((".yaml", ".yml")) and not Path(ds.scenario).is_absolute():
            ds.scenario = str((path.parent / ds.scenario).resolve())
    names = [ds.name for ds in suite.datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: dataset names must be unique, got {names}")
    return suite


# ----------------------------------------------------------------------------- one fit
def fit_once(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit one experiment in this process and measure it (the child's side of :func:`run_suite`).

    ``spec``: ``experiment`` (path), ``overrides`` (dotted keys), ``data_path`` (optional).
    """
    import resource

    import numpy as np

    from bayesmmm.config.experiment import load_experiment
    from bayesmmm.data.loading import read_csv
    from bayesmmm.evaluation.summaries import diagnostics
    from bayesmmm.model.mmm import MMM

    overrides = dict(spec.get("overrides") or {})
    if spec.get("data_path"):
        overrides["data.path"] = spec["data_path"]
    config = load_experiment(spec["experiment"], overrides)
    frame = read_csv(config.data.source_path)
    mmm = MMM(config.data, config.model)
    start = time.perf_counter()
    mmm.fit(frame, config.sampler)
    wall = time.perf_counter() - start
    diag = diagnostics(mmm.idata, config.diagnostics)
    grads = int(np.asarray(mmm.idata["sample_stats"]["n_steps"]).sum())
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    ess = diag["min_ess_bulk"]
    return {
        "wall_s": round(wall, 3),
        "compile_s": mmm.timings.get("compile_s"),
        "sample_s": mmm.timings.get("sample_s"),
        "device": mmm.timings.get("platform", "cpu"),
        "min_ess_bulk": round(ess, 1),
        "min_ess_tail": round(diag["min_ess_tail"], 1),
        "ess_per_s": round(ess / wall, 3),
        "ess_per_1k_grad": round(1000 * ess / grads, 3) if grads else None,
        "grad_evals": grads,
        "divergences": diag["divergences"],
        "max_rhat": round(diag["max_rhat"], 4),
        "peak_mem_mb": round(peak_kb / 1024, 1),
    }


def child_main() -> None:  # pragma: no cover - runs in the subprocess
    spec = json.loads(sys.stdin.read())
    result = fit_once(spec)
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


def cache_env(cache_root: Path) -> dict[str, str]:
    """Environment pointing PyTensor, numba and JAX at caches under ``cache_root``."""
    env = dict(os.environ)
    # PyTensor keeps its numba cache under base_compiledir (not compiledir): move both
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith(("compiledir", "base_"))]
    pytensor = cache_root / "pytensor"
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={pytensor}", f"compiledir={pytensor / 'compiledir'}"])
    env["NUMBA_CACHE_DIR"] = str(cache_root / "numba")
    env["BAYESMMM_JAX_CACHE"] = str(cache_root / "jax")
    return env


def run_process(
    command: list[str], env: dict[str, str], timeout: float, stdin: str | None = None
) -> tuple[subprocess.CompletedProcess | None, float]:
    """Run ``command`` in a fresh process: ``(the finished process, or None on timeout; wall seconds)``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc = None
    return proc, round(time.perf_counter() - start, 3)


def process_failure(proc: subprocess.CompletedProcess | None, elapsed: float, timeout: float) -> dict[str, Any]:
    """The result row of a child process that timed out or printed no result (its last lines of output)."""
    if proc is None:
        return {"status": "timeout", "error": f"no result within {timeout:.0f} s"}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"status": "failed", "process_s": elapsed, "error": " | ".join(tail)[:500]}


def run_child(
    spec: dict[str, Any], env: dict[str, str], timeout: float, python: str | None = None, module: str | None = None
) -> dict[str, Any]:
    """Run a fit in a fresh interpreter; returns its measurements plus ``process_s`` (or ``error``)."""
    code = module or "from bayesmmm.workflows.bench import child_main; child_main()"
    proc, elapsed = run_process([python or sys.executable, "-c", code], env, timeout, stdin=json.dumps(spec))
    if proc is not None:
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("BAYESMMM_BENCH_RESULT "):
                return {"status": "ok", "process_s": elapsed, **json.loads(line.split(" ", 1)[1])}
    return process_failure(proc, elapsed, timeout)


def sampler_overrides(backend: str, seed: int, chains: int, draws: int, tune: int, target_accept: float) -> dict:
    """Experiment overrides of a benchmark fit's sampler (no progress bar)."""
    return {
        "sampler.backend": backend,
        "sampler.seed": seed,
        "sampler.chains": chains,
        "sampler.draws": draws,
        "sampler.tune": tune,
        "sampler.target_accept": target_accept,
        "sampler.progressbar": False,
    }


def peer_spec(
    data_path: str | Path,
    data_cfg: Any,
    nuts_sampler: str,
    seed: int,
    chains: int,
    draws: int,
    tune: int,
    target_accept: float,
) -> dict[str, Any]:
    """The JSON spec of ``benchmarks/peer_fit.py`` (PyMC-Marketing's fit) for a data set
    (``data_cfg``: its :class:`~bayesmmm.config.experiment.DataConfig`) and sampler settings."""
    return {
        "data_path": str(data_path),
        "date_column": data_cfg.date_column,
        "target_column": data_cfg.target_column,
        "channels": data_cfg.media_columns,
        "controls": data_cfg.control_columns,
        "chains": chains,
        "draws": draws,
        "tune": tune,
        "seed": seed,
        "target_accept": target_accept,
        "nuts_sampler": nuts_sampler,
    }


# ------------------------------------------------------------------------------- suite
def _prepare_data(ds: BenchDataset, out: Path) -> str | None:
    if not ds.scenario:
        return None
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation

    scenario = Path(ds.scenario) if ds.scenario.endswith((".yaml", ".yml")) else builtin_scenario(ds.scenario)
    data_path, _ = write_simulation(load_scenario(scenario), out / "data" / ds.name)
    return str(data_path.resolve())


def run_suite(
    suite: BenchSuite,
    out: str | Path,
    log: Callable[[str], None] = lambda _m: None,
) -> Any:
    """Run every (data set, backend, seed, cache) of ``suite``; write the results to ``out``.

    Returns the results as a pandas DataFrame (columns :data:`RESULT_COLUMNS`).
    """
    import pandas as pd

    from bayesmmm.io import write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    total = len(suite.datasets) * len(suite.backends) * len(suite.seeds) * len(suite.caches)
    for ds in suite.datasets:
        data_path = _prepare_data(ds, out)
        for backend in suite.backends:
            for seed in suite.seeds:
                cache_root = out / "cache" / f"{ds.name}-{backend}-{seed}"
                shutil.rmtree(cache_root, ignore_errors=True)
                for cache in suite.caches:
                    overrides = {
                        **ds.overrides,
                        "sampler.backend": backend,
                        "sampler.seed": seed,
                        "sampler.chains": suite.chains,
                        "sampler.draws": suite.draws,
                        "sampler.tune": suite.tune,
                        "sampler.progressbar": False,
                    }
                    if suite.target_accept is not None:
                        overrides["sampler.target_accept"] = suite.target_accept
                    spec = {"experiment": str(ds.experiment), "overrides": overrides, "data_path": data_path}
                    log(f"[{len(rows) + 1}/{total}] {ds.name} · {backend} · seed {seed} · {cache} caches")
                    result = run_child(spec, cache_env(cache_root), suite.timeout_s)
                    row = {
                        "dataset": ds.name,
                        "backend": backend,
                        "seed": seed,
                        "cache": cache,
                        "chains": suite.chains,
                        "draws": suite.draws,
                        "tune": suite.tune,
                        **result,
                    }
                    rows.append(row)
                    if result["status"] != "ok":
                        log(f"    {result['status']}: {result.get('error')}")
                    else:
                        log(
                            f"    wall {row['wall_s']:.1f} s (compile {row['compile_s']:.1f}), min bulk ESS "
                            f"{row['min_ess_bulk']:.0f}, {row['ess_per_s']:.1f} ESS/s, {row['divergences']} div."
                        )
                    table = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
                    write_text(out / "results.csv", table.to_csv(index=False))
                shutil.rmtree(cache_root, ignore_errors=True)
    table = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
    write_text(out / "results.md", results_markdown(table, suite))
    plot_results(table, out / "results.png")
    return table


def results_markdown(table: Any, suite: BenchSuite | None = None) -> str:
    """The results as a markdown table (one row per run)."""
    cols = [
        "dataset",
        "backend",
        "device",
        "seed",
        "cache",
        "wall_s",
        "compile_s",
        "sample_s",
        "min_ess_bulk",
        "ess_per_s",
        "ess_per_1k_grad",
        "divergences",
        "max_rhat",
        "peak_mem_mb",
        "status",
    ]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for _, row in table.iterrows():
        cells = []
        for c in cols:
            v = row.get(c)
            if isinstance(v, float):
                cells.append("" if v != v else f"{v:.4g}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    title = f"# Benchmark {suite.name}\n\n" if suite else ""
    setup = (
        f"{suite.chains} chains × {suite.tune} tune × {suite.draws} draws; wall = MMM.fit in a fresh process; "
        "ESS/s = min bulk ESS / wall; gradient evaluations counted over the draws.\n\n"
        if suite
        else ""
    )
    return title + setup + head + "\n".join(lines) + "\n"


def plot_results(table: Any, path: Path) -> Path | None:
    """Bar chart of min bulk ESS per wall second, per data set and backend (one bar per cache state)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    if ok.empty:
        return None
    summary = ok.groupby(["dataset", "backend", "cache"])["ess_per_s"].median().unstack("cache")
    datasets = list(dict.fromkeys(ok["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        part = summary.loc[ds]
        part.plot.bar(ax=ax, rot=0)
        ax.set_title(ds)
        ax.set_xlabel("")
        ax.set_ylabel("min bulk ESS per wall second")
    fig.tight_layout()
    from bayesmmm.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
