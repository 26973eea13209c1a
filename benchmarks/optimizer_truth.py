"""Does the optimizer's plan pay off under the TRUE curves? (issue 5's must-show)

For simulated scenarios with known truth: fit the scenario's experiment, optimize a
budget (the historical weekly average × the horizon), then score the current, equal
split, optimized and oracle plans with the simulator's true curves
(:func:`bayesmmm.workflows.simulate.true_flight_response`). The oracle maximizes the TRUE response
under the same constraints (each true curve tabulated on a fine grid and splined, then
the same SLSQP driver). Reported: each plan's true response and the share of the
achievable gain the model's plan captures, ``(optimized - current) / (oracle - current)``.

Run::

    python benchmarks/optimizer_truth.py -o benchmarks/results/optimizer_truth \\
        --scenario four_channel:0 --scenario four_channel:1 --scenario ten_channel:0

Each scenario is ``NAME:SEED`` (the simulation seed). Writes ``results.csv`` and
``results.md`` in the output folder.
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
from bayesmmm.io import write_text
from bayesmmm.workflows.simulate import builtin_scenario, true_flight_response, write_simulation


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
    name: str, seed: int, weeks: int, changes: list[float | None], work: Path, sampler: dict
) -> list[dict]:
    """Fit one simulated scenario and score the optimizer under each ``max_change``."""
    scenario = load_scenario(builtin_scenario(name)).model_copy(update={"seed": seed})
    data_path, truth_path = write_simulation(scenario, work / f"{name}-{seed}")
    truth = json.loads(truth_path.read_text())
    overrides = {"data.path": str(data_path), **{f"sampler.{k}": v for k, v in sampler.items()}}
    config = load_experiment(builtin_scenario(f"{name}_experiment"), overrides)
    t0 = time.perf_counter()
    result = run_experiment(config, work / f"{name}-{seed}-run")
    fit_s = time.perf_counter() - t0
    return [_score(result, truth, f"{name}:{seed}", weeks, change, fit_s) for change in changes]


def _score(result, truth: dict, label: str, weeks: int, max_change: float | None, fit_s: float) -> dict:
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
    return {
        "scenario": label,
        "channels": len(channels),
        "weeks": weeks,
        "max_change": max_change,
        "budget": budget,
        "true_current": true["current"],
        "true_equal_split": true["equal_split"],
        "true_optimized": true["optimized"],
        "true_oracle": true["oracle"],
        "captured_gain": (true["optimized"] - true["current"]) / gain if gain > 0 else float("nan"),
        "model_uplift_mean": res.summary["uplift_vs_current"]["mean"],
        "model_uplift_hdi": f"[{res.summary['uplift_vs_current']['hdi_low']:.1f}, "
        f"{res.summary['uplift_vs_current']['hdi_high']:.1f}]",
        "prob_gain": res.summary["uplift_vs_current"]["prob_positive"],
        "fraction_reallocated": res.summary["fraction_reallocated"],
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
    args = parser.parse_args()
    scenarios = args.scenario or ["four_channel:0", "four_channel:1", "four_channel:2"]
    changes = args.max_change or [None, 0.5]
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "progressbar": False}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in scenarios:
            name, _, seed = item.partition(":")
            for row in run_scenario(name, int(seed or 0), args.weeks, changes, Path(tmp), sampler):
                rows.append(row)
                print(json.dumps(row))
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "results.csv", table.to_csv(index=False))
    markdown = to_markdown(table)
    write_text(args.out / "results.md", markdown)
    print(markdown)


def to_markdown(table: pd.DataFrame) -> str:
    """A plain markdown table (numbers to 4 significant digits)."""

    def cell(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
