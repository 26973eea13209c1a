"""Recovery study on daily data with exposure, organic media, a treatment and events (issue 25).

Simulates ``--datasets`` data sets, alternating between two generators written
independently: bayesmmm's own simulator (the built-in ``daily_exposure`` scenario, seed
``SEED_BASE + i``) and ``benchmarks/external_daily.py`` (plain NumPy, unnormalized and
delayed adstock, Hill on raw exposure, cost regimes, Student-t noise). Both write the same
columns: 1092 days of conversions, search (spend, clicks), social (spend, impressions), tv
(spend only, flighted), newsletter sends (organic), a price index (treatment), a categorical
``event`` column and a revenue per conversion. Each data set is fitted in two arms, each from
an experiment YAML this script writes (``WORK/configs/``) and fits through the library
(:func:`bayesmmm.load_experiment` + :func:`bayesmmm.run_experiment`):

``daily``
    the data as they come, with the issue-25 keys: ``frequency: daily``, ``channels: {name:
    {spend, exposure}}``, ``revenue_per_kpi_column``, ``organic_columns``,
    ``treatment_columns`` (+ ``treatment_baseline: mean``) and ``event_columns``
    (the data block of the simulator's ``experiment.yaml``; model from the scenario's template).
    Needs the FREQ, EXPOSURE and ROLES work merged.
``weekly``
    what bayesmmm allowed before issue 25: days summed to weeks (Monday weeks), the target is
    revenue (conversions × revenue per conversion), channels on spend, newsletter sends and
    the price index (weekly mean) as linear controls, and the number of days of each sale
    level in the week as controls (text columns cannot be controls).

Reported per arm (and generator): the median absolute relative error of each channel's
revenue ROAS (posterior median against the truth, Σ_t contribution_t × revenue_per_kpi_t /
Σ_t spend_t), the coverage of the 90% HDI, divergences and R-hat. The ROAS read is the run's
``roas.csv`` (``roas_median``, ``roas_hdi_low``, ``roas_hdi_high``); for the daily arm the
posterior contributions × revenue per conversion / spend are computed here too
(``roas_components_median``), and a run whose ``roas.csv`` disagrees with them by more than
2% is flagged (``roas_csv_mismatch``): its roas.csv is then not revenue per unit of spend.

    OMP_NUM_THREADS=1 python benchmarks/daily_recovery.py --datasets 20 [--arms daily,weekly]
        [--generators simulator,external] [--chains 4 --draws 500 --tune 500] [--seed-base 2000]
        [-o benchmarks/results/daily_recovery] [--work runs/daily_recovery]

Writes ``OUT/recovery.csv`` (one row per fit × channel), ``OUT/summary.json`` and
``OUT/summary.md``; the data, configs and run folders go to ``--work`` (default
``runs/daily_recovery``, not committed). Finished runs are kept: running it again only fits
what is missing.
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
import yaml

from bayesmmm.config.experiment import apply_overrides, load_experiment
from bayesmmm.workflows.experiment import run_experiment
from bayesmmm.workflows.simulate import builtin_scenario, experiment_for, load_scenario, write_simulation

sys.path.insert(0, str(Path(__file__).resolve().parent))
import external_daily  # a script beside this one

SEED_BASE = 2000
ARMS = ("daily", "weekly")
GENERATORS = ("simulator", "external")
CHANNELS = {"search": "search_spend", "social": "social_spend", "tv": "tv_spend"}
EVENT_LEVELS = ("black_friday", "spring_sale", "summer_sale")
MISMATCH = 0.02
MAX_RHAT = 1.05


def study_scenario(variant: str = "base") -> Any:
    """The simulator's scenario: the built-in ``daily_exposure``; ``dark`` adds go-dark weeks to search
    and social (on for 8 weeks, off for 1, on average: flighted like tv), so that the data see their
    curves down to zero exposure. Everything else is unchanged."""
    scenario = load_scenario(builtin_scenario("daily_exposure"))
    if variant == "base":
        return scenario
    if variant != "dark":
        raise ValueError(f"variant must be base or dark, got {variant!r}")
    raw = scenario.model_dump()
    for name in ("search", "social"):
        raw["channels"][name]["spend"]["flighting"] = {"mean_on_weeks": 8.0, "mean_off_weeks": 1.0}
    return type(scenario).model_validate(raw)


def simulate_sets(
    n: int, out: Path, generators: list[str], seed_base: int, variant: str = "base"
) -> list[dict[str, Any]]:
    """Data set ``i``: generator ``generators[i % len]``, seed ``seed_base + i``; daily and weekly CSVs."""
    scenario = study_scenario(variant)
    sets = []
    for i in range(n):
        gen, seed = generators[i % len(generators)], seed_base + i
        folder = out / "data" / f"{gen}-{i:02d}"
        if not (folder / "truth.json").is_file():
            if gen == "simulator":
                write_simulation(scenario.model_copy(update={"seed": seed}), folder)
            else:
                external_daily.write(seed, folder)
        daily = pd.read_csv(folder / "data.csv")
        weekly_path = folder / "weekly.csv"
        if not weekly_path.is_file():
            to_weeks(daily).to_csv(weekly_path, index=False)
        sets.append({"generator": gen, "index": i, "seed": seed, "folder": folder})
    return sets


def to_weeks(daily: pd.DataFrame) -> pd.DataFrame:
    """Monday weeks: revenue, spends and sends summed, price averaged, days of each sale level counted."""
    frame = daily.copy()
    dates = pd.to_datetime(frame["date"])
    frame["week"] = (dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")).dt.strftime("%Y-%m-%d")
    frame["revenue"] = frame["conversions"] * frame["revenue_per_conversion"]
    for level in EVENT_LEVELS:
        frame[f"event_{level}"] = (frame["event"] == level).astype(float)
    sums = ["revenue", *CHANNELS.values(), "newsletter_sends", *(f"event_{lv}" for lv in EVENT_LEVELS)]
    weeks = frame.groupby("week").agg({**dict.fromkeys(sums, "sum"), "price_index": "mean", "date": "count"})
    complete = weeks["date"] == 7
    return weeks[complete].drop(columns="date").reset_index().rename(columns={"week": "date"})


def write_configs(
    s: dict[str, Any], out: Path, arms: list[str], sampler: dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Path]:
    """The experiment YAML of each arm for data set ``s`` (absolute data paths); ``overrides`` (dotted
    keys, ``--set``) change the daily arm's experiment."""
    scenario = load_scenario(builtin_scenario("daily_exposure"))
    folder: Path = s["folder"].resolve()
    tag = f"{s['generator']}-{s['index']:02d}"
    paths = {}
    common = {"output": {"hdi_prob": 0.9, "figures": False}, "diagnostics": {"on_fail": "warn"}}
    if "daily" in arms:
        config = experiment_for(scenario, str(folder / "data.csv"))
        config.update({"name": f"daily-{tag}", "sampler": sampler, **common})
        apply_overrides(config, overrides or {})
        paths["daily"] = out / "configs" / f"daily-{tag}.yaml"
    if "weekly" in arms:
        weekly = {
            "name": f"weekly-{tag}",
            "data": {
                "path": str(folder / "weekly.csv"),
                "date_column": "date",
                "target_column": "revenue",
                "channel_columns": list(CHANNELS.values()),
                "control_columns": ["newsletter_sends", "price_index", *(f"event_{lv}" for lv in EVENT_LEVELS)],
            },
            "model": {
                "adstock": {"name": "geometric", "l_max": 6},
                "saturation": {"name": "hill"},
                "yearly_seasonality": 2,
                "trend": "linear",
            },
            "sampler": sampler,
            **common,
        }
        paths["weekly"] = out / "configs" / f"weekly-{tag}.yaml"
    for arm, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config if arm == "daily" else weekly, sort_keys=False))
    return paths


