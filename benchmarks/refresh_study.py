"""Refresh vs fit from scratch: do the numbers move less, and is the refresh faster?

For each simulated data set (the built-in ``four_channel`` scenario, one seed per data set):

1. ``bayesmmm fit`` on the first 80% of the weeks (the first fit);
2. ``bayesmmm refresh FIRST --data FULL.csv`` (same experiment, the first fit's scales, warm start:
   the first posterior's draws as the chains' starts, its covariance as the mass matrix, its step
   size, the shorter warm-up ``sampler.warm_tune``);
3. ``bayesmmm refresh ... --prior-from-posterior --prior-from-posterior-kind marginal`` (the anchored
   refresh: moment-matched marginals, likelihood over every period; arm ``refresh_prior``);
4. ``bayesmmm fit`` on the full data from scratch;
5. (``--arms ... refresh_cold``) ``bayesmmm refresh ... --no-warm-metric``: the refresh as it was
   before the warm metric (posterior means as the initial point, the full warm-up);
6. (``--arms ... refresh_joint``) ``bayesmmm refresh ... --prior-from-posterior``: the joint sequential
   update (an MvNormal prior over the first posterior, likelihood of the new periods only).

The 90% HDI width of each arm's ROAS is also given relative to the exact refresh's (arm ``refresh``,
same data set and channel), ``hdi_vs_refresh``.

Every step is a whole CLI process, timed with ``time.perf_counter`` around ``subprocess.run``.
Each arm after the first fit starts from its own copy of the JAX cache as the first fit left it
(so no arm reuses code another arm compiled). Movement of a channel's ROAS from the first fit,
both evaluated over the first fit's weeks (``changes_table``: the refresh's own ``changes.csv``;
the scratch fit through the same function), as ``|new mean / first mean − 1|``; and the truth's
error of each. The load average (1 min) is recorded before each process. Prints a markdown table
(and the per-seed comparison of the refresh with the scratch fit) and writes ``OUT/results.csv``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/refresh_study.py -o /tmp/refresh_study --seeds 0 1 \\
        --chains 4 --draws 500 --tune 500 [--arms refresh refresh_prior scratch refresh_cold refresh_joint]
    python benchmarks/refresh_study.py -o OUT --merge A/results.csv B/results.csv   # runs split over processes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bayesmmm.model.mmm import MMM  # noqa: E402
from bayesmmm.workflows.refresh import changes_table  # noqa: E402
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation  # noqa: E402

CLI = [sys.executable, "-c", "from bayesmmm.cli import run; run()"]


def markdown(frame: pd.DataFrame) -> str:
    """A markdown table (no tabulate needed); floats to 3 significant digits."""

    def cell(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def cli(args: list[str], cache: Path) -> float:
    """Run one CLI process with ``cache`` as its JAX cache; its wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BAYESMMM_JAX_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run([*CLI, "-q", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


ARMS = ("refresh", "refresh_prior", "scratch", "refresh_cold", "refresh_joint")


def one(seed: int, out: Path, sampler: dict[str, int], arm_names: list[str]) -> list[dict]:
    root = out / f"seed{seed}"
    scenario = load_scenario(builtin_scenario("four_channel"))
    scenario = scenario.model_copy(update={"seed": scenario.seed + seed})
    data_csv, truth_path = write_simulation(scenario, root / "data")
    truth = json.loads(truth_path.read_text())
    frame = pd.read_csv(data_csv)
    n_first = round(0.8 * len(frame))
    first_csv = root / "data" / "first.csv"
    frame.iloc[:n_first].to_csv(first_csv, index=False)
    experiment = yaml.safe_load(builtin_scenario("four_channel_experiment").read_text())
    experiment["data"]["path"] = str(first_csv)
    experiment["sampler"].update(sampler)
    experiment["output"] = {"hdi_prob": 0.9, "figures": False}
    exp = root / "experiment.yaml"
    exp.write_text(yaml.safe_dump(experiment, sort_keys=False))
    caches = root / "caches"
    first_cache = caches / "first"
    loads = {"first": os.getloadavg()[0]}
    walls = {"first": cli(["fit", str(exp), "-o", str(root / "first")], first_cache)}
    refresh = ["refresh", str(root / "first"), "--data", str(data_csv)]
    arms = {
        "refresh": ["refresh", str(root / "first"), "--data", str(data_csv), "-o", str(root / "refresh")],
        "refresh_prior": [
            "refresh",
            str(root / "first"),
            "--data",
            str(data_csv),
            "--prior-from-posterior",
            "--prior-from-posterior-kind",
            "marginal",
            "-o",
            str(root / "refresh_prior"),
        ],
        "refresh_joint": [*refresh, "--prior-from-posterior", "-o", str(root / "refresh_joint")],
        "scratch": ["fit", str(exp), "--data", str(data_csv), "-o", str(root / "scratch")],
        "refresh_cold": [*refresh, "--no-warm-metric", "-o", str(root / "refresh_cold")],
    }
    arms = {k: v for k, v in arms.items() if k in arm_names}
    order = list(arms) if seed % 2 == 0 else list(reversed(arms))  # alternate: any shared cache favours neither
    for arm in order:
        cache = caches / arm
        shutil.copytree(first_cache, cache, dirs_exist_ok=True)
        loads[arm] = os.getloadavg()[0]
        walls[arm] = cli(arms[arm], cache)
    first = MMM.load(root / "first")
    rows = []
    for arm in arms:
        run = root / arm
        model = MMM.load(run)
        table = changes_table(first, model, 0.9, seed=0)
        diag = json.loads((run / "diagnostics.json").read_text())
        timings = json.loads((run / "metadata.json").read_text())["timings"]
        own = pd.read_csv(run / "roas.csv").set_index("channel")
        first_own = pd.read_csv(root / "first" / "roas.csv").set_index("channel")
        for _, r in table.iterrows():
            ch = r["channel"]
            rows.append(
                {
                    "seed": seed,
                    "arm": arm,
                    "channel": ch,
                    "true_roas": truth["channels"][ch]["roas"],
                    "first_roas": r["roas_old_mean"],
                    "new_roas": r["roas_new_mean"],
                    "move": abs(r["roas_new_mean"] / r["roas_old_mean"] - 1),
                    "move_own_window": abs(own.loc[ch, "roas_mean"] / first_own.loc[ch, "roas_mean"] - 1),
                    "prob_moved": r["roas_prob_moved"],
                    "new_hdi_width": r["roas_new_hdi_high"] - r["roas_new_hdi_low"],
                    "wall_s": walls[arm],
                    "first_wall_s": walls["first"],
                    "load_before": loads[arm],
                    "compile_s": timings.get("compile_s"),
                    "sample_s": timings.get("sample_s"),
                    "postprocess_s": timings.get("postprocess_s"),
                    "tune": timings.get("tune"),
                    "warm_metric": timings.get("warm_metric", 0),
                    "divergences": diag["divergences"],
                    "max_rhat": diag["max_rhat"],
                    "min_ess_bulk": diag["min_ess_bulk"],
                    "scales_equal": model.scales == first.scales,
                }
            )
    return rows


def report(table: pd.DataFrame, arms: list[str]) -> None:
    """Print the summary per arm, the per-seed comparison with the scratch fit and every row."""
    table = table.copy()
    summary = table.groupby("arm").agg(
        median_move=("move", "median"),
        max_move=("move", "max"),
        median_move_own_window=("move_own_window", "median"),
        median_prob_moved=("prob_moved", "median"),
        median_hdi_width=("new_hdi_width", "median"),
        wall_s=("wall_s", "mean"),
        median_wall_s=("wall_s", "median"),
        sample_s=("sample_s", "mean"),
        compile_s=("compile_s", "mean"),
        load=("load_before", "mean"),
        max_rhat=("max_rhat", "max"),
        min_ess_bulk=("min_ess_bulk", "min"),
        divergences=("divergences", "sum"),
        scales_equal=("scales_equal", "all"),
    )
    if "refresh" in set(table["arm"]):  # interval widths relative to the exact refresh's
        exact = table[table["arm"] == "refresh"].set_index(["seed", "channel"])["new_hdi_width"]
        ref = exact.reindex(pd.MultiIndex.from_frame(table[["seed", "channel"]])).to_numpy()
        table["hdi_vs_refresh"] = table["new_hdi_width"].to_numpy() / ref
        summary["median_hdi_vs_refresh"] = table.groupby("arm")["hdi_vs_refresh"].median()
    table["abs_err"] = np.abs(table["new_roas"] / table["true_roas"] - 1)
    summary["median_abs_err_vs_truth"] = table.groupby("arm")["abs_err"].median()
    first_err = np.abs(table["first_roas"] / table["true_roas"] - 1)
    print(f"first fit: wall {table['first_wall_s'].mean():.1f} s, median abs ROAS error {first_err.median():.1%}")
    print(markdown(summary.reset_index()))
    print()
    per_seed = table.groupby(["seed", "arm"]).agg(move=("move", "median"), wall_s=("wall_s", "first")).unstack("arm")
    if "scratch" in arms:
        for arm in [a for a in arms if a != "scratch"]:
            less = int((per_seed["move"][arm] < per_seed["move"]["scratch"]).sum())
            faster = int((per_seed["wall_s"][arm] < per_seed["wall_s"]["scratch"]).sum())
            n = len(per_seed)
            print(f"{arm} vs scratch: median move lower in {less} of {n} data sets, faster in {faster} of {n}")
    per_seed.columns = [f"{q}_{arm}" for q, arm in per_seed.columns]
    print(markdown(per_seed.reset_index()))
    print()
    print(markdown(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS[:3]))
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="only merge these results.csv files into OUT/results.csv and report"
    )
    args = parser.parse_args()
    if args.merge:
        table = pd.concat([pd.read_csv(f) for f in args.merge], ignore_index=True).sort_values(["seed", "arm"])
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "results.csv", index=False)
        report(table, [a for a in ARMS if a in set(table["arm"])])
        return
    sampler = {"chains": args.chains, "draws": args.draws, "tune": args.tune, "progressbar": False}
    rows = []
    for seed in args.seeds:
        rows += one(seed, args.out, sampler, args.arms)
        pd.DataFrame(rows).to_csv(args.out / "results.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "results.csv", index=False)
    report(table, args.arms)


if __name__ == "__main__":
    main()
