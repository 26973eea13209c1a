"""Stakeholder artifacts: the optimization folder and the self-contained HTML report.

- :func:`write_optimization` writes ``OUT/allocation.csv``, ``OUT/summary.json``,
  ``OUT/allocation.png`` (and ``scenarios.csv``/``scenarios.png``) as one atomic folder,
  and points ``RUN_DIR/latest_optimization.json`` at it.
- :func:`write_report` writes ``RUN_DIR/report.html`` (every figure embedded as a
  base64 PNG, so the page opens offline), ``RUN_DIR/insights.json``,
  ``RUN_DIR/insights.csv`` (per channel: ROAS, marginal ROAS, status),
  ``RUN_DIR/response_curves.csv`` (and ``organic_response_curves.csv`` for organic media; ``rf.csv`` and
  ``rf_surface.csv`` for reach & frequency channels: :mod:`bayesmmm.decisions.reach`),
  ``RUN_DIR/decomposition.csv`` (organic media, treatments and event levels by their kind) and the figures under
  ``RUN_DIR/figures/``; a refreshed run (``bayesmmm refresh``: ``changes.csv``) gets a "What
  changed" section. The page is rendered from the Jinja2 template
  ``bayesmmm/reporting/templates/report.html.j2`` with autoescape on: names from the data (channels,
  geos, components, the experiment's name) are shown as text, never interpreted as markup.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from bayesmmm.data.frequency import period_name
from bayesmmm.io import atomic_run_dir, write_json, write_text

if TYPE_CHECKING:
    from bayesmmm.decisions.optimizer import OptimizationResult

__all__ = ["LATEST_OPTIMIZATION", "OPTIMIZATION_MARKER", "write_optimization", "write_report"]

OPTIMIZATION_MARKER = "summary.json"
LATEST_OPTIMIZATION = "latest_optimization.json"


# ------------------------------------------------------------------ optimization
def write_optimization(
    result: OptimizationResult,
    out: str | Path,
    *,
    scenarios: pd.DataFrame | None = None,
    run_dir: str | Path | None = None,
    figures: bool = True,
) -> Path:
    """Write an optimization folder atomically; optionally record it as the run's latest.

    Parameters
    ----------
    result : from :func:`~bayesmmm.decisions.optimizer.optimize_budget`.
    out : folder to create (an earlier optimization folder there is replaced).
    scenarios : the table of :func:`~bayesmmm.decisions.optimizer.run_scenarios`, if any.
    run_dir : the run folder the model came from; gets ``latest_optimization.json``.
    figures : also write ``allocation.png`` (and ``scenarios.png``).
    """
    from bayesmmm.reporting import plots

    out = Path(out)
    with atomic_run_dir(out, marker=OPTIMIZATION_MARKER, kind="optimization") as tmp:
        result.allocation.to_csv(tmp / "allocation.csv", index=False)
        if scenarios is not None:
            scenarios.to_csv(tmp / "scenarios.csv", index=False)
        if figures:
            plots.plot_allocation(result.allocation, tmp / "allocation.png")
            if scenarios is not None and len(scenarios) > 1:
                plots.plot_scenarios(scenarios, tmp / "scenarios.png")
        summary = {**result.summary, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
        write_json(tmp / OPTIMIZATION_MARKER, summary)  # written last: marks the folder finished
    if run_dir is not None:
        write_json(
            Path(run_dir) / LATEST_OPTIMIZATION,
            {"path": str(out.resolve()), "created_at": summary["created_at"]},
        )
    return out


def _optimization_folder(run_dir: Path, optimization: str | Path | None) -> Path | None:
    from bayesmmm.model.mmm import ModelFileError

    if optimization is None:
        pointer = run_dir / LATEST_OPTIMIZATION
        if not pointer.exists():
            return None
        try:
            optimization = json.loads(pointer.read_text())["path"]
        except (ValueError, KeyError, TypeError):
            raise ModelFileError(f"{pointer} is not a valid pointer file; delete it or pass --optimization") from None
        if not (Path(optimization) / OPTIMIZATION_MARKER).exists():
            return None  # the folder was moved or deleted since: report without it
    path = Path(optimization)
    if not (path / OPTIMIZATION_MARKER).exists():
        raise ModelFileError(
            f"{path} is not an optimization folder (no {OPTIMIZATION_MARKER}); run `bayesmmm optimize`"
        )
    return path


# ------------------------------------------------------------------------ report
TEMPLATE = "report.html.j2"  # bayesmmm/reporting/templates/, rendered with autoescape on


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _percent(x: Any, digits: int = 0) -> str:
    return f"{float(x):.{digits}%}"


def _signed_percent(x: Any) -> str:
    return f"{float(x):+.0%}" if np.isfinite(float(x)) else "–"


def _fit_figure(mmm: Any, run_dir: Path, path: Path, hdi_prob: float, run_hdi_prob: float, comps: Any) -> Path:
    """The fit figure: the run's own ``fit.png`` (drawn at ``run_hdi_prob``) when that is this HDI
    probability, else drawn."""
    from bayesmmm.io import atomic_path
    from bayesmmm.reporting import plots

    drawn = run_dir / "fit.png"
    if drawn.is_file() and run_hdi_prob == hdi_prob:
        with atomic_path(path) as tmp:
            tmp.write_bytes(drawn.read_bytes())
        return path
    return plots.plot_fit(mmm, path, hdi_prob, comps)


def _environment():
    """The Jinja2 environment of the report: package templates, autoescape on, the number filters."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("bayesmmm.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_num, percent=_percent, signed_percent=_signed_percent)
    return env


