"""Write the experiment designer's output: ``DIR/designs.csv``, ``DIR/design.json``, ``DIR/design.html``.

The page is rendered from ``templates/design.html.j2`` with autoescape on (channel and geo
names come from the data).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesmmm.io import write_json, write_text

if TYPE_CHECKING:
    from bayesmmm.decisions.design import DesignResult

__all__ = ["TOP_ROWS", "design_rows", "write_design"]

#: tests shown in the page's ranking (designs.csv has them all)
TOP_ROWS = 25


def _num(value: float) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) < 1e-9:  # an EVSI of 1e-14: the optimizer's rounding, not a gain
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _what(r: Any) -> str:
    kind = {"go_dark": "go dark", "pull_back": "pull back", "scale_up": "scale up"}[r.kind]
    change = "" if r.kind == "go_dark" else f" {abs(r.change):.0%}"
    return f"{kind}{change}, {r.weeks} periods"


def design_rows(table: pd.DataFrame, limit: int | None = None) -> list[dict[str, str]]:
    """Formatted rows of a design table (the page's and the dashboard's)."""
    rows = []
    for r in table.head(limit).itertuples(index=False) if limit else table.itertuples(index=False):
        rows.append(
            {
                "rank": str(r.rank),
                "channel": str(r.channel),
                "geo": str(getattr(r, "geo", "")),
                "what": _what(r),
                "window": f"{r.start}..{r.end}",
                "x": _num(r.x),
                "delta_x": _num(r.delta_x),
                "delta_y": _num(r.expected_delta_y),
                "capture": f"{r.capture:.0%}" if pd.notna(r.capture) else "–",
                "sigma": _num(r.expected_sigma),
                "sigma_needed": _num(r.sigma_needed),
                "roas": _num(r.roas_mean),
                "sd_now": _num(r.roas_sd_now),
                "sd_after": _num(r.roas_sd_after) + ("" if r.ess_ok else " (low ESS)"),
                "reduction": f"{r.sd_reduction:.0%}",
                "ess": f"{r.ess:.0f}",
                "evsi": _num(r.evsi) if r.evsi_computed else "–",
                "value": _num(r.value),
            }
        )
    return rows


def write_design(result: DesignResult, out_dir: str | Path, title: str = "model") -> Path:
    """Write designs.csv (every test, ranked), design.json (the summary) and design.html; returns the folder."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from bayesmmm.decisions.design import MIN_ESS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table, s = result.table, result.summary
    write_text(out / "designs.csv", table.to_csv(index=False))
    write_json(out / "design.json", s)
    env = Environment(
        loader=PackageLoader("bayesmmm.reporting", "templates"), autoescape=True, undefined=StrictUndefined
    )
    first = table.drop_duplicates("test")
    best = first[first["best_for_channel"]]
    page = env.get_template("design.html.j2").render(
        title=title,
        data_end=s["data_end"],
        first_start=str(table["start"].iloc[0]),
        recent=s["planned_spend_periods"],
        n_tests=int(table["test"].nunique()),
        changes=", ".join(f"{c:+.0%}" for c in s["changes"]),
        lengths=", ".join(map(str, s["weeks"])),
        plan_weeks=s["plan"]["weeks"],
        draws=s["max_draws"],
        n_outcomes=s["n_outcomes"],
        best=design_rows(best),
        top=design_rows(table, TOP_ROWS),
        geo="geo" in table.columns,
        low_ess=s["low_ess_tests"],
        min_ess=f"{MIN_ESS:.0f}",
        noise=s["noise"]["model"],
    )
    write_text(out / "design.html", page)
    return out
