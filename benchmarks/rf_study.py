"""Recovery study of reach & frequency channels (issue 27, part 2): ROAS and optimal frequency against the truth.

Simulates ``--datasets`` data sets from the built-in ``reach_frequency`` scenario (seed
``SEED_BASE + i``; a YouTube channel bought as reach and frequency with a true Hill slope of 2.5 and
half saturation at frequency 2, so a true optimal frequency of 2·1.5^(1/2.5) ≈ 2.35, beside two
spend channels), fits each through the library with the scenario's ``experiment.yaml`` (its
``data.channels.youtube: {spend, reach, frequency}``) and reads ``rf.csv``
(:func:`bayesmmm.decisions.reach.rf_table`) and the ROAS table.

Reported: per data set and channel the posterior mean ROAS against the truth (relative error) and
whether the 90% HDI covers it; for the R&F channel the optimal frequency (Meridian's: argmax of
the posterior mean ROAS) and its 90% HDI against the true optimum; divergences and R-hat.

    OMP_NUM_THREADS=1 python benchmarks/rf_study.py --datasets 10 [--chains 2 --draws 500 --tune 500]
        [--seed-base 2700] [-o benchmarks/results/rf] [--work runs/rf_study]

Writes ``OUT/recovery.csv`` (one row per fit × channel), ``OUT/summary.json`` and ``OUT/summary.md``.
Finished fits are kept in ``--work``: running it again only fits what is missing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm import MMM, roas_table
from bayesmmm.config.experiment import DataConfig, ModelConfig
from bayesmmm.decisions.reach import rf_table
from bayesmmm.workflows.simulate import builtin_scenario, experiment_for, load_scenario, simulate

SEED_BASE = 2700


def fit_one(seed: int, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Simulate data set ``seed``, fit it, and return one row per channel (cached as JSON in ``work``)."""
    cache = work / f"seed{seed}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    scenario = load_scenario(builtin_scenario("reach_frequency")).model_copy(update={"seed": seed})
    frame, truth = simulate(scenario)
    experiment = experiment_for(scenario)
    data = DataConfig(**{k: v for k, v in experiment["data"].items() if k != "path"})
    mmm = MMM(data, ModelConfig(**experiment["model"]))
    start = time.time()
    sampler = {
        "backend": args.backend,
        "chains": args.chains,
        "draws": args.draws,
        "tune": args.tune,
        "seed": seed,
        "progressbar": False,
    }
    mmm.fit(frame, sampler)
    seconds = time.time() - start
    stats = mmm.idata["sample_stats"]
    divergences = int(np.asarray(stats["diverging"]).sum())
    import arviz as az

    rhat = az.rhat(mmm.idata["posterior"].to_dataset())
    max_rhat = float(max(float(rhat[v].max()) for v in rhat.data_vars))
    roas = roas_table(mmm, hdi_prob=0.9).set_index("channel")
    rf = rf_table(mmm, hdi_prob=0.9).set_index("channel")
    rows = []
    for name, true in truth["channels"].items():
        r = roas.loc[name]
        row = {
            "seed": seed,
            "channel": name,
            "reach_frequency": bool(true.get("reach_frequency", False)),
            "roas_true": true["roas"],
            "roas_mean": float(r["roas_mean"]),
            "roas_hdi_low": float(r["roas_hdi_low"]),
            "roas_hdi_high": float(r["roas_hdi_high"]),
            "seconds": seconds,
            "divergences": divergences,
            "max_rhat": max_rhat,
        }
        row["roas_rel_error"] = row["roas_mean"] / row["roas_true"] - 1.0
        row["roas_covered"] = bool(row["roas_hdi_low"] <= row["roas_true"] <= row["roas_hdi_high"])
        if name in rf.index:
            f = rf.loc[name]
            row.update(
                {
                    "optimal_frequency_true": true["optimal_frequency"],
                    "optimal_frequency": float(f["optimal_frequency"]),
                    "optimal_frequency_hdi_low": float(f["optimal_frequency_hdi_low"]),
                    "optimal_frequency_hdi_high": float(f["optimal_frequency_hdi_high"]),
                }
            )
            row["optimal_frequency_covered"] = bool(
                f["optimal_frequency_hdi_low"] - 0.05
                <= true["optimal_frequency"]
                <= f["optimal_frequency_hdi_high"] + 0.05
            )
            row["optimal_frequency_error"] = row["optimal_frequency"] - true["optimal_frequency"]
        rows.append(row)
    cache.write_text(json.dumps(rows))
    return rows


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Median |relative ROAS error| and 90% coverage per channel; optimal-frequency error and coverage."""
    out: dict[str, Any] = {"datasets": int(frame["seed"].nunique()), "channels": {}}
    for name, g in frame.groupby("channel"):
        entry = {
            "reach_frequency": bool(g["reach_frequency"].iloc[0]),
            "roas_median_abs_rel_error": float(g["roas_rel_error"].abs().median()),
            "roas_mean_rel_error": float(g["roas_rel_error"].mean()),
            "roas_coverage_90": float(g["roas_covered"].mean()),
        }
        if "optimal_frequency" in g and g["optimal_frequency"].notna().any():
            entry.update(
                {
                    "optimal_frequency_true": float(g["optimal_frequency_true"].iloc[0]),
                    "optimal_frequency_median": float(g["optimal_frequency"].median()),
                    "optimal_frequency_median_abs_error": float(g["optimal_frequency_error"].abs().median()),
                    "optimal_frequency_coverage_90": float(g["optimal_frequency_covered"].mean()),
                }
            )
        out["channels"][str(name)] = entry
    out["divergences_total"] = int(frame.drop_duplicates("seed")["divergences"].sum())
    out["max_rhat"] = float(frame["max_rhat"].max())
    out["median_seconds"] = float(frame.drop_duplicates("seed")["seconds"].median())
    return out


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Reach & frequency recovery ({summary['datasets']} data sets, scenario reach_frequency)",
        "",
        "| channel | R&F | median abs ROAS error | mean ROAS error | 90% coverage | optimal f (true) | "
        "median optimal f | median abs f error | f 90% coverage |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in summary["channels"].items():
        f = (
            f"{e['optimal_frequency_true']:.2f} | {e['optimal_frequency_median']:.2f} | "
            f"{e['optimal_frequency_median_abs_error']:.2f} | {e['optimal_frequency_coverage_90']:.0%}"
            if "optimal_frequency_true" in e
            else "– | – | – | –"
        )
        lines.append(
            f"| {name} | {'yes' if e['reach_frequency'] else 'no'} | {e['roas_median_abs_rel_error']:.1%} | "
            f"{e['roas_mean_rel_error']:+.1%} | {e['roas_coverage_90']:.0%} | {f} |"
        )
    lines += [
        "",
        f"Divergences (all fits): {summary['divergences_total']}; max R-hat {summary['max_rhat']:.3f}; "
        f"median fit {summary['median_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--seed-base", type=int, default=SEED_BASE)
    parser.add_argument("--backend", default="nutpie")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/rf"))
    parser.add_argument("--work", type=Path, default=Path("runs/rf_study"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(args.datasets):
        seed = args.seed_base + i
        got = fit_one(seed, args, args.work)
        rows += got
        rf = next(r for r in got if r["reach_frequency"])
        print(
            f"seed {seed}: youtube ROAS {rf['roas_mean']:.3f} [{rf['roas_hdi_low']:.3f}, {rf['roas_hdi_high']:.3f}] "
            f"(true {rf['roas_true']:.3f}); optimal f {rf['optimal_frequency']:.1f} "
            f"[{rf['optimal_frequency_hdi_low']:.1f}, {rf['optimal_frequency_hdi_high']:.1f}] "
            f"(true {rf['optimal_frequency_true']:.2f}); {rf['seconds']:.0f} s, {rf['divergences']} div",
            flush=True,
        )
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "recovery.csv", index=False)
    summary = summarize(frame)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    (args.out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
