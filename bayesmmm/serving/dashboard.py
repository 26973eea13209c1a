"""The service's dashboard page: ROAS table, fit, decomposition and response-curve figures, a budget form.

Everything is rendered once when the service starts (figures as base64-embedded PNGs),
so serving the page costs nothing; the budget form calls ``POST /optimize`` from the
browser. The page loads no external resources.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

    from bayesmmm.model.mmm import MMM

__all__ = ["dashboard_figures", "render_dashboard"]


def _png(draw: Callable[[Path], Any]) -> str:
    """Run ``draw(path)`` in a temporary folder and return the PNG as base64."""
    with tempfile.TemporaryDirectory(prefix="bayesmmm-dash-") as tmp:
        path = Path(tmp) / "figure.png"
        draw(path)
        return base64.b64encode(path.read_bytes()).decode("ascii")


def dashboard_figures(
    mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None, curves_model: MMM | None = None
) -> dict[str, str]:
    """Fit, decomposition and response-curve figures as base64 PNGs.

    ``curves_model`` (e.g. a thinned copy of ``mmm``) computes the response curves, which
    re-evaluate the model once per spend multiplier.

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
            response_curves(curves_model or mmm, hdi_prob=hdi_prob), p
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


def _roas_rows(roas: pd.DataFrame) -> str:
    rows = []
    for r in roas.itertuples(index=False):
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(r.channel))}</td>"
            f"<td class=num>{_fmt(r.spend)}</td>"
            f"<td class=num>{_fmt(r.contribution_mean)} "
            f"<span class=hdi>[{_fmt(r.contribution_hdi_low)}, {_fmt(r.contribution_hdi_high)}]</span></td>"
            f"<td class=num><b>{_fmt(r.roas_mean)}</b> "
            f"<span class=hdi>[{_fmt(r.roas_hdi_low)}, {_fmt(r.roas_hdi_high)}]</span></td>"
            f"<td class=num>{r.share_mean:.1%}</td>"
            f"<td class=num>{r.spend_share:.1%}</td>"
            "</tr>"
        )
    return "\n".join(rows)


def _figure(figures: dict[str, str], name: str, title: str, caption: str) -> str:
    if name in figures:
        body = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{figures[name]}">'
    else:
        body = f"<p class=error>figure unavailable: {html.escape(figures.get(f'{name}_error', 'not rendered'))}</p>"
    return f"<section><h2>{html.escape(title)}</h2><p class=caption>{html.escape(caption)}</p>{body}</section>"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f5f6f8;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}
