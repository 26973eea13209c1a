"""Time grids and the extra series of the simulator's richer scenarios (issue 25).

Pure NumPy/pandas pieces used by :mod:`bayesmmm.workflows.simulate`: the date grid of a
frequency (weekly, daily, calendar months), drifting positive series (a channel's cost per
unit of exposure, a revenue per KPI, a price index), categorical event columns and the
treatment baselines, with the pydantic specs that describe them in a scenario YAML.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bayesmmm.components.features import YEAR_DAYS

__all__ = [
    "FREQUENCIES",
    "PERIOD_DAYS",
    "CategoricalEventSpec",
    "DriftSpec",
    "EventLevelSpec",
    "ExposureSpec",
    "RevenuePerKpiSpec",
    "TreatmentSpec",
    "baseline_value",
    "categorical_column",
    "categorical_truth",
    "drift_series",
    "period_dates",
    "period_ends",
    "periods_containing",
]

#: pandas frequency of each supported grid (calendar months start on the 1st)
FREQUENCIES = {"weekly": "7D", "daily": "D", "monthly": "MS"}
#: mean length of one period in days (converts week-based settings, e.g. flighting, to periods)
PERIOD_DAYS = {"weekly": 7.0, "daily": 1.0, "monthly": YEAR_DAYS / 12.0}


class SeriesSpec(BaseModel):
    """Base of the specs here: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class DriftSpec(SeriesSpec):
    """A positive series drifting in logs, independent of everything else in the scenario.

    ``log x_t = log(level) + trend_log · t / (n - 1) + w_t + yearly_amplitude_log ·
    cos(2π (doy_t - peak_day_of_year) / 365.25) + noise_sd_log · u_t`` with the AR(1) walk
    ``w_0 = 0, w_t = ar · w_{t-1} + walk_sd_log · e_t`` (``ar: 1`` a random walk) and
    ``e, u`` standard normal, one per period.
    """

    level: float = Field(gt=0, description="the value at the first period (before noise)")
    trend_log: float = Field(0.0, description="change of log x from the first to the last period")
    walk_sd_log: float = Field(0.0, ge=0, description="sd of the walk's steps (per period, in logs)")
    ar: float = Field(1.0, ge=0, le=1, description="autoregression of the walk (1: random walk)")
    yearly_amplitude_log: float = Field(0.0, description="amplitude of a yearly cycle in logs")
    peak_day_of_year: float = Field(330.0, ge=0, le=366)
    noise_sd_log: float = Field(0.0, ge=0, description="sd of independent per-period noise in logs")


class ExposureSpec(SeriesSpec):
    """A channel bought in units of exposure: ``exposure_t = spend_t / cost_t``.

    ``cost`` is the cost per unit (per click, per impression...) over time, drifting
    independently of spend; the true curve acts on the exposure.
    """

    column: str = Field(description="the exposure column (e.g. search_clicks)")
    cost: DriftSpec


class RevenuePerKpiSpec(SeriesSpec):
    """The value of one unit of the KPI (revenue per conversion), a drifting series."""

    column: str = "revenue_per_kpi"
    value: DriftSpec


class TreatmentSpec(SeriesSpec):
    """A non-media treatment (price index, distribution...) with a true linear effect.

    Its contribution is ``effect · (x_t - baseline)``: against the series' ``min``, ``mean``
    or a stated value.
    """

    name: str
    value: DriftSpec
    effect: float = Field(description="target units per unit of the treatment")
    baseline: Literal["min", "mean"] | float = "mean"


class EventLevelSpec(SeriesSpec):
    """One level of a categorical event: its periods (by date or date span) and its effect."""

    effect: float = Field(description="target units in each period of this level, against the reference")
    dates: list[date] = []
    spans: list[tuple[date, date]] = Field([], description="[first, last] day, inclusive")

    @model_validator(mode="after")
    def _has_dates(self) -> EventLevelSpec:
        if not self.dates and not self.spans:
            raise ValueError("an event level needs dates or spans")
        for first, last in self.spans:
            if last < first:
                raise ValueError(f"span [{first}, {last}] ends before it starts")
        return self