def _optimization_context(folder: Path) -> dict[str, Any]:
    summary = json.loads((folder / OPTIMIZATION_MARKER).read_text())
    resp, up = summary["response"], summary["uplift_vs_current"]
    figures = [
        (_data_uri(folder / name), alt)
        for name, alt in (("allocation.png", "allocation before and after"), ("scenarios.png", "budget scenarios"))
        if (folder / name).exists()
    ]
    return {
        "budget": summary["budget"],
        "weeks": summary["weeks"],
        "periods": period_name(summary.get("frequency", "weekly"), plural=True),
        "geo": summary.get("geo"),
        "objective": summary["objective"],
        "risk": summary.get("risk"),
        "current": _mlh(resp["current"]),
        "equal_split": _mlh(resp["equal_split"]),
        "optimized": _mlh(resp["optimized"]),
        "uplift": _mlh(up),
        "prob_positive": up["prob_positive"],
        "fraction_reallocated": summary["fraction_reallocated"],
        "pct": f"{summary['hdi_prob']:.0%}",
        "allocation": pd.read_csv(folder / "allocation.csv").to_dict("records"),
        "figures": figures,
        "folder": str(folder),
        "created_at": summary.get("created_at", "?"),
        # optimizations written before exposure channels: the response was in the target's units
        "response_unit": summary.get("response_unit", "KPI"),
        "revenue_per_kpi": summary.get("revenue_per_kpi"),
    }


def _divergence_advice(diag: dict[str, Any]) -> list[str]:
    """What the divergences' location suggests (``diagnostics.json``'s ``divergence_locations.advice``),
    shown under the problems when the divergences are one of them."""
    advice = (diag.get("divergence_locations") or {}).get("advice")
    failed = any("divergences >" in p for p in diag.get("problems", []))
    return [f"Divergences: {advice}"] if advice and failed else []


def _geo_context(roas_geo: pd.DataFrame) -> dict[str, Any]:
    """ROAS by geo: a geo × channel table of ROAS with HDIs."""
    channels = list(dict.fromkeys(roas_geo["channel"]))
    rows = []
    for geo, t in roas_geo.groupby("geo", sort=False):
        t = t.set_index("channel")
        cells = [
            {"mean": t.loc[c, "roas_mean"], "lo": t.loc[c, "roas_hdi_low"], "hi": t.loc[c, "roas_hdi_high"]}
            for c in channels
        ]
        rows.append({"geo": geo, "cells": cells})
    return {"channels": channels, "rows": rows}


