"""Effects over time: ROAS by year and quarter, and the time-varying multipliers with their intervals.

``roas_by_period.csv`` (:func:`roas_by_period_table`) holds every channel's ROAS per calendar year
and quarter of the training data, for any model: with constant effects the periods differ only
through the spend (saturation, carry-over); with ``model.time_varying_media`` they follow the
multiplier. ``multipliers.csv`` (:func:`multiplier_table`) holds each time-varying channel's
multiplier ``m_c(t)`` per training date (:mod:`bayesmmm.model.multiplier`).

A period's contribution is the channel's contribution in the periods whose date lies in it (carry-over
from earlier spend included, into later periods not), divided by the spend of those periods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.evaluation.summaries import hdi
from bayesmmm.model.value import roas_unit

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = ["ROAS_BY_PERIOD_COLUMNS", "multiplier_table", "roas_by_period_table"]

ROAS_BY_PERIOD_COLUMNS = [
    "channel",
    "kind",
    "period",
    "start",
    "end",
    "n_periods",
    "spend",
    "contribution_mean",
    "contribution_hdi_low",
    "contribution_hdi_high",
    "roas_mean",
    "roas_hdi_low",
    "roas_hdi_high",
    "roas_median",
    "roas_unit",
]


def roas_by_period_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Per channel and calendar year / quarter of the training dates: spend, contribution and ROAS with HDIs.

    Columns :data:`ROAS_BY_PERIOD_COLUMNS`: ``kind`` is ``year`` or ``quarter``, ``period`` its label
    (``2024``, ``2024Q3``), ``start``/``end`` the first and last training date in it and ``n_periods``
    how many there are (a partial year or quarter is reported as it is). ROAS is revenue per unit of
    spend where the data have a revenue per KPI (as ``roas.csv``); NaN where the channel did not spend.
    """
    comps = mmm.posterior_components() if components is None else components
    value = comps["media_value"] if "media_value" in comps else comps["media"]
    dates = pd.DatetimeIndex(mmm.data.dates)
    spend = np.asarray(mmm.data.channel_spend, dtype=float)  # (date, channel), national
    unit = roas_unit(mmm.data)
    rows = []
    for kind, labels in (("year", dates.year.astype(str)), ("quarter", dates.to_period("Q").astype(str))):
        labels = np.asarray(labels)
        for label in dict.fromkeys(labels):
            mask = labels == label
            contribution = comps["media"].isel(date=np.flatnonzero(mask)).sum("date")  # (chain, draw, channel)
            valued = value.isel(date=np.flatnonzero(mask)).sum("date")
            period_spend = spend[mask].sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                roas = valued / xr.DataArray(
                    np.where(period_spend > 0, period_spend, np.nan), dims="channel", coords=valued.channel.coords
                )
            c_lo, c_hi = hdi(contribution, hdi_prob)
            finite = np.isfinite(period_spend) & (period_spend > 0)
            r_lo, r_hi = hdi(roas.fillna(0.0), hdi_prob)
            for c, channel in enumerate(mmm.channels):
                ok = bool(finite[c])
                rows.append(
                    {
                        "channel": channel,
                        "kind": kind,
                        "period": label,
                        "start": dates[mask][0].date().isoformat(),
                        "end": dates[mask][-1].date().isoformat(),
                        "n_periods": int(mask.sum()),
                        "spend": float(period_spend[c]),
                        "contribution_mean": float(contribution.isel(channel=c).mean()),
                        "contribution_hdi_low": float(c_lo.isel(channel=c)),
                        "contribution_hdi_high": float(c_hi.isel(channel=c)),
                        "roas_mean": float(roas.isel(channel=c).mean()) if ok else np.nan,
                        "roas_hdi_low": float(r_lo.isel(channel=c)) if ok else np.nan,
                        "roas_hdi_high": float(r_hi.isel(channel=c)) if ok else np.nan,
                        "roas_median": float(roas.isel(channel=c).median()) if ok else np.nan,
                        "roas_unit": unit,
                    }
                )
    table = pd.DataFrame(rows, columns=ROAS_BY_PERIOD_COLUMNS)
    order = {ch: i for i, ch in enumerate(mmm.channels)}
    kinds = {"year": 0, "quarter": 1}
    table = table.sort_values(
        ["channel", "kind", "start"],
        key=lambda s: s.map(order) if s.name == "channel" else s.map(kinds) if s.name == "kind" else s,
    )
    table = table.reset_index(drop=True)
    table.attrs["hdi_prob"] = hdi_prob
    return table


def multiplier_table(
    mmm: MMM, hdi_prob: float = 0.9, dates: pd.DatetimeIndex | None = None, max_draws: int | None = 1000, seed: int = 0
) -> pd.DataFrame:
    """Each time-varying channel's multiplier ``m_c(t)`` per date (default the training dates): mean,
    median and HDI over a seeded subsample of ``max_draws`` draws. Empty for a model without
    ``model.time_varying_media``.

    Columns ``channel, date, multiplier_mean, multiplier_median, multiplier_hdi_low, multiplier_hdi_high``.
    """
    columns = ["channel", "date", "multiplier_mean", "multiplier_median", "multiplier_hdi_low", "multiplier_hdi_high"]
    spec = mmm.require_spec()
    config = spec.model_config.time_varying_media
    if config is None:
        return pd.DataFrame(columns=columns)
    dates = pd.DatetimeIndex(spec.data.dates if dates is None else dates)
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    values = mmm.predictive.multiplier(dates, draws)  # (sample, date, channel)
    columns_index = [spec.channels.index(c) for c in config.channels]
    da = xr.DataArray(values[None][..., columns_index], dims=("chain", "draw", "date", "channel"))
    lo, hi = (b.to_numpy() for b in hdi(da, hdi_prob))
    mean, median = values.mean(axis=0), np.median(values, axis=0)
    rows = [
        {
            "channel": name,
            "date": d.date().isoformat(),
            "multiplier_mean": float(mean[i, c]),
            "multiplier_median": float(median[i, c]),
            "multiplier_hdi_low": float(lo[i, k]),
            "multiplier_hdi_high": float(hi[i, k]),
        }
        for k, (name, c) in enumerate(zip(config.channels, columns_index, strict=True))
        for i, d in enumerate(dates)
    ]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["hdi_prob"] = hdi_prob
    return table