def fit(config_path: Path, run_dir: Path) -> float:
    """Fit one experiment YAML into ``run_dir`` (kept if it already holds a finished run); wall seconds.

    The wall time of a finished run is kept in ``run_dir/wall_s.txt`` (NaN for runs without one).
    """
    wall_file = run_dir / "wall_s.txt"
    if (run_dir / "roas.csv").is_file():
        return float(wall_file.read_text()) if wall_file.is_file() else float("nan")
    t0 = time.perf_counter()
    run_experiment(load_experiment(config_path), run_dir)
    wall = time.perf_counter() - t0
    wall_file.write_text(f"{wall:.1f}\n")
    return wall


def components_roas(run_dir: Path, daily: pd.DataFrame) -> dict[str, np.ndarray]:
    """Daily arm: draws of Σ_t media_t × revenue_per_conversion_t / Σ_t spend_t per channel."""
    from bayesmmm.model.mmm import MMM

    media = MMM.load(run_dir).posterior_components()["media"]
    rpk = daily["revenue_per_conversion"].to_numpy()
    values = media.transpose("chain", "draw", "date", "channel").to_numpy()
    if values.shape[2] != len(rpk):
        raise ValueError(f"{run_dir}: {values.shape[2]} dates in the posterior, {len(rpk)} rows in the data")
    revenue = np.einsum("cdtk,t->cdk", values, rpk).reshape(-1, values.shape[-1])
    channels = [str(c) for c in media["channel"].to_numpy()]
    return {ch: revenue[:, k] / daily[CHANNELS[ch]].sum() for k, ch in enumerate(channels)}


