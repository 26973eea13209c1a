"""Coverage study: are the posterior intervals calibrated against known truth?

Simulates K data sets (half from the four-channel scenario, half from the intermittent
one, each with its own seed), fits every one as a run of a sweep on the Dask engine, and
reports the empirical coverage of the 50% and 90% HDIs of each channel's ROAS and total
contribution, and the contribution recovery error:

    python benchmarks/coverage_study.py -k 20 -o runs/coverage [--draws 500] [--workers N]

Writes ``OUT/coverage.csv`` (one row per run × channel) and ``OUT/coverage_summary.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bayesmmm.analysis import hdi
from bayesmmm.model import MMM
from bayesmmm.simulate import builtin_scenario, load_scenario, write_simulation
from bayesmmm.sweep import run_sweep

SCENARIOS = {
    "four_channel": {
        "channels": ["search", "social", "ctv", "tv"],
        "controls": ["prime_day", "mothers_day"],
        "trend": "piecewise",
    },
    "intermittent": {"channels": ["tiktok", "facebook", "google_ads"], "controls": ["promo"], "trend": "linear"},
}


def simulate_sets(k: int, out: Path) -> list[dict[str, Any]]:
    """K data sets alternating between the scenarios, seeds 1000 + i."""
    sets = []
    names = list(SCENARIOS)
    for i in range(k):
        name = names[i % len(names)]
        scenario = load_scenario(builtin_scenario(name)).model_copy(update={"seed": 1000 + i})
        data_path, truth_path = write_simulation(scenario, out / "data" / f"{name}-{i}")
        sets.append({"scenario": name, "index": i, "data": str(data_path), "truth": str(truth_path)})
    return sets


def write_sweep(sets: list[dict[str, Any]], out: Path, draws: int, chains: int) -> Path:
    base = {
        "name": "coverage",
        "data": {
            "path": sets[0]["data"],
            "channel_columns": SCENARIOS["four_channel"]["channels"],
            "control_columns": SCENARIOS["four_channel"]["controls"],
        },
        "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "hill", "yearly_seasonality": 2},
        "sampler": {"chains": chains, "draws": draws, "tune": draws, "seed": 1},
        "output": {"figures": False},
    }
    runs = []
    for s in sets:
        spec = SCENARIOS[s["scenario"]]
        runs.append(
            {
                "data.path": s["data"],
                "data.channel_columns": spec["channels"],
                "data.control_columns": spec["controls"],
                "model.trend": spec["trend"],
            }
        )
    (out / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    (out / "sweep.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "runs": runs}, sort_keys=False))
    return out / "sweep.yaml"


def coverage_rows(results: pd.DataFrame, sets: list[dict[str, Any]]) -> pd.DataFrame:
    """Per run and channel: the truth, posterior mean, and whether the 50% / 90% HDIs cover it."""
    by_data = {s["data"]: s for s in sets}
    rows = []
    for r in results[results["status"] == "ok"].itertuples():
        overrides = json.loads(r.overrides)
        s = by_data[overrides["data.path"]]
        truth = json.loads(Path(s["truth"]).read_text())["channels"]
        mmm = MMM.load(Path(r.run_dir) / "posterior.nc")
        contribution = mmm.posterior_components()["media"].sum("date")
        spend = mmm.data.media.sum(axis=0)
        for j, ch in enumerate(mmm.channels):
            c = contribution.sel(channel=ch)
            row = {
                "scenario": s["scenario"],
                "index": s["index"],
                "channel": ch,
                "true_contribution": truth[ch]["contribution"],
                "contribution_mean": float(c.mean()),
                "true_roas": truth[ch]["roas"],
                "roas_mean": float(c.mean()) / spend[j],
            }
            for prob in (0.5, 0.9):
                lo, hi = hdi(c, prob)
                covered = float(lo) <= truth[ch]["contribution"] <= float(hi)
                # ROAS = contribution / fixed spend: its HDI is the contribution's, scaled
                row[f"covered_{int(prob * 100)}"] = covered
            rows.append(row)
    table = pd.DataFrame(rows)
    table["rel_error"] = (table["contribution_mean"] - table["true_contribution"]) / table["true_contribution"]
    return table


def summarize(table: pd.DataFrame) -> str:
    lines = [
        "| scope | pairs | 50% HDI coverage | 90% HDI coverage | median abs. rel. error of contribution |",
        "|---|---|---|---|---|",
    ]
    for scope, part in [("all", table), *table.groupby("scenario")]:
        lines.append(
            f"| {scope} | {len(part)} | {part['covered_50'].mean():.0%} | {part['covered_90'].mean():.0%} | "
            f"{part['rel_error'].abs().median():.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/coverage"))
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--scheduler", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = simulate_sets(args.k, args.out)
    sweep = write_sweep(sets, args.out, args.draws, args.chains)
    results = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers, log=print)
    table = coverage_rows(results, sets)
    table.to_csv(args.out / "coverage.csv", index=False)
    summary = summarize(table)
    (args.out / "coverage_summary.md").write_text(summary + "\n")
    failed = int((results["status"] != "ok").sum())
    print(f"\n{len(results) - failed} fits ok, {failed} failed\n\n{summary}")
    print(f"\nmedian wall per fit {np.median(results['wall_s'].astype(float)):.0f} s")


if __name__ == "__main__":
    main()
