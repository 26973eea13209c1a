"""The design loop on simulated always-on data: do designed lift tests fix prior-driven ROAS?

Per data set (the built-in four-channel scenario, always-on spend, seed ``SEED_BASE + i``,
simulated for ``N + H`` periods: the fit sees the first ``N``, the tests run in the ``H``
after it):

1. fit uncalibrated on the first ``N`` periods (``before``);
2. ``design`` (:func:`bayesmmm.decisions.design.design_tests`, defaults): take the two best
   tests on distinct channels;
3. run them in the simulator on the TRUE curves: the true lift of the test's spend change
   over its weeks (the actual spend before, the planned ``x`` vs ``x + delta_x`` in the
   window, carry-over included: what :func:`~bayesmmm.model.calibration.lift_design` computes),
   measured with the design's noise model on the TRUE noise,
   ``sigma = noise_sd · sqrt(2 / weeks)``, ``delta_y = true lift + sigma · ε``;
4. calibrate: refit on all ``N + H`` periods with the two tests (``designed``).

Baselines with the same test budget (two tests, the same noise model, the same refit data):
``random`` (two channels at random, 4-week go-dark tests) and ``identifiability`` (the two
channels with the lowest log-contraction, prior-driven first, go-dark for the length
:func:`~bayesmmm.evaluation.identifiability.weeks_to_capture` advises, at least 4). The
``no_test`` arm refits the ``N + H`` periods without tests (what the extra periods alone do).

Reported: the median relative ROAS error of the tested channels before (the ``N``-period fit)
and after, per arm, and the design's ``roas_sd_after`` against the calibrated fit's ROAS sd.

    OMP_NUM_THREADS=1 python benchmarks/design_loop.py -k 10 -o runs/design_loop [--draws 500] [--chains 4]

Writes ``OUT/loop.csv`` (one row per data set × arm × tested channel) and ``OUT/loop_summary.md``;
finished data sets are kept (a rerun with a larger ``-k`` fits only the new ones).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.decisions.design import design_tests, measurement_sigma
from bayesmmm.evaluation.identifiability import (
    identifiability,
    posterior_adstock_weights,
    roas_draws,
    weeks_to_capture,
)
from bayesmmm.io import write_text
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate, true_contribution

SEED_BASE = 1000
N_FIT = 104  # periods the first fit sees
HORIZON = 12  # periods after it, in which the tests run (the longest designed test)
DATA = {
    "date_column": "date",
    "target_column": "sales",
    "channel_columns": ["search", "social", "ctv", "tv"],
    "control_columns": ["prime_day", "mothers_day"],
}
MODEL = {
    "adstock": {"name": "geometric", "l_max": 8},
    "saturation": "hill",
    "yearly_seasonality": 2,
    "trend": "piecewise",
    "n_changepoints": 4,
    "likelihood": "normal",
}
ARMS = ("designed", "random", "identifiability", "no_test")


def fit(frame: pd.DataFrame, tests: pd.DataFrame | None, draws: int, chains: int, seed: int) -> MMM:
    mmm = MMM(DATA, MODEL, lift_tests=tests)
    sampler = {"backend": "nutpie", "chains": chains, "draws": draws, "tune": draws, "seed": seed}
    mmm.fit(frame, {**sampler, "progressbar": False})
    return mmm


def true_roas(truth: dict[str, Any], frame: pd.DataFrame, n: int) -> dict[str, float]:
    """True ROAS over the first ``n`` periods (contribution / spend), per channel."""
    return {
        ch: float(np.sum(truth["channels"][ch]["weekly_contribution"][:n]) / frame[ch].iloc[:n].sum())
        for ch in DATA["channel_columns"]
    }


def run_test(truth, frame, channel, x, delta_x, start, weeks, noise_sd, rng) -> dict[str, Any]:
    """A dated lift test in the simulator on the TRUE curves, measured with the design's noise model."""
    ch = truth["channels"][channel]
    spend = frame[channel].to_numpy(dtype=float)
    base, treat = spend.copy(), spend.copy()
    base[start : start + weeks], treat[start : start + weeks] = x, x + delta_x
    diff = true_contribution(ch, treat[:, None]) - true_contribution(ch, base[:, None])
    true = float(diff[start : start + weeks, 0].mean())
    sigma = float(measurement_sigma(noise_sd, weeks))
    dates = pd.to_datetime(frame["date"])
    return {
        "channel": channel,
        "x": x,
        "delta_x": delta_x,
        "delta_y": true + sigma * float(rng.normal()),
        "sigma": sigma,
        "start": str(dates.iloc[start].date()),
        "end": str(dates.iloc[start + weeks - 1].date()),
        "true_lift": true,
    }


