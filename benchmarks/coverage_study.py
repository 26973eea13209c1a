"""Coverage study: are the posterior intervals calibrated against known truth?

Simulates K data sets (alternating between the scenarios, by default the four-channel and
the intermittent one, each with its own seed: its own spend, controls and noise), fits
every one as a run of a sweep on the Dask engine (``--scheduler tcp://...`` sends it to a
cluster), and reports the empirical coverage of the 50% and 90% HDIs of each channel's
ROAS, total contribution and weekly contributions, and the recovery error:

    python benchmarks/coverage_study.py -k 40 -o runs/coverage [--arms uncalibrated,calibrated]
        [--scenarios four_channel,intermittent,ten_channel] [--media-prior '{"type": "coefficient"}']
        [--draws 500] [--workers N] [--seed-base 1000] [--lift-weeks N]

Two arms fit the same data sets: ``uncalibrated`` (the data alone) and ``calibrated``
(plus lift tests on every channel but the scenario's last one, simulated from the TRUE
curves, :data:`LIFT_DESIGN`). Each row also says whether the channel was lift-tested and
whether the fit's identifiability check flagged it prior-driven. ``--media-prior`` sets
``model.media_prior`` of every fit (default: the model's default) to compare priors.

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
        "saturation": "hill",
    },
    "intermittent": {
        "channels": ["tiktok", "facebook", "google_ads"],
        "controls": ["promo"],
        "trend": "linear",
        "saturation": "hill",
    },
    "ten_channel": {
        "channels": ["search", "social", "display", "video", "ctv", "tv", "radio", "ooh", "affiliate", "email"],
        "controls": ["black_friday"],
        "trend": "linear",
        "saturation": "logistic",
    },
}

#: The calibrated arm's lift tests (every channel but the last one): go-dark tests with a 15%
#: standard error, measured by the simulator from the TRUE curves. Always-on channels: dated,
#: 4 weeks each, staggered at the end of the data (carry-over included); flighted channels
#: (intermittent, ten_channel) steady state at the channel's mean spend, since a fixed window
#: would often fall in weeks the channel is dark.
LIFT_DESIGN = {
    "four_channel": {"change": -1.0, "noise": 0.15, "weeks": 4},
    "intermittent": {"change": -1.0, "noise": 0.15},
    "ten_channel": {"change": -1.0, "noise": 0.15},
}
#: ``calibrated_all`` tests every channel (the untested one too, same design): what the
#: calibrated arm could reach if the untested channel had been tested
ARMS = ("uncalibrated", "calibrated", "calibrated_all")
DEFAULT_ARMS = ("uncalibrated", "calibrated")


#: seed of the first data set (data set i: ``SEED_BASE + i``); the default prior was chosen on 1000-1007
SEED_BASE = 1000
MAX_RHAT = 1.05  # fits above it are reported apart: a stuck chain says nothing about calibration


def simulate_sets(
    k: int, out: Path, scenarios: list[str] | None = None, seed_base: int = SEED_BASE, lift_weeks: int | None = None
) -> list[dict[str, Any]]:
    """K data sets alternating between the scenarios, seeds ``seed_base + i``, each with the lift
    tests of :data:`LIFT_DESIGN` (their own random stream: the data do not depend on them);
    ``lift_weeks`` replaces the dated designs' test length."""
    from bayesmmm.workflows.simulate import LiftTestSpec, simulate_lift_tests

    sets = []
    names = scenarios or ["four_channel", "intermittent"]
    for i in range(k):
        name = names[i % len(names)]
        design = dict(LIFT_DESIGN[name])
        if lift_weeks is not None and "weeks" in design:
            design["weeks"] = lift_weeks
        tests = LiftTestSpec(channels=SCENARIOS[name]["channels"][:-1], **design)
        scenario = load_scenario(builtin_scenario(name)).model_copy(update={"seed": seed_base + i, "lift_tests": tests})
        data_path, truth_path = write_simulation(scenario, out / "data" / f"{name}-{i}")
        # the same design on every channel, from the data and truth just written (not simulated again)
        every = scenario.model_copy(update={"lift_tests": tests.model_copy(update={"channels": None})})
        frame, truth = pd.read_csv(data_path), json.loads(truth_path.read_text())
        all_tests = simulate_lift_tests(every, frame, truth).drop(columns="true_lift")
        write_text(data_path.parent / "lift_tests_all.csv", all_tests.to_csv(index=False))
        sets.append(
            {
                "scenario": name,
                "index": i,
                "data": str(data_path),
                "truth": str(truth_path),
                "lift_tests": str(data_path.parent / "lift_tests.csv"),
                "lift_tests_all": str(data_path.parent / "lift_tests_all.csv"),
            }
        )
    return sets


