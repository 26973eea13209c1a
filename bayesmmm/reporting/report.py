"""Stakeholder artifacts: the optimization folder and the self-contained HTML report.

- :func:`write_optimization` writes ``OUT/allocation.csv``, ``OUT/summary.json``,
  ``OUT/allocation.png`` (and ``scenarios.csv``/``scenarios.png``) as one atomic folder,
  and points ``RUN_DIR/latest_optimization.json`` at it.
- :func:`write_report` writes ``RUN_DIR/report.html`` (every figure embedded as a
  base64 PNG, so the page opens offline), ``RUN_DIR/insights.json``,
  ``RUN_DIR/insights.csv`` (per channel: ROAS, marginal ROAS, status),
  ``RUN_DIR/response_curves.csv``, ``RUN_DIR/decomposition.csv`` and the figures under
  ``RUN_DIR/figures/``.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

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
def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _interval(mean: Any, lo: Any, hi: Any) -> str:
    return f"{_num(mean)} <span class=hdi>[{_num(lo)}, {_num(hi)}]</span>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _channel_rows(ins: pd.DataFrame) -> list[list[str]]:
    return [
        [
            html.escape(str(r.channel)),
            _num(r.spend),
            f"{r.spend_share:.0%}",
            _interval(r.contribution_mean, r.contribution_hdi_low, r.contribution_hdi_high),
            f"{r.share_mean:.0%}",
            _interval(r.roas_mean, r.roas_hdi_low, r.roas_hdi_high),
            _interval(r.mroas_mean, r.mroas_hdi_low, r.mroas_hdi_high),
            f"{r.prob_best_mroas:.0%}",
            html.escape(str(r.status)),
        ]
        for r in ins.itertuples()
    ]


def _optimization_section(folder: Path) -> str:
    summary = json.loads((folder / OPTIMIZATION_MARKER).read_text())
    alloc = pd.read_csv(folder / "allocation.csv")
    resp, up = summary["response"], summary["uplift_vs_current"]
    pct = f"{summary['hdi_prob']:.0%}"
    lines = [
        f"<p>Budget <b>{_num(summary['budget'])}</b> over <b>{summary['weeks']}</b> weeks"
        + (f" in geo <b>{html.escape(str(summary['geo']))}</b>" if summary.get("geo") else "")
        + ", objective "
        f"<b>{html.escape(str(summary['objective']))}</b>"
        + (f" (risk {summary['risk']})" if summary.get("risk") is not None else "")
        + f". Expected incremental response: current mix {_interval(**_mlh(resp['current']))}, "
        f"equal split {_interval(**_mlh(resp['equal_split']))}, optimized {_interval(**_mlh(resp['optimized']))} "
        f"({pct} HDI). Uplift vs the current mix {_interval(**_mlh(up))}, probability of a gain "
        f"{up['prob_positive']:.0%}; {summary['fraction_reallocated']:.0%} of the budget moves.</p>"
    ]
    rows = [
        [
            html.escape(str(r.channel)),
            _num(r.current_spend),
            _num(r.optimized_spend),
            f"{r.change_pct:+.0%}" if np.isfinite(r.change_pct) else "–",
            _interval(r.current_response_mean, r.current_response_hdi_low, r.current_response_hdi_high),
            _interval(r.optimized_response_mean, r.optimized_response_hdi_low, r.optimized_response_hdi_high),
            _num(r.optimized_marginal_roas_mean),
        ]
        for r in alloc.itertuples()
    ]
    lines.append(
        _table(
            [
                "channel",
                "current spend",
                "optimized spend",
                "change",
                "current response",
                "optimized response",
                "marginal ROAS at optimum",
            ],
            rows,
        )
    )
    for name, alt in (("allocation.png", "allocation before and after"), ("scenarios.png", "budget scenarios")):
        if (folder / name).exists():
            lines.append(_img(folder / name, alt))
    lines.append(f"<p class=note>From {html.escape(str(folder))}, created {summary.get('created_at', '?')}.</p>")
    return "\n".join(lines)


def _geo_section(roas_geo: pd.DataFrame, figure: Path, pct: str) -> str:
    """ROAS by geo: a geo × channel table of ROAS with HDIs, and the forest figure."""
    channels = list(dict.fromkeys(roas_geo["channel"]))
    rows = []
    for geo, t in roas_geo.groupby("geo", sort=False):
        t = t.set_index("channel")
        rows.append(
            [html.escape(str(geo))]
            + [_interval(t.loc[c, "roas_mean"], t.loc[c, "roas_hdi_low"], t.loc[c, "roas_hdi_high"]) for c in channels]
        )
    return "\n".join(
        [
            "<h2>By geo</h2>",
            f"<p>ROAS of each channel in each geo ({pct} HDI); channel effects are partially pooled across geos, "
            "so a geo with little data is pulled towards the national value (dashed line). "
            "<code>bayesmmm optimize RUN_DIR --geo NAME</code> optimizes one geo's budget.</p>",
            _table(["geo", *[html.escape(c) for c in channels]], rows),
            _img(figure, "ROAS by geo"),
        ]
    )


def _mlh(d: dict[str, float]) -> dict[str, float]:
    return {"mean": d["mean"], "lo": d["hdi_low"], "hi": d["hdi_high"]}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:24px;
color:#1d232a;line-height:1.45}
h1{margin-bottom:4px} h2{margin-top:36px;border-bottom:1px solid #d5dae0;padding-bottom:4px}
.meta,.note{color:#5b6570;font-size:0.9em} .hdi{color:#6b7580;font-size:0.85em}
table{border-collapse:collapse;margin:12px 0;font-size:0.92em} th,td{padding:5px 10px;border-bottom:1px solid #e3e7eb;
text-align:right} th:first-child,td:first-child{text-align:left} thead th{background:#f3f5f7}
img{max-width:100%;margin:10px 0;border:1px solid #eef0f2}
.verdict{padding:10px 14px;border-radius:6px;margin:12px 0} .pass{background:#e6f4ea;border:1px solid #9fd3ad}
.fail{background:#fdecea;border:1px solid #f1a9a0} .cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#f6f8fa;border-radius:6px;padding:8px 14px;min-width:120px} .card b{display:block;font-size:1.3em}
ul.findings li{margin:6px 0}
"""


