"""Time-varying media effects against the truth (issue 27's must-show, part 1).

Simulated data from the built-in ``effect_change`` scenario (three years of weekly data; social's
true effect halves mid-history), one data set per seed. Each is fitted twice, constant effects
and ``time_varying_media: {channels: [social], kind: hsgp}``, and scored on

- social's ROAS in the first and the last calendar year (posterior mean against the truth's,
  ``roas_by_year``), relative error;
- the optimizer: a 13-week plan at the recent weekly budget (any mix) scored on the TRUE
  curves at the effect's LATEST level (``beta_latest``): the share of the achievable gain (oracle
  on the true curves minus the current mix) each model's plan captures;
- ELPD (PSIS-LOO) of both models.

``--constant N`` adds N data sets where every effect is constant (``effect_change`` removed): the
time-varying model should do no harm there (ROAS error and ELPD).

Usage (modest sizes; the machine is shared)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/tvm_study.py --seeds 10 --constant 3 \
        --out benchmarks/results/tvm_study.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from bayesmmm.config.experiment import DiagnosticsConfig
from bayesmmm.decisions.optimizer import maximize_allocation, optimize_budget
from bayesmmm.evaluation.criteria import loo_summary
from bayesmmm.evaluation.summaries import diagnostics
from bayesmmm.evaluation.varying import roas_by_period_table
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate, true_flight_response

DATA = {"date_column": "date", "target_column": "sales", "channel_columns": ["search", "social", "tv"]}
ARMS = {
    "constant": {"yearly_seasonality": 2},
    "varying": {"yearly_seasonality": 2, "time_varying_media": {"channels": ["social"], "kind": "hsgp"}},
}
WEEKS = 13


def latest_truth(truth: dict) -> dict:
    """The truth with each channel's effect at its latest level (what a plan made now meets)."""
    out = copy.deepcopy(truth)
    for ch in out["channels"].values():
        if "beta_latest" in ch:
            ch["beta"] = ch["beta_latest"]
    return out


def oracle(truth: dict, channels: list[str], total: float, lower, upper, current) -> np.ndarray:
    from scipy.interpolate import CubicSpline

    curves = []
    for i, ch in enumerate(channels):
        grid = np.linspace(0.0, max(float(upper[i]), 1e-9), 2001)
        curves.append(CubicSpline(grid, true_flight_response(truth, {ch: grid}, WEEKS)[ch]))

    def fun(s):
        return float(sum(c(x) for c, x in zip(curves, s, strict=True))), np.array(
            [c(x, 1) for c, x in zip(curves, s, strict=True)]
        )

    return maximize_allocation(fun, total, lower, upper, current, n_random_starts=5)[0]


def score_plan(mmm: MMM, truth: dict) -> dict:
    channels = list(mmm.channels)
    budget = float(mmm.data.channel_spend[-WEEKS:].sum())
    res = optimize_budget(mmm, budget, WEEKS, max_draws=400)
    a = res.allocation
    current, optimized = a["current_spend"].to_numpy(), a["optimized_spend"].to_numpy()
    best = oracle(truth, channels, budget, a["lower_bound"].to_numpy(), a["upper_bound"].to_numpy(), current)

    def true(v):
        return sum(true_flight_response(truth, dict(zip(channels, v, strict=True)), WEEKS).values())

    gain = true(best) - true(current)
    return {
        "captured_gain": (true(optimized) - true(current)) / gain if gain > 0 else float("nan"),
        "true_gain_oracle": gain,
        "weekly_optimized": [float(v / WEEKS) for v in optimized],
        "weekly_oracle": [float(v / WEEKS) for v in best],
    }