def write_sweep(
    sets: list[dict[str, Any]],
    out: Path,
    draws: int,
    chains: int,
    arms: tuple[str, ...] = ("uncalibrated",),
    media_prior: dict[str, Any] | None = None,
) -> Path:
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
    if media_prior is not None:
        base["model"]["media_prior"] = media_prior
    runs = []
    for arm in arms:
        for s in sets:
            spec = SCENARIOS[s["scenario"]]
            run = {
                "data.path": s["data"],
                "data.channel_columns": spec["channels"],
                "data.control_columns": spec["controls"],
                "model.trend": spec["trend"],
                "model.saturation": spec["saturation"],
            }
            if arm != "uncalibrated":
                tests = s["lift_tests_all"] if arm == "calibrated_all" else s["lift_tests"]
                run["calibration"] = {"lift_tests": {"path": tests}}
            runs.append(run)
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
        channels = SCENARIOS[s["scenario"]]["channels"]
        tests = overrides.get("calibration", {}).get("lift_tests", {}).get("path", "")
        arm = "uncalibrated" if not tests else "calibrated_all" if tests.endswith("_all.csv") else "calibrated"
        tested = {"uncalibrated": set(), "calibrated": set(channels[:-1]), "calibrated_all": set(channels)}[arm]
        truth = json.loads(Path(s["truth"]).read_text())["channels"]
        diag = json.loads((Path(r.run_dir) / "diagnostics.json").read_text())
        flagged = set(diag.get("identifiability", {}).get("prior_driven", []))
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
                "arm": arm,
                "index": s["index"],
                "run_id": r.run_id,
                "media_prior": mmm.model_config.media_prior.type,
                "tested": ch in tested,
                "prior_driven": ch in flagged,
                "divergences": int(float(r.divergences)),
                "max_rhat": float(r.max_rhat),
                "converged": float(r.max_rhat) < MAX_RHAT,
                "channel": ch,
                "true_contribution": truth[ch]["contribution"],
                "contribution_mean": float(c.mean()),
                "contribution_median": float(c.median()),
                "true_roas": truth[ch]["roas"],
                "roas_mean": float(roas.mean()),
                "roas_median": float(roas.median()),
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
    table["roas_rel_error_median"] = (table["roas_median"] - table["true_roas"]) / table["true_roas"]
    return table


def _untested(table: pd.DataFrame) -> pd.Series:
    """Rows of the channel the calibrated arm leaves untested (the scenario's last channel), in the
    arms that leave it untested (not ``calibrated_all``)."""
    last = {name: spec["channels"][-1] for name, spec in SCENARIOS.items()}
    return (table["channel"] == table["scenario"].map(last)) & ~table["tested"]


