"""bayesmmm vs Google Meridian on Meridian's own data: ROI per channel with intervals, and wall time.

Run through nox (``nox -s bench_meridian``), which installs ``google-meridian[jax]`` from PyPI in
its own virtualenv and passes that interpreter as ``--meridian-python``; our fits run in this
interpreter, through the ``bayesmmm fit`` CLI (set ``PYTHONPATH`` to a checkout to measure it).

Both sides read the same experiment YAML's data block (``configs/meridian_national_all_channels.yaml``,
``configs/meridian_geo_all_channels.yaml``): paid channels with impressions as exposure and spend for
ROI, the organic channel, ``Promo`` as a non-media treatment, the controls, conversions valued by
``revenue_per_conversion`` and, for the geo panel, each geo's population. Meridian fits its default
``ModelSpec()`` (ROI priors ``LogNormal(0.2, 0.9)``, geometric adstock, Hill saturation;
``benchmarks/meridian_fit.py``); bayesmmm fits the experiment as shipped, with the same chains and
warm-up / kept draws (``tune = n_adapt + n_burnin``, ``draws = n_keep``). Every fit is a fresh
process, timed from launch to exit (the whole process a user waits for: imports, data, model,
compilation, sampling, ROI; for bayesmmm, the run folder too). Both processes get the same thread
limits (``--threads``: OpenMP/BLAS, XLA's CPU thread pool, TensorFlow, Rayon).

Writes to ``--out`` (default ``benchmarks/results/meridian``): ``meridian_DATASET.json`` and
``bayesmmm_DATASET.json`` (settings, command, timings, diagnostics, per-channel ROI), ``roi.csv``
(every channel of every fit measured) and ``side_by_side.md``. ``--only meridian`` fits Meridian
alone; ``--only bayesmmm`` fits bayesmmm alone and builds the table with the stored Meridian results;
``--tables`` fits nothing and rebuilds ``roi.csv`` and ``side_by_side.md`` from the stored JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "national": ROOT / "configs" / "meridian_national_all_channels.yaml",
    "geo": ROOT / "configs" / "meridian_geo_all_channels.yaml",
}
MERIDIAN_FIT = ROOT / "benchmarks" / "meridian_fit.py"
BUNDLED = ROOT / "bayesmmm" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meridian-python", help="interpreter of Meridian's environment (nox passes it)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--only", choices=["meridian", "bayesmmm"], help="fit one side only (default: both)")
    parser.add_argument("--n-chains", type=int, default=4)
    parser.add_argument("--n-adapt", type=int, default=500, help="Meridian's adaptation draws per chain")
    parser.add_argument("--n-burnin", type=int, default=500, help="Meridian's burn-in draws per chain")
    parser.add_argument("--n-keep", type=int, default=500, help="kept draws per chain (bayesmmm's draws)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hdi-prob", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads each fit may use")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per fit")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "meridian")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-meridian"), help="bayesmmm's run folders")
    parser.add_argument("--tables", action="store_true", help="fit nothing: rebuild the tables from the stored JSON")
    args = parser.parse_args()
    if args.tables:
        write_tables(args.out)
        return
    if args.only != "bayesmmm" and not args.meridian_python:
        parser.error("--meridian-python is required unless --only bayesmmm (run through `nox -s bench_meridian`)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        experiment = DATASETS[name]
        if args.only != "bayesmmm":
            result = fit_meridian(name, experiment, args)
            write_json(args.out / f"meridian_{name}.json", result)
            print(json.dumps({k: v for k, v in result.items() if k != "roi"}), flush=True)
            print(roi_markdown(result), flush=True)
        if args.only != "meridian":
            result = fit_bayesmmm(name, experiment, args)
            write_json(args.out / f"bayesmmm_{name}.json", result)
            print(json.dumps({k: v for k, v in result.items() if k != "roi"}), flush=True)
    write_tables(args.out)


def thread_env(threads: int) -> dict[str, str]:
    """This environment with every thread pool a fit may start limited to ``threads``."""
    env = dict(os.environ)
    n = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = n
    env["TF_NUM_INTRAOP_THREADS"] = n
    env["TF_NUM_INTEROP_THREADS"] = n
    eigen = "false" if threads == 1 else "true"
    env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={n}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def data_block(experiment: Path) -> dict:
    """The experiment's ``data:`` block, read as plain YAML (both sides use the same columns)."""
    return yaml.safe_load(experiment.read_text())["data"]


def dataset_file(data: dict, base: Path | None = None) -> Path:
    """The CSV of the experiment's data (``data.path``, relative to ``base`` (the experiment's folder) when
    relative, or the bundled ``data.dataset``)."""
    if data.get("path"):
        path = Path(data["path"])
        return path if path.is_absolute() or base is None else base / path
    from bayesmmm.datasets import dataset_path

    return dataset_path(data["dataset"])


