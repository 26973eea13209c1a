"""bayesmmm vs Google Meridian on simulated reach & frequency data with known truth (issue 27's must-show).

Run through nox (``nox -s bench_meridian_rf``), which installs ``google-meridian[jax]`` in its own
virtualenv and passes that interpreter as ``--meridian-python``; our fits run in this interpreter,
through the ``bayesmmm`` CLI (set ``PYTHONPATH`` to a checkout to measure it).

For each seed the built-in scenario ``reach_frequency`` (104 weeks; ``youtube`` bought as reach and
frequency, true Hill slope 2.5 and half saturation at frequency 2, so a true optimal frequency of
2·1.5^(1/2.5) ≈ 2.35; ``search`` and ``tv`` on spend) is simulated into ``WORK/seedS/`` (``data.csv``,
``truth.json``, ``experiment.yaml``, as ``bayesmmm simulate`` writes them). Both libraries read the
experiment's data block, through the code paths of ``benchmarks/meridian_side_by_side.py``:

- **Meridian** (``benchmarks/meridian_fit.py``): ``youtube`` as an R&F channel (``reach``, ``frequency``,
  ``rf_spend``), ``search`` and ``tv`` as media whose impressions are their spend, ``kpi_type="revenue"``
  (the simulated sales are revenue), its default ``ModelSpec()``; ROI from ``Analyzer.roi()``, the optimal
  frequency from ``Analyzer.optimal_freq()`` (a point: the argmax of the posterior mean ROI on the grid
  1, 1.1, ... up to the largest frequency in the data). ``--knots N`` sets ``ModelSpec(knots=N)`` (Meridian's
  national default is 1 knot: a constant baseline, no trend or seasonality).
- **bayesmmm**: ``bayesmmm -q fit experiment.yaml`` (the scenario's experiment: ``data.channels.youtube:
  {spend, reach, frequency}``, geometric adstock, Hill saturation, ROAS priors) with the same chains and
  warm-up / kept draws (``tune = n_adapt + n_burnin``, ``draws = n_keep``), then ``bayesmmm -q report
  RUN_DIR`` for ``rf.csv`` (the same point by the same definition, and the HDI of the per-draw argmax).
  Both processes are timed from launch to exit.

Against the truth (``truth.json``): per channel the ROI / ROAS mean and 90% HDI, whether the HDI covers
the true ROAS; for ``youtube`` the optimal frequency. Writes to ``--out`` (default
``benchmarks/results/meridian_rf``): ``meridian_seedS.json``, ``bayesmmm_seedS.json``, ``roi.csv`` (every
channel of every fit, with the truth), ``frequency.csv`` and ``side_by_side.md``. ``--only`` fits one
side; ``--tables`` fits nothing and rebuilds the tables from the stored JSON.

    nox -s bench_meridian_rf -- [--seeds 2700 2701 2702] [--n-chains 4 --n-adapt 500 --n-burnin 500 --n-keep 500]
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/meridian_rf.py --only bayesmmm
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meridian_side_by_side import ROOT, fit_bayesmmm, fit_meridian, shown_path, thread_env, write_json

SCENARIO = "reach_frequency"
SEEDS = [2700, 2701, 2702]


def simulate_seed(seed: int, work: Path) -> Path:
    """``work/seedS/experiment.yaml`` (with ``data.csv`` and ``truth.json`` beside it) of scenario seed ``seed``."""
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation

    folder = work / f"seed{seed}"
    if not (folder / "experiment.yaml").exists():
        scenario = load_scenario(builtin_scenario(SCENARIO)).model_copy(update={"seed": seed})
        write_simulation(scenario, folder)
    return folder / "experiment.yaml"


def report_rf(result: dict, args: argparse.Namespace) -> dict:
    """Add ``rf.csv``'s rows (``bayesmmm -q report RUN_DIR``, a fresh process, timed) to a bayesmmm result."""
    from bayesmmm.workflows.bench import process_failure, run_process

    if result.get("status") != "ok":
        return result
    run_dir = Path(result["run_dir"])
    command = [sys.executable, "-c", "from bayesmmm.cli import run; run()", "-q", "report", str(run_dir)]
    proc, seconds = run_process(command, thread_env(args.threads), args.timeout)
    if proc is None or proc.returncode != 0 or not (run_dir / "rf.csv").exists():
        return {**result, "report": process_failure(proc, seconds, args.timeout)}
    rows = pd.read_csv(run_dir / "rf.csv").to_dict(orient="records")
    summary = pd.read_csv(run_dir / "summary.csv", index_col=0)
    for row in rows:  # the frequency curve's posterior (Hill: half saturation rf_ec, slope rf_slope)
        for v in ("rf_ec", "rf_slope"):
            row[f"{v}_mean"] = float(summary.loc[f"{v}[{row['channel']}]", "mean"])
            row[f"{v}_std"] = float(summary.loc[f"{v}[{row['channel']}]", "sd"])
    return {**result, "report_s": seconds, "rf": rows}


