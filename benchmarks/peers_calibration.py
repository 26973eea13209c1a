"""Lift-test calibration, bayesmmm vs PyMC-Marketing: the same error table for both.

Run through nox (``nox -s bench_peers_calibration``), which builds PyMC-Marketing's own
virtualenv and passes its interpreter as ``--peer-python``; our fits run in this
interpreter. For K simulated data sets per scenario (seeds 1000 + i, as the coverage
study), the simulator also writes steady-state lift tests from the TRUE curves (go dark,
``delta_x = -x`` at the channel's mean weekly spend, standard error 10% of the true
lift) on every channel but the scenario's last (``tv``, ``google_ads``): the untested
channel shows what calibration does to a channel it has no test for. Every data set is
fitted four times, each fit a fresh process: ours and PyMC-Marketing's MMM
(``MMM.add_lift_test_measurements``), uncalibrated and calibrated, with the same model
(geometric adstock l_max 8, logistic saturation, yearly seasonality 2, linear trend,
the controls; see ``benchmarks/peer_fit.py``), backend, chains, draws, tune,
target_accept and seed. From each posterior: every draw of each channel's total
contribution over the training weeks (original units), ROAS = that / the channel's
spend, scored against the truth by the same code for both libraries::

    python benchmarks/peers_calibration.py --peer-python PEER/bin/python -k 10 -o runs/peers-calibration

Writes ``OUT/fits/*.json`` (one per fit; finished fits are kept, so a larger K only fits
the new data sets), ``OUT/errors.csv`` (one row per fit × channel) and
``OUT/errors.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import load_experiment
from bayesmmm.evaluation.summaries import hdi_bounds
from bayesmmm.io import write_json, write_text
from bayesmmm.workflows.bench import cache_env, peer_spec, run_child, sampler_overrides
from bayesmmm.workflows.simulate import LiftTestSpec, builtin_scenario, load_scenario, write_simulation

ROOT = Path(__file__).resolve().parents[1]
PEER_FIT = ROOT / "benchmarks" / "peer_fit.py"
SCENARIOS = {
    # name: (experiment, overrides giving the common model)
    "four_channel": (ROOT / "configs" / "four_channel.yaml", {"model.saturation": "logistic", "model.trend": "linear"}),
    "intermittent": (ROOT / "configs" / "intermittent.yaml", {"model.saturation": "logistic", "model.trend": "linear"}),
}
ARMS = ("uncalibrated", "calibrated")
LIBRARIES = ("bayesmmm", "pymc-marketing")
MAX_RHAT = 1.05  # as the coverage study: a stuck chain says nothing about calibration
_OURS_CHILD = (
    "import importlib.util as u; "
    f"s = u.spec_from_file_location('peers_calibration', {str(Path(__file__).resolve())!r}); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.ours_child()"
)


def simulate_set(scenario: str, index: int, out: Path) -> dict[str, Any]:
    """Data set ``index`` of ``scenario`` (seed 1000 + index), steady-state lift tests on all channels but the last."""
    config = load_scenario(builtin_scenario(scenario))
    channels = list(config.channels)
    tests = LiftTestSpec(channels=channels[:-1], change=-1.0, noise=0.1)
    config = config.model_copy(update={"seed": 1000 + index, "lift_tests": tests})
    data_path, truth_path = write_simulation(config, out / "data" / f"{scenario}-{index}")
    return {
        "scenario": scenario,
        "index": index,
        "data": str(data_path.resolve()),
        "truth": str(truth_path.resolve()),
        "lift_tests": str((data_path.parent / "lift_tests.csv").resolve()),
        "untested": channels[-1],
    }


def ours_child() -> None:  # pragma: no cover - runs in the subprocess
    """Fit one data set with bayesmmm (spec on stdin) and print measurements and contribution draws."""
    from bayesmmm.data.loading import read_csv
    from bayesmmm.evaluation.summaries import diagnostics
    from bayesmmm.model.mmm import MMM

    spec = json.loads(sys.stdin.read())
    config = load_experiment(spec["experiment"], {**spec["overrides"], "data.path": spec["data_path"]})
    frame = read_csv(config.data.source_path)
    mmm = MMM(config.data, config.model, lift_tests=spec.get("lift_tests"))
    start = time.perf_counter()
    mmm.fit(frame, config.sampler)
    wall = time.perf_counter() - start
    diag = diagnostics(mmm.idata, config.diagnostics)
    total = mmm.posterior_components()["media"].sum("date")
    result = {
        "wall_s": round(wall, 3),
        "min_ess_bulk": round(diag["min_ess_bulk"], 1),
        "divergences": diag["divergences"],
        "max_rhat": round(diag["max_rhat"], 4),
        "contribution_draws": {
            ch: np.asarray(total.sel(channel=ch)).reshape(-1).round(4).tolist() for ch in mmm.channels
        },
        "lift_tests": bool(spec.get("lift_tests")),
    }
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


def fit(library: str, arm: str, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One fit in a fresh process (the compilation caches under ``OUT/cache`` are shared)."""
    experiment, overrides = SCENARIOS[data["scenario"]]
    lift = data["lift_tests"] if arm == "calibrated" else None
    env = cache_env((args.out / "cache").resolve())
    seed = args.seed + data["index"]
    settings = {"chains": args.chains, "draws": args.draws, "tune": args.tune, "target_accept": args.target_accept}
    if library == "bayesmmm":
        spec = {
            "experiment": str(experiment),
            "data_path": data["data"],
            "lift_tests": lift,
            "overrides": {**overrides, **sampler_overrides(args.ours, seed, **settings)},
        }
        return run_child(spec, env, 3600, module=_OURS_CHILD)
    data_cfg = load_experiment(experiment, {"data.path": data["data"]}).data
    spec = {
        **peer_spec(data["data"], data_cfg, args.theirs, seed, **settings),
        "lift_tests": lift,
        "contributions": True,
    }
    return run_child(spec, env, 3600, python=args.peer_python, module=PEER_FIT.read_text())


