"""Does the optimizer's plan pay off under the TRUE curves? (issue 5's must-show)

For simulated scenarios with known truth: fit the scenario's experiment, optimize a
budget (the historical weekly average × the horizon), then score the current, equal
split, optimized and oracle plans with the simulator's true curves
(:func:`bayesmmm.workflows.simulate.true_flight_response`). The oracle maximizes the TRUE response
under the same constraints (each true curve tabulated on a fine grid and splined, then
the same SLSQP driver). Reported: each plan's true response and the share of the
achievable gain the model's plan captures, ``(optimized - current) / (oracle - current)``.

Arms (``--arm``, repeatable): ``uncalibrated``; ``calibrated``, the same data and model
calibrated with lift tests on every channel; ``calibrated-but-last``, the same tests less
the last channel's; ``calibrated-scale-up``, tests on every channel that double the spend
(``delta_x = +x``) instead; ``calibrated-two-point``, both (each channel's curve measured at
zero and at twice its spend: the level and the slope the plan moves along). The tests come
from the simulator's TRUE curves (the scenario's own ``lift_tests`` block with its channels
widened to all, else 4-week go-dark tests with a 10% standard error); the simulator draws
them from their own random stream, so every arm fits the same data.

To tell posterior error from optimizer error, each row also holds the model's own
(posterior-mean) response at the optimized and at the oracle plan: where the model rates
its plan at least as high as the oracle's, the optimizer did its job on the model's
curves and any shortfall is the posterior's.

Run::

    python benchmarks/optimizer_truth.py -o benchmarks/results/optimizer_truth \\
        --scenario four_channel:0 --scenario four_channel:1 --scenario ten_channel:0 \\
        --arm uncalibrated --arm calibrated

Each scenario is ``NAME:SEED`` (the simulation seed). Writes ``results.csv``,
``results.md`` and ``summary.md`` (median captured gain per arm) in the output folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

from bayesmmm import load_experiment, load_scenario, run_experiment
from bayesmmm.decisions.optimizer import maximize_allocation, optimize_budget
from bayesmmm.decisions.response import FlightResponse
from bayesmmm.io import write_text
from bayesmmm.workflows.simulate import LiftTestSpec, builtin_scenario, true_flight_response, write_simulation

ARMS = ("uncalibrated", "calibrated", "calibrated-but-last", "calibrated-scale-up", "calibrated-two-point")


def oracle(truth: dict, channels: list[str], total: float, lower, upper, current, weeks: int) -> np.ndarray:
    """Maximize the TRUE flight response under the same constraints."""
    curves = []
    for i, ch in enumerate(channels):
        grid = np.linspace(0.0, max(float(upper[i]), 1e-9), 4001)
        curves.append(CubicSpline(grid, true_flight_response(truth, {ch: grid}, weeks)[ch]))

    def fun(s: np.ndarray) -> tuple[float, np.ndarray]:
        return float(sum(c(x) for c, x in zip(curves, s, strict=True))), np.array(
            [c(x, 1) for c, x in zip(curves, s, strict=True)]
        )

    s, _ = maximize_allocation(fun, total, lower, upper, current, n_random_starts=5)
    return s


def run_scenario(
    name: str,
    seed: int,
    weeks: int,
    changes: list[float | None],
    work: Path,
    sampler: dict,
    arms: tuple[str, ...] = ("uncalibrated",),
    lift_weeks: int | None = None,
) -> list[dict]:
    """Fit one simulated scenario once per arm and score the optimizer under each ``max_change``;
    ``lift_weeks`` replaces the length of the (dated) lift tests."""
    scenario = load_scenario(builtin_scenario(name))
    tests = (scenario.lift_tests or LiftTestSpec(change=-1.0, noise=0.1, weeks=4)).model_copy(update={"channels": None})
    if lift_weeks is not None:
        tests = tests.model_copy(update={"weeks": lift_weeks})
    scenario = scenario.model_copy(update={"seed": seed, "lift_tests": tests})
    data_path, truth_path = write_simulation(scenario, work / f"{name}-{seed}")
    truth = json.loads(truth_path.read_text())
    lift = pd.read_csv(data_path.parent / "lift_tests.csv")
    if {"calibrated-scale-up", "calibrated-two-point"} & set(arms):  # the same data (own random stream)
        up = scenario.model_copy(update={"lift_tests": tests.model_copy(update={"change": 1.0})})
        up_data, _ = write_simulation(up, work / f"{name}-{seed}-scale-up")
        if not pd.read_csv(up_data).equals(pd.read_csv(data_path)):
            raise RuntimeError("the scale-up tests changed the simulated data")
        lift_up = pd.read_csv(up_data.parent / "lift_tests.csv")
    rows = []
    for arm in arms:
        overrides = {"data.path": str(data_path), **{f"sampler.{k}": v for k, v in sampler.items()}}
        if arm != "uncalibrated":
            if arm == "calibrated":
                kept = lift
            elif arm == "calibrated-but-last":
                kept = lift[lift["channel"] != lift["channel"].iloc[-1]]
            elif arm == "calibrated-two-point":
                kept = pd.concat([lift, lift_up], ignore_index=True)
            else:
                kept = lift_up
            lift_path = write_text(work / f"{name}-{seed}-{arm}-lift_tests.csv", kept.to_csv(index=False))
            overrides["calibration.lift_tests.path"] = str(lift_path)
        config = load_experiment(builtin_scenario(f"{name}_experiment"), overrides)
        t0 = time.perf_counter()
        result = run_experiment(config, work / f"{name}-{seed}-{arm}-run")
        fit_s = time.perf_counter() - t0
        rows += [_score(result, truth, f"{name}:{seed}", weeks, change, fit_s, arm) for change in changes]
    return rows


def _score(
    result, truth: dict, label: str, weeks: int, max_change: float | None, fit_s: float, arm: str = "uncalibrated"
) -> dict:
    mmm = result.model
    channels = list(mmm.channels)
    budget = float(mmm.data.media.sum(axis=1).mean() * weeks)
    t0 = time.perf_counter()
    res = optimize_budget(mmm, budget, weeks, max_change=max_change)
    opt_s = time.perf_counter() - t0
    a = res.allocation
    plans = {
        "current": a["current_spend"].to_numpy(),
        "optimized": a["optimized_spend"].to_numpy(),
        "equal_split": np.full(len(channels), budget / len(channels)),
    }
    plans["oracle"] = oracle(
        truth, channels, budget, a["lower_bound"].to_numpy(), a["upper_bound"].to_numpy(), plans["current"], weeks
    )
    true = {
        k: sum(true_flight_response(truth, dict(zip(channels, v, strict=True)), weeks).values())
        for k, v in plans.items()
    }
    gain = true["oracle"] - true["current"]
    engine = FlightResponse(mmm, weeks)
    model = {k: float(engine.total(plans[k])[0].mean()) for k in ("current", "optimized", "oracle")}
    return {
        "scenario": label,
        "arm": arm,
        "channels": len(channels),
        "weeks": weeks,
        "max_change": max_change,
        "budget": budget,
        "true_current": true["current"],
        "true_equal_split": true["equal_split"],
        "true_optimized": true["optimized"],
        "true_oracle": true["oracle"],
        "captured_gain": (true["optimized"] - true["current"]) / gain if gain > 0 else float("nan"),
        # the model's own posterior-mean gains: optimized >= oracle means the optimizer did its job on the
        # model's curves (the shortfall is posterior error)
        "model_gain_optimized": model["optimized"] - model["current"],
        "model_gain_oracle": model["oracle"] - model["current"],
        "true_gain_oracle": gain,
        "model_uplift_mean": res.summary["uplift_vs_current"]["mean"],
        "model_uplift_hdi": f"[{res.summary['uplift_vs_current']['hdi_low']:.1f}, "
        f"{res.summary['uplift_vs_current']['hdi_high']:.1f}]",
        "prob_gain": res.summary["uplift_vs_current"]["prob_positive"],
        "fraction_reallocated": res.summary["fraction_reallocated"],
        # the plans as weekly spend per channel, for reading where the model and the truth disagree
        **{f"weekly_{k}": " ".join(f"{v / weeks:.0f}" for v in plans[k]) for k in ("current", "optimized", "oracle")},
        "max_rhat": result.diagnostics["max_rhat"],
        "fit_s": fit_s,
        "optimize_s": opt_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--scenario", action="append", default=None, help="NAME:SEED (repeatable)")
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--max-change", type=float, action="append", default=None, help="repeatable")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--arm", action="append", choices=ARMS, default=None, help="repeatable (default: all)")
    parser.add_argument("--lift-weeks", type=int, default=None, help="length of the lift tests (default: 4)")
    args = parser.parse_args()
    arms = tuple(args.arm or ARMS)
    scenarios = args.scenario or ["four_channel:0", "four_channel:1", "four_channel:2"]
    changes = args.max_change or [None, 0.5]
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "progressbar": False}
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for item in scenarios:
            name, _, seed = item.partition(":")
            fits = run_scenario(name, int(seed or 0), args.weeks, changes, Path(tmp), sampler, arms, args.lift_weeks)
            for row in fits:
                rows.append(row)
                print(json.dumps(row), flush=True)
            write_text(args.out / "results.csv", pd.DataFrame(rows).to_csv(index=False))  # so far
    table = pd.DataFrame(rows)
    markdown = to_markdown(table)
    write_text(args.out / "results.md", markdown)
    summary = summarize(table)
    write_text(args.out / "summary.md", summary)
    print(markdown + "\n" + summary)


def summarize(table: pd.DataFrame, goal: float = 0.95) -> str:
    """Median (min–max) captured gain per arm and ``max_change``, per scenario family, against ``goal``.

    ``optimizer at least oracle on the model``: the cases where the model rates its plan at
    least as high as the oracle's (to 0.1% of the oracle's true gain), i.e. the shortfall is
    the posterior's, not the optimizer's.
    """
    table = table.assign(
        family=table["scenario"].str.partition(":")[0],
        change=table["max_change"].map(lambda c: "free" if c is None or c != c else f"±{c:.0%}"),
        optimizer_done=table["model_gain_optimized"] >= table["model_gain_oracle"] - 1e-3 * table["true_gain_oracle"],
    )
    lines = [
        "| scenarios | arm | max change | cases | median captured gain | min–max | goal ≥ 95% "
        "| optimizer ≥ oracle on the model's curves |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scope, part in [("all", table), *table.groupby("family", sort=False)]:
        for (arm, change), cell in part.groupby(["arm", "change"], sort=False):
            med = cell["captured_gain"].median()
            lines.append(
                f"| {scope} | {arm} | {change} | {len(cell)} | {med:.0%} | {cell['captured_gain'].min():.0%}–"
                f"{cell['captured_gain'].max():.0%} | {'met' if med >= goal else 'not met'} | "
                f"{int(cell['optimizer_done'].sum())} of {len(cell)} |"
            )
    return "\n".join(lines) + "\n"


def to_markdown(table: pd.DataFrame) -> str:
    """A plain markdown table (numbers to 4 significant digits)."""

    def cell(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
