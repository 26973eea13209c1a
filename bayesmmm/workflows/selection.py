"""Functional-form selection: fit a grid of candidates and rank them.

Criteria (:mod:`bayesmmm.evaluation.criteria`), all computed from the pointwise
log-likelihood in original units: PSIS-LOO, WAIC, BIC, and

- **Time-series hold-out**: refit on the first ``T - h`` periods (``holdout_weeks`` counts
  periods of the data's frequency: days of daily data, months of monthly data), predict the last ``h``
  (adstock carried over): RMSE, MAPE, CRPS of the predictive draws and coverage of the
  90% interval.
- **Time-slice cross-validation** (``criterion: cv``): rolling-origin folds
  (:mod:`bayesmmm.workflows.validate`, ``cv_folds`` folds of ``cv_horizon`` weeks); ranked by
  ``cv_crps``, the mean CRPS over the folds.
- **Stacking weights** over LOO (ArviZ's ``compare``); ``elpd_diff`` is this candidate's ELPD
  minus the best one's (≤ 0, ArviZ 1.x convention) and ``dse`` the SE of that difference.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ExperimentConfig, ModelConfig, SelectionConfig
from bayesmmm.evaluation.criteria import PARETO_K_WARN, bic, crps, holdout_scores, loo, loo_figures, waic

__all__ = [
    "COMPARISON_COLUMNS",
    "bic",
    "candidate_configs",
    "compare_runs",
    "crps",
    "holdout_scores",
    "loo",
    "loo_ties",
    "run_selection",
    "ties_warning",
    "waic",
    "write_stacked",
]

#: candidates with a smaller stacking weight are left out of the stacked ROAS tables
STACK_MIN_WEIGHT = 0.01

COMPARISON_COLUMNS = [
    "adstock",
    "saturation",
    "rank",
    "elpd",
    "se",
    "elpd_diff",
    "dse",
    "p_loo",
    "waic",
    "bic",
    "holdout_rmse",
    "holdout_mape",
    "holdout_crps",
    "cv_crps",
    "max_pareto_k",
    "weight",
]


def candidate_configs(config: ExperimentConfig) -> list[tuple[str, ModelConfig]]:
    """Every combination of the ``selection:`` block's options, applied to ``config.model``."""
    sel = config.selection or SelectionConfig()
    base = config.model
    axes: dict[str, list[Any]] = {
        "adstock": sel.adstock or [base.adstock.name],
        "saturation": sel.saturation or [base.saturation.name],
        "l_max": sel.l_max or [base.adstock.l_max],
        "yearly_seasonality": sel.yearly_seasonality or [base.yearly_seasonality],
        "trend": sel.trend or [base.trend],
        "likelihood": sel.likelihood or [base.likelihood],
    }
    out = []
    for values in itertools.product(*axes.values()):
        v = dict(zip(axes, values, strict=True))
        adstock = base.adstock.model_dump() if v["adstock"] == base.adstock.name else {"name": v["adstock"]}
        adstock.update({"name": v["adstock"], "l_max": v["l_max"], "normalize": base.adstock.normalize})
        saturation = (
            base.saturation.model_dump() if v["saturation"] == base.saturation.name else {"name": v["saturation"]}
        )
        model = base.model_copy(
            update={
                "adstock": type(base.adstock).model_validate(adstock),
                "saturation": type(base.saturation).model_validate(saturation),
                "yearly_seasonality": v["yearly_seasonality"],
                "trend": v["trend"],
                # a trend's settings belong to it: other candidate trends take their defaults
                "trend_options": base.trend_options if v["trend"] == base.trend else {},
                "likelihood": v["likelihood"],
            }
        )
        extra = [f"{k}={v[k]}" for k in list(axes)[2:] if len(axes[k]) > 1]
        name = "+".join([v["adstock"], v["saturation"], *extra])
        out.append((name, ModelConfig.model_validate(model.model_dump())))
    return out