def true_mroas(channel: dict[str, Any], rpk: np.ndarray, step: float = 0.01) -> float:
    """The TRUE marginal ROAS of a channel, as :func:`bayesmmm.decisions.response.marginal_roas` defines it.

    The return (valued by each day's revenue per conversion) of scaling the whole historical
    spend pattern by ``1 ± step`` (each day at its own cost per unit, so the exposure scales
    too), divided by the change in spend. Both generators' carry-overs are linear and their
    curves are Hill curves of the carried-over exposure, ``peak · a^s / (a^s + half^s)``, so
    the carried-over exposure ``a_t`` is recovered exactly from the true daily contribution
    and scales with the spend. Simulator: ``peak = beta``, ``half = kappa``, ``s = slope``
    (``a`` in units of the exposure scale); external generator: ``params`` ``peak``,
    ``half_saturation``, ``s``.
    """
    if "params" in channel:
        p = channel["params"]
        peak, half, slope = p["peak"], p["half_saturation"], p["s"]
    else:
        if channel["saturation"]["name"] != "hill":
            raise ValueError(f"true_mroas needs a Hill curve, got {channel['saturation']['name']!r}")
        peak, half, slope = channel["beta"], channel["saturation"]["kappa"], channel["saturation"]["slope"]
    h = np.clip(np.asarray(channel["period_contribution"], dtype=float) / peak, 0.0, 1.0 - 1e-12)
    a = half * (h / (1.0 - h)) ** (1.0 / slope)

    def curve(x: np.ndarray) -> np.ndarray:
        return peak * x**slope / (x**slope + half**slope)

    change = np.sum((curve(a * (1.0 + step)) - curve(a * (1.0 - step))) * rpk)
    return float(change / (2.0 * step * channel["spend"]))


def model_mroas(run_dir: Path) -> dict[str, np.ndarray]:
    """Posterior draws of each channel's marginal ROAS (the library's definition), keyed by channel name."""
    from bayesmmm.decisions.response import marginal_roas
    from bayesmmm.model.mmm import MMM

    m = marginal_roas(MMM.load(run_dir))
    flat = m.stack(sample=("chain", "draw")).transpose("channel", "sample").to_numpy()
    return {str(c): flat[k] for k, c in enumerate(m["channel"].to_numpy())}


def hdi90(draws: np.ndarray) -> tuple[float, float]:
    """The narrowest interval holding 90% of the draws."""
    x = np.sort(draws)
    n = len(x)
    k = int(np.floor(0.9 * n))
    widths = x[k:] - x[: n - k]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k])


def organic_recovery(s: dict[str, Any], run_dir: Path, diag: dict[str, Any]) -> dict[str, Any]:
    """The newsletter's total contribution (conversions over the data) against the truth: the run's
    ``roles.csv`` (posterior median, 90% HDI) and whether the identifiability check (``diag``) flagged it:
    prior-driven, or extrapolated (most of the contribution below the lowest activity the data show)."""
    true = json.loads((s["folder"] / "truth.json").read_text())["organic"]["newsletter"]["contribution"]
    roles = pd.read_csv(run_dir / "roles.csv").set_index("name")
    r = roles.loc["newsletter_sends"]
    ident = diag.get("identifiability", {})
    flagged = "newsletter_sends" in ident.get("organic_prior_driven", [])
    extrapolated = "newsletter_sends" in ident.get("organic_extrapolated", [])
    return {
        "organic_true": float(true),
        "organic_median": float(r["contribution_median"]),
        "organic_rel_error": float(r["contribution_median"]) / true - 1.0,
        "organic_covered_90": bool(r["contribution_hdi_low"] <= true <= r["contribution_hdi_high"]),
        "organic_prior_driven": bool(flagged),
        "organic_extrapolated": bool(extrapolated),
    }


