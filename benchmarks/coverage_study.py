"""Coverage study: are the posterior intervals calibrated against known truth?

Simulates K data sets (half from the four-channel scenario, half from the intermittent
one, each with its own seed: its own spend, controls and noise), fits every one as a run
of a sweep on the Dask engine (``--scheduler tcp://...`` sends it to a cluster), and
reports the empirical coverage of the 50% and 90% HDIs of each channel's ROAS, total
contribution and weekly contributions, and the contribution recovery error:

    python benchmarks/coverage_study.py -k 20 -o runs/coverage [--draws 500] [--workers N]

Writes ``OUT/coverage.csv`` (one row per run × channel) and ``OUT/coverage_summary.md``.
Finished runs are kept: running it again with a larger K only fits the new data sets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bayesmmm.evaluation.summaries import hdi
from bayesmmm.io import write_text
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation
from bayesmmm.workflows.sweep import run_sweep

SCENARIOS = {
    "four_channel": {
        "channels": ["search", "social", "ctv", "tv"],
        "controls": ["prime_day", "mothers_day"],
        "trend": "piecewise",
    },
    "intermittent": {"channels": ["tiktok", "facebook", "google_ads"], "controls": ["promo"], "trend": "linear"},
}


MAX_RHAT = 1.05  # fits above it are reported apart: a stuck chain says nothing about calibration


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
    write_text(out / "base.yaml", yaml.safe_dump(base, sort_keys=False))
    return write_text(out / "sweep.yaml", yaml.safe_dump({"base": "base.yaml", "runs": runs}, sort_keys=False))


def coverage_rows(results: pd.DataFrame, sets: list[dict[str, Any]]) -> pd.DataFrame:
    """Per run and channel: truth, posterior mean, and whether the 50% / 90% HDIs cover the truth.

    ``covered_roas_*`` and ``covered_contribution_*``: the HDI of total ROAS / total
    contribution; ``weekly_covered_*``: the fraction of weeks whose weekly-contribution HDI
    covers the true weekly contribution.
    """
    by_data = {s["data"]: s for s in sets}
    rows = []
    for r in results[results["status"] == "ok"].itertuples():
        overrides = json.loads(r.overrides)
        s = by_data[overrides["data.path"]]
        truth = json.loads(Path(s["truth"]).read_text())["channels"]
        mmm = MMM.load(r.run_dir)
        weekly = mmm.posterior_components()["media"]
        contribution = weekly.sum("date")
        spend = mmm.data.media.sum(axis=0)
        for j, ch in enumerate(mmm.channels):
            c = contribution.sel(channel=ch)
            roas = c / spend[j]
            true_weekly = np.asarray(truth[ch]["weekly_contribution"])
            row = {
                "scenario": s["scenario"],
                "index": s["index"],
                "run_id": r.run_id,
                "max_rhat": float(r.max_rhat),
                "converged": float(r.max_rhat) < MAX_RHAT,
                "channel": ch,
                "true_contribution": truth[ch]["contribution"],
                "contribution_mean": float(c.mean()),
                "true_roas": truth[ch]["roas"],
                "roas_mean": float(roas.mean()),
            }
            for prob in (0.5, 0.9):
                p = int(prob * 100)
                lo, hi = hdi(c, prob)
                row[f"covered_contribution_{p}"] = float(lo) <= truth[ch]["contribution"] <= float(hi)
                lo, hi = hdi(roas, prob)
                row[f"covered_roas_{p}"] = float(lo) <= truth[ch]["roas"] <= float(hi)
                lo, hi = hdi(weekly.sel(channel=ch), prob)
                row[f"weekly_covered_{p}"] = float(((lo <= true_weekly) & (true_weekly <= hi)).mean())
            rows.append(row)
    table = pd.DataFrame(rows)
    table["rel_error"] = (table["contribution_mean"] - table["true_contribution"]) / table["true_contribution"]
    table["roas_rel_error"] = (table["roas_mean"] - table["true_roas"]) / table["true_roas"]
    return table


def summarize(table: pd.DataFrame) -> str:
    """Markdown table: coverage of the 50% / 90% HDIs and recovery error, over the converged fits
    (max R-hat < ``MAX_RHAT``) per scenario, plus a row over every fit."""
    lines = [
        "| scope | channel × data set pairs | ROAS 50% | ROAS 90% | total contribution 50% | total contribution 90% "
        "| weekly contribution 50% | weekly contribution 90% | contribution error: median abs. rel. "
        "| mean rel. (bias) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ok = table[table["converged"]]
    scopes = [("all converged", ok), *ok.groupby("scenario"), ("every fit, non-converged included", table)]
    for scope, part in scopes:
        lines.append(
            f"| {scope} | {len(part)} | {part['covered_roas_50'].mean():.0%} | {part['covered_roas_90'].mean():.0%} | "
            f"{part['covered_contribution_50'].mean():.0%} | {part['covered_contribution_90'].mean():.0%} | "
            f"{part['weekly_covered_50'].mean():.0%} | {part['weekly_covered_90'].mean():.0%} | "
            f"{part['rel_error'].abs().median():.0%} | {part['rel_error'].mean():+.0%} |"
        )
    return "\n".join(lines)


def per_channel(table: pd.DataFrame) -> str:
    """Markdown table per scenario and channel: coverage and recovery error."""
    lines = [
        "| scenario | channel | data sets | ROAS 50% | ROAS 90% | weekly 50% | weekly 90% | median abs. rel. error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, channel), part in table[table["converged"]].groupby(["scenario", "channel"], sort=False):
        lines.append(
            f"| {scenario} | {channel} | {len(part)} | {part['covered_roas_50'].mean():.0%} | "
            f"{part['covered_roas_90'].mean():.0%} | {part['weekly_covered_50'].mean():.0%} | "
            f"{part['weekly_covered_90'].mean():.0%} | {part['rel_error'].abs().median():.0%} |"
        )
    return "\n".join(lines)


def run_study(
    k: int,
    out: Path,
    draws: int = 500,
    chains: int = 2,
    workers: int | None = None,
    scheduler: str | None = None,
    log=print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate, fit (a sweep on Dask), and score: returns (sweep results, coverage table)."""
    out.mkdir(parents=True, exist_ok=True)
    sets = simulate_sets(k, out)
    sweep = write_sweep(sets, out, draws, chains)
    results = run_sweep(sweep, out, scheduler=scheduler, workers=workers, log=log)
    table = coverage_rows(results, sets)
    write_text(out / "coverage.csv", table.to_csv(index=False))
    return results, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=20, help="data sets (>= 20 for the study's figures)")
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/coverage"))
    parser.add_argument("--draws", type=int, default=500, help="draws (and tuning steps) per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address: fit on a cluster")
    args = parser.parse_args()
    t0 = time.perf_counter()
    results, table = run_study(args.k, args.out, args.draws, args.chains, args.workers, args.scheduler)
    wall = time.perf_counter() - t0
    failed = int((results["status"] != "ok").sum())
    summary = summarize(table) + "\n\n" + per_channel(table)
    fits = results["wall_s"].astype(float)
    stuck = table[~table["converged"]].drop_duplicates("run_id")
    stuck_text = ", ".join(f"{r.scenario}-{r.index} (R-hat {r.max_rhat:.2f})" for r in stuck.itertuples())
    footer = (
        f"{len(results) - failed} fits ok, {failed} failed, {len(stuck)} not converged"
        + (f" [{stuck_text}]" if len(stuck) else "")
        + f"; {wall / 60:.1f} min in all "
        f"(median {np.median(fits):.0f} s per fit, max R-hat {results['max_rhat'].astype(float).max():.3f}, "
        f"divergences in {int((results['divergences'].astype(float) > 0).sum())} fits)"
    )
    write_text(args.out / "coverage_summary.md", summary + "\n\n" + footer + "\n")
    print(f"\n{summary}\n\n{footer}")


if __name__ == "__main__":
    main()
