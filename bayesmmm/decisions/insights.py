"""What the posterior says about each channel, in original units, with plain-language findings.

:func:`channel_insights` puts ROAS, marginal ROAS, share of contribution vs share of
spend and a saturation status side by side, all from the same posterior draws, so the
numbers agree with ``roas.csv`` and with the response curves. :func:`findings` turns
that table into short sentences a stakeholder can act on, and
:func:`decomposition_table` splits the target into baseline, controls and channels.

Saturation status uses the spend elasticity of the channel's contribution at current
spend, ``e = marginal ROAS / ROAS`` (the slope of the response curve relative to its
average slope): ``e`` near 1 means the next unit of spend earns about what the average
one did (room to grow); ``e`` near 0 means the curve has flattened (saturated);
``e > 1`` means the channel is still on the convex part of an S-curve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.decisions.response import marginal_roas
from bayesmmm.evaluation.summaries import ROLE_DIMS, hdi, role_kinds
from bayesmmm.model.predictive import DATASET_NAMES
from bayesmmm.model.value import REVENUE_UNIT, roas_unit

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "SATURATION_LEVELS",
    "channel_insights",
    "decomposition_table",
    "findings",
    "insights_json",
    "saturation_status",
]

#: (lower elasticity bound, status), checked from the top.
SATURATION_LEVELS: tuple[tuple[float, str], ...] = (
    (1.05, "increasing returns"),
    (0.7, "room to grow"),
    (0.3, "moderate"),
    (-np.inf, "saturated"),
)


def saturation_status(elasticity: float) -> str:
    """Label of a spend elasticity (marginal ROAS / ROAS); see :data:`SATURATION_LEVELS`."""
    if not np.isfinite(elasticity):
        return "unknown"
    return next(label for bound, label in SATURATION_LEVELS if elasticity >= bound)


def _summary(da: xr.DataArray, prob: float, name: str) -> dict[str, np.ndarray]:
    lo, hi = hdi(da, prob)
    return {
        f"{name}_mean": da.mean(("chain", "draw")).to_numpy(),
        f"{name}_hdi_low": lo.to_numpy(),
        f"{name}_hdi_high": hi.to_numpy(),
    }


def channel_insights(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """One row per channel: spend, contribution, ROAS and marginal ROAS with HDIs, and status.

    Parameters
    ----------
    mmm : a fitted model.
    hdi_prob : probability of the HDIs.
    components : ``mmm.posterior_components()`` if already computed.

    Returns
    -------
    DataFrame with ``channel, spend, spend_share``, ``contribution_*``, ``share_*`` (of
    the media contribution), ``roas_*``, ``mroas_*`` (``_mean, _hdi_low, _hdi_high``),
    ``efficiency`` (contribution share / spend share), ``elasticity`` (posterior median
    of mROAS / ROAS), ``status`` and ``prob_best_mroas`` (posterior probability that the
    channel's next unit of spend earns the most of all channels). Totals are over the
    training weeks.
    """
    comps = mmm.posterior_components() if components is None else components
    channels = list(mmm.channels)
    spend_np = mmm.data.channel_spend.sum(axis=0)
    spend = xr.DataArray(spend_np, dims="channel", coords={"channel": channels})
    contribution = comps["media"].sum("date")
    # ROAS per unit of spend: of the contribution's revenue where the data have a revenue per KPI
    roas = (comps["media_value"].sum("date") if "media_value" in comps else contribution) / spend
    share = contribution / contribution.sum("channel")
    mroas = marginal_roas(mmm).assign_coords(chain=roas["chain"], draw=roas["draw"])
    elasticity = (mroas / roas).median(("chain", "draw")).to_numpy()
    best = mroas.argmax("channel").to_numpy().ravel()
    prob_best = np.bincount(best, minlength=len(channels)) / best.size
    spend_share = spend_np / spend_np.sum()
    table = pd.DataFrame(
        {
            "channel": channels,
            "spend": spend_np,
            "spend_share": spend_share,
            **_summary(contribution, hdi_prob, "contribution"),
            **_summary(share, hdi_prob, "share"),
            **_summary(roas, hdi_prob, "roas"),
            **_summary(mroas, hdi_prob, "mroas"),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        table["efficiency"] = table["share_mean"] / spend_share
    table["elasticity"] = elasticity
    table["status"] = [saturation_status(e) for e in elasticity]
    table["prob_best_mroas"] = prob_best
    table["roas_unit"] = roas_unit(mmm.data)
    table.attrs["hdi_prob"] = hdi_prob
    table.attrs["roas_unit"] = roas_unit(mmm.data)
    return table


def decomposition_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Total contribution of every component over the training weeks, with HDIs.

    Returns
    -------
    DataFrame ``component, kind, contribution_mean, contribution_hdi_low,
    contribution_hdi_high, share_of_target`` with kinds ``baseline`` (intercept, trend,
    seasonality), ``control``, ``media`` and, where the model has them, ``organic``, ``treatment``
    (against its baseline) and ``event`` (against the reference level); ``share_of_target`` is the mean
    contribution divided by the observed target's total.
    """
    comps = mmm.posterior_components() if components is None else components
    parts: list[tuple[str, str, xr.DataArray]] = [
        (name, "baseline", comps[name].sum("date")) for name in ("intercept", "trend", "seasonality")
    ]
    parts += [(c, "control", comps["controls"].sel(control=c, drop=True).sum("date")) for c in mmm.controls]
    parts += [(c, "media", comps["media"].sel(channel=c, drop=True).sum("date")) for c in mmm.channels]
    for component, kind, names in role_kinds(mmm.require_spec()):  # organic media, treatments, event levels
        da = comps[DATASET_NAMES.get(component, component)]
        parts += [(n, kind, da.sel({ROLE_DIMS[kind]: n}, drop=True).sum("date")) for n in names]
    total_target = float(np.sum(mmm.data.target))
    rows = []
    for name, kind, da in parts:
        lo, hi = hdi(da, hdi_prob)
        mean = float(da.mean(("chain", "draw")))
        rows.append(
            {
                "component": name,
                "kind": kind,
                "contribution_mean": mean,
                "contribution_hdi_low": float(lo),
                "contribution_hdi_high": float(hi),
                "share_of_target": mean / total_target if total_target else float("nan"),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["hdi_prob"] = hdi_prob
    return table


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def findings(table: pd.DataFrame, *, currency_target: bool | None = None) -> list[str]:
    """Plain-language findings from :func:`channel_insights`, most actionable first.

    Parameters
    ----------
    table : the output of :func:`channel_insights`.
    currency_target : the ROAS is revenue in the currency of spend, so that a marginal
        ROAS below 1 on a channel whose average ROAS is above 1 means oversaturation. Default
        (``None``): from the table's ``roas_unit``: ``True`` for revenue
        (``data.revenue_per_kpi_column`` given); for a KPI per unit of spend the break-even is
        unknown (the target may be revenue, or a count such as conversions), so the finding is
        stated conditionally and names the key that settles it.

    Returns
    -------
    Sentences, each about one channel or the whole mix.
    """
    prob = table.attrs.get("hdi_prob", 0.9)
    pct = f"{prob:.0%}"
    unit = table.attrs.get("roas_unit", REVENUE_UNIT)
    if currency_target is None:
        currency_target = True if unit == REVENUE_UNIT else None
    out: list[str] = []
    by_m = table.sort_values("mroas_mean", ascending=False)
    top = by_m.iloc[0]
    line = (
        f"The next unit of spend earns most in {top.channel}: marginal ROAS {_fmt(top.mroas_mean)} "
        f"({pct} HDI {_fmt(top.mroas_hdi_low)}–{_fmt(top.mroas_hdi_high)}), "
        f"the highest of all channels with probability {top.prob_best_mroas:.0%}."
    )
    if len(by_m) > 1:
        low = by_m.iloc[-1]
        line += f" It earns least in {low.channel} (marginal ROAS {_fmt(low.mroas_mean)})."
    out.append(line)
    median_roas = float(table["roas_mean"].median())
    for r in table.itertuples():
        if r.status == "saturated" and r.roas_mean >= median_roas:
            out.append(
                f"{r.channel} has a high average ROAS ({_fmt(r.roas_mean)}) but limited scale: it is saturated, "
                f"and the next unit of spend returns only {_fmt(r.mroas_mean)}. Hold or trim its budget."
            )
        elif r.status == "saturated":
            out.append(
                f"{r.channel} is saturated: the next unit of spend returns {_fmt(r.mroas_mean)} against an average "
                f"ROAS of {_fmt(r.roas_mean)}. It is a candidate to cut."
            )
        elif r.status in ("room to grow", "increasing returns") and r.mroas_mean >= median_roas:
            out.append(
                f"{r.channel} has room to grow: its marginal ROAS ({_fmt(r.mroas_mean)}) is still close to its "
                f"average ROAS ({_fmt(r.roas_mean)}). It is a candidate for more budget."
            )
        if currency_target is not False and r.roas_mean >= 1 and r.mroas_hdi_high < 1:
            if currency_target:
                out.append(
                    f"{r.channel} is oversaturated: it pays on average (ROAS {_fmt(r.roas_mean)}) but even the upper "
                    f"end of the {pct} HDI of its marginal ROAS ({_fmt(r.mroas_hdi_high)}) is below 1, so its next "
                    "unit of spend does not pay for itself."
                )
            else:
                out.append(
                    f"{r.channel}: the upper end of the {pct} HDI of its marginal ROAS ({_fmt(r.mroas_hdi_high)} "
                    f"{unit}) is below 1 while its average ROAS is {_fmt(r.roas_mean)}. If the target is revenue in "
                    "the currency of spend, its next unit of spend does not pay for itself; if the target is a count "
                    "(e.g. conversions), set data.revenue_per_kpi_column to judge it in revenue."
                )
        if r.spend_share > 0 and r.efficiency >= 1.5:
            out.append(
                f"{r.channel} brings {r.share_mean:.0%} of the media contribution on {r.spend_share:.0%} of the spend."
            )
        elif r.spend_share > 0 and r.efficiency <= 0.67:
            out.append(
                f"{r.channel} takes {r.spend_share:.0%} of the spend but brings only {r.share_mean:.0%} of the "
                "media contribution."
            )
    vague = table[
        (table["roas_mean"] > 0) & ((table["roas_hdi_high"] - table["roas_hdi_low"]) > 1.5 * table["roas_mean"])
    ]
    if len(vague):
        out.append(
            f"ROAS is poorly determined for {', '.join(vague['channel'])} (the {pct} HDI is wider than 1.5 times the "
            "mean): vary their spend or run lift tests before moving much budget on them."
        )
    return out


def insights_json(table: pd.DataFrame, decomposition: pd.DataFrame, extra: dict[str, Any] | None = None) -> dict:
    """JSON-able bundle of the channel table, decomposition and findings (``insights.json``)."""
    return {
        "hdi_prob": table.attrs.get("hdi_prob", 0.9),
        "channels": table.replace({np.nan: None}).to_dict(orient="records"),
        "decomposition": decomposition.replace({np.nan: None}).to_dict(orient="records"),
        "findings": findings(table),
        **(extra or {}),
    }