def rows_for(s: dict[str, Any], arm: str, run_dir: Path, wall_s: float) -> list[dict[str, Any]]:
    truth = json.loads((s["folder"] / "truth.json").read_text())["channels"]
    roas = pd.read_csv(run_dir / "roas.csv")
    diag = json.loads((run_dir / "diagnostics.json").read_text())
    flagged = set(diag.get("identifiability", {}).get("prior_driven", []))
    from_components = components_roas(run_dir, pd.read_csv(s["folder"] / "data.csv")) if arm == "daily" else {}
    by_spend = {v: k for k, v in CHANNELS.items()}
    daily = pd.read_csv(s["folder"] / "data.csv")
    rpk = daily["revenue_per_conversion"].to_numpy()
    mroas = model_mroas(run_dir)
    organic = organic_recovery(s, run_dir, diag) if arm == "daily" else {}
    rows = []
    for r in roas.itertuples():
        channel = by_spend.get(r.channel, r.channel)
        true = truth[channel]["roas"]  # revenue per unit of spend
        row = {
            "arm": arm,
            "generator": s["generator"],
            "index": s["index"],
            "seed": s["seed"],
            "channel": channel,
            "true_roas": true,
            "roas_median": r.roas_median,
            "roas_mean": r.roas_mean,
            "roas_hdi_low": r.roas_hdi_low,
            "roas_hdi_high": r.roas_hdi_high,
            "rel_error": r.roas_median / true - 1.0,
            "covered_90": bool(r.roas_hdi_low <= true <= r.roas_hdi_high),
            "prior_driven": r.channel in flagged,
            "divergences": int(diag.get("divergences", 0)),
            "max_rhat": float(diag.get("max_rhat", np.nan)),
            "wall_s": wall_s,
            "roas_unit": getattr(r, "roas_unit", "target per unit of spend"),
            **organic,
        }
        draws = mroas[r.channel]
        true_m = true_mroas(truth[channel], rpk)
        lo, hi = hdi90(draws)
        row.update(
            {
                "true_mroas": true_m,
                "mroas_median": float(np.median(draws)),
                "mroas_hdi_low": lo,
                "mroas_hdi_high": hi,
                "mroas_rel_error": float(np.median(draws)) / true_m - 1.0,
                "mroas_covered_90": bool(lo <= true_m <= hi),
            }
        )
        if channel in from_components:
            med = float(np.median(from_components[channel]))
            row["roas_components_median"] = med
            row["roas_csv_mismatch"] = bool(abs(r.roas_median / med - 1.0) > MISMATCH)
        rows.append(row)
    return rows


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """Per arm, per arm × generator and per arm × channel: median |error|, coverage, divergences."""

    def block(part: pd.DataFrame) -> dict[str, Any]:
        fits = part.drop_duplicates(["arm", "generator", "index"])
        return {
            "fits": len(fits),
            "roas_median_abs_error": float(part["rel_error"].abs().median()),
            "roas_median_error": float(part["rel_error"].median()),
            "coverage_90": float(part["covered_90"].mean()),
            "divergences": int(fits["divergences"].sum()),
            "fits_with_divergences": int((fits["divergences"] > 0).sum()),
            "fits_rhat_above_1.05": int((fits["max_rhat"] > MAX_RHAT).sum()),
            "prior_driven_share": float(part["prior_driven"].mean()),
            "wall_s_median": float(fits["wall_s"].median()),
            "identified_rows": int((~part["prior_driven"].astype(bool)).sum()),
            "identified_median_abs_error": float(
                part.loc[~part["prior_driven"].astype(bool), "rel_error"].abs().median()
            ),
            "mroas_median_abs_error": float(part["mroas_rel_error"].abs().median())
            if "mroas_rel_error" in part
            else float("nan"),
            "mroas_coverage_90": float(part["mroas_covered_90"].astype(float).mean())
            if "mroas_covered_90" in part
            else float("nan"),
            **organic_block(fits),
        }

    out: dict[str, Any] = {}
    for arm, part in table.groupby("arm", sort=False):
        entry = block(part)
        entry["by_generator"] = {g: block(p) for g, p in part.groupby("generator")}
        entry["by_channel"] = {c: block(p) for c, p in part.groupby("channel")}
        if "roas_csv_mismatch" in part:
            entry["roas_csv_mismatch_rows"] = int(part["roas_csv_mismatch"].fillna(False).astype(bool).sum())
        out[str(arm)] = entry
    return out


