"""``bayesmmm validate`` on built-in scenarios: is the 90% posterior predictive interval calibrated?

For each scenario (``four_channel``: always-on spend, piecewise trend; ``intermittent``: flighted
spend, linear trend) and each data seed, simulates the data, writes the experiment (the
scenario's true functional forms, geometric adstock, hill saturation) and runs
``bayesmmm validate EXPERIMENT --folds K --horizon N`` as a whole CLI process. Reports per
scenario the pooled coverage of the held-out periods by the 90% predictive interval (goal: within
±10 points of 90%), the mean CRPS, MAPE, and the spread of the folds' ROAS.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/validate_study.py -o /tmp/validate_study --folds 3 --horizon 13 \\
        --chains 4 --draws 500 --tune 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation  # noqa: E402

SCENARIOS = {
    "four_channel": {
        "channels": ["search", "social", "ctv", "tv"],
        "controls": ["prime_day", "mothers_day"],
        "trend": "piecewise",
    },
    "intermittent": {"channels": ["tiktok", "facebook", "google_ads"], "controls": ["promo"], "trend": "linear"},
}
CLI = [sys.executable, "-c", "from bayesmmm.cli import run; run()"]


def one(name: str, seed: int, out: Path, args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    root = out / f"{name}-seed{seed}"
    scenario = load_scenario(builtin_scenario(name))
    scenario = scenario.model_copy(update={"seed": scenario.seed + seed})
    data_csv, _ = write_simulation(scenario, root / "data")
    spec = SCENARIOS[name]
    experiment = {
        "name": f"{name}-{seed}",
        "data": {"path": str(data_csv), "channel_columns": spec["channels"], "control_columns": spec["controls"]},
        "model": {
            "adstock": {"name": "geometric", "l_max": 8},
            "saturation": "hill",
            "trend": spec["trend"],
            "yearly_seasonality": 2,
        },
        "sampler": {"chains": args.chains, "draws": args.draws, "tune": args.tune, "seed": 1, "progressbar": False},
        "output": {"hdi_prob": 0.9, "figures": False},
    }
    exp = root / "experiment.yaml"
    exp.write_text(yaml.safe_dump(experiment, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [*CLI, "-q", "validate", str(exp), "--folds", str(args.folds), "--horizon", str(args.horizon)]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "-o", str(root / "cv")], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 4):  # 4: some folds failed (reported in folds.csv, kept in the table)
        raise RuntimeError(f"validate failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    folds = pd.read_csv(root / "cv" / "folds.csv").assign(scenario=name, seed=seed)
    stability = pd.read_csv(root / "cv" / "stability.csv").assign(scenario=name, seed=seed)
    return folds, stability, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--scenarios", default="four_channel,intermittent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=13)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    args = parser.parse_args()
    all_folds, all_stab, summary = [], [], []
    for name in args.scenarios.split(","):
        for seed in args.seeds:
            folds, stab, wall = one(name, seed, args.out, args)
            all_folds.append(folds)
            all_stab.append(stab)
            summary.append({"scenario": name, "seed": seed, "wall_s": wall})
            pd.concat(all_folds).to_csv(args.out / "folds.csv", index=False)
    folds = pd.concat(all_folds)
    stab = pd.concat(all_stab)
    stab.to_csv(args.out / "stability.csv", index=False)
    rows = []
    for name, f in folds.groupby("scenario", sort=False):
        failed = int((f["status"] != "ok").sum())
        f = f[f["status"] == "ok"]
        covered = (f["coverage"] * f["n_test"]).sum()
        s = stab[stab["scenario"] == name]
        spread = s.groupby(["seed", "channel"])["roas_mean"].agg(lambda x: x.std() / x.mean()).median()
        rows.append(
            {
                "scenario": name,
                "data sets": f["seed"].nunique(),
                "folds ok": len(f),
                "folds failed": failed,
                "held-out periods": int(f["n_test"].sum()),
                "90% coverage": f"{covered / f['n_test'].sum():.1%}",
                "fold coverage range": f"{f['coverage'].min():.0%}-{f['coverage'].max():.0%}",
                "mean CRPS": f"{f['crps'].mean():.4g}",
                "mean MAPE": f"{f['mape'].mean():.1%}",
                "ROAS cv across folds (median)": f"{spread:.1%}",
                "divergences": int(f["divergences"].sum()),
                "max R-hat": f"{f['max_rhat'].max():.3f}",
                "wall s": f"{sum(r['wall_s'] for r in summary if r['scenario'] == name):.0f}",
            }
        )
    table = pd.DataFrame(rows)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    print("\n".join(lines))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
