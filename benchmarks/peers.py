"""bayesmmm vs PyMC-Marketing's MMM on the same data, interleaved, as ratios.

Run through nox (``nox -s bench_peers``), which builds PyMC-Marketing's own virtualenv
and passes its interpreter as ``--peer-python``; our fits run in this interpreter.
Every fit is a fresh process; ``cold`` fits start with empty compilation caches (what a
user waits for on a first fit), ``warm`` ones reuse the cold fit's (a refit).

``--mode process`` (default) times what a user waits for: ours is the whole ``bayesmmm fit``
command (interpreter start, imports, model build, compile, sampling, diagnostics, PSIS-LOO,
the run folder and its figure); theirs is the whole script process (imports, data, model,
``fit``) less the benchmark's own ESS computation after the fit. ``--mode library`` times the
libraries' ``fit`` calls only. Fits
alternate — ours, theirs, ours, theirs — so machine load hits both alike. Model on
both sides: geometric adstock (l_max 8), logistic saturation, yearly seasonality 2,
linear trend, the data set's controls; same chains, draws, tune and target_accept. Prints a markdown table and writes
``OUT/peers.csv`` and ``OUT/peers.md``: every run, then per data set and cache state each
backend's diagnostics gate (R-hat, ESS, divergences) and ESS/s, and the ratios our nutpie /
their nutpie and our best / their best. Our fits run the ``bayesmmm`` this interpreter imports
(set ``PYTHONPATH`` to a checkout to measure it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bayesmmm.config.experiment import DiagnosticsConfig, load_experiment
from bayesmmm.inference.base import backend_names
from bayesmmm.workflows.bench import (
    cache_env,
    peer_spec,
    process_failure,
    run_child,
    run_process,
    sampler_overrides,
)
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    # name: (scenario, experiment, overrides giving the common model)
    "four_channel": (
        "four_channel",
        ROOT / "configs" / "four_channel.yaml",
        {"model.saturation": "logistic", "model.trend": "linear"},
    ),
    "ten_channel": ("ten_channel", ROOT / "configs" / "ten_channel.yaml", {}),
}
PEER_FIT = ROOT / "benchmarks" / "peer_fit.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer-python", required=True, help="interpreter of PyMC-Marketing's environment")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument(
        "--ours", nargs="+", default=backend_names(), help="our backends (default: every registered one)"
    )
    parser.add_argument("--theirs", nargs="+", default=["numpyro", "nutpie"], help="PyMC-Marketing's backends")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument(
        "--caches",
        nargs="+",
        default=["cold", "warm"],
        choices=["cold", "warm"],
        help="cold: empty compilation caches; warm: a second fit reusing the cold fit's caches (a refit)",
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--mode",
        choices=["process", "library"],
        default="process",
        help="process: the whole process a user runs (our `bayesmmm fit` CLI); library: the fit calls only",
    )
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/bench-peers"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        scenario, experiment, overrides = DATASETS[name]
        data_path, _ = write_simulation(load_scenario(builtin_scenario(scenario)), args.out / "data" / name)
        data_cfg = load_experiment(experiment, {"data.path": str(data_path)}).data
        jobs = []
        for i in range(max(len(args.ours), len(args.theirs))):  # interleave: ours, theirs, ours, ...
            if i < len(args.ours):
                jobs.append(("bayesmmm", args.ours[i]))
            if i < len(args.theirs):
                jobs.append(("pymc-marketing", args.theirs[i]))
        for rep in range(args.reps):
            for who, backend in jobs:
                seed = args.seed + rep
                with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache_root:
                    for cache in args.caches:
                        result = _fit(
                            who, backend, seed, name, experiment, overrides, data_path, data_cfg, cache_root, args
                        )
                        row = {
                            "dataset": name,
                            "library": who,
                            "backend": backend,
                            "cache": cache,
                            "rep": rep,
                            **result,
                        }
                        row["gate"] = gate(row)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        pd.DataFrame(rows).to_csv(args.out / "peers.csv", index=False)
    table = pd.DataFrame(rows)
    md = summary_markdown(table, args)
    (args.out / "peers.md").write_text(md)
    print("\n" + md)


def _fit(who, backend, seed, name, experiment, overrides, data_path, data_cfg, cache_root, args) -> dict:
    """One fit in a fresh process whose compilation caches live in ``cache_root``."""
    env = cache_env(Path(cache_root))
    settings = {"chains": args.chains, "draws": args.draws, "tune": args.tune, "target_accept": args.target_accept}
    if who == "bayesmmm":
        ours = {**overrides, **sampler_overrides(backend, seed, **settings)}
        if args.mode == "process":
            return _fit_cli(name, backend, experiment, ours, data_path, env, args)
        spec = {"experiment": str(experiment), "data_path": str(data_path.resolve()), "overrides": ours}
        return run_child(spec, env, 3600)
    spec = peer_spec(data_path.resolve(), data_cfg, backend, seed, **settings)
    result = run_child(spec, env, 3600, python=args.peer_python, module=PEER_FIT.read_text())
    if args.mode == "process" and result.get("status") == "ok":  # the whole process, less our measuring
        result["library_wall_s"] = result["wall_s"]
        result["wall_s"] = round(result["process_s"] - result.get("measure_s", 0.0), 3)
        result["ess_per_s"] = round(result["min_ess_bulk"] / result["wall_s"], 3)
    return result


def _fit_cli(name, backend, experiment, overrides, data_path, env, args) -> dict:
    """``bayesmmm -q fit`` in a fresh process, timed from launch to exit; figures read from the run folder."""
    import numpy as np
    import xarray as xr

    config = load_experiment(experiment, {**overrides, "data.path": str(data_path.resolve())})
    work = Path(tempfile.mkdtemp(prefix=f"fit-{name}-{backend}-", dir=args.out))
    config_path = work / "experiment.yaml"
    config_path.write_text(config.to_yaml())
    run_dir = work / "run"
    command = [sys.executable, "-m", "bayesmmm.cli.main", "-q", "fit", str(config_path), "-o", str(run_dir)]
    proc, process_s = run_process(command, env, 3600)
    if proc is None or proc.returncode != 0 or not (run_dir / "diagnostics.json").exists():
        return process_failure(proc, process_s, 3600)
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    timings = json.loads((run_dir / "metadata.json").read_text())["timings"]
    stats = xr.open_datatree(run_dir / "posterior.nc")["sample_stats"]
    grads = int(np.asarray(stats["n_steps"]).sum())
    min_ess = float(diag["min_ess_bulk"])
    return {
        "status": "ok",
        "process_s": process_s,
        "wall_s": process_s,
        "library_wall_s": timings.get("total_s"),
        "compile_s": timings.get("compile_s"),
        "sample_s": timings.get("sample_s"),
        "min_ess_bulk": round(min_ess, 1),
        "min_ess_tail": round(float(diag["min_ess_tail"]), 1),
        "ess_per_s": round(min_ess / process_s, 3),
        "ess_per_1k_grad": round(1000 * min_ess / grads, 3) if grads else None,
        "grad_evals": grads,
        "divergences": int(diag["divergences"]),
        "max_rhat": round(float(diag["max_rhat"]), 4),
    }


def gate(row: dict) -> str:
    """``pass`` / ``FAIL`` by the diagnostics gate's default thresholds (``DiagnosticsConfig``: R-hat,
    bulk ESS, tail ESS where the fit reports it, divergences), the same for both libraries."""
    if row.get("status") != "ok":
        return ""
    limits = DiagnosticsConfig()
    tail = row.get("min_ess_tail")
    ok = (
        row["max_rhat"] <= limits.max_rhat
        and row["min_ess_bulk"] >= limits.min_ess_bulk
        and (tail is None or tail != tail or tail >= limits.min_ess_tail)
        and row["divergences"] <= limits.max_divergences
    )
    return "pass" if ok else "FAIL"


def summary_markdown(table: pd.DataFrame, args: argparse.Namespace) -> str:
    """All runs; then per data set and cache state every backend's gate and ESS/s (medians over
    reps; R-hat, divergences: the worst rep; gate: every rep), and the two ratios: our nutpie vs
    theirs, our best backend vs their best (best = highest median min bulk ESS per wall second)."""
    cols = [
        "dataset",
        "library",
        "backend",
        "cache",
        "rep",
        "wall_s",
        "library_wall_s",
        "compile_s",
        "min_ess_bulk",
        "ess_per_s",
        "ess_per_1k_grad",
        "divergences",
        "max_rhat",
        "gate",
        "peak_mem_mb",
        "status",
    ]
    ok = table[table["status"] == "ok"]
    lines = [
        f"{args.chains} chains × {args.tune} tune × {args.draws} draws, target_accept {args.target_accept}, "
        f"{args.reps} rep(s), every fit in a fresh process, ours and theirs interleaved; cold = empty "
        "compilation caches, warm = a second fit reusing them. Wall: "
        + (
            "the whole process (ours: `bayesmmm fit`, run folder included; theirs: the script less the ESS "
            "computation)."
            if args.mode == "process"
            else "the libraries' fit calls."
        ),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for _, r in table.reindex(columns=cols).iterrows():
        lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
    lines += [
        "",
        "| data | caches | library | backend | wall s | compile s | max R-hat | min bulk ESS | div. | gate | ESS/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = [
        "",
        "| data | caches | every backend of ours passes | our nutpie / their nutpie (goal ≥ 1) "
        "| our best / their best (goal ≥ 5) |",
        "|---|---|---|---|---|",
    ]
    for (name, cache), part in ok.groupby(["dataset", "cache"], sort=False):
        agg = part.groupby(["library", "backend"], sort=False).agg(
            wall_s=("wall_s", "median"),
            compile_s=("compile_s", "median"),
            max_rhat=("max_rhat", "max"),
            min_ess_bulk=("min_ess_bulk", "median"),
            divergences=("divergences", "max"),
            gate=("gate", lambda g: "pass" if (g == "pass").all() else "FAIL"),
            ess_per_s=("ess_per_s", "median"),
        )
        for (who, backend), r in agg.iterrows():
            lines.append(
                f"| {name} | {cache} | {who} | {backend} | {r.wall_s:.1f} | {_cell(r.compile_s)} | {r.max_rhat:.3f} "
                f"| {r.min_ess_bulk:.0f} | {r.divergences:.0f} | {r.gate} | {r.ess_per_s:.1f} |"
            )
        libraries = agg.index.get_level_values(0)
        if "bayesmmm" not in libraries or "pymc-marketing" not in libraries:
            continue
        ours, theirs = agg.loc["bayesmmm"], agg.loc["pymc-marketing"]
        nutpie = (
            f"{ours.ess_per_s['nutpie'] / theirs.ess_per_s['nutpie']:.2f}×"
            if "nutpie" in ours.index and "nutpie" in theirs.index
            else "n/a"
        )
        best, their_best = ours.ess_per_s.idxmax(), theirs.ess_per_s.idxmax()
        passes = "yes" if (ours.gate == "pass").all() else "no: " + ", ".join(ours.index[ours.gate != "pass"])
        ratios.append(
            f"| {name} | {cache} | {passes} | {nutpie} | {ours.ess_per_s[best] / theirs.ess_per_s[their_best]:.2f}× "
            f"({best} / {their_best}) |"
        )
    return "\n".join(lines + ratios) + "\n"


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    return "" if v is None else str(v)


if __name__ == "__main__":
    sys.exit(main())
