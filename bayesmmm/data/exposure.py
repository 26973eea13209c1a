"""Exposure, spend and the value of the target: pure NumPy functions.

A channel's curves act on its exposure (impressions, clicks, GRPs); its ROAS, marginal ROAS and
budget are in spend. The two meet through the channel's **cost per unit** (spend per unit of
exposure). Where a budget has to become exposure (the optimizer, response curves in spend, lift
tests stated in spend), the cost per unit is the channel's stated ``cost_per_unit``, or by default
the **recent average**: total spend ÷ total exposure over the periods in the last
:data:`RECENT_DAYS` days of the data (a quarter-year: 13 weeks, 91 days or 3 months, whatever the
frequency), as Meridian does. Where the recent window has no exposure (a flighted channel that is
off), the whole history's average is used.

With a revenue per KPI (``data.revenue_per_kpi_column``), a contribution of ``k_t`` KPI units in
period ``t`` is worth ``k_t · r_t``; for the future (the optimizer) the revenue per KPI is the
recent KPI-weighted average ``Σ y_t r_t / Σ y_t`` over the same window (the value of a typical
recent KPI unit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RECENT_DAYS", "cost_per_unit", "recent_mask", "recent_revenue_per_kpi", "window_cost_per_unit"]

#: the window of the "recent" averages, in days: a quarter-year
RECENT_DAYS = 91


def recent_mask(dates: pd.DatetimeIndex, days: int = RECENT_DAYS) -> np.ndarray:
    """Periods whose date lies within the last ``days`` days of ``dates`` (the last period always counts)."""
    dates = pd.DatetimeIndex(dates)
    mask = np.asarray(dates > dates[-1] - pd.Timedelta(days=days))
    mask[-1] = True
    return mask


def window_cost_per_unit(spend: np.ndarray, exposure: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Spend ÷ exposure summed over the periods in ``mask`` (axis 0); NaN where that exposure is 0."""
    s = np.asarray(spend, dtype=float)[mask].sum(axis=0)
    e = np.asarray(exposure, dtype=float)[mask].sum(axis=0)
    return np.divide(s, e, out=np.full(np.shape(s), np.nan), where=e > 0)


def cost_per_unit(
    spend: np.ndarray,
    exposure: np.ndarray,
    dates: pd.DatetimeIndex,
    stated: list[float | None] | None = None,
    days: int = RECENT_DAYS,
) -> np.ndarray:
    """Each channel's cost per unit of exposure: ``(channel,)`` for ``(date, channel)`` arrays, ``(geo,
    channel)`` for a panel's ``(date, geo, channel)``.

    The stated value where given (the same in every geo), else the recent average
    (:func:`recent_mask`), else the whole history's average; 1 for a spend-only channel (spend
    is its exposure) and for a channel never exposed. Always finite and > 0 where the channel has
    spend.
    """
    spend, exposure = np.asarray(spend, dtype=float), np.asarray(exposure, dtype=float)
    recent = window_cost_per_unit(spend, exposure, recent_mask(dates, days))
    overall = window_cost_per_unit(spend, exposure, np.ones(len(spend), dtype=bool))
    if spend.ndim == 3:  # a geo without exposure in the window or ever: the national average
        national = cost_per_unit(spend.sum(axis=1), exposure.sum(axis=1), dates, None, days)
        overall = np.where(np.isfinite(overall), overall, national[None, :])
    out = np.where(np.isfinite(recent) & (recent > 0), recent, overall)
    out = np.where(np.isfinite(out) & (out > 0), out, 1.0)
    for c, value in enumerate(stated or []):
        if value is not None:
            out[..., c] = float(value)
    return out


def recent_revenue_per_kpi(
    revenue_per_kpi: np.ndarray, target: np.ndarray | None, dates: pd.DatetimeIndex, days: int = RECENT_DAYS
) -> np.ndarray:
    """The recent revenue per KPI: ``Σ y_t r_t / Σ y_t`` over the recent window (axis 0), ``()`` or ``(geo,)``;
    the plain mean where the window's target sums to 0 (or there is no target)."""
    mask = recent_mask(dates, days)
    r = np.asarray(revenue_per_kpi, dtype=float)[mask]
    plain = r.mean(axis=0)
    if target is None:
        return np.asarray(plain)
    y = np.abs(np.asarray(target, dtype=float)[mask])
    total = y.sum(axis=0)
    weighted = np.divide((y * r).sum(axis=0), total, out=np.zeros_like(total), where=total > 0)
    return np.asarray(np.where(total > 0, weighted, plain))