def _mlh(d: dict[str, float]) -> tuple[float, float, float]:
    return d["mean"], d["hdi_low"], d["hdi_high"]


def write_report(
    run_dir: str | Path,
    optimization: str | Path | None = None,
    hdi_prob: float | None = None,
    model: Any = None,
) -> Path:
    """Write ``RUN_DIR/report.html`` and the tables behind it (see the module docstring); return the HTML path.

    Parameters
    ----------
    run_dir : a finished run folder (written by ``bayesmmm fit``).
    optimization : an optimization folder to include; default: the run's latest
        (``latest_optimization.json``), if any.
    hdi_prob : interval probability; default: the run's ``output.hdi_prob``.
    model : the run's fitted :class:`~bayesmmm.model.mmm.MMM` when the caller holds it (as
        ``bayesmmm demo`` does, right after the fit): its compiled mean and components are
        reused instead of loading ``posterior.nc`` again. The folder is checked all the same.
    """
    from bayesmmm.decisions.insights import channel_insights, decomposition_table, findings, insights_json
    from bayesmmm.decisions.response import adstock_weights, organic_response_curves, response_curves
    from bayesmmm.evaluation.summaries import fit_metrics
    from bayesmmm.model.mmm import MMM
    from bayesmmm.model.value import roas_unit
    from bayesmmm.reporting import plots

    run_dir = Path(run_dir)
    if model is None:
        mmm = MMM.load(run_dir)  # refuses anything but a finished run folder
    else:
        from bayesmmm.io import MARKER
        from bayesmmm.model.mmm import ModelFileError

        if not (run_dir / MARKER).is_file():
            raise ModelFileError(f"{run_dir} is not a finished run folder (no {MARKER}); fit it first")
        mmm = model
    opt_folder = _optimization_folder(run_dir, optimization)
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    run_hdi_prob = float((config.get("output") or {}).get("hdi_prob", 0.9))  # the run's figures and tables
    if hdi_prob is None:
        hdi_prob = run_hdi_prob
    if not 0 < hdi_prob < 1:
        raise ValueError(f"hdi_prob must be in (0, 1), got {hdi_prob}")
    diag = _read_json(run_dir / "diagnostics.json")
    meta = _read_json(run_dir / "metadata.json")
    pct = f"{hdi_prob:.0%}"

    comps = mmm.posterior_components()
    ins = channel_insights(mmm, hdi_prob, comps)
    deco = decomposition_table(mmm, hdi_prob, comps)
    curves = response_curves(mmm, hdi_prob=hdi_prob)
    weights = adstock_weights(mmm, hdi_prob)
    metrics = fit_metrics(mmm, comps)
    figs = run_dir / "figures"
    paths = {
        "fit": _fit_figure(mmm, run_dir, figs / "fit.png", hdi_prob, run_hdi_prob, comps),
        "decomposition": plots.plot_decomposition(mmm, figs / "decomposition.png", comps),
        "contributions": plots.plot_contributions(mmm, figs / "contributions.png", hdi_prob, comps),
        "roas": plots.plot_roas(ins, figs / "roas.png"),
        "response_curves": plots.plot_response_curves(curves, figs / "response_curves.png", ins),
        "adstock": plots.plot_adstock_weights(weights, figs / "adstock.png"),
        "rank": plots.plot_rank(mmm.idata, figs / "rank.png"),
    }
    rf = None
    if mmm.require_spec().rf_channels:  # reach & frequency channels: optimal frequency and response surface
        from bayesmmm.decisions.reach import rf_surface, rf_table

        rf_rows = rf_table(mmm, hdi_prob=hdi_prob)
        surface = rf_surface(mmm, hdi_prob=hdi_prob)
        write_text(run_dir / "rf.csv", rf_rows.to_csv(index=False))
        write_text(run_dir / "rf_surface.csv", surface.to_csv(index=False))
        paths["rf_surface"] = plots.plot_rf_surface(surface, rf_rows, figs / "rf_surface.png")
        rf = rf_rows.to_dict("records")
    varying = None
    if mmm.require_spec().varying is not None:  # model.time_varying_media: each multiplier over time
        from bayesmmm.evaluation.varying import multiplier_table, roas_by_period_table

        by_period = roas_by_period_table(mmm, hdi_prob, comps)
        multipliers = multiplier_table(mmm, hdi_prob)
        paths["multipliers"] = plots.plot_multipliers(multipliers, figs / "multipliers.png", by_period)
        write_text(run_dir / "roas_by_period.csv", by_period.to_csv(index=False))
        level = mmm.predictive.planning_level()
        tvm = mmm.model_config.time_varying_media
        varying = {
            "channels": list(tvm.channels),
            "kind": tvm.kind,
            "plan": tvm.plan,
            "levels": {c: float(level[:, mmm.channels.index(c)].mean()) for c in tvm.channels},
        }
    geo = None
    if mmm.is_geo and (run_dir / "roas_geo.csv").exists():
        roas_geo = pd.read_csv(run_dir / "roas_geo.csv")
        paths["roas_geo"] = plots.plot_roas_geo(roas_geo, figs / "roas_geo.png", ins)
        geo = _geo_context(roas_geo)
    found = findings(ins)
    write_text(run_dir / "insights.csv", ins.to_csv(index=False))
    write_text(run_dir / "response_curves.csv", curves.to_csv(index=False))
    if mmm.require_spec().organic:  # organic media: curves against their activity, no spend and no ROAS
        organic_curves = organic_response_curves(mmm, hdi_prob=hdi_prob)
        write_text(run_dir / "organic_response_curves.csv", organic_curves.to_csv(index=False))
    write_text(run_dir / "decomposition.csv", deco.to_csv(index=False))
    write_json(
        run_dir / "insights.json",
        insights_json(ins, deco, {"fit": metrics, "optimization": str(opt_folder) if opt_folder else None}),
    )

    loo = diag.get("loo") or {}
    cards = [
        ("R²", _num(metrics["r2"])),
        ("MAPE", f"{metrics['mape']:.1%}"),
        ("NRMSE", _num(metrics["nrmse"])),
        ("max R-hat", _num(diag.get("max_rhat"), 4)),
        ("min bulk ESS", _num(diag.get("min_ess_bulk"))),
        ("divergences", str(diag.get("divergences", "–"))),
        ("ELPD (LOO)", _num(loo.get("elpd"))),
    ]
    context = {
        "title": str(meta.get("name") or config.get("name") or run_dir.name),
        "channels": list(mmm.channels),
        "roas_unit": roas_unit(mmm.data),
        "n_dates": mmm.data.n_dates,
        "periods": period_name(mmm.data.frequency, plural=True),
        "period": period_name(mmm.data.frequency),
        "start": f"{mmm.data.dates[0]:%Y-%m-%d}",
        "end": f"{mmm.data.dates[-1]:%Y-%m-%d}",
        "adstock": mmm.adstock.name,
        "saturation": mmm.saturation.name,
        "created_at": str(meta.get("created_at", "?")),
        "pct": pct,
        "passed": bool(diag.get("passed", False)),
        "problems": [*diag.get("problems", []), *_divergence_advice(diag)],
        "cards": cards,
        "findings": found,
        "insights": ins.to_dict("records"),
        "decomposition": deco.to_dict("records"),
        "figures": {name: _data_uri(path) for name, path in paths.items()},
        "geo": geo,
        "rf": rf,
        "varying": varying,
        "calibration": _calibration_context(_with_extrapolation(diag, mmm, config)),
        "optimization": _optimization_context(opt_folder) if opt_folder else None,
        "changes": _changes_context(run_dir, run_hdi_prob),
        "version": str((meta.get("versions") or {}).get("bayesmmm", "")),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    page = _environment().get_template(TEMPLATE).render(context)
    return write_text(run_dir / "report.html", page)


def _changes_context(run_dir: Path, hdi_prob: float) -> dict[str, Any] | None:
    """The "What changed" section of a refreshed run (``changes.csv`` and ``refresh.json``), or None."""
    path = run_dir / "changes.csv"
    if not path.exists():
        return None
    info = _read_json(run_dir / "refresh.json")
    return {
        "rows": pd.read_csv(path).to_dict("records"),
        "old_run": str(info.get("old_run", "the first run")),
        "new_periods": info.get("new_periods", "?"),
        "old_periods": info.get("old_periods", "?"),
        "prior_from_posterior": bool(info.get("prior_from_posterior", False)),
        # runs refreshed before the joint update existed used the marginal kind
        "prior_kind": str(info.get("prior_kind", "marginal")),
        "pct": f"{hdi_prob:.0%}",
    }


def _calibration_context(diag: dict[str, Any]) -> dict[str, Any] | None:
    """Lift tests against the model and the prior-vs-posterior ROAS check (``diagnostics.json``), as table rows."""
    tests = diag.get("calibration", {}).get("lift_tests", [])
    ident = diag.get("identifiability")
    if not tests and not ident:
        return None
    rows = [
        [
            str(t["channel"]) + (f" ({t['geo']})" if t.get("geo") else ""),
            t["window"] or "steady state",
            f"{_num(t['x'])} → {_num(t['x'] + t['delta_x'])}",
            f"{t['delta_y']:+,.1f} ± {t['sigma']:,.1f}",
            f"{t['model_lift_mean']:+,.1f} [{t['model_lift_hdi'][0]:+,.1f}, {t['model_lift_hdi'][1]:+,.1f}]",
            f"{t['z']:+.1f}",
        ]
        for t in tests
    ]
    channels = []
    for ch, e in (ident or {}).get("channels", {}).items():
        log_c = e.get("log_contraction")
        share = e.get("extrapolated_share")
        channels.append(
            [
                ch,
                f"{e['roas_prior_mean']:.4g} ± {e['roas_prior_sd']:.3g}",
                f"{e['roas_posterior_mean']:.4g} ± {e['roas_posterior_sd']:.3g}",
                f"{e['contraction']:.2f}",
                "–" if log_c is None else f"{log_c:.3f}",
                f"{e['shift']:+.2f}",
                "–" if share is None else f"{share:.0%}" + (" (extrapolated)" if e.get("extrapolated") else ""),
                "prior-driven" if e["prior_driven"] else "data-driven",
            ]
        )
    entries = list((ident or {}).get("channels", {}).values())
    return {
        "lift_tests": rows,
        "identifiability": channels,
        "threshold": (ident or {}).get("threshold"),
        "extrapolated_threshold": (ident or {}).get("extrapolated_threshold"),
        "advice": [e[key] for e in entries for key in ("advice", "extrapolation_advice") if e.get(key)],
    }


def _with_extrapolation(diag: dict[str, Any], mmm: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``diag`` with the extrapolated contribution in its identifiability entries: a run written before
    that check has none, and gets it from its posterior (nothing new is stored with a fit)."""
    ident = diag.get("identifiability")
    if not ident or all("extrapolated_share" in e for e in ident.get("channels", {}).values()):
        return diag
    from bayesmmm.evaluation.extrapolation import DEFAULT_SHARE, extrapolation

    threshold = float((config.get("diagnostics") or {}).get("extrapolated_share", DEFAULT_SHARE))
    found = extrapolation(mmm, threshold)
    channels = {name: {**e, **found["channels"].get(name, {})} for name, e in ident.get("channels", {}).items()}
    flagged = [name for name, e in channels.items() if e.get("extrapolated")]
    ident = {**ident, "channels": channels, "extrapolated_threshold": threshold, "extrapolated": flagged}
    return {**diag, "identifiability": ident}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        from bayesmmm.model.mmm import ModelFileError

        raise ModelFileError(f"{path} is not valid JSON; the run folder is damaged: fit again") from None