class CategoricalEventSpec(SeriesSpec):
    """A text column: ``reference`` in every period except those of the levels."""

    name: str
    reference: str = "none"
    levels: dict[str, EventLevelSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _reference_is_not_a_level(self) -> CategoricalEventSpec:
        if self.reference in self.levels:
            raise ValueError(f"event {self.name!r}: the reference {self.reference!r} is also a level")
        return self


def period_dates(start: date, n: int, frequency: str) -> pd.DatetimeIndex:
    """The first day of each of ``n`` periods from ``start`` (months: the 1st of each month)."""
    return pd.date_range(pd.Timestamp(start), periods=n, freq=FREQUENCIES[frequency])


def period_ends(dates: pd.DatetimeIndex, frequency: str) -> pd.DatetimeIndex:
    """The first day after each period (exclusive end)."""
    if frequency == "monthly":
        return dates + pd.offsets.MonthBegin(1)
    return dates + pd.Timedelta(days=int(PERIOD_DAYS[frequency]))


def periods_containing(day: date, dates: pd.DatetimeIndex, ends: pd.DatetimeIndex) -> np.ndarray:
    """Indices of the periods that contain ``day`` (none or one)."""
    ts = pd.Timestamp(day)
    return np.flatnonzero((dates <= ts) & (ts < ends))


def drift_series(spec: DriftSpec, dates: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """One draw of the :class:`DriftSpec` series on ``dates`` (always ``2 n`` normal draws)."""
    n = len(dates)
    steps = rng.standard_normal(n)
    noise = rng.standard_normal(n)
    walk = np.zeros(n)
    for t in range(1, n):
        walk[t] = spec.ar * walk[t - 1] + spec.walk_sd_log * steps[t]
    t = np.arange(n) / max(n - 1, 1)
    doy = dates.day_of_year.to_numpy(dtype=float)
    cycle = spec.yearly_amplitude_log * np.cos(2 * np.pi * (doy - spec.peak_day_of_year) / YEAR_DAYS)
    return spec.level * np.exp(spec.trend_log * t + walk + cycle + spec.noise_sd_log * noise)


def baseline_value(x: np.ndarray, baseline: str | float) -> float:
    """The treatment's baseline: ``min``, ``mean`` or the stated number."""
    if baseline == "min":
        return float(np.min(x))
    if baseline == "mean":
        return float(np.mean(x))
    return float(baseline)


def categorical_column(spec: CategoricalEventSpec, dates: pd.DatetimeIndex, ends: pd.DatetimeIndex) -> np.ndarray:
    """The event's level in each period; a period touched by two levels is an error (ValueError)."""
    values = np.full(len(dates), spec.reference, dtype=object)
    for level, lv in spec.levels.items():
        days = list(lv.dates)
        for first, last in lv.spans:
            days += list(pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D").date)
        hit = sorted({int(i) for d in days for i in periods_containing(d, dates, ends)})
        if not hit:
            raise ValueError(f"event {spec.name!r}: level {level!r} has no date inside the simulated periods")
        clash = [i for i in hit if values[i] not in (spec.reference, level)]
        if clash:
            raise ValueError(
                f"event {spec.name!r}: levels {values[clash[0]]!r} and {level!r} fall in the same period "
                f"{dates[clash[0]].date()}; move one"
            )
        values[hit] = level
    return values


def categorical_truth(spec: CategoricalEventSpec, values: np.ndarray) -> dict[str, object]:
    """Reference (the most frequent level, ties: the first in ``[reference, *levels]``) and each
    other level's effect against it, with its number of periods."""
    order = [spec.reference, *spec.levels]
    counts = {lv: int(np.sum(values == lv)) for lv in order}
    reference = max(order, key=lambda lv: (counts[lv], -order.index(lv)))
    effect = {spec.reference: 0.0, **{lv: s.effect for lv, s in spec.levels.items()}}
    return {
        "reference": reference,
        "levels": {
            lv: {"effect": effect[lv] - effect[reference], "periods": counts[lv]} for lv in order if lv != reference
        },
    }