def error_rows(result: dict[str, Any], data: dict[str, Any], library: str, arm: str) -> list[dict[str, Any]]:
    """Per channel of one fit: truth, posterior mean ROAS, HDI coverage and relative errors.

    ROAS = the channel's total contribution over the training weeks / its spend; the
    relative error of the posterior-mean ROAS equals that of the contribution.
    """
    truth = json.loads(Path(data["truth"]).read_text())["channels"]
    tested = {str(t["channel"]) for t in json.loads(Path(data["truth"]).read_text()).get("lift_tests", [])}
    rows = []
    for ch, draws in result["contribution_draws"].items():
        roas = np.asarray(draws, dtype=float) / truth[ch]["spend"]
        row = {
            "scenario": data["scenario"],
            "index": data["index"],
            "library": library,
            "arm": arm,
            "channel": ch,
            "tested": ch in tested,
            "max_rhat": result["max_rhat"],
            "divergences": result["divergences"],
            "converged": result["max_rhat"] < MAX_RHAT,
            "true_roas": truth[ch]["roas"],
            "roas_mean": float(roas.mean()),
        }
        for prob in (0.5, 0.9):
            lo, hi = hdi_bounds(roas, prob)
            row[f"covered_roas_{int(prob * 100)}"] = lo <= truth[ch]["roas"] <= hi
        row["roas_rel_error"] = (row["roas_mean"] - row["true_roas"]) / row["true_roas"]
        rows.append(row)
    return rows