def plans(before: MMM, design: pd.DataFrame, rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    """Each arm's two tests: (channel, x, delta_x, weeks)."""
    first = design.drop_duplicates("test")
    chosen = first.drop_duplicates("channel").head(2)
    x_plan = before.data.media[-13:].mean(axis=0)
    out = {
        "designed": [
            {
                "channel": r.channel,
                "x": r.x,
                "delta_x": r.delta_x,
                "weeks": int(r.weeks),
                "expected_sd_after": r.roas_sd_after,
                "rank": int(r.rank),
            }
            for r in chosen.itertuples()
        ]
    }
    channels = list(before.channels)

    def go_dark(ch: str, weeks: int) -> dict[str, Any]:
        x = float(x_plan[channels.index(ch)])
        return {"channel": ch, "x": x, "delta_x": -x, "weeks": weeks}

    out["random"] = [go_dark(ch, 4) for ch in rng.choice(channels, size=2, replace=False)]
    ident = identifiability(before)["channels"]
    measure = {
        ch: e["log_contraction"] if e["log_contraction"] is not None else e["contraction"] for ch, e in ident.items()
    }
    flagged = sorted(channels, key=lambda ch: (not ident[ch]["prior_driven"], measure[ch]))[:2]
    weights = posterior_adstock_weights(before)
    out["identifiability"] = [
        go_dark(ch, min(max(weeks_to_capture(weights[ch]) or 4, 4), HORIZON) if ch in weights else 4) for ch in flagged
    ]
    out["no_test"] = []
    return out


def one_set(i: int, out: Path, draws: int, chains: int) -> list[dict[str, Any]]:
    scenario = load_scenario(builtin_scenario("four_channel")).model_copy(
        update={"seed": SEED_BASE + i, "n_weeks": N_FIT + HORIZON, "lift_tests": None}
    )
    frame, truth = simulate(scenario)
    noise_sd = scenario.noise.sigma
    first = frame.iloc[:N_FIT].reset_index(drop=True)
    t0 = time.perf_counter()
    before = fit(first, None, draws, chains, seed=1)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = design_tests(before)
    t_design = time.perf_counter() - t0
    roas_before = roas_draws(before, before.posterior_draws())
    truth_before, truth_after = true_roas(truth, frame, N_FIT), true_roas(truth, frame, N_FIT + HORIZON)
    channels = list(before.channels)
    rng = np.random.default_rng([SEED_BASE + i, 26])
    arm_tests = plans(before, result.table, rng)
    rows = []
    for arm in ARMS:
        tests = [
            run_test(truth, frame, t["channel"], t["x"], t["delta_x"], N_FIT, t["weeks"], noise_sd, rng)
            for t in arm_tests[arm]
        ]
        table = pd.DataFrame(tests)
        t0 = time.perf_counter()
        after = fit(frame, table.drop(columns="true_lift") if tests else None, draws, chains, seed=1)
        t_after = time.perf_counter() - t0
        roas_after = roas_draws(after, after.posterior_draws())
        tested = [t["channel"] for t in arm_tests[arm]] or channels
        for k, ch in enumerate(tested):
            c = channels.index(ch)
            plan = arm_tests[arm][k] if arm_tests[arm] else {}
            rows.append(
                {
                    "set": i,
                    "arm": arm,
                    "channel": ch,
                    "weeks": plan.get("weeks"),
                    "delta_x": plan.get("delta_x"),
                    "true_lift": tests[k]["true_lift"] if tests else None,
                    "sigma": tests[k]["sigma"] if tests else None,
                    "true_roas_before": truth_before[ch],
                    "true_roas_after": truth_after[ch],
                    "roas_before": float(roas_before[:, c].mean()),
                    "roas_sd_before": float(roas_before[:, c].std()),
                    "roas_after": float(roas_after[:, c].mean()),
                    "roas_sd_after": float(roas_after[:, c].std()),
                    "expected_sd_after": plan.get("expected_sd_after"),
                    "design_rank": plan.get("rank"),
                    "err_before": abs(roas_before[:, c].mean() / truth_before[ch] - 1),
                    "err_after": abs(roas_after[:, c].mean() / truth_after[ch] - 1),
                    "fit_s": t_fit,
                    "design_s": t_design,
                    "refit_s": t_after,
                }
            )
    pd.DataFrame(rows).to_csv(out / "sets" / f"set-{i}.csv", index=False)
    return rows


def summarize(frame: pd.DataFrame) -> str:
    lines = [
        f"{frame['set'].nunique()} data sets (four_channel, {N_FIT} + {HORIZON} periods).",
        "",
        "| arm | tested channels | median ROAS error before | median ROAS error after | share within 15% after |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        part = frame[frame["arm"] == arm]
        if part.empty:
            continue
        label = (
            "all four (no test)"
            if arm == "no_test"
            else ", ".join(f"{c} {n}" for c, n in part["channel"].value_counts().items())
        )
        lines.append(
            f"| {arm} | {label} | {part['err_before'].median():.1%} | {part['err_after'].median():.1%} | "
            f"{(part['err_after'] <= 0.15).mean():.0%} |"
        )
    d = frame[frame["arm"] == "designed"]
    if len(d):
        ratio = d["roas_sd_after"] / d["expected_sd_after"]
        lines += [
            "",
            "Expected vs realized (designed tests): realized ROAS sd after calibration / the design's "
            f"roas_sd_after: median {ratio.median():.2f} (range {ratio.min():.2f}..{ratio.max():.2f}); "
            f"within 30%: {((ratio - 1).abs() <= 0.3).mean():.0%} of {len(ratio)} tests.",
            "Designed tests: " + ", ".join(f"{w:.0f} periods × {n}" for w, n in d["weeks"].value_counts().items()),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", type=int, default=10, help="data sets")
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/design_loop"))
    parser.add_argument("--draws", type=int, default=500, help="draws and tune per chain")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--start", type=int, default=0, help="first data set index")
    parser.add_argument("--reverse", action="store_true", help="last data set first (a second process)")
    args = parser.parse_args()
    (args.out / "sets").mkdir(parents=True, exist_ok=True)
    indices = range(args.start, args.start + args.k)
    for i in reversed(indices) if args.reverse else indices:
        claim = args.out / "sets" / f"set-{i}.claim"
        if (args.out / "sets" / f"set-{i}.csv").exists():
            continue
        try:  # another process of the same study may be fitting it
            claim.open("x").close()
        except FileExistsError:
            continue
        t0 = time.perf_counter()
        one_set(i, args.out, args.draws, args.chains)
        print(f"set {i} done in {time.perf_counter() - t0:.0f} s", flush=True)
        frame = pd.concat([pd.read_csv(p) for p in sorted((args.out / "sets").glob("set-*.csv"))])
        frame.to_csv(args.out / "loop.csv", index=False)
        write_text(args.out / "loop_summary.md", summarize(frame) + "\n")
    print(summarize(pd.read_csv(args.out / "loop.csv")))
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