def meridian_spec(experiment: Path, args: argparse.Namespace) -> dict:
    """The JSON spec of ``benchmarks/meridian_fit.py`` for an experiment's data block."""
    data = data_block(experiment)
    return {
        "data_path": str(dataset_file(data, experiment.parent).resolve()),
        "geo": bool(data.get("geo_column")),
        "channels": data["channels"],
        "organic": data.get("organic_columns") or [],
        "treatments": data.get("treatment_columns") or [],
        "controls": data.get("control_columns") or [],
        "time_column": data["date_column"],
        "kpi_column": data["target_column"],
        "revenue_per_kpi_column": data.get("revenue_per_kpi_column"),
        # a target without a revenue per unit is revenue itself (the simulator's sales): ROI = KPI per spend
        "kpi_type": "non_revenue" if data.get("revenue_per_kpi_column") else "revenue",
        "population_column": data.get("population_column"),
        "geo_column": data.get("geo_column"),
        "n_chains": args.n_chains,
        "n_adapt": args.n_adapt,
        "n_burnin": args.n_burnin,
        "n_keep": args.n_keep,
        "seed": args.seed,
        "hdi_prob": args.hdi_prob,
        # keyword arguments of Meridian's ModelSpec (default: none, its defaults)
        **({"model_spec": args.model_spec} if getattr(args, "model_spec", None) else {}),
    }


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (as the tables show it), else as given."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _header(name: str, library: str, command: str, args: argparse.Namespace) -> dict:
    """What every result records: when (the fit's start), the command, the machine and its load."""
    return {
        "dataset": name,
        "library": library,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores visible",
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "threads": args.threads,
        "n_chains": args.n_chains,
        "hdi_prob": args.hdi_prob,
        "seed": args.seed,
    }


def _timed(fn, *args):
    """``fn(*args)`` with the CPU seconds (user + system) its child processes used, and the load at the end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = fn(*args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, {"cpu_s": round(cpu, 1), "load_average_1min_at_end": round(os.getloadavg()[0], 2)}


def fit_meridian(name: str, experiment: Path, args: argparse.Namespace) -> dict:
    """Meridian's fit of ``experiment``'s data in a fresh process of Meridian's interpreter."""
    from bayesmmm.workflows.bench import run_child

    spec = meridian_spec(experiment, args)
    session = getattr(args, "nox_session", "bench_meridian")
    command = f"nox -s {session} -- " + " ".join(a for a in sys.argv[1:] if not a.startswith("--meridian-py"))
    header = _header(name, "meridian", command.replace(f" {args.meridian_python}", ""), args)
    result, usage = _timed(
        run_child, spec, thread_env(args.threads), args.timeout, args.meridian_python, MERIDIAN_FIT.read_text()
    )
    settings = {"n_adapt": args.n_adapt, "n_burnin": args.n_burnin, "n_keep": args.n_keep}
    out = {**header, **settings, "experiment": shown_path(experiment), **usage, **result}
    if "process_s" in out:
        out["wall_s"] = out["process_s"]
    return out


def fit_bayesmmm(name: str, experiment: Path, args: argparse.Namespace) -> dict:
    """``bayesmmm -q fit`` of ``experiment`` in a fresh process, timed from launch to exit."""
    from bayesmmm.workflows.bench import process_failure, run_process

    tune, draws = args.n_adapt + args.n_burnin, args.n_keep
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=args.work))
    run_dir = work / "run"
    command = [
        sys.executable, "-c", "from bayesmmm.cli import run; run()", "-q", "fit", str(experiment), "-o", str(run_dir),
        "--chains", str(args.n_chains), "--tune", str(tune), "--draws", str(draws), "--seed", str(args.seed),
    ]  # fmt: skip
    header = _header(name, "bayesmmm", "bayesmmm -q fit " + " ".join(command[6:]).replace(str(ROOT) + "/", ""), args)
    (proc, process_s), usage = _timed(run_process, command, thread_env(args.threads), args.timeout)
    out = {**header, "tune": tune, "draws": draws, "experiment": shown_path(experiment), **usage}
    if proc is None or proc.returncode != 0 or not (run_dir / "roas.csv").exists():
        return {**out, **process_failure(proc, process_s, args.timeout)}
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    meta = json.loads((run_dir / "metadata.json").read_text())
    roas = pd.read_csv(run_dir / "roas.csv")
    roi = [
        {
            "channel": str(r["channel"]),
            "spend": float(r["spend"]),
            "roi_mean": float(r["roas_mean"]),
            "roi_median": float(r["roas_median"]),
            "roi_hdi_low": float(r["roas_hdi_low"]),
            "roi_hdi_high": float(r["roas_hdi_high"]),
        }
        for _, r in roas.iterrows()
    ]
    return {
        **out,
        "status": "ok",
        "run_dir": str(run_dir),
        "bayesmmm_version": meta.get("versions", {}).get("bayesmmm"),
        "wall_s": process_s,
        "timings": meta.get("timings"),
        "max_rhat": round(float(diag["max_rhat"]), 4),
        "min_ess_bulk": round(float(diag["min_ess_bulk"]), 1),
        "divergences": int(diag["divergences"]),
        "diagnostics_passed": bool(diag.get("passed")),
        "roi": roi,
    }


