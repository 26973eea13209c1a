"""The service's dashboard page: ROAS table, fit, decomposition and response-curve figures, a budget form.

Everything is rendered once when the service starts (figures as base64-embedded PNGs),
so serving the page costs nothing; the budget form calls ``POST /optimize`` from the
browser. The page is an autoescaped Jinja2 template (``bayesmmm/serving/templates``); its style
sheet and script are files served from ``/static`` (``bayesmmm/serving/static``), so the page
runs under a CSP without inline scripts, and the script writes the server's answers with
``textContent`` only. The page loads nothing from other sites.
"""

from __future__ import annotations

import base64
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesmmm.data.frequency import period_name, periods_per_year
from bayesmmm.model.value import roas_unit

if TYPE_CHECKING:
    import xarray as xr

    from bayesmmm.model.mmm import MMM

__all__ = [
    "STATIC_FILES",
    "dashboard_figures",
    "plan_rows",
    "read_design_plan",
    "render_dashboard",
    "static_file",
    "template",
]

PACKAGE = Path(__file__).resolve().parent
# the files served under /static: a fixed list (never a path from the request)
STATIC_FILES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


def template(name: str) -> Any:
    """A Jinja2 template of ``bayesmmm/serving/templates`` (autoescaped)."""
    return _environment().get_template(name)


@functools.cache
def static_file(name: str) -> tuple[bytes, str]:
    """Content and media type of one of :data:`STATIC_FILES`; KeyError for any other name."""
    media_type = STATIC_FILES[name]
    return (PACKAGE / "static" / name).read_bytes(), media_type


def _png(draw: Callable[[Path], Any]) -> str:
    """Run ``draw(path)`` in a temporary folder and return the PNG as base64."""
    with tempfile.TemporaryDirectory(prefix="bayesmmm-dash-") as tmp:
        path = Path(tmp) / "figure.png"
        draw(path)
        return base64.b64encode(path.read_bytes()).decode("ascii")


def dashboard_figures(
    mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None, curves_max_draws: int | None = 1000
) -> dict[str, str]:
    """Fit, decomposition and response-curve figures as base64 PNGs.

    The response curves re-evaluate the model once per spend multiplier, on at most
    ``curves_max_draws`` posterior draws (the service passes its forecasts' draw cap).

    A figure that fails to render is left out (with its error in ``<name>_error``), so
    the service still starts and the page says what is missing.
    """
    from bayesmmm.decisions.response import response_curves
    from bayesmmm.reporting import plots

    comps = mmm.posterior_components() if components is None else components
    jobs: dict[str, Callable[[Path], Any]] = {
        "fit": lambda p: plots.plot_fit(mmm, p, hdi_prob, comps),
        "decomposition": lambda p: plots.plot_decomposition(mmm, p, comps),
        "response_curves": lambda p: plots.plot_response_curves(
            response_curves(mmm, hdi_prob=hdi_prob, max_draws=curves_max_draws), p
        ),
    }
    out: dict[str, str] = {}
    for name, draw in jobs.items():
        try:
            out[name] = _png(draw)
        except Exception as exc:  # a figure must never stop the service
            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _fmt(value: float, digits: int = 3) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _roas_rows(roas: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "channel": str(r.channel),
            "spend": _fmt(r.spend),
            "contribution": _fmt(r.contribution_mean),
            "contribution_low": _fmt(r.contribution_hdi_low),
            "contribution_high": _fmt(r.contribution_hdi_high),
            "roas": _fmt(r.roas_mean),
            "roas_low": _fmt(r.roas_hdi_low),
            "roas_high": _fmt(r.roas_hdi_high),
            "share": f"{r.share_mean:.1%}",
            "spend_share": f"{r.spend_share:.1%}",
        }
        for r in roas.itertuples(index=False)
    ]


def read_design_plan(run_dir: Path) -> pd.DataFrame | None:
    """``run_dir/design/designs.csv`` (written by ``bayesmmm design``), or None when absent or unreadable."""
    path = Path(run_dir) / "design" / "designs.csv"
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    needed = {"rank", "test", "channel", "kind", "change", "weeks", "best_for_channel"}
    return table if needed <= set(table.columns) else None


def plan_rows(design: pd.DataFrame | None) -> list[dict[str, str]]:
    """The best test per channel, formatted (the design page's rows)."""
    if design is None or design.empty:
        return []
    from bayesmmm.reporting.design_page import design_rows

    first = design.drop_duplicates("test")
    return design_rows(first[first["best_for_channel"].astype(bool)])


def render_dashboard(
    mmm: MMM,
    model_version: str,
    roas: pd.DataFrame,
    metrics: dict[str, float],
    figures: dict[str, str],
    diagnostics: dict[str, Any] | None = None,
    max_weeks: int = 104,
    design: pd.DataFrame | None = None,
) -> str:
    """The dashboard as one HTML page (template ``dashboard.html``; every value escaped).

    ``design``: the run's lift-test plan (:func:`read_design_plan`); its best test per channel is
    shown as a table."""
    prob = roas.attrs.get("hdi_prob", 0.9)
    unit = roas_unit(mmm.data)
    overall = float(roas["revenue_mean" if "revenue_mean" in roas else "contribution_mean"].sum())
    dates = mmm.data.dates
    weekly = float(mmm.data.channel_spend.sum(axis=1).mean())  # total spend per period
    frequency = mmm.data.frequency
    periods = period_name(frequency, plural=True)
    default_weeks = max(1, min(round(periods_per_year(frequency) / 4), max_weeks))  # a quarter: 13 weeks, 91 days
    cards = [
        (f"{metrics['r2']:.3f}", "R² of the fit"),
        (f"{metrics['mape']:.1%}", "MAPE"),
        (str(len(mmm.channels)), "channels"),
        (str(mmm.data.n_dates), f"training {periods}"),
        (_fmt(float(roas["contribution_mean"].sum())), "media contribution"),
        (_fmt(float(overall / roas["spend"].sum())), f"overall ROAS ({unit})"),
    ]
    if diagnostics is not None and "passed" in diagnostics:
        cards.append(("passed" if diagnostics["passed"] else "check", "convergence diagnostics"))
    target = mmm.data_config.target_column
    captions = {
        "fit": (
            "Fit",
            f"Observed {target} against the posterior mean with its {prob:.0%} HDI; media contributions below.",
        ),
        "decomposition": (
            "Decomposition",
            f"What drives the target each {period_name(frequency)}: baseline, controls and each channel "
            "(posterior means).",
        ),
        "response_curves": (
            "Response curves",
            f"Each channel's contribution over the training {periods} if its spend were scaled; the dot marks the "
            "current spend.",
        ),
    }
    figure_list = [
        {
            "title": title,
            "caption": caption,
            "png": figures.get(name, ""),
            "error": figures.get(f"{name}_error", "not rendered"),
        }
        for name, (title, caption) in captions.items()
    ]
    return template("dashboard.html").render(
        model_version=model_version,
        target=target,
        first_date=str(dates[0].date()),
        last_date=str(dates[-1].date()),
        channels=[str(c) for c in mmm.channels],
        prob_pct=f"{prob:.0%}",
        cards=cards,
        roas_rows=_roas_rows(roas),
        roas_unit=unit,
        default_budget=f"{weekly * default_weeks:.4g}",
        default_weeks=default_weeks,
        max_weeks=max_weeks,
        periods=periods,
        figures=figure_list,
        plan_rows=plan_rows(design),
    )