def organic_block(fits: pd.DataFrame) -> dict[str, Any]:
    """The newsletter's recovery over fits (one row per fit); NaN where the rows have none (weekly arm,
    or rows scored before the columns existed)."""
    if "organic_rel_error" not in fits or fits["organic_rel_error"].isna().all():
        return {"organic_fits": 0, "organic_median_abs_error": float("nan"), "organic_coverage_90": float("nan")}
    part = fits.dropna(subset=["organic_rel_error"])
    return {
        "organic_fits": len(part),
        "organic_median_abs_error": float(part["organic_rel_error"].abs().median()),
        "organic_coverage_90": float(part["organic_covered_90"].astype(float).mean()),
        "organic_prior_driven_share": float(part["organic_prior_driven"].astype(float).mean()),
        **flag_block(part),
    }


def flag_block(part: pd.DataFrame) -> dict[str, Any]:
    """How many fits the check flagged (prior-driven or extrapolated), and how many of the 90% misses."""
    if "organic_extrapolated" not in part or part["organic_extrapolated"].isna().any():
        return {"organic_extrapolated_share": float("nan"), "organic_misses": -1, "organic_misses_flagged": -1}
    flagged = part["organic_prior_driven"].astype(bool) | part["organic_extrapolated"].astype(bool)
    missed = ~part["organic_covered_90"].astype(bool)
    return {
        "organic_extrapolated_share": float(part["organic_extrapolated"].astype(float).mean()),
        "organic_misses": int(missed.sum()),
        "organic_misses_flagged": int((missed & flagged).sum()),
    }