def summarize(table: pd.DataFrame, converged_only: bool = True) -> str:
    """The error table: per scenario, channels (all / tested / untested), arm and library.

    Over the converged fits (max R-hat < ``MAX_RHAT``), or over every fit.
    """
    head = (
        "| scenario | channels | arm | library | channel × data set pairs | ROAS 50% | ROAS 90% "
        "| ROAS error: median abs. rel. | mean rel. (bias) |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    ok = table[table["converged"]] if converged_only else table
    for scenario, part in ok.groupby("scenario", sort=False):
        for scope, sel in (("all", part), ("tested", part[part["tested"]]), ("untested", part[~part["tested"]])):
            for arm in ARMS:
                for library in LIBRARIES:
                    cell = sel[(sel["arm"] == arm) & (sel["library"] == library)]
                    if cell.empty:
                        continue
                    lines.append(
                        f"| {scenario} | {scope} | {arm} | {library} | {len(cell)} | "
                        f"{cell['covered_roas_50'].mean():.0%} | {cell['covered_roas_90'].mean():.0%} | "
                        f"{cell['roas_rel_error'].abs().median():.0%} | {cell['roas_rel_error'].mean():+.0%} |"
                    )
    return "\n".join(lines)


def per_channel(table: pd.DataFrame) -> str:
    """Per scenario and channel: median abs. relative ROAS error and 90% coverage, four columns each."""
    cols = [(arm, lib) for arm in ARMS for lib in LIBRARIES]
    head = (
        "| scenario | channel | tested | "
        + " | ".join(f"{arm} {lib}: med. abs. err. / 90% cov." for arm, lib in cols)
        + " |\n|"
        + "---|" * (3 + len(cols))
    )
    lines = [head]
    ok = table[table["converged"]]
    for (scenario, channel), part in ok.groupby(["scenario", "channel"], sort=False):
        cells = []
        for arm, lib in cols:
            cell = part[(part["arm"] == arm) & (part["library"] == lib)]
            cells.append(
                f"{cell['roas_rel_error'].abs().median():.0%} / {cell['covered_roas_90'].mean():.0%} (n={len(cell)})"
                if len(cell)
                else ""
            )
        tested = "yes" if part["tested"].iloc[0] else "no"
        lines.append(f"| {scenario} | {channel} | {tested} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fits_markdown(fits: pd.DataFrame) -> str:
    """Per library and arm: fits ok / failed, not converged, with divergences, median wall."""
    lines = [
        "| scenario | arm | library | fits ok | failed | max R-hat ≥ 1.05 | with divergences | median wall s | "
        "median min bulk ESS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, arm, library), part in fits.groupby(["scenario", "arm", "library"], sort=False):
        ok = part[part["status"] == "ok"]
        lines.append(
            f"| {scenario} | {arm} | {library} | {len(ok)} | {len(part) - len(ok)} | "
            f"{int((ok['max_rhat'] >= MAX_RHAT).sum())} | {int((ok['divergences'] > 0).sum())} | "
            f"{ok['wall_s'].median():.1f} | {ok['min_ess_bulk'].median():.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", required=True, help="interpreter of PyMC-Marketing's environment")
    parser.add_argument("-k", type=int, default=10, help="data sets per scenario")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--ours", default="numpyro", help="our backend")
    parser.add_argument("--theirs", default="numpyro", help="PyMC-Marketing's nuts_sampler")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1, help="sampler seed of data set i: SEED + i (both libraries)")
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/peers-calibration"))
    parser.add_argument(
        "--score-only", action="store_true", help="score the data sets of OUT whose four fits are finished; fit nothing"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fits, rows = [], []
    for index in range(args.k):  # data set by data set, so a stopped run still scores both scenarios
        for scenario in args.scenarios:
            fits_dir = args.out / "fits"
            paths = {(a, lib): fits_dir / f"{scenario}-{index}-{lib}-{a}.json" for a in ARMS for lib in LIBRARIES}
            if args.score_only and not all(p.exists() for p in paths.values()):
                continue  # only data sets with all four fits: the same data sets for both libraries and arms
            data = simulate_set(scenario, index, args.out)
            for arm in ARMS:
                for library in LIBRARIES:  # interleaved: ours, theirs, ours, theirs
                    path = paths[arm, library]
                    if path.exists():
                        result = json.loads(path.read_text())
                    else:
                        result = fit(library, arm, data, args)
                        write_json(path, result)
                    fit_row = {"scenario": scenario, "index": index, "library": library, "arm": arm}
                    fit_row.update({k: result.get(k) for k in ("status", "wall_s", "max_rhat", "divergences")})
                    fit_row.update({"min_ess_bulk": result.get("min_ess_bulk"), "error": result.get("error")})
                    fits.append(fit_row)
                    print(json.dumps(fit_row), flush=True)
                    if result["status"] == "ok":
                        rows += error_rows(result, data, library, arm)
            table = pd.DataFrame(rows)
            write_text(args.out / "errors.csv", table.to_csv(index=False))
    fits_table = pd.DataFrame(fits)
    write_text(args.out / "fits.csv", fits_table.to_csv(index=False))
    sets = ", ".join(f"{k} {v}" for k, v in fits_table.groupby("scenario")["index"].nunique().items())
    text = (
        f"Data sets: {sets} (seeds 1000 + i); {args.chains} chains × {args.tune} tune × "
        f"{args.draws} draws, target_accept {args.target_accept}; ours {args.ours}, PyMC-Marketing {args.theirs}; "
        f"converged fits (max R-hat < {MAX_RHAT}); {(time.perf_counter() - t0) / 60:.1f} min.\n\n"
        + summarize(table)
        + "\n\n"
        + per_channel(table)
        + "\n\nEvery fit, non-converged included:\n\n"
        + summarize(table, converged_only=False)
        + "\n\n"
        + fits_markdown(fits_table)
        + "\n"
    )
    write_text(args.out / "errors.md", text)
    print("\n" + text)


if __name__ == "__main__":
    main()
