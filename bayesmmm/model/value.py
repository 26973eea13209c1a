"""Spend, exposure and revenue of a bound model: what ROAS, cost per KPI and the optimizer are measured in.

The curves act on the channels' media (exposure, or spend for spend-only channels); the money
side reads these functions of the :class:`~bayesmmm.model.spec.ModelSpec`: the spend of the
training periods, each period's value of a KPI unit (:func:`value_weights`: the revenue per KPI,
or 1), each channel's cost per unit of exposure and the future revenue per KPI
(:mod:`bayesmmm.data.exposure`), and the unit ROAS is reported in (:func:`roas_unit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayesmmm.data.exposure import cost_per_unit, recent_revenue_per_kpi

if TYPE_CHECKING:
    from bayesmmm.data.loading import MMMData
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "KPI_UNIT",
    "REVENUE_UNIT",
    "channel_cost_per_unit",
    "future_revenue_per_kpi",
    "history_spend",
    "roas_unit",
    "value_weights",
]

#: ROAS with a revenue per KPI: revenue per unit of spend
REVENUE_UNIT = "revenue per unit of spend"
#: ROAS without one: the target's own units (KPI) per unit of spend
KPI_UNIT = "KPI per unit of spend"


def roas_unit(data: MMMData) -> str:
    """What a ROAS of these data is measured in: :data:`REVENUE_UNIT` or :data:`KPI_UNIT`."""
    return REVENUE_UNIT if data.has_revenue else KPI_UNIT


def history_spend(spec: ModelSpec) -> np.ndarray:
    """The training spend in the model's layout: (date, channel), or (date, geo, channel) for a panel."""
    return spec.data.geo_channel_spend if spec.is_geo else spec.data.channel_spend


def value_weights(spec: ModelSpec) -> np.ndarray:
    """Each training period's value of one KPI unit: the revenue per KPI, (date,) or (date, geo); ones
    without ``data.revenue_per_kpi_column``."""
    data = spec.data
    rpk = data.geo_revenue_per_kpi if spec.is_geo else data.revenue_per_kpi
    if rpk is not None:
        return np.asarray(rpk, dtype=float)
    shape = (data.n_dates, len(spec.geos)) if spec.is_geo else (data.n_dates,)
    return np.ones(shape)


def channel_cost_per_unit(spec: ModelSpec) -> np.ndarray:
    """Spend per unit of exposure of each channel, (channel,) or (geo, channel) for a panel: the stated
    ``cost_per_unit`` or the recent average (:func:`~bayesmmm.data.exposure.cost_per_unit`); 1 for
    spend-only channels. Computed once per spec."""
    if "cost_per_unit" not in spec.memo:
        data = spec.data
        media = data.geo_media if spec.is_geo else data.media
        value = cost_per_unit(history_spend(spec), media, data.dates, spec.data_config.stated_cost_per_unit)
        value.flags.writeable = False
        spec.memo["cost_per_unit"] = value
    return spec.memo["cost_per_unit"]


def future_revenue_per_kpi(spec: ModelSpec) -> float | np.ndarray:
    """The value of a future KPI unit: the recent KPI-weighted revenue per KPI (a float, or (geo,) for a
    panel; :func:`~bayesmmm.data.exposure.recent_revenue_per_kpi`); 1 without a revenue per KPI."""
    data = spec.data
    if not data.has_revenue:
        return np.ones(len(spec.geos)) if spec.is_geo else 1.0
    if spec.is_geo:
        return recent_revenue_per_kpi(data.geo_revenue_per_kpi, data.geo_target, data.dates)
    return float(recent_revenue_per_kpi(data.revenue_per_kpi, data.target, data.dates))