@dataclass
class _Task:
    name: str
    config: dict[str, Any]
    run_dir: str
    holdout_weeks: int
    hdi_prob: float
    cv_folds: int = 0  # rolling-origin folds (criterion cv); 0: none
    cv_horizon: int = 0


def _run_candidate(task: _Task) -> dict[str, Any]:
    """Fit one candidate (full data and hold-out) and return its criteria; errors are captured."""
    from bayesmmm.data.loading import read_csv
    from bayesmmm.workflows.distributed import worker_cores
    from bayesmmm.workflows.experiment import run_experiment

    start = time.perf_counter()
    model = task.config.get("model") or {}
    row: dict[str, Any] = {"candidate": task.name, "run_dir": task.run_dir}
    try:  # validation too: on a Dask worker it imports the plugins, which can fail there
        config = ExperimentConfig.model_validate(task.config)
        if config.sampler.cores is None:  # on a Dask worker: its share of its own host's cores
            config.sampler = config.sampler.model_copy(update={"cores": min(worker_cores(), config.sampler.chains)})
        model = config.model.model_dump(mode="json")
        frame = read_csv(config.data.source_path)
        result = run_experiment(config, task.run_dir, frame=frame)
        row.update(_criteria(result.model.idata))
        row["divergences"] = result.diagnostics["divergences"]
        row["max_rhat"] = result.diagnostics["max_rhat"]
        if task.holdout_weeks:
            row.update(_holdout(config, frame, task.holdout_weeks, task.hdi_prob))
        if task.cv_folds:
            from bayesmmm.workflows.validate import cv_scores

            row.update(cv_scores(config, frame, task.cv_folds, task.cv_horizon))
        row["status"] = "ok"
    except Exception as exc:  # one failing candidate never stops the others
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
    adstock, saturation = model.get("adstock") or {}, model.get("saturation") or {}
    row.update(
        {
            "adstock": adstock.get("name") if isinstance(adstock, dict) else adstock,
            "saturation": saturation.get("name") if isinstance(saturation, dict) else saturation,
            "l_max": adstock.get("l_max") if isinstance(adstock, dict) else None,
            "yearly_seasonality": model.get("yearly_seasonality"),
            "trend": model.get("trend"),
            "likelihood": model.get("likelihood"),
        }
    )
    row["wall_s"] = round(time.perf_counter() - start, 2)
    return row


def _criteria(idata: Any) -> dict[str, Any]:
    res = loo(idata)
    w = waic(idata)
    return {**loo_figures(res), "waic": w["waic"], "p_waic": w["p_waic"], "bic": bic(idata), "_loo": res}


def _holdout(config: ExperimentConfig, frame: pd.DataFrame, weeks: int, prob: float) -> dict[str, float]:
    from bayesmmm.data.frequency import period_name
    from bayesmmm.data.loading import frame_to_data
    from bayesmmm.model.mmm import MMM

    data = frame_to_data(frame, config.data)
    if weeks >= data.n_dates // 2:
        periods = period_name(data.frequency, plural=True)
        raise ValueError(
            f"holdout_weeks={weeks} leaves too little training data ({data.n_dates} {periods} in all; "
            f"holdout_weeks counts {periods})"
        )
    dates = pd.to_datetime(frame[config.data.date_column])
    cutoff = data.dates[-weeks]
    train, test = frame[dates < cutoff], frame[dates >= cutoff]
    from bayesmmm.workflows.validate import lift_tests_before

    mmm = MMM(config.data, config.model, lift_tests=lift_tests_before(config, cutoff))
    mmm.fit(train, config.sampler.model_copy(update={"progressbar": False}))
    pred = mmm.predict(test, noise=True, seed=config.sampler.seed or 0)
    observed = frame_to_data(test, config.data).target
    draws = pred["y"].to_numpy().reshape(-1, len(observed))
    return holdout_scores(draws, observed, prob)


