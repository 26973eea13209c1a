"""Geo coverage study: are the per-geo intervals of a geo model calibrated against known truth?

Simulates geo panels of 2, 5 and 10 geos (``--sizes``) from the built-in ``geo_panel``
scenario, ``--panels`` per size with their own seeds, each with its OWN heterogeneity drawn
from wide ranges that are not the model's prior: the spread of the true channel effects
across geos (``beta_sd_log`` 0.15–0.6), of the geos' sizes (``population_sd_log`` 0.3–0.9),
their noise (sd ∝ size^power, power 0–1: the lower, the noisier small geos are relative to
their sales; extra log-normal spread 0–0.6) and base levels (log spread 0–0.3). Fits each
panel with the geo model of each ``--variant`` and reports, per variant and panel size: the
coverage of the true per-geo ROAS (= contribution / spend, so the same as the true
contribution's) by the 50% and 90% HDIs (misses: truth above / below the interval), the
national ROAS coverage, median absolute relative error of the per-geo and national
contributions, divergences, max R-hat and wall time::

    python benchmarks/geo_coverage_study.py -o runs/geo_coverage --variant before after
    python benchmarks/geo_coverage_study.py -o runs/geo_coverage_noisy --sizes 5 \
        --fix noise_size_power=0 population_sd_log=1 --variant before after

Variants: ``before`` is the geo model as it was (one noise scale for all geos in per-geo
scaled units, non-centered log-effect deviations); ``after`` the current defaults (one noise
scale per geo, zero-sum log-effect deviations); the others change one thing at a time.
``--fix KEY=VALUE`` sets a heterogeneity for every panel instead of drawing it (use its own
``-o``). One JSON per fit under ``OUT/fits``: finished fits are kept, so a rerun (or a larger
``--panels``) only fits what is missing. Writes ``OUT/geo_coverage.csv`` (one row per fit ×
geo × channel), ``OUT/geo_coverage_fits.csv`` and ``OUT/geo_coverage_summary.md``.
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

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.evaluation.criteria import loo_summary
from bayesmmm.evaluation.divergences import divergence_locations
from bayesmmm.evaluation.summaries import diagnostics, roas_geo_table, roas_table
from bayesmmm.io import write_text
from bayesmmm.model.mmm import MMM
from bayesmmm.workflows.simulate import ScenarioConfig, builtin_scenario, load_scenario, simulate

sys.path.insert(0, str(Path(__file__).parent))
from external_geo import external_geo_panel

#: geo options of each model variant (``model.geo``)
VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"sigma": "shared", "beta_pooling": "noncentered"},
    "after": {},
    # one change at a time (the diagnosis)
    "per_geo_noncentered": {"sigma": "per_geo", "beta_pooling": "noncentered"},
    "shared_zerosum": {"sigma": "shared", "beta_pooling": "zerosum"},
    "wide_spread": {"sigma": "per_geo", "beta_pooling": "noncentered", "beta_sigma": 1.5},
    "pooled_baseline": {"sigma": "per_geo", "beta_pooling": "noncentered", "trend": "pooled", "seasonality": "pooled"},
    # issue 25 (external generator): one change at a time against the current defaults
    "shared_saturation": {"saturation": "shared"},  # the defaults before issue 25
    "saturation_pooled": {"saturation": "pooled"},
    "adstock_pooled": {"adstock": "pooled"},
    "transforms_pooled": {"adstock": "pooled", "saturation": "pooled"},
    "wide_beta": {"beta_sigma": 1.5},
    "per_capita": {},
    "hill": {},
    "baseline_pooled": {"trend": "pooled", "seasonality": "pooled"},
    "student_t": {},
    "beta_sigma_1": {"beta_sigma": 1.0},
    "beta_sigma_1_saturation_pooled": {"beta_sigma": 1.0, "saturation": "pooled"},
    "transforms_pooled_wide_beta": {"adstock": "pooled", "saturation": "pooled", "beta_sigma": 1.0},
    "transforms_pooled_wide_param": {"adstock": "pooled", "saturation": "pooled", "param_sigma": 0.5},
    "transforms_pooled_hill": {"adstock": "pooled", "saturation": "pooled"},
    "saturation_pooled_wide_param": {"saturation": "pooled", "param_sigma": 0.5},
    "saturation_pooled_zerosum": {"saturation": "pooled", "param_sigma": 0.5, "param_pooling": "zerosum"},
    "saturation_pooled_fixed": {
        "saturation": "pooled",
        "param_sigma": 0.5,
        "param_pooling": "zerosum",
        "param_spread": "fixed",
    },
    # the stop-33 candidates against the defaults (saturation pooled, fixed spread 0.5, zero-sum)
    "transforms_pooled_fixed": {"adstock": "pooled", "saturation": "pooled"},
    "mm_pooled_fixed": {"saturation": "pooled"},
}

# stop 37: the defaults with the effects' spread fixed too (their divergences sit on the beta / beta_geo_sigma ridge)
VARIANTS["beta_spread_fixed"] = {**VARIANTS["saturation_pooled_fixed"], "beta_spread": "fixed"}

#: data / model options of a variant beyond ``model.geo``
EXTRA: dict[str, dict[str, dict[str, Any]]] = {
    "per_capita": {"data": {"population_column": "population"}},
    "hill": {"model": {"saturation": "hill"}},
    "transforms_pooled_hill": {"model": {"saturation": "hill"}},
    "student_t": {"model": {"likelihood": "student_t"}},
    "mm_pooled_fixed": {"model": {"saturation": "michaelis_menten"}},
}


def panel_scenario(
    n_geos: int, index: int, weeks: int, fixed: dict[str, float] | None = None
) -> tuple[ScenarioConfig, dict[str, float]]:
    """The ``index``-th panel of ``n_geos`` geos: its seed and its own heterogeneity (``fixed``
    overrides some of the drawn values, e.g. ``{"noise_size_power": 0.0}``)."""
    seed = 5000 + 100 * n_geos + index
    rng = np.random.default_rng([seed, 3])
    het = {
        "beta_sd_log": float(rng.uniform(0.15, 0.6)),
        "population_sd_log": float(rng.uniform(0.3, 0.9)),
        "noise_size_power": float(rng.uniform(0.0, 1.0)),
        "noise_sd_log": float(rng.uniform(0.0, 0.6)),
        "base_sd_log": float(rng.uniform(0.0, 0.3)),
    }
    het.update(fixed or {})
    scenario = load_scenario(builtin_scenario("geo_panel"))
    geos = scenario.geos.model_copy(update={"n": n_geos, **het})
    return scenario.model_copy(update={"seed": seed, "n_weeks": weeks, "geos": geos}), het


def external_panel(
    n_geos: int, index: int, weeks: int, channels: int, fixed: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict, dict[str, Any]]:
    """The ``index``-th panel of ``n_geos`` geos from the independent generator (:mod:`external_geo`):
    its frame, truth and the generator options drawn for it (per-geo effects log-normal, or uniform on
    every third panel; spread of the effects and of the geo sizes; noise power)."""
    seed = 7000 + 100 * n_geos + index
    rng = np.random.default_rng([seed, 5])
    het = {
        "effect_sd_log": float(rng.uniform(0.4, 0.9)),
        "size_sd_log": float(rng.uniform(0.7, 1.2)),
        "noise_power": float(rng.uniform(0.3, 0.8)),
    }
    options: dict[str, Any] = {
        "effect": "uniform" if index % 3 == 2 else "lognormal",
        "effect_sd_log": het["effect_sd_log"],
        "size_sd_log": het["size_sd_log"],
        "noise_power": het["noise_power"],
    }
    options.update(fixed or {})
    frame, truth = external_geo_panel(n_geos, channels, weeks, seed, **options)
    return frame, truth, options


def fit_panel(
    frame: pd.DataFrame, truth: dict, channels: list[str], variant: str, sampler: SamplerConfig, l_max: int = 6
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit one panel with one variant: per geo × channel rows (truth, 50% and 90% HDIs) and fit facts."""
    mmm, wall = fit_model(frame, channels, variant, sampler, l_max)
    return score_panel(mmm, mmm.posterior_components(), truth, wall)