def run(seed: int, changing: bool, sampler: dict) -> list[dict]:
    scenario = load_scenario(builtin_scenario("effect_change"))
    channels = dict(scenario.channels)
    if not changing:
        channels["social"] = channels["social"].model_copy(update={"effect_change": None})
    scenario = scenario.model_copy(update={"seed": seed, "channels": channels})
    frame, truth = simulate(scenario)
    social = truth["channels"]["social"]
    if changing:
        years = social["roas_by_year"]
    else:  # constant effects: the truth per year from the weekly contributions
        import pandas as pd

        dates = pd.to_datetime(frame["date"])
        contribution, spend = np.asarray(social["weekly_contribution"]), frame["social"].to_numpy()
        years = {
            str(y): float(contribution[dates.dt.year == y].sum() / spend[dates.dt.year == y].sum())
            for y in sorted(set(dates.dt.year))
        }
    first, last = min(years), max(years)
    planning = latest_truth(truth)
    rows = []
    for arm, model in ARMS.items():
        mmm = MMM(DATA, model)
        t0 = time.perf_counter()
        mmm.fit(frame, sampler)
        fit_s = time.perf_counter() - t0
        table = roas_by_period_table(mmm)
        yearly = table[(table.channel == "social") & (table.kind == "year")].set_index("period")
        est = yearly["roas_mean"]
        low, high = yearly["roas_hdi_low"], yearly["roas_hdi_high"]
        loo = loo_summary(mmm.idata)
        row = {
            "seed": seed,
            "data": "halving" if changing else "constant",
            "arm": arm,
            "true_roas_first": years[first],
            "true_roas_last": years[last],
            "roas_first": float(est[first]),
            "roas_last": float(est[last]),
            "rel_error_first": float(est[first] / years[first] - 1),
            "rel_error_last": float(est[last] / years[last] - 1),
            "covered_first": bool(low[first] <= years[first] <= high[first]),  # the 90% HDI holds the truth
            "covered_last": bool(low[last] <= years[last] <= high[last]),
            "elpd": loo.get("elpd"),
            "divergences": int(mmm.idata["sample_stats"]["diverging"].sum()),
            "max_rhat": float(diagnostics(mmm.idata, DiagnosticsConfig())["max_rhat"]),
            "fit_s": round(fit_s, 1),
            **score_plan(mmm, planning),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not k.startswith("weekly")}), flush=True)
    return rows


def summarize(rows: list[dict]) -> dict:
    out = {}
    for data in ("halving", "constant"):
        for arm in ARMS:
            part = [r for r in rows if r["data"] == data and r["arm"] == arm]
            if not part:
                continue
            out[f"{data}/{arm}"] = {
                "n": len(part),
                "median_abs_rel_error_first": float(np.median([abs(r["rel_error_first"]) for r in part])),
                "median_abs_rel_error_last": float(np.median([abs(r["rel_error_last"]) for r in part])),
                "within_20pct_both": int(
                    sum(abs(r["rel_error_first"]) <= 0.2 and abs(r["rel_error_last"]) <= 0.2 for r in part)
                ),
                "median_captured_gain": float(np.nanmedian([r["captured_gain"] for r in part])),
                "max_rhat_over_1.01": int(sum(r.get("max_rhat", 0.0) > 1.01 for r in part)),
                "hdi90_covers_first_last": [
                    int(sum(r.get("covered_first", False) for r in part)),
                    int(sum(r.get("covered_last", False) for r in part)),
                ],
                "mean_elpd": float(np.mean([r["elpd"] for r in part if r["elpd"] is not None])),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--constant", type=int, default=4)
    parser.add_argument("--draws", type=int, default=250)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tvm_study.json"))
    parser.add_argument("--kind", default="hsgp", help="the varying arm's multiplier (model.time_varying_media.kind)")
    parser.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=sorted(ARMS), help="arms to fit")
    args = parser.parse_args()
    ARMS["varying"]["time_varying_media"]["kind"] = args.kind
    for arm in set(ARMS) - set(args.arms):
        del ARMS[arm]
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    rows: list[dict] = []
    jobs = [(s, True) for s in range(1, args.seeds + 1)] + [(100 + s, False) for s in range(1, args.constant + 1)]
    for seed, changing in jobs:
        rows += run(seed, changing, {**sampler, "seed": seed})
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"sampler": sampler, "kind": args.kind, "rows": rows, "summary": summarize(rows)}
        args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(summarize(rows), indent=1))
    print(f"varying arm: kind {args.kind}")


if __name__ == "__main__":
    main()