def _rank(rows: list[dict[str, Any]], criterion: str) -> pd.DataFrame:
    import arviz_stats as az  # arviz re-exports these; its plotting half costs 0.35 s to import

    ok = [r for r in rows if r.get("status") == "ok"]
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_loo"} for r in rows])
    for col in COMPARISON_COLUMNS:
        if col not in table:
            table[col] = np.nan
    if not ok:
        return table
    if len(ok) > 1:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmp = az.compare({r["candidate"]: r["_loo"] for r in ok}, method="stacking", round_to="none")
        table = table.set_index("candidate")
        table.loc[cmp.index, "elpd_diff"] = cmp["elpd_diff"].astype(float)
        table.loc[cmp.index, "dse"] = cmp["dse"].astype(float)
        table.loc[cmp.index, "weight"] = cmp["weight"].astype(float)
        table = table.reset_index()
    else:
        table.loc[table["status"] == "ok", ["elpd_diff", "dse", "weight"]] = [0.0, 0.0, 1.0]
    key, ascending = {
        "loo": ("elpd", False),
        "waic": ("waic", True),
        "bic": ("bic", True),
        "holdout": ("holdout_crps", True),
        "cv": ("cv_crps", True),
    }[criterion]
    order = table[key].rank(ascending=ascending, method="min")
    table["rank"] = order.fillna(len(table) + 1).astype(int)
    table = table.sort_values(["rank", "candidate"]).reset_index(drop=True)
    first = [c for c in ["candidate", *COMPARISON_COLUMNS] if c in table]
    return table[first + [c for c in table.columns if c not in first]]