def fit_stacked(
    frame: pd.DataFrame, truth: dict, channels: list[str], variants: list[str], sampler: SamplerConfig, l_max: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit one panel with each of ``variants`` and score the mixture of their posteriors by their PSIS-LOO
    stacking weights (:mod:`bayesmmm.evaluation.stacking`, as ``bayesmmm select`` writes on a tie)."""
    import arviz_stats as az

    from bayesmmm.evaluation.criteria import loo
    from bayesmmm.evaluation.stacking import stack_components

    fitted = [fit_model(frame, channels, v, sampler, l_max) for v in variants]
    models = [m for m, _ in fitted]
    weights = az.compare({v: loo(m.idata) for v, m in zip(variants, models, strict=True)}, method="stacking")["weight"]
    w = [float(weights[v]) for v in variants]
    mixed = stack_components([m.posterior_components() for m in models], w, n_draws=4000)
    rows, facts = score_panel(models[0], mixed, truth, sum(t for _, t in fitted))
    diags = [diagnostics(m.idata) for m in models]
    facts.update(
        {
            "stack_weights": w,
            "divergences": int(sum(d["divergences"] for d in diags)),
            "max_rhat": max(d["max_rhat"] for d in diags),
            "min_ess_bulk": min(d["min_ess_bulk"] for d in diags),
            "elpd_loo": float("nan"),
            "elpd_loo_se": float("nan"),
        }
    )
    return rows, facts


def fit_model(
    frame: pd.DataFrame, channels: list[str], variant: str, sampler: SamplerConfig, l_max: int
) -> tuple[MMM, float]:
    """One variant's model fitted to a panel, and the fit's wall seconds."""
    extra = EXTRA.get(variant, {})
    mmm = MMM(
        {"channel_columns": channels, "target_column": "sales", "geo_column": "geo", **extra.get("data", {})},
        {
            "adstock": {"name": "geometric", "l_max": l_max},
            "saturation": "logistic",
            "yearly_seasonality": 1,
            "geo": VARIANTS[variant],
            **extra.get("model", {}),
        },
    )
    t0 = time.perf_counter()
    mmm.fit(frame, sampler)
    return mmm, time.perf_counter() - t0


def score_panel(mmm: MMM, comps: Any, truth: dict, wall: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per geo × channel rows (truth, 50% and 90% HDIs) and fit facts of a fitted model, its ROAS read
    from ``comps`` (its own posterior components, or a stacked mixture)."""
    rows = roas_geo_table(mmm, 0.9, comps)
    half = roas_geo_table(mmm, 0.5, comps)
    rows["roas_hdi50_low"], rows["roas_hdi50_high"] = half["roas_hdi_low"], half["roas_hdi_high"]
    rows["true_roas"] = [
        truth["geos"][g]["channels"][c]["roas"] for g, c in zip(rows["geo"], rows["channel"], strict=True)
    ]
    rows["true_contribution"] = [
        truth["geos"][g]["channels"][c]["contribution"] for g, c in zip(rows["geo"], rows["channel"], strict=True)
    ]
    nat = roas_table(mmm, 0.9, comps)
    nat_half = roas_table(mmm, 0.5, comps)
    true_nat = np.array([truth["channels"][c]["roas"] for c in nat["channel"]])
    true_nat_contribution = np.array([truth["channels"][c]["contribution"] for c in nat["channel"]])
    diag = diagnostics(mmm.idata)
    loo = loo_summary(mmm.idata)
    facts = {
        "elpd_loo": loo["elpd"],
        "elpd_loo_se": loo["se"],
        "divergences": diag["divergences"],
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "wall_s": round(wall, 1),
        "backend": (mmm.timings or {}).get("backend"),
        "national_cover90": float(np.mean((nat["roas_hdi_low"] <= true_nat) & (true_nat <= nat["roas_hdi_high"]))),
        "national_cover50": float(
            np.mean((nat_half["roas_hdi_low"] <= true_nat) & (true_nat <= nat_half["roas_hdi_high"]))
        ),
        "national_abs_err": np.abs(nat["contribution_mean"].to_numpy() / true_nat_contribution - 1).tolist(),
        # where the divergent draws sit (empty without divergences)
        "divergence_summary": divergence_locations(mmm.idata)["summary"] if diag["divergences"] else "",
    }
    return rows, facts


def add_selected(table: pd.DataFrame, fits: pd.DataFrame, a: str, b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``table`` and ``fits`` with the variant ``select_{a}_{b}``: per panel the fit of ``a`` or ``b``
    with the higher PSIS-LOO elpd (panels lacking either fit, or its elpd, are left out)."""
    key = ["geos", "panel"]
    both = fits[fits["variant"].isin([a, b])].dropna(subset=["elpd_loo"])
    both = both[both.groupby(key)["variant"].transform("nunique") == 2]
    best = both.loc[both.groupby(key)["elpd_loo"].idxmax()]
    name = f"select_{a}_{b}"
    chosen = best[[*key, "variant"]]
    rows = table.merge(chosen, on=[*key, "variant"]).assign(variant=name)
    print(f"{name}: {a} chosen on {int((best['variant'] == a).sum())} of {len(best)} panels")
    return pd.concat([table, rows], ignore_index=True), pd.concat([fits, best.assign(variant=name)], ignore_index=True)


def covered(t: pd.DataFrame, level: str = "") -> pd.Series:
    return (t[f"roas_hdi{level}_low"] <= t["true_roas"]) & (t["true_roas"] <= t[f"roas_hdi{level}_high"])


def interval_score(low: pd.Series, high: pd.Series, truth: pd.Series, prob: float) -> pd.Series:
    """The interval score of a central ``prob`` interval (Gneiting & Raftery 2007, eq. 43): its width plus
    ``2 / (1 - prob)`` times the distance by which it misses the truth; lower is better, and unlike coverage
    it cannot be improved by widening every interval."""
    penalty = 2.0 / (1.0 - prob)
    return (high - low) + penalty * (np.clip(low - truth, 0, None) + np.clip(truth - high, 0, None))


def panel_bootstrap(part: pd.DataFrame, column: str, prob: float = 0.9, n: int = 4000) -> str:
    """A ``prob`` interval of the mean of ``column`` over ``part``'s rows, resampling whole panels (a panel's
    pairs share its data and its fit, so they are not independent): ``"[low, high]"``."""
    counts = part.groupby("seed")[column].agg(["sum", "count"]).to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    draws = counts[rng.integers(0, len(counts), (n, len(counts)))].sum(axis=1)
    low, high = np.quantile(draws[:, 0] / draws[:, 1], [(1 - prob) / 2, (1 + prob) / 2])
    return f"[{low:.3f}, {high:.3f}]"


def summarize(table: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """One row per variant × panel size (and an "all" row per variant); ``geo_median_width90`` and
    ``geo_median_score90`` are the medians of the 90% ROAS interval's width and interval score
    (:func:`interval_score`), each over the pair's true ROAS."""
    table = table.assign(
        cover90=covered(table),
        cover50=covered(table, "50"),
        abs_err=np.abs(table["contribution_mean"] / table["true_contribution"] - 1),
        truth_above=table["true_roas"] > table["roas_hdi_high"],
        truth_below=table["true_roas"] < table["roas_hdi_low"],
        width90=(table["roas_hdi_high"] - table["roas_hdi_low"]) / table["true_roas"],
        score90=interval_score(table["roas_hdi_low"], table["roas_hdi_high"], table["true_roas"], 0.9)
        / table["true_roas"],
    )
    out = []
    for (variant, size), part in [
        *table.groupby(["variant", "geos"]),
        *table.assign(geos="all").groupby(["variant", "geos"]),
    ]:
        f = fits[(fits["variant"] == variant) & ((fits["geos"] == size) if size != "all" else True)]
        out.append(
            {
                "variant": variant,
                "geos": size,
                "panels": len(f),
                "pairs": len(part),
                "geo_cover90": part["cover90"].mean(),
                "geo_cover90_panel_ci": panel_bootstrap(part, "cover90"),
                "geo_cover50": part["cover50"].mean(),
                "miss90_truth_above/below": f"{int(part['truth_above'].sum())}/{int(part['truth_below'].sum())}",
                "geo_median_abs_err": part["abs_err"].median(),
                "geo_median_width90": part["width90"].median(),
                "geo_median_score90": part["score90"].median(),
                "national_cover90": f["national_cover90"].mean(),
                "national_cover50": f["national_cover50"].mean(),
                "national_median_abs_err": float(np.median(np.concatenate(f["national_abs_err"].to_list()))),
                "divergences": int(f["divergences"].sum()),
                "max_rhat": f["max_rhat"].max(),
                "median_wall_s": f["wall_s"].median(),
            }
        )
    return pd.DataFrame(out)


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (3 significant digits for floats)."""

    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _value(text: str) -> Any:
    """A ``--fix`` value: a number, true/false, or a string (e.g. ``saturation_units=own``)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/geo_coverage"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--panels", type=int, default=4, help="panels per size")
    parser.add_argument("--variant", nargs="+", choices=list(VARIANTS), default=["before", "after"])
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument(
        "--generator",
        choices=["ours", "external"],
        default="ours",
        help="panels from our simulator (the geo_panel scenario) or the independent one (benchmarks/external_geo.py)",
    )
    parser.add_argument("--channels", type=int, default=4, help="channels of the external generator's panels")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--mass-matrix", default="auto", choices=["auto", "diag", "dense"])
    parser.add_argument(
        "--fix",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="heterogeneity fixed for every panel instead of drawn, e.g. noise_size_power=0 population_sd_log=1",
    )
    parser.add_argument("--no-fit", action="store_true", help="summarize the finished fits only; fit nothing")
    parser.add_argument(
        "--stack",
        nargs="+",
        choices=list(VARIANTS),
        help="also fit these variants afresh on each panel and score the mixture of their posteriors by their "
        "PSIS-LOO stacking weights (variant stack_A_B)",
    )
    parser.add_argument(
        "--select",
        nargs=2,
        metavar=("A", "B"),
        help="add the variant select_A_B: per panel, whichever of variants A and B has the higher PSIS-LOO elpd "
        "(what `bayesmmm select` would pick)",
    )
    args = parser.parse_args()
    fixed = {k: _value(v) for k, v in (item.split("=", 1) for item in args.fix)}
    sampler = SamplerConfig(
        backend=args.backend,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        mass_matrix=args.mass_matrix,
        seed=1,
        progressbar=False,
    )
    (args.out / "fits").mkdir(parents=True, exist_ok=True)
    tables, fits = [], []
    for index in range(args.panels):
        for size in args.sizes:
            if args.generator == "external":
                frame, truth, het = external_panel(size, index, args.weeks, args.channels, fixed)
                channels, l_max, seed = list(truth["channels"]), 8, 7000 + 100 * size + index
            else:
                scenario, het = panel_scenario(size, index, args.weeks, fixed)
                frame, truth = simulate(scenario)
                channels, l_max, seed = list(scenario.channels), 6, scenario.seed
            stacked = [f"stack_{'_'.join(args.stack)}"] if args.stack else []
            for variant in [*args.variant, *stacked]:
                path = args.out / "fits" / f"{variant}-{size}-{index}.json"
                if path.exists():
                    record = json.loads(path.read_text())
                elif args.no_fit:
                    continue
                else:
                    if variant in stacked:
                        rows, facts = fit_stacked(frame, truth, channels, args.stack, sampler, l_max)
                    else:
                        rows, facts = fit_panel(frame, truth, channels, variant, sampler, l_max)
                    record = {"facts": facts, "heterogeneity": het, "rows": rows.to_dict(orient="list")}
                    write_text(path, json.dumps(record))
                    print(variant, size, index, json.dumps({k: facts[k] for k in ("divergences", "wall_s")}))
                meta = {"variant": variant, "geos": size, "panel": index, "seed": seed}
                tables.append(pd.DataFrame(record["rows"]).assign(**meta))
                fits.append({**meta, **record["heterogeneity"], **record["facts"]})
    table, fit_table = pd.concat(tables, ignore_index=True), pd.DataFrame(fits)
    if args.select:
        table, fit_table = add_selected(table, fit_table, *args.select)
    table.to_csv(args.out / "geo_coverage.csv", index=False)
    fit_table.drop(columns="national_abs_err").to_csv(args.out / "geo_coverage_fits.csv", index=False)
    summary = summarize(table, fit_table)
    text = markdown(summary)
    write_text(args.out / "geo_coverage_summary.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