def summarize(table: pd.DataFrame) -> str:
    """Markdown table per scenario × arm over the converged fits (max R-hat < ``MAX_RHAT``):
    coverage of the ROAS and weekly-contribution HDIs, ROAS recovery error (all channels, the
    untested one, the tested ones), divergences, and how often the identifiability check
    flagged the untested / the tested channels prior-driven."""
    lines = [
        "| scenario | arm | fits (converged) | channel pairs | ROAS 50% | ROAS 90% | weekly 50% | weekly 90% "
        "| ROAS error: median abs. rel. | mean rel. (bias) | posterior median: error / bias "
        "| untested channel: error / bias | tested channels: error / bias | fits with divergences "
        "| untested channel prior-driven | tested channels prior-driven | all channels prior-driven |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def by_median(rows: pd.DataFrame) -> str:
        if "roas_rel_error_median" not in rows or not len(rows):
            return "–"
        err = rows["roas_rel_error_median"]
        return f"{err.abs().median():.1%} / {err.mean():+.0%}"

    def errors(rows: pd.DataFrame) -> str:
        if not len(rows):
            return "–"
        return f"{rows['roas_rel_error'].abs().median():.1%} / {rows['roas_rel_error'].mean():+.0%}"

    for (scenario, arm), every in table.groupby(["scenario", "arm"], sort=False):
        part = every[every["converged"]]
        runs = every.drop_duplicates("run_id")
        untested = part[_untested(part)]
        tested = part[part["tested"]]
        tested_text = f"{tested['prior_driven'].mean():.0%} of {len(tested)}" if len(tested) else "–"
        untested_text = f"{untested['prior_driven'].mean():.0%} of {len(untested)}" if len(untested) else "–"
        lines.append(
            f"| {scenario} | {arm} | {len(runs)} ({part['run_id'].nunique()}) | {len(part)} | "
            f"{part['covered_roas_50'].mean():.0%} | {part['covered_roas_90'].mean():.0%} | "
            f"{part['weekly_covered_50'].mean():.0%} | {part['weekly_covered_90'].mean():.0%} | "
            f"{part['roas_rel_error'].abs().median():.1%} | {part['roas_rel_error'].mean():+.0%} | "
            f"{by_median(part)} | {errors(untested)} | {errors(tested)} | "
            f"{int((runs['divergences'] > 0).sum())} ({int(runs['divergences'].sum())} in all) | "
            f"{untested_text} | {tested_text} | "
            f"{part['prior_driven'].mean():.0%} |"
        )
    return "\n".join(lines)


def per_channel(table: pd.DataFrame) -> str:
    """Markdown table per scenario, arm and channel: coverage, recovery error, prior-driven flags."""
    lines = [
        "| scenario | arm | channel | tested | data sets | ROAS 50% | ROAS 90% | median abs. rel. error "
        "| mean rel. error | prior-driven |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = table[table["converged"]].groupby(["scenario", "arm", "channel"], sort=False)
    for (scenario, arm, channel), part in groups:
        lines.append(
            f"| {scenario} | {arm} | {channel} | {'yes' if part['tested'].any() else 'no'} | {len(part)} | "
            f"{part['covered_roas_50'].mean():.0%} | {part['covered_roas_90'].mean():.0%} | "
            f"{part['roas_rel_error'].abs().median():.0%} | {part['roas_rel_error'].mean():+.0%} | "
            f"{part['prior_driven'].mean():.0%} |"
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
    arms: tuple[str, ...] = DEFAULT_ARMS,
    scenarios: list[str] | None = None,
    media_prior: dict[str, Any] | None = None,
    seed_base: int = SEED_BASE,
    lift_weeks: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate, fit (a sweep on Dask), and score: returns (sweep results, coverage table)."""
    out.mkdir(parents=True, exist_ok=True)
    sets = simulate_sets(k, out, scenarios, seed_base, lift_weeks)
    sweep = write_sweep(sets, out, draws, chains, arms, media_prior)
    results = run_sweep(sweep, out, scheduler=scheduler, workers=workers, log=log)
    table = coverage_rows(results, sets)
    write_text(out / "coverage.csv", table.to_csv(index=False))
    return results, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=40, help="data sets, alternating between the scenarios")
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/coverage"))
    parser.add_argument("--draws", type=int, default=500, help="draws (and tuning steps) per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address: fit on a cluster")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"of {', '.join(ARMS)} (comma-separated)")
    parser.add_argument("--scenarios", default="four_channel,intermittent", help=f"of {', '.join(SCENARIOS)}")
    parser.add_argument("--media-prior", default=None, help="model.media_prior of every fit, as JSON")
    parser.add_argument(
        "--seed-base", type=int, default=SEED_BASE, help="seed of the first data set (data set i: SEED_BASE + i)"
    )
    parser.add_argument(
        "--lift-weeks", type=int, default=None, help="length of the dated lift tests (four_channel: 4 by default)"
    )
    args = parser.parse_args()
    arms = tuple(a.strip() for a in args.arms.split(","))
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    if unknown := sorted(set(arms) - set(ARMS)) + sorted(set(scenarios) - set(SCENARIOS)):
        parser.error(f"unknown arm or scenario: {', '.join(unknown)}")
    media_prior = json.loads(args.media_prior) if args.media_prior else None
    t0 = time.perf_counter()
    results, table = run_study(
        args.k, args.out, args.draws, args.chains, args.workers, args.scheduler,
        arms=arms, scenarios=scenarios, media_prior=media_prior, seed_base=args.seed_base, lift_weeks=args.lift_weeks,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    failed = results[results["status"] != "ok"]
    summary = summarize(table) + "\n\n" + per_channel(table)
    fits = results["wall_s"].astype(float)
    stuck = table[~table["converged"]].drop_duplicates("run_id")
    stuck_text = ", ".join(f"{r.scenario}-{r.index} {r.arm} (R-hat {r.max_rhat:.2f})" for r in stuck.itertuples())
    failed_text = "; ".join(str(e)[:200] for e in failed["error"])
    footer = (
        f"{len(results) - len(failed)} fits ok, {len(failed)} failed"
        + (f" [{failed_text}]" if len(failed) else "")
        + f", {len(stuck)} not converged"
        + (f" [{stuck_text}]" if len(stuck) else "")
        + f"; {wall / 60:.1f} min in all "
        f"(median {np.median(fits):.0f} s per fit, max R-hat {results['max_rhat'].astype(float).max():.3f}, "
        f"divergences in {int((results['divergences'].astype(float) > 0).sum())} fits)"
    )
    write_text(args.out / "coverage_summary.md", summary + "\n\n" + footer + "\n")
    print(f"\n{summary}\n\n{footer}")


if __name__ == "__main__":
    main()