def _interval(row: dict, lo: str = "roi_hdi_low", hi: str = "roi_hdi_high") -> str:
    return f"{row['roi_mean']:.2f} [{row[lo]:.2f}, {row[hi]:.2f}]"


def roi_markdown(result: dict) -> str:
    """One fit's per-channel ROI table (mean, median, HDI; Meridian's equal-tailed interval where present)."""
    if result.get("status") != "ok":
        return f"{result['library']} {result['dataset']}: {result.get('status')}: {result.get('error')}"
    pct = round(100 * result["hdi_prob"])
    lines = [
        f"| channel | ROI mean [{pct}% HDI] | median | {pct}% equal-tailed |",
        "|---|---|---|---|",
    ]
    for r in result["roi"]:
        tails = f"[{r['roi_ci_low']:.2f}, {r['roi_ci_high']:.2f}]" if "roi_ci_low" in r else ""
        lines.append(f"| {r['channel']} | {_interval(r)} | {r['roi_median']:.2f} | {tails} |")
    return "\n".join(lines)


def _fit_line(result: dict | None) -> str:
    if result is None:
        return "not run"
    if result.get("status") != "ok":
        return f"{result.get('status')}: {result.get('error', '')}"[:300]
    chains = result["n_chains"]
    draws = (
        f"{result['n_adapt']} adapt + {result['n_burnin']} burn-in + {result['n_keep']} kept"
        if result["library"] == "meridian"
        else f"{result['tune']} tune + {result['draws']} draws"
    )
    worst = f" ({result['max_rhat_variable']})" if result.get("max_rhat_variable") else ""
    roi_rhat = f", the ROI draws' own max R-hat {result['roi_max_rhat']}" if result.get("roi_max_rhat") else ""
    return (
        f"{result['wall_s']:.0f} s whole process, {result.get('cpu_s', float('nan')):.0f} CPU s "
        f"({chains} chains × {draws}, {result['threads']} thread(s); load average "
        f"{result.get('load_average_1min_at_start')} at start, {result.get('load_average_1min_at_end')} at the end); "
        f"max R-hat {result['max_rhat']}{worst}{roi_rhat}, min bulk ESS {result['min_ess_bulk']}, "
        f"{result['divergences']} divergences; measured {result['measured_at']}"
    )


def write_tables(out: Path) -> None:
    """``roi.csv`` (every stored fit's channels) and ``side_by_side.md`` from the JSON files in ``out``."""
    results = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*_*.json"))}
    rows = [
        {"dataset": r["dataset"], "library": r["library"], **roi}
        for r in results.values()
        if r.get("status") == "ok"
        for roi in r["roi"]
    ]
    if rows:
        pd.DataFrame(rows).to_csv(out / "roi.csv", index=False)
    lines = []
    for name in DATASETS:
        theirs, ours = results.get(f"meridian_{name}"), results.get(f"bayesmmm_{name}")
        if theirs is None and ours is None:
            continue
        pct = round(100 * (theirs or ours)["hdi_prob"])
        lines += [
            f"### {name} ({(theirs or ours)['experiment']})",
            "",
            f"- Meridian: {_fit_line(theirs)}",
            f"- bayesmmm: {_fit_line(ours)}",
            "",
            f"| channel | Meridian ROI mean [{pct}% HDI] | median | bayesmmm ROAS mean [{pct}% HDI] | median |",
            "|---|---|---|---|---|",
        ]
        by_channel: dict[str, dict] = {}
        for side, result in (("meridian", theirs), ("bayesmmm", ours)):
            if result is not None and result.get("status") == "ok":
                for r in result["roi"]:
                    by_channel.setdefault(r["channel"], {})[side] = r
        for channel, sides in by_channel.items():
            cells = []
            for side in ("meridian", "bayesmmm"):
                r = sides.get(side)
                cells += [_interval(r), f"{r['roi_median']:.2f}"] if r else ["", ""]
            lines.append(f"| {channel} | " + " | ".join(cells) + " |")
        lines.append("")
    (out / "side_by_side.md").write_text("\n".join(lines))
    print("\n".join(lines))


def write_json(path: Path, payload: dict) -> None:
    """``payload`` as indented JSON at ``path`` (the stored results the tables are made from)."""
    path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