header p{margin:6px 0 0;color:#c9cfdb;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:18px 32px 40px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:17px;margin:0 0 6px}
.caption{color:#5b6475;font-size:13px;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08);min-width:120px}
.card b{display:block;font-size:20px}
.card span{color:#5b6475;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid #e3e6ec;text-align:left}
th{background:#f0f2f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.hdi{color:#7a8293;font-size:12px}
img{max-width:100%;height:auto;display:block}
form{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-end;margin-bottom:12px}
label{display:flex;flex-direction:column;font-size:13px;color:#3c4557;gap:4px}
input,select{padding:6px 8px;border:1px solid #c5cad4;border-radius:5px;font-size:14px;width:150px}
select{width:auto;min-width:150px}
button{padding:8px 16px;background:#2f6fed;color:#fff;border:0;border-radius:5px;font-size:14px;cursor:pointer}
button:disabled{background:#9db6ee}
.error{color:#b3261e}
#opt-summary{font-size:14px;margin:8px 0}
footer{color:#5b6475;font-size:13px;text-align:center;padding:10px}
footer a{color:#2f6fed}
"""

SCRIPT = """
const fmt = v => (v === null || v === undefined || Number.isNaN(v)) ? '–'
  : Math.abs(v) >= 1000 ? v.toLocaleString(undefined, {maximumFractionDigits: 0})
  : Number(v).toPrecision(3);
const pct = v => (v === null || v === undefined || Number.isNaN(v)) ? '–' : (100 * v).toFixed(1) + '%';
document.getElementById('opt-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target, out = document.getElementById('opt-result'), info = document.getElementById('opt-summary');
  const body = {budget: Number(f.budget.value), weeks: Number(f.weeks.value), objective: f.objective.value};
  if (f.max_change.value !== '') body.max_change = Number(f.max_change.value) / 100;
  f.querySelector('button').disabled = true; info.textContent = 'optimizing…'; info.className = ''; out.innerHTML = '';
  try {
    const res = await fetch('optimize', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                         body: JSON.stringify(body)});
    const data = await res.json();
    if (!res.ok) { info.textContent = data.message || JSON.stringify(data); info.className = 'error'; return; }
    const s = data.summary, up = s.uplift_vs_current;
    info.innerHTML = `Expected response <b>${fmt(s.response.optimized.mean)}</b> vs ${fmt(s.response.current.mean)}
      with the current mix: uplift ${fmt(up.mean)} (${pct(s.uplift_vs_current_pct)}),
      probability of a gain ${pct(up.prob_positive)}; ${pct(s.fraction_reallocated)} of the budget moves.`;
    const rows = data.allocation.map(r => `<tr><td>${r.channel}</td><td class=num>${fmt(r.current_spend)}</td>
      <td class=num><b>${fmt(r.optimized_spend)}</b></td><td class=num>${pct(r.change_pct)}</td>
      <td class=num>${fmt(r.current_response_mean)}</td><td class=num>${fmt(r.optimized_response_mean)}</td></tr>`);
    out.innerHTML = `<table><tr><th>channel</th><th class=num>current spend</th><th class=num>optimized spend</th>
      <th class=num>change</th><th class=num>response now</th><th class=num>response optimized</th></tr>
      ${rows.join('')}</table>`;
  } catch (err) { info.textContent = 'request failed: ' + err; info.className = 'error'; }
  finally { f.querySelector('button').disabled = false; }
});
"""


def render_dashboard(
    mmm: MMM,
    model_version: str,
    roas: pd.DataFrame,
    metrics: dict[str, float],
    figures: dict[str, str],
    diagnostics: dict[str, Any] | None = None,
) -> str:
    """The dashboard as one self-contained HTML page."""
    prob = roas.attrs.get("hdi_prob", 0.9)
    dates = mmm.data.dates
    weekly = float(mmm.data.media.sum(axis=1).mean())
    default_weeks = 13
    cards = [
        (f"{metrics['r2']:.3f}", "R² of the fit"),
        (f"{metrics['mape']:.1%}", "MAPE"),
        (str(len(mmm.channels)), "channels"),
        (str(mmm.data.n_dates), "training weeks"),
        (_fmt(float(roas["contribution_mean"].sum())), "media contribution"),
        (_fmt(float(roas["contribution_mean"].sum() / roas["spend"].sum())), "overall ROAS"),
    ]
    if diagnostics is not None and "passed" in diagnostics:
        cards.append(("passed" if diagnostics["passed"] else "check", "convergence diagnostics"))
    cards_html = "".join(
        f"<div class=card><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>" for v, k in cards
    )
    target = html.escape(mmm.data_config.target_column)
    title = html.escape(model_version)
    captions = {
        "fit": (
            "Fit",
            f"Observed {target} against the posterior mean with its {prob:.0%} HDI; media contributions below.",
        ),
        "decomposition": (
            "Decomposition",
            "What drives the target each week: baseline, controls and each channel (posterior means).",
        ),
        "response_curves": (
            "Response curves",
            "Each channel's contribution over the training weeks if its spend were scaled; the dot marks the "
            "current spend.",
        ),
    }
    figures_html = "\n".join(_figure(figures, name, *text) for name, text in captions.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bayesmmm · {title}</title><style>{CSS}</style></head>
<body>
<header><h1>Marketing mix model · {title}</h1>
<p>Target <b>{target}</b> · {dates[0].date()} to {dates[-1].date()} ·
channels: {html.escape(", ".join(mmm.channels))} · intervals are {prob:.0%} highest-density intervals</p></header>
<main>
<div class=cards>{cards_html}</div>
<section><h2>Return on ad spend</h2>
<p class=caption>Contribution and ROAS (contribution ÷ spend) over the training weeks, posterior mean
[{prob:.0%} HDI]; share = share of the media contribution vs share of spend.</p>
<table><tr><th>channel</th><th class=num>spend</th><th class=num>contribution</th><th class=num>ROAS</th>
<th class=num>share of contribution</th><th class=num>share of spend</th></tr>
{_roas_rows(roas)}
</table></section>
<section><h2>Try a budget</h2>
<p class=caption>Allocates a total budget over the next weeks across channels to maximize the expected
{target}; the current mix is the historical one scaled to the same budget.</p>
<form id="opt-form">
<label>total budget<input name="budget" type="number" min="0" step="any"
  value="{weekly * default_weeks:.4g}" required></label>
<label>weeks<input name="weeks" type="number" min="1" max="104" step="1" value="{default_weeks}" required></label>
<label>objective<select name="objective"><option value="mean">expected response</option>
<option value="cvar">risk-averse (CVaR 10%)</option><option value="mean_sd">mean − sd</option></select></label>
<label>max change per channel (%)<input name="max_change" type="number" min="0" step="any"
  placeholder="no limit"></label>
<button type="submit">Optimize</button>
</form>
<div id="opt-summary"></div><div id="opt-result"></div></section>
{figures_html}
</main>
<footer>API: <a href="docs">docs</a> · <a href="roas">/roas</a> · <a href="contributions">/contributions</a> ·
<a href="metrics">/metrics</a> · <a href="health">/health</a></footer>
<script>{SCRIPT}</script>
</body></html>
"""