def truth_rows(experiment: Path) -> dict[str, dict]:
    """Per channel of the simulation beside ``experiment``: its true ROAS (and optimal frequency for R&F)."""
    truth = json.loads((experiment.parent / "truth.json").read_text())
    return {
        name: {
            "roas_true": t["roas"],
            **({"optimal_frequency_true": t["optimal_frequency"]} if "optimal_frequency" in t else {}),
        }
        for name, t in truth["channels"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meridian-python", help="interpreter of Meridian's environment (nox passes it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--only", choices=["meridian", "bayesmmm"], help="fit one side only (default: both)")
    parser.add_argument("--n-chains", type=int, default=4)
    parser.add_argument("--n-adapt", type=int, default=500, help="Meridian's adaptation draws per chain")
    parser.add_argument("--n-burnin", type=int, default=500, help="Meridian's burn-in draws per chain")
    parser.add_argument("--n-keep", type=int, default=500, help="kept draws per chain (bayesmmm's draws)")
    parser.add_argument(
        "--knots", type=int, help="Meridian's ModelSpec(knots=N) (default: its default, 1 knot on national data)"
    )
    parser.add_argument("--hdi-prob", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads each fit may use")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per fit")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "meridian_rf")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-meridian-rf"), help="data and run folders")
    parser.add_argument("--tables", action="store_true", help="fit nothing: rebuild the tables from the stored JSON")
    args = parser.parse_args()
    if args.tables:
        args.out.mkdir(parents=True, exist_ok=True)
        write_tables(args.out)
        return
    if args.only != "bayesmmm" and not args.meridian_python:
        parser.error("--meridian-python is required unless --only bayesmmm (run through `nox -s bench_meridian_rf`)")
    args.out.mkdir(parents=True, exist_ok=True)
    args.nox_session = "bench_meridian_rf"  # the command the Meridian results record
    args.model_spec = {"knots": args.knots} if args.knots else None
    for seed in args.seeds:
        experiment = simulate_seed(seed, args.work)
        args.seed = seed  # the sampler's seed is the data set's
        name = f"seed{seed}"
        truth = truth_rows(experiment)
        if args.only != "bayesmmm":
            result = {**fit_meridian(name, experiment, args), "model_spec": args.model_spec or {}, "truth": truth}
            write_json(args.out / f"meridian_{name}.json", result)
            print(json.dumps({k: v for k, v in result.items() if k not in ("roi", "optimal_frequency")}), flush=True)
        if args.only != "meridian":
            result = {**report_rf(fit_bayesmmm(name, experiment, args), args), "truth": truth}
            write_json(args.out / f"bayesmmm_{name}.json", result)
            print(json.dumps({k: v for k, v in result.items() if k not in ("roi", "rf")}), flush=True)
    write_tables(args.out)


def roi_frame(results: list[dict]) -> pd.DataFrame:
    """One row per fit × channel: ROI mean / median / HDI, the truth, the relative error and coverage."""
    rows = []
    for r in results:
        if r.get("status") != "ok":
            continue
        for roi in r["roi"]:
            true = r["truth"][roi["channel"]]["roas_true"]
            rows.append(
                {
                    "dataset": r["dataset"],
                    "library": r["library"],
                    **roi,
                    "roi_true": true,
                    "roi_rel_error": roi["roi_mean"] / true - 1.0,
                    "hdi_covers_truth": bool(roi["roi_hdi_low"] <= true <= roi["roi_hdi_high"]),
                }
            )
    return pd.DataFrame(rows)


def frequency_frame(results: list[dict]) -> pd.DataFrame:
    """One row per fit × R&F channel: the optimal frequency (and bayesmmm's HDI) against the truth."""
    rows = []
    for r in results:
        if r.get("status") != "ok":
            continue
        found = r.get("optimal_frequency") if r["library"] == "meridian" else r.get("rf")
        for f in found or []:
            true = r["truth"][f["channel"]]["optimal_frequency_true"]
            row = {"dataset": r["dataset"], "library": r["library"], "channel": f["channel"], "true": true}
            row["optimal_frequency"] = float(f["optimal_frequency"])
            if r["library"] == "bayesmmm":
                row["hdi_low"] = float(f["optimal_frequency_hdi_low"])
                row["hdi_high"] = float(f["optimal_frequency_hdi_high"])
                row["roi_at_optimal"] = float(f["roas_at_optimal"])
            else:
                row["roi_at_optimal"] = float(f["roi_at_optimal_mean"])
            prefix = "rf_" if r["library"] == "bayesmmm" else ""
            suffix = "" if r["library"] == "bayesmmm" else "_rf"
            for what in ("ec", "slope"):  # the frequency curve's posterior, where the fit recorded it
                for stat in ("mean", "std"):
                    key = f"{prefix}{what}{suffix}_{stat}"
                    row[f"{what}_{stat}"] = float(f[key]) if key in f else float("nan")
            row["error"] = row["optimal_frequency"] - true
            rows.append(row)
    return pd.DataFrame(rows)


def _extreme(results: list[dict], key: str, pick, fmt: str) -> str:
    """``pick`` (max or min) of ``key`` over the fits that report it (R-hat needs 2 chains), else "–"."""
    values = [r[key] for r in results if r.get(key) is not None]
    return format(pick(values), fmt) if values else "–"


def _fit_cell(r: dict | None) -> str:
    if r is None:
        return "not run"
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('error', '')}"[:200]
    report = f" + report {r['report_s']:.0f} s" if r.get("report_s") is not None else ""
    cpu = f", {r['cpu_s']:.0f} CPU s" if r.get("cpu_s") is not None else ""
    sample = f" (sampling {r['sample_s']:.0f} s)" if r.get("sample_s") is not None else ""
    spec = "".join(f", {k}={v}" for k, v in (r.get("model_spec") or {}).items())
    return (
        f"{r['wall_s']:.0f} s{sample}{cpu}{report}, load {r.get('load_average_1min_at_start')}{spec}; "
        f"R-hat {r['max_rhat']}, min ESS {_extreme([r], 'min_ess_bulk', min, '.0f')}, {r['divergences']} div"
    )