def write_report(run_dir: str | Path, optimization: str | Path | None = None, hdi_prob: float | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` and the tables behind it (see the module docstring); return the HTML path.

    Parameters
    ----------
    run_dir : a finished run folder (written by ``bayesmmm fit``).
    optimization : an optimization folder to include; default: the run's latest
        (``latest_optimization.json``), if any.
    hdi_prob : interval probability; default: the run's ``output.hdi_prob``.
    """
    from bayesmmm.decisions.insights import channel_insights, decomposition_table, findings, insights_json
    from bayesmmm.decisions.response import adstock_weights, response_curves
    from bayesmmm.evaluation.summaries import fit_metrics
    from bayesmmm.model.mmm import MMM
    from bayesmmm.reporting import plots

    run_dir = Path(run_dir)
    mmm = MMM.load(run_dir)  # refuses anything but a finished run folder
    opt_folder = _optimization_folder(run_dir, optimization)
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    if hdi_prob is None:
        hdi_prob = float((config.get("output") or {}).get("hdi_prob", 0.9))
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
        "fit": plots.plot_fit(mmm, figs / "fit.png", hdi_prob, comps),
        "decomposition": plots.plot_decomposition(mmm, figs / "decomposition.png", comps),
        "contributions": plots.plot_contributions(mmm, figs / "contributions.png", hdi_prob, comps),
        "roas": plots.plot_roas(ins, figs / "roas.png"),
        "response_curves": plots.plot_response_curves(curves, figs / "response_curves.png", ins),
        "adstock": plots.plot_adstock_weights(weights, figs / "adstock.png"),
        "rank": plots.plot_rank(mmm.idata, figs / "rank.png"),
    }
    geo_section = ""
    if mmm.is_geo and (run_dir / "roas_geo.csv").exists():
        roas_geo = pd.read_csv(run_dir / "roas_geo.csv")
        paths["roas_geo"] = plots.plot_roas_geo(roas_geo, figs / "roas_geo.png", ins)
        geo_section = _geo_section(roas_geo, paths["roas_geo"], pct)
    found = findings(ins)
    write_text(run_dir / "insights.csv", ins.to_csv(index=False))
    write_text(run_dir / "response_curves.csv", curves.to_csv(index=False))
    write_text(run_dir / "decomposition.csv", deco.to_csv(index=False))
    write_json(
        run_dir / "insights.json",
        insights_json(ins, deco, {"fit": metrics, "optimization": str(opt_folder) if opt_folder else None}),
    )

    passed = bool(diag.get("passed", False))
    verdict = (
        "Diagnostics PASSED: the chains agree and the effective sample sizes are sufficient."
        if passed
        else "Diagnostics FAILED: " + html.escape("; ".join(diag.get("problems", []))) + ". Treat the numbers "
        "below with caution and refit with more draws or a better-specified model."
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
    deco_rows = [
        [
            html.escape(str(r.component)),
            html.escape(str(r.kind)),
            _interval(r.contribution_mean, r.contribution_hdi_low, r.contribution_hdi_high),
            f"{r.share_of_target:.1%}",
        ]
        for r in deco.itertuples()
    ]
    title = html.escape(str(meta.get("name") or config.get("name") or run_dir.name))
    body = [
        f"<h1>Marketing mix report: {title}</h1>",
        f"<p class=meta>{len(mmm.channels)} channels ({html.escape(', '.join(mmm.channels))}) × "
        f"{mmm.data.n_dates} weeks, {mmm.data.dates[0]:%Y-%m-%d} to {mmm.data.dates[-1]:%Y-%m-%d}; "
        f"adstock {html.escape(mmm.adstock.name)}, saturation {html.escape(mmm.saturation.name)}; "
        f"fitted {html.escape(str(meta.get('created_at', '?')))}; intervals are {pct} highest-density intervals.</p>",
        f"<div class='verdict {'pass' if passed else 'fail'}'>{verdict}</div>",
        "<div class=cards>" + "".join(f"<div class=card>{k}<b>{v}</b></div>" for k, v in cards) + "</div>",
        "<h2>Key findings</h2>",
        "<ul class=findings>" + "".join(f"<li>{html.escape(f)}</li>" for f in found) + "</ul>",
        "<h2>Return on ad spend</h2>",
        "<p>ROAS is the channel's contribution over the training weeks divided by its spend; marginal ROAS is the "
        "return of the next unit of spend at the current level. Status compares the two (elasticity = marginal "
        "ROAS / ROAS). P(best) is the probability that the channel's next unit earns the most.</p>",
        _table(
            [
                "channel",
                "spend",
                "spend share",
                f"contribution [{pct}]",
                "contribution share",
                f"ROAS [{pct}]",
                f"marginal ROAS [{pct}]",
                "P(best next unit)",
                "status",
            ],
            _channel_rows(ins),
        ),
        _img(paths["roas"], "ROAS and marginal ROAS"),
        "<h2>Fit</h2>",
        _img(paths["fit"], "fit"),
        "<h2>Decomposition</h2>",
        _table(["component", "kind", f"total contribution [{pct}]", "share of target"], deco_rows),
        _img(paths["decomposition"], "decomposition"),
        _img(paths["contributions"], "contributions by channel"),
        "<h2>Response curves</h2>",
        "<p>Each channel's contribution over the training weeks if its historical spend were scaled up or down; the "
        "dot marks current spend.</p>",
        _img(paths["response_curves"], "response curves"),
        _img(paths["adstock"], "adstock weights"),
        geo_section,
        _identifiability_section(diag),
        "<h2>Budget optimization</h2>",
        _optimization_section(opt_folder)
        if opt_folder
        else "<p>No optimization yet: run <code>bayesmmm optimize RUN_DIR --budget B --weeks N -o OUT</code>, then "
        "this report again.</p>",
        "<h2>Sampler diagnostics</h2>",
        "<p>Rank plots of the parameters with the highest R-hat: flat, overlapping histograms mean the chains "
        "explored the same distribution.</p>",
        _img(paths["rank"], "rank plots"),
        f"<p class=note>bayesmmm {html.escape(str((meta.get('versions') or {}).get('bayesmmm', '')))}; "
        f"generated {datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
    ]
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{title}: MMM report</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return write_text(run_dir / "report.html", page)


def _identifiability_section(diag: dict[str, Any]) -> str:
    """Lift tests against the model and the prior-vs-posterior ROAS check (``diagnostics.json``)."""
    parts = []
    tests = diag.get("calibration", {}).get("lift_tests", [])
    if tests:
        rows = [
            [
                html.escape(str(t["channel"]) + (f" ({t['geo']})" if t.get("geo") else "")),
                html.escape(t["window"] or "steady state"),
                f"{t['x']:,.0f} → {t['x'] + t['delta_x']:,.0f}",
                f"{t['delta_y']:+,.1f} ± {t['sigma']:,.1f}",
                _interval(t["model_lift_mean"], *t["model_lift_hdi"]),
                f"{t['z']:+.1f}",
            ]
            for t in tests
        ]
        parts += [
            "<h2>Calibration with lift tests</h2>",
            "<p>Each lift test is a term of the likelihood. |z| above 2 means the model and the test disagree.</p>",
            _table(["channel", "weeks", "weekly spend", "measured lift", "model lift", "z"], rows),
        ]
    ident = diag.get("identifiability")
    if ident:
        rows = []
        for ch, e in ident["channels"].items():
            log_c = e.get("log_contraction")
            rows.append(
                [
                    html.escape(ch),
                    f"{e['roas_prior_mean']:.4g} ± {e['roas_prior_sd']:.3g}",
                    f"{e['roas_posterior_mean']:.4g} ± {e['roas_posterior_sd']:.3g}",
                    f"{e['contraction']:.2f}",
                    "–" if log_c is None else f"{log_c:.2f}",
                    f"{e['shift']:+.2f}",
                    "<b>prior-driven</b>" if e["prior_driven"] else "data-driven",
                ]
            )
        advice = [e["advice"] for e in ident["channels"].values() if e.get("advice")]
        parts += [
            "<h2>Identifiability: did the data decide each ROAS?</h2>",
            f"<p>ROAS prior (mean ± sd) against its posterior; contraction is the share of the prior's variance the "
            f"data removed (log-contraction: of the log-ROAS variance); a channel is prior-driven below "
            f"{ident['threshold']:g} log-contraction.</p>",
            _table(["channel", "prior", "posterior", "contraction", "log-contraction", "shift", "verdict"], rows),
            "<ul class=findings>" + "".join(f"<li>{html.escape(a)}</li>" for a in advice) + "</ul>" if advice else "",
        ]
    return "\n".join(parts)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        from bayesmmm.model.mmm import ModelFileError

        raise ModelFileError(f"{path} is not valid JSON; the run folder is damaged: fit again") from None