def markdown(summary: dict[str, Any], sampler: dict[str, Any]) -> str:
    lines = [
        "# Daily recovery study (issue 25)",
        "",
        f"Sampler: {sampler['chains']} chains × {sampler['draws']} draws + {sampler['tune']} tune. ROAS = revenue per"
        " unit of spend; error = posterior median / truth - 1; coverage of the 90% HDI.",
        "",
        "| arm | generator | channel | fits | median abs error | median error | 90% coverage | divergences "
        "(fits) | prior-driven | median abs error, not prior-driven (rows) | median wall s "
        "| mROAS median abs error | mROAS 90% coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(arm: str, gen: str, ch: str, b: dict[str, Any]) -> str:
        return (
            f"| {arm} | {gen} | {ch} | {b['fits']} | {b['roas_median_abs_error']:.1%} | {b['roas_median_error']:+.1%} "
            f"| {b['coverage_90']:.0%} | {b['divergences']} ({b['fits_with_divergences']}) "
            f"| {b['prior_driven_share']:.0%} | {b['identified_median_abs_error']:.1%} ({b['identified_rows']}) "
            f"| {b['wall_s_median']:.0f} | {b['mroas_median_abs_error']:.1%} "
            f"| {b['mroas_coverage_90']:.0%} |"
        )

    organic_lines = [
        "",
        "Organic (newsletter) total contribution, per fit: median abs error, 90% coverage, the identifiability "
        "check's flags (prior-driven; extrapolated: most of it below the lowest activity seen), and how many of "
        "the 90% misses carry either flag.",
        "",
        "| arm | generator | fits | median abs error | 90% coverage | prior-driven | extrapolated | misses flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, entry in summary.items():
        for gen, b in [("both", entry), *entry["by_generator"].items()]:
            if b.get("organic_fits"):
                organic_lines.append(
                    f"| {arm} | {gen} | {b['organic_fits']} | {b['organic_median_abs_error']:.1%} "
                    f"| {b['organic_coverage_90']:.0%} | {b['organic_prior_driven_share']:.0%} "
                    f"| {b['organic_extrapolated_share']:.0%} "
                    f"| {b['organic_misses_flagged']} of {b['organic_misses']} |"
                )
    for arm, entry in summary.items():
        lines.append(row(arm, "both", "all", entry))
        for gen, b in entry["by_generator"].items():
            lines.append(row(arm, gen, "all", b))
        for ch, b in entry["by_channel"].items():
            lines.append(row(arm, "both", ch, b))
        if entry.get("roas_csv_mismatch_rows"):
            lines.append(
                f"\n**{arm}: {entry['roas_csv_mismatch_rows']} rows where roas.csv differs from the posterior "
                f"contributions × revenue per conversion / spend by more than {MISMATCH:.0%}: roas.csv is not revenue "
                "ROAS there; check before quoting.**\n"
            )
    if len(organic_lines) > 5:
        lines += organic_lines
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=20, help="number of data sets (alternating generators)")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated: daily, weekly")
    parser.add_argument("--generators", default=",".join(GENERATORS), help="comma-separated: simulator, external")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--backend", default="auto")
    parser.add_argument(
        "--precondition", choices=["laplace", "none"], default="laplace", help="sampler.precondition of every fit"
    )
    parser.add_argument("--seed-base", type=int, default=SEED_BASE)
    parser.add_argument("--rescore", action="store_true", help="only rebuild the rows of finished runs (no new fits)")
    parser.add_argument(
        "--variant", default="base", help="simulator scenario: base (daily_exposure) or dark (go-dark weeks)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change the daily arm's experiment (dotted key, YAML value), e.g. model.organic.saturation.name=logistic",
    )
    parser.add_argument("--summarize", action="store_true", help="only rewrite the summaries from OUT/fits")
    parser.add_argument("--only", default="", help="comma-separated data set indices to fit (default: all)")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/daily_recovery"))
    parser.add_argument(
        "--work", type=Path, default=Path("runs/daily_recovery"), help="data, configs and run folders (large)"
    )
    args = parser.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    generators = [g for g in args.generators.split(",") if g]
    if set(arms) - set(ARMS) or set(generators) - set(GENERATORS):
        parser.error(f"--arms from {ARMS}, --generators from {GENERATORS}")
    sampler = {
        "backend": args.backend,
        "chains": args.chains,
        "draws": args.draws,
        "tune": args.tune,
        "seed": 1,
        "progressbar": False,
        "precondition": args.precondition,
    }
    out, work = args.out, args.work
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    (out / "fits").mkdir(parents=True, exist_ok=True)
    only = {int(v) for v in args.only.split(",") if v} if args.only else None
    sets = [
        s
        for s in simulate_sets(args.datasets, work, generators, args.seed_base, args.variant)
        if only is None or s["index"] in only
    ]
    meta = {
        "variant": args.variant,
        "datasets": args.datasets,
        "arms": arms,
        "generators": generators,
        "sampler": sampler,
        "overrides": overrides,
    }
    if args.summarize:
        print(write_outputs(out, meta, sampler))
        return
    for s in sets:
        configs = write_configs(s, work, arms, sampler, overrides)
        for arm in arms:
            tag = f"{arm}-{s['generator']}-{s['index']:02d}"
            row_file = out / "fits" / f"{tag}.csv"
            if row_file.is_file() and not args.rescore:
                continue
            if args.rescore and not (work / "runs" / tag / "roas.csv").is_file():
                continue
            run_dir = work / "runs" / tag
            try:
                wall = fit(configs[arm], run_dir)
                new = rows_for(s, arm, run_dir, wall)
            except Exception as exc:  # one failed fit is reported, the study goes on
                (out / "fits" / f"{tag}.failed.json").write_text(json.dumps({"error": str(exc)}, indent=2))
                print(f"{tag}: FAILED: {exc}", flush=True)
                continue
            for r in new:
                r.update({k: sampler[k] for k in ("chains", "draws", "tune")})
            pd.DataFrame(new).to_csv(row_file, index=False)
            errors = ", ".join(
                f"{r['channel']} {r['rel_error']:+.0%}{'' if r['covered_90'] else ' (miss)'}" for r in new
            )
            print(f"{tag}: {errors}; divergences {new[0]['divergences']}; {wall:.0f} s", flush=True)
            write_outputs(out, meta, sampler)
    print(write_outputs(out, meta, sampler))


def write_outputs(out: Path, meta: dict[str, Any], sampler: dict[str, Any]) -> str:
    """Gather every finished fit's rows (``OUT/fits/*.csv``, any process) into recovery.csv and the summaries."""
    files = sorted((out / "fits").glob("*.csv"))
    failures = [
        {"fit": f.name.removesuffix(".failed.json"), **json.loads(f.read_text())}
        for f in sorted((out / "fits").glob("*.failed.json"))
        if not (out / "fits" / f.name.replace(".failed.json", ".csv")).is_file()
    ]
    meta = {**meta, "failed_fits": failures}
    if not files:
        (out / "summary.json").write_text(json.dumps(meta, indent=2))
        return f"no fit finished ({len(failures)} failed): see {out / 'summary.json'}"
    table = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    table.to_csv(out / "recovery.csv.tmp", index=False)
    (out / "recovery.csv.tmp").replace(out / "recovery.csv")
    summary = summarize(table)
    (out / "summary.json").write_text(json.dumps({**meta, "arms_summary": summary}, indent=2))
    text = markdown(summary, sampler)
    if failures:
        text += f"\n**{len(failures)} fits failed** (summary.json, failed_fits): they are not in the table above.\n"
    (out / "summary.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
