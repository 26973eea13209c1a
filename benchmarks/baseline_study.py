"""Flexible baselines: which trend is faster and recovers better on a non-linear trend?

Simulates the built-in ``four_channel`` scenario (104 weeks, always-on spend on four channels,
an S-shaped trend adding 150 on a base of 500, seasonality, two events) with several seeds,
holds out the last 13 weeks, and fits the same model with ``trend: linear``, ``piecewise``,
``hsgp`` and ``spline`` on the same sampler. For each fit: hold-out RMSE and CRPS of the
noisy predictions, 90% interval coverage of the hold-out weeks, error of the media
contribution over the training weeks against the truth (total, and median over channels of
the absolute per-channel error), the trend's error against the true trend (RMSE after
removing the mean: the level is the intercept's), divergences, gradient evaluations per draw
(the sampling cost, independent of the machine's load) and wall time (compile + sampling)::

    python benchmarks/baseline_study.py [--seeds 1 2 3] [--draws 500] [--chains 2] [--backend numpyro]
        [--variant builtin|late]

``--variant late`` replaces the scenario's trend by a later, larger S-curve (``total: 250,
steepness: 12, midpoint: 0.65``) that is still bending when the hold-out begins, where a
straight line must overshoot.

Prints a markdown table per seed and the mean over seeds (what ``benchmarks/README.md`` shows).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from bayesmmm.evaluation.criteria import holdout_scores
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import TrendSpec, builtin_scenario, load_scenario, simulate

HOLDOUT = 13
TRENDS = ("linear", "piecewise", "hsgp", "spline")
CHANNELS = ["search", "social", "ctv", "tv"]
DATA = {
    "date_column": "date",
    "target_column": "sales",
    "channel_columns": CHANNELS,
    "control_columns": ["prime_day", "mothers_day"],
}
VARIANTS = {
    "builtin": None,
    "late": {"kind": "sigmoid", "total": 250.0, "steepness": 12.0, "midpoint": 0.65},
}
MODEL = {"adstock": {"name": "geometric", "l_max": 8}, "saturation": {"name": "hill"}, "yearly_seasonality": 2}


def fit_one(trend: str, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """Fit one trend on one simulated data set; the row of the table."""
    scenario = load_scenario(builtin_scenario("four_channel"))
    update: dict = {"seed": seed}
    if VARIANTS[args.variant] is not None:
        update["trend"] = TrendSpec(**VARIANTS[args.variant])
    scenario = scenario.model_copy(update=update)
    frame, truth = simulate(scenario)
    train, test = frame.iloc[:-HOLDOUT], frame.iloc[-HOLDOUT:]
    model = MMM(DATA, {**MODEL, "trend": trend})
    start = time.perf_counter()
    model.fit(
        train, backend=args.backend, chains=args.chains, draws=args.draws, tune=args.draws, seed=seed, progressbar=False
    )
    wall = time.perf_counter() - start
    pred = model.predict(test.drop(columns="sales"), noise=True, seed=seed)
    y = pred["y"].stack(sample=("chain", "draw")).transpose("sample", "date").to_numpy()
    scores = holdout_scores(y, test["sales"].to_numpy())
    comps = model.predictive.posterior_components()
    media = comps["media"].sum("date").mean(("chain", "draw")).to_numpy()
    true_media = np.array([sum(truth["channels"][c]["weekly_contribution"][:-HOLDOUT]) for c in CHANNELS])
    trend_fit = comps["trend"].mean(("chain", "draw")).to_numpy()
    true_trend = np.asarray(truth["baseline"]["trend"][:-HOLDOUT])
    trend_err = (trend_fit - trend_fit.mean()) - (true_trend - true_trend.mean())
    return {
        "trend": trend,
        "seed": seed,
        "holdout_rmse": scores["holdout_rmse"],
        "holdout_crps": scores["holdout_crps"],
        "coverage_90": scores["holdout_coverage"],
        "trend_rmse": float(np.sqrt(np.mean(trend_err**2))),
        "media_total_err": float(media.sum() / true_media.sum() - 1),
        "media_channel_mae": float(np.median(np.abs(media / true_media - 1))),
        "divergences": int(model.idata["sample_stats"]["diverging"].sum()),
        "grad_evals": float(model.idata["sample_stats"]["n_steps"].mean()),
        "wall_s": wall,
        "compile_s": float(model.timings.get("compile_s", np.nan)),
    }


def table(frame: pd.DataFrame) -> str:
    cols = {
        "holdout_rmse": "{:.1f}",
        "holdout_crps": "{:.1f}",
        "coverage_90": "{:.2f}",
        "trend_rmse": "{:.1f}",
        "media_total_err": "{:+.0%}",
        "media_channel_mae": "{:.0%}",
        "divergences": "{:.1f}",
        "grad_evals": "{:.0f}",
        "wall_s": "{:.1f}",
    }
    lines = ["| trend | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for trend, row in frame.iterrows():
        lines.append(f"| {trend} | " + " | ".join(fmt.format(row[c]) for c, fmt in cols.items()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--draws", type=int, default=500, help="draws and tuning steps per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--backend", default="numpyro")
    parser.add_argument("--trends", nargs="+", default=list(TRENDS))
    parser.add_argument("--variant", choices=list(VARIANTS), default="builtin")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for seed in args.seeds:
        for trend in args.trends:
            rows.append(fit_one(trend, seed, args))
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    frame = pd.DataFrame(rows)
    for seed, part in frame.groupby("seed"):
        print(f"\nseed {seed}\n")
        print(table(part.set_index("trend").loc[args.trends]))
    mean = frame.drop(columns="seed").groupby("trend").mean().loc[args.trends]
    print(f"\nmean over {len(args.seeds)} seeds\n")
    print(table(mean))


if __name__ == "__main__":
    main()