def run_selection(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> pd.DataFrame:
    """Fit every candidate of ``config.selection`` and write ``out_dir/comparison.csv`` (+ plot).

    Each candidate's run folder is kept under ``out_dir/runs/<candidate>``; the best one
    is named in ``out_dir/best.json``. With ``jobs > 1`` (default: ``selection.jobs``) or a
    Dask ``scheduler`` address, candidates run as tasks on the distributed engine
    (:mod:`bayesmmm.workflows.distributed`), each sampling its chains on its share of the cores.
    """
    from bayesmmm.io import write_json, write_text

    sel = config.selection or SelectionConfig()
    out_dir = Path(out_dir)
    candidates = candidate_configs(config)
    jobs = max(1, min(jobs or sel.jobs, len(candidates)))
    tasks = []
    for name, model in candidates:
        cfg = config.model_copy(update={"model": model, "selection": None, "name": f"{config.name or 'select'}-{name}"})
        cfg.sampler = cfg.sampler.model_copy(update={"progressbar": False})
        task = _Task(
            name,
            cfg.model_dump(mode="json"),
            str(out_dir / "runs" / name),
            sel.holdout_weeks,
            config.output.hdi_prob,
            sel.cv_folds if sel.criterion == "cv" else 0,
            sel.cv_horizon,
        )
        tasks.append(task)
    log(f"Selecting among {len(tasks)} candidates ({jobs} at a time), criterion {sel.criterion}")
    from bayesmmm.progress import progress

    bar = progress(total=len(tasks), desc="candidates", unit="fit")  # on a terminal, unless -q

    def done(row: dict[str, Any]) -> None:
        bar.update()
        log(_describe(row))

    with bar:
        if jobs == 1 and scheduler is None:
            rows = []
            for task in tasks:
                rows.append(_run_candidate(task))
                done(rows[-1])
        else:
            from bayesmmm.workflows.distributed import dask_client, map_tasks

            with dask_client(scheduler, None if scheduler else jobs) as client:
                rows = map_tasks(_run_candidate, tasks, client, on_result=lambda _i, row: done(row))
            rows = [{**r, "candidate": r.get("candidate", t.name)} for r, t in zip(rows, tasks, strict=True)]
    table = _rank(rows, sel.criterion)
    write_text(out_dir / "comparison.csv", table.to_csv(index=False))
    ok = table[table["status"] == "ok"]
    ties = loo_ties(table)
    if len(ok):
        best = ok.iloc[0]
        record = {"candidate": best["candidate"], "run_dir": best["run_dir"], "criterion": sel.criterion}
        write_json(out_dir / "best.json", {**record, "tied_by_loo": ties} if ties else record)
        from bayesmmm.reporting.plots import plot_comparison

        plot_comparison(table, out_dir / "comparison.png")
    for row in rows:
        if row.get("status") == "ok" and row.get("n_high_pareto_k"):
            log(
                f"warning: {row['candidate']}: {row['n_high_pareto_k']} periods with Pareto k > {PARETO_K_WARN}; "
                "LOO is unreliable there"
            )
    if ties:
        log(ties_warning(ties))
    if (ok["weight"] >= STACK_MIN_WEIGHT).sum() >= 2:
        try:  # the ranking is written; a candidate whose model will not load must not undo it
            written = write_stacked(table, out_dir, config.output.hdi_prob)
        except Exception as exc:
            log(f"warning: no stacked ROAS ({type(exc).__name__}: {exc})")
        else:
            log(f"Stacked ROAS of the candidates by their stacking weights: {', '.join(map(str, written))}")
    return table


def write_stacked(table: pd.DataFrame, out_dir: str | Path, hdi_prob: float = 0.9, n_draws: int = 4000) -> list[Path]:
    """Write ``out_dir/roas_stacked.csv`` (and ``roas_geo_stacked.csv`` for geo models): the ROAS of the
    mixture of the candidates' posteriors by their stacking weights (:mod:`bayesmmm.evaluation.stacking`;
    candidates with weight >= :data:`STACK_MIN_WEIGHT`, renormalized), the weights in the national table's
    ``stacked_from`` column. :func:`run_selection` writes them whenever two candidates have such a weight.
    Returns the paths written."""
    from bayesmmm.evaluation.stacking import stacked_roas_tables
    from bayesmmm.io import write_text
    from bayesmmm.model.mmm import MMM

    ok = table[(table["status"] == "ok") & (table["weight"] >= STACK_MIN_WEIGHT)]
    models = [MMM.load(Path(str(d))) for d in ok["run_dir"]]
    weights = ok["weight"].astype(float).to_numpy()
    national, geo = stacked_roas_tables(models, weights, hdi_prob, n_draws)
    national["stacked_from"] = "; ".join(f"{c} {w:.2f}" for c, w in zip(ok["candidate"], weights, strict=True))
    out_dir = Path(out_dir)
    paths = [out_dir / "roas_stacked.csv"]
    write_text(paths[0], national.to_csv(index=False))
    if geo is not None:
        paths.append(out_dir / "roas_geo_stacked.csv")
        write_text(paths[1], geo.to_csv(index=False))
    return paths


def loo_ties(table: pd.DataFrame, z: float = 2.0) -> dict[str, Any] | None:
    """The candidates PSIS-LOO does not separate from the best and how far apart their ROAS are.

    A candidate ties with the best when its ELPD is less than ``z`` standard errors of the difference
    below (``-elpd_diff <= z * dse``). Forms that fit the observed periods equally well can still
    extrapolate differently (e.g. two one-parameter saturations below the observed spend), and then
    the form, not the data, decides the ROAS. Reads each tied candidate's ``roas.csv``.

    Returns
    -------
    ``None`` when fewer than two candidates tie (or LOO was not computed), else ``{"candidates",
    "elpd_diff", "dse", "weight", "roas_mean": {candidate: {channel: value}}, "channel" (the channel whose
    ROAS differ most), "max_relative_spread" ((max - min) / |best's value| over the tied candidates)}``.
    """
    ok = table[(table["status"] == "ok") & table["elpd"].notna() & table["dse"].notna()]
    if len(ok) < 2:
        return None
    ok = ok.sort_values("elpd", ascending=False)
    tied = ok[-ok["elpd_diff"] <= z * ok["dse"]]
    roas: dict[str, dict[str, float]] = {}
    for row in tied.itertuples():
        path = Path(str(row.run_dir)) / "roas.csv"
        if path.exists():
            frame = pd.read_csv(path)
            roas[row.candidate] = dict(zip(frame["channel"], frame["roas_mean"].astype(float), strict=True))
    names = [n for n in tied["candidate"] if n in roas]
    if len(names) < 2:
        return None
    spreads = {}
    for channel, ref in roas[names[0]].items():
        values = [roas[n].get(channel, np.nan) for n in names]
        if np.isfinite(values).all() and ref != 0:
            spreads[channel] = (max(values) - min(values)) / abs(ref)
    if not spreads:
        return None
    channel = max(spreads, key=spreads.get)
    rows = tied.set_index("candidate").loc[names]
    return {
        "candidates": names,
        "elpd_diff": rows["elpd_diff"].astype(float).to_dict(),
        "dse": rows["dse"].astype(float).to_dict(),
        "weight": rows["weight"].astype(float).to_dict(),
        "roas_mean": {n: roas[n] for n in names},
        "channel": channel,
        "max_relative_spread": float(spreads[channel]),
    }


def ties_warning(ties: dict[str, Any]) -> str:
    """The one-line warning of :func:`loo_ties`'s result."""
    names, channel = ties["candidates"], ties["channel"]
    gaps = ", ".join(f"{n} {ties['elpd_diff'][n]:.1f} ± {ties['dse'][n]:.1f}" for n in names[1:])
    values = " against ".join(f"{ties['roas_mean'][n][channel]:.3g}" for n in names)
    weights = " / ".join(f"{ties['weight'][n]:.2f}" for n in names)
    return (
        f"warning: LOO does not separate {' and '.join(names)} (ELPD differences to the best within 2 SE: "
        f"{gaps}); their ROAS differ by up to {ties['max_relative_spread']:.0%} ({channel}: {values}), a "
        f"difference their forms decide, not the data. Report both, or weigh them by their stacking weights "
        f"({weights}); a lift test on {channel} would tell them apart"
    )


def _describe(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"  {row['candidate']}: FAILED {row.get('error')}"
    hold = f", hold-out CRPS {row['holdout_crps']:.4g}" if "holdout_crps" in row else ""
    if "cv_crps" in row:
        hold += f", CV CRPS {row['cv_crps']:.4g} (coverage {row['cv_coverage']:.0%})"
    fit = f"elpd {row['elpd']:.1f} ± {row['se']:.1f}, BIC {row['bic']:.1f}"
    if row.get("divergences") or row.get("max_rhat", 1.0) > 1.05:
        fit += f" [check convergence: {row['divergences']} divergences, max R-hat {row['max_rhat']:.2f}]"
    return f"  {row['candidate']}: {fit}{hold} ({row['wall_s']:.0f} s)"


def compare_runs(run_dirs: list[str | Path], criterion: str = "loo") -> pd.DataFrame:
    """Rank already-fitted run folders by LOO (and WAIC, BIC; hold-out columns are empty)."""
    from bayesmmm.model.mmm import MMM

    rows = []
    names = [Path(d).name for d in run_dirs]
    if len(set(names)) != len(names):
        names = [str(d) for d in run_dirs]
    for name, run_dir in zip(names, run_dirs, strict=True):
        mmm = MMM.load(run_dir)  # refuses unfinished run folders
        rows.append(
            {
                "candidate": name,
                "adstock": mmm.model_config.adstock.name,
                "saturation": mmm.model_config.saturation.name,
                "run_dir": str(run_dir),
                "status": "ok",
                **_criteria(mmm.idata),
            }
        )
    return _rank(rows, criterion)
