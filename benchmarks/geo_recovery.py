"""Recovery of geo-varying channel effects on a simulated geo panel.

Simulates the built-in ``geo_panel`` scenario (geo-varying true effects drawn around a
national mean), fits the partially pooled geo model and reports how often the 90% HDIs
cover the true ROAS: nationally (per channel, from contributions summed over geos) and
per geo × channel. Writes ``results.json``, ``roas_geo_vs_truth.png`` and
``roas_national_vs_truth.png`` to ``--out``.

    .venv/bin/python benchmarks/geo_recovery.py --geos 10 --draws 500 --tune 500 -o benchmarks/results/geo_recovery
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ExperimentConfig, SamplerConfig
from bayesmmm.workflows.experiment import run_experiment
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate


def coverage(
    roas: pd.DataFrame, roas_geo: pd.DataFrame, truth: dict
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """National and per-geo coverage of the true ROAS by the HDIs in ``roas.csv`` / ``roas_geo.csv``."""
    national = roas.copy()
    national["true_roas"] = [truth["channels"][c]["roas"] for c in national["channel"]]
    national["covered"] = (national["roas_hdi_low"] <= national["true_roas"]) & (
        national["true_roas"] <= national["roas_hdi_high"]
    )
    geo = roas_geo.copy()
    geo["true_roas"] = [
        truth["geos"][g]["channels"][c]["roas"] for g, c in zip(geo["geo"], geo["channel"], strict=True)
    ]
    geo["covered"] = (geo["roas_hdi_low"] <= geo["true_roas"]) & (geo["true_roas"] <= geo["roas_hdi_high"])
    summary = {
        "national_coverage": float(national["covered"].mean()),
        "geo_coverage": float(geo["covered"].mean()),
        "geo_pairs": len(geo),
        "geo_roas_corr": float(np.corrcoef(geo["roas_mean"], geo["true_roas"])[0, 1]),
        "geo_roas_mape": float(np.mean(np.abs(geo["roas_mean"] / geo["true_roas"] - 1))),
    }
    return summary, national, geo


def plot(national: pd.DataFrame, geo: pd.DataFrame, out: Path, hdi_prob: float) -> None:
    """Per-geo ROAS (posterior mean and HDI) against the truth, one panel per channel; national bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = list(national["channel"])
    fig, axes = plt.subplots(1, len(channels), figsize=(4.2 * len(channels), 4), squeeze=False)
    for ax, ch in zip(axes[0], channels, strict=True):
        part = geo[geo["channel"] == ch]
        err = np.vstack([part["roas_mean"] - part["roas_hdi_low"], part["roas_hdi_high"] - part["roas_mean"]])
        colors = np.where(part["covered"], "tab:blue", "tab:red")
        ax.errorbar(part["true_roas"], part["roas_mean"], yerr=err, fmt="none", ecolor="0.6", lw=1)
        ax.scatter(part["true_roas"], part["roas_mean"], c=colors, s=18, zorder=3)
        lim = [0, max(part["roas_hdi_high"].max(), part["true_roas"].max()) * 1.05]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_title(f"{ch}: {part['covered'].mean():.0%} of geos covered")
        ax.set_xlabel("true ROAS (geo)")
        ax.set_ylabel(f"posterior mean, {hdi_prob:.0%} HDI")
    fig.suptitle(f"Per-geo ROAS recovery ({geo['covered'].mean():.0%} of {len(geo)} geo × channel HDIs cover)")
    fig.tight_layout()
    fig.savefig(out / "roas_geo_vs_truth.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.6 * len(channels) + 2, 3.6))
    x = np.arange(len(channels))
    err = np.vstack(
        [national["roas_mean"] - national["roas_hdi_low"], national["roas_hdi_high"] - national["roas_mean"]]
    )
    ax.errorbar(x, national["roas_mean"], yerr=err, fmt="o", capsize=4, label=f"posterior mean, {hdi_prob:.0%} HDI")
    ax.scatter(x, national["true_roas"], marker="x", color="tab:red", zorder=3, label="truth")
    ax.set_xticks(x, channels)
    ax.set_ylabel("national ROAS")
    ax.set_title("National ROAS (sum of geo contributions / sum of spend)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "roas_national_vs_truth.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geos", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--seed", type=int, default=None, help="scenario seed (default: the scenario's)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--pool", choices=["shared", "pooled"], default="shared", help="adstock/saturation pooling")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/geo_recovery"))
    args = parser.parse_args()

    scenario = load_scenario(builtin_scenario("geo_panel"))
    update = {"n_weeks": args.weeks, "geos": scenario.geos.model_copy(update={"n": args.geos})}
    if args.seed is not None:
        update["seed"] = args.seed
    scenario = scenario.model_copy(update=update)
    frame, truth = simulate(scenario)
    config = ExperimentConfig(
        name=f"geo_recovery_{args.geos}",
        data={"channel_columns": list(scenario.channels), "target_column": "sales", "geo_column": "geo"},
        model={
            "adstock": {"name": "geometric", "l_max": 6},
            "saturation": "logistic",
            "yearly_seasonality": 1,
            "geo": {"adstock": args.pool, "saturation": args.pool},
        },
        sampler=SamplerConfig(chains=args.chains, draws=args.draws, tune=args.tune, seed=1, progressbar=False),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = run_experiment(config, args.out / "run", frame=frame)
    wall = time.perf_counter() - t0
    roas = pd.read_csv(result.run_dir / "roas.csv")
    roas_geo = pd.read_csv(result.run_dir / "roas_geo.csv")
    summary, national, geo = coverage(roas, roas_geo, truth)
    plot(national, geo, args.out, config.output.hdi_prob)
    national.to_csv(args.out / "national_vs_truth.csv", index=False)
    geo.to_csv(args.out / "geo_vs_truth.csv", index=False)
    diag = result.diagnostics
    summary.update(
        {
            "geos": args.geos,
            "weeks": args.weeks,
            "channels": len(scenario.channels),
            "chains": args.chains,
            "draws": args.draws,
            "tune": args.tune,
            "pool": args.pool,
            "wall_s": round(wall, 1),
            "timings": result.timings,
            "max_rhat": diag["max_rhat"],
            "min_ess_bulk": diag["min_ess_bulk"],
            "divergences": diag["divergences"],
        }
    )
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(national[["channel", "true_roas", "roas_mean", "roas_hdi_low", "roas_hdi_high", "covered"]])


if __name__ == "__main__":
    main()