def write_tables(out: Path) -> None:
    """``roi.csv``, ``frequency.csv`` and ``side_by_side.md`` from the JSON files in ``out``."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*_seed*.json"))]
    roi, freq = roi_frame(results), frequency_frame(results)
    if not roi.empty:
        roi.to_csv(out / "roi.csv", index=False)
    if not freq.empty:
        freq.to_csv(out / "frequency.csv", index=False)
    by = {(r["library"], r["dataset"]): r for r in results}
    lines = []
    for dataset in sorted({r["dataset"] for r in results}):
        theirs, ours = by.get(("meridian", dataset)), by.get(("bayesmmm", dataset))
        any_fit = theirs or ours
        lines += [
            f"### {dataset} ({shown_path(Path(any_fit['experiment']))})",
            "",
            f"- Meridian: {_fit_cell(theirs)}",
            f"- bayesmmm: {_fit_cell(ours)}",
            "",
            "| channel | true ROAS | Meridian ROI mean [90% HDI] | bayesmmm ROAS mean [90% HDI] |",
            "|---|---|---|---|",
        ]
        sub = roi[roi["dataset"] == dataset] if not roi.empty else roi
        for channel in sorted(set(sub["channel"])) if not sub.empty else []:
            cells = []
            for library in ("meridian", "bayesmmm"):
                row = sub[(sub["channel"] == channel) & (sub["library"] == library)]
                r = row.iloc[0] if len(row) else None
                cells.append(
                    "" if r is None else f"{r['roi_mean']:.2f} [{r['roi_hdi_low']:.2f}, {r['roi_hdi_high']:.2f}]"
                )
            true = sub[sub["channel"] == channel]["roi_true"].iloc[0]
            lines.append(f"| {channel} | {true:.2f} | " + " | ".join(cells) + " |")
        fsub = freq[freq["dataset"] == dataset] if not freq.empty else freq
        for _, f in fsub.iterrows():
            hdi = f" [{f['hdi_low']:.1f}, {f['hdi_high']:.1f}]" if f["library"] == "bayesmmm" else ""
            curve = (
                f"; posterior Hill half saturation {f['ec_mean']:.2f} ± {f['ec_std']:.2f}, "
                f"slope {f['slope_mean']:.2f} ± {f['slope_std']:.2f} (true 2, 2.5)"
                if f["ec_mean"] == f["ec_mean"]
                else ""
            )
            lines.append(
                f"\n{f['library']} optimal frequency of {f['channel']}: {f['optimal_frequency']:.1f}{hdi} "
                f"(true {f['true']:.2f}; ROI there {f['roi_at_optimal']:.2f}{curve})"
            )
        lines.append("")
    fits = [r for r in results if r.get("status") == "ok"]
    if fits:
        lines += [
            "### Fits (loaded-machine times: compare CPU seconds)",
            "",
            "| library | fits | median whole process (s) | median CPU s | median sampling (s) | median report (s) "
            "| max R-hat | min bulk ESS | divergences |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for library in ("meridian", "bayesmmm"):
            mine = [r for r in fits if r["library"] == library]
            if not mine:
                continue

            def median(values: list) -> str:
                values = [v for v in values if v is not None]
                return f"{pd.Series(values).median():.0f}" if values else "–"

            sample = [r.get("sample_s", (r.get("timings") or {}).get("sample_s")) for r in mine]
            draws = sum(r["n_chains"] * r.get("n_keep", r.get("draws", 0)) for r in mine)
            lines.append(
                f"| {library} | {len(mine)} | {median([r['wall_s'] for r in mine])} "
                f"| {median([r.get('cpu_s') for r in mine])} | {median(sample)} "
                f"| {median([r.get('report_s') for r in mine])} | {_extreme(mine, 'max_rhat', max, '.3f')} "
                f"| {_extreme(mine, 'min_ess_bulk', min, '.0f')} "
                f"| {sum(r['divergences'] or 0 for r in mine)} of {draws} draws |"
            )
        lines.append("")
    if not roi.empty:
        lines += [
            "### Over the data sets",
            "",
            "| library | channel | median abs ROI error | mean ROI error | HDI covers |",
        ]
        lines.append("|---|---|---|---|---|")
        for (library, channel), g in roi.groupby(["library", "channel"]):
            lines.append(
                f"| {library} | {channel} | {g['roi_rel_error'].abs().median():.1%} | {g['roi_rel_error'].mean():+.1%} "
                f"| {int(g['hdi_covers_truth'].sum())}/{len(g)} |"
            )
        lines.append("")
    if not freq.empty:
        lines += ["| library | channel | optimal f: true | estimates | median abs error | bayesmmm's HDI covers |"]
        lines.append("|---|---|---|---|---|---|")
        for (library, channel), g in freq.groupby(["library", "channel"]):
            covers = (
                f"{int(((g['hdi_low'] - 0.05 <= g['true']) & (g['true'] <= g['hdi_high'] + 0.05)).sum())}/{len(g)}"
                if "hdi_low" in g and g["hdi_low"].notna().all()
                else "–"
            )
            estimates = ", ".join(f"{v:.1f}" for v in g["optimal_frequency"])
            lines.append(
                f"| {library} | {channel} | {g['true'].iloc[0]:.2f} | {estimates} | {g['error'].abs().median():.2f} "
                f"| {covers} |"
            )
        lines.append("")
    (out / "side_by_side.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
