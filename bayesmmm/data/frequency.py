"""The data's frequency: inferred from the dates or stated, a regular grid checked, future dates made.

A frequency is a string:

- ``"daily"`` (a step of 1 day), ``"weekly"`` (7 days) or ``"<N>D"`` (a fixed step of N days,
  e.g. ``"14D"``; ``"1D"`` and ``"7D"`` are written ``"daily"`` and ``"weekly"``);
- ``"monthly"``: calendar months, every date the first day of its month, or every date the
  last day of its month (consistently; the anchor is read off the dates themselves).

``data.frequency: auto`` infers it from the dates (:func:`infer_frequency`). Carry-over
lengths (``l_max``), hold-outs and forecast horizons count periods of this frequency;
seasonality and the trend's time index are computed from the dates in days, so they do not
depend on it.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

__all__ = [
    "FREQUENCIES",
    "FrequencyError",
    "check_grid",
    "few_periods_warning",
    "frequency_label",
    "full_grid",
    "infer_frequency",
    "is_next_period",
    "next_dates",
    "normalize_frequency",
    "period_name",
    "periods_between",
    "periods_in_days",
    "periods_per_year",
    "step_days",
]

#: the named frequencies (besides ``"<N>D"``)
FREQUENCIES = ("daily", "weekly", "monthly")
_FIXED = re.compile(r"^([1-9][0-9]{0,3})D$")
_YEAR_DAYS = 365.25


class FrequencyError(ValueError):
    """A frequency name is not understood, or dates are not on a regular grid of it."""


def normalize_frequency(text: str) -> str:
    """The canonical spelling of a frequency (``"auto"`` stays ``"auto"``).

    Accepts ``auto``, ``daily``, ``weekly``, ``monthly`` and ``"<N>D"`` (N days, 1 to 9999; case
    does not matter); ``"1D"`` becomes ``"daily"`` and ``"7D"`` ``"weekly"``.

    Raises
    ------
    FrequencyError
        For anything else, with the valid forms.
    """
    value = str(text).strip()
    low = value.lower()
    if low in ("auto", *FREQUENCIES):
        return low
    match = _FIXED.match(value.upper())
    if match:
        days = int(match.group(1))
        return {1: "daily", 7: "weekly"}.get(days, f"{days}D")
    raise FrequencyError(
        f"unknown frequency {text!r}; use auto, daily, weekly, monthly, or a fixed step of days such as 14D"
    )


def step_days(frequency: str) -> float:
    """Nominal length of one period in days (a month: 365.25 / 12)."""
    frequency = normalize_frequency(frequency)
    if frequency == "monthly":
        return _YEAR_DAYS / 12
    if frequency == "auto":
        raise FrequencyError("frequency 'auto' has no step: infer it from the dates first")
    return float({"daily": 1, "weekly": 7}.get(frequency) or int(frequency[:-1]))


def periods_per_year(frequency: str) -> float:
    """Periods in a year: 365.25 (daily), 365.25 / 7 (weekly), 12 (monthly), 365.25 / N (``"<N>D"``)."""
    if normalize_frequency(frequency) == "monthly":
        return 12.0
    return _YEAR_DAYS / step_days(frequency)


def periods_in_days(days: float, frequency: str) -> int:
    """The whole number of periods (at least 1) closest to ``days`` days: 28 days are 4 weeks, 1 month."""
    return max(1, round(days / step_days(frequency)))


def periods_between(start: pd.Timestamp, end: pd.Timestamp, frequency: str) -> int:
    """Periods of the grid from ``start`` to ``end``, both included (``end`` before ``start``: 0)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end < start:
        return 0
    if normalize_frequency(frequency) == "monthly":
        return _months(start, end) + 1
    return int((end - start).days // step_days(frequency)) + 1


def period_name(frequency: str, plural: bool = False) -> str:
    """A period in words for messages: ``day``, ``week``, ``month``, ``14-day period`` (``plural``: ``days``...)."""
    frequency = normalize_frequency(frequency)
    name = {"daily": "day", "weekly": "week", "monthly": "month"}.get(frequency)
    if name is None:
        name = f"{int(frequency[:-1])}-day period"
    return name + "s" if plural else name


def frequency_label(frequency: str) -> str:
    """The frequency as an adjective for messages: ``daily``, ``weekly``, ``monthly``, ``14-day``."""
    frequency = normalize_frequency(frequency)
    return frequency if frequency in FREQUENCIES else f"{int(frequency[:-1])}-day"


def _month_anchor(dates: pd.DatetimeIndex) -> str | None:
    """``"start"`` if every date is the 1st of its month, ``"end"`` if every date is its month's last
    day, else None."""
    if len(dates) and bool((dates.day == 1).all()):
        return "start"
    if len(dates) and bool(dates.is_month_end.all()):
        return "end"
    return None


def _offset(frequency: str, anchor_date: pd.Timestamp) -> pd.DateOffset | pd.Timedelta:
    if normalize_frequency(frequency) == "monthly":
        return pd.offsets.MonthEnd(1) if anchor_date.is_month_end and anchor_date.day != 1 else pd.offsets.MonthBegin(1)
    return pd.Timedelta(days=step_days(frequency))


def _months(a: pd.Timestamp, b: pd.Timestamp) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def infer_frequency(dates: pd.DatetimeIndex) -> str:
    """The frequency of sorted, unique dates.

    Monthly when every date is a month start (or every date a month end) and the typical step
    is a month; otherwise the most common step in whole days (``daily``, ``weekly`` or
    ``"<N>D"``). Gaps (missing periods) do not change the answer as long as the regular step is
    the most common one. Fewer than two dates: ``weekly``.

    Raises
    ------
    FrequencyError
        When the dates are not whole days (a time of day other than midnight).
    """
    dates = pd.DatetimeIndex(dates)
    if len(dates) < 2:
        return "weekly"
    if not bool((dates == dates.normalize()).all()):
        i = int(np.flatnonzero(dates != dates.normalize())[0])
        raise FrequencyError(
            f"date {dates[i]} has a time of day; bayesmmm models whole days: aggregate to one row per "
            "day, week or month"
        )
    steps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    if _month_anchor(dates) is not None and np.median(steps) >= 28:
        return "monthly"
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])  # ties: the smallest step (np.unique sorts)
    return normalize_frequency(f"{step}D")


def check_grid(dates: pd.DatetimeIndex, frequency: str) -> tuple[str, pd.DatetimeIndex]:
    """Check that sorted, unique dates lie on a regular grid of ``frequency``.

    Parameters
    ----------
    dates : sorted, unique dates.
    frequency : ``auto`` (inferred, :func:`infer_frequency`) or a frequency.

    Returns
    -------
    frequency : the frequency (inferred where ``auto``), canonical.
    missing : the grid's dates between the first and the last that ``dates`` lacks (empty when
        consecutive).

    Raises
    ------
    FrequencyError
        When a step is not a whole number of periods (naming the step found, where, and the fix),
        or a stated frequency does not match the dates.
    """
    dates = pd.DatetimeIndex(dates)
    stated = normalize_frequency(frequency)
    inferred = infer_frequency(dates)
    frequency = inferred if stated == "auto" else stated
    if len(dates) < 2:
        return frequency, pd.DatetimeIndex([])
    steps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    median = float(np.median(steps))
    if frequency == "monthly":
        anchor = _month_anchor(dates)
        if anchor is None or median < 28:
            bad = dates[(dates.day != 1) & ~dates.is_month_end]
            where = (
                f"{bad[0].date()} is neither"
                if len(bad)
                else f"the median step is {median:g} days (the dates look {inferred})"
            )
            raise FrequencyError(
                "dates must be monthly: every date the first day of its month, or every date the last day; "
                f"{where}: date each month by its first (or its last) day, or set data.frequency: {inferred} (or auto)"
            )
        months = np.array([_months(a, b) for a, b in itertools.pairwise(dates)])
        if not (months > 1).any():
            return frequency, pd.DatetimeIndex([])
        return frequency, full_grid(dates[0], dates[-1], frequency).difference(dates)
    step = int(step_days(frequency))
    off = np.flatnonzero(steps % step != 0)
    if not len(off) and stated != "auto" and inferred != stated:  # e.g. four-weekly data stated weekly
        off = np.flatnonzero(steps != step)
    if len(off):
        i = int(off[0])
        what = frequency if frequency in FREQUENCIES else f"every {step} days ({frequency})"
        if stated == "auto":
            hint = f"data.frequency: auto read the dates as {inferred} (their most common step): "
        else:
            hint = f"the dates look {inferred}: set data.frequency: {inferred} (or auto), or "
        per = f"one row per {period_name(frequency)}" + (", all on the same weekday" if frequency == "weekly" else "")
        raise FrequencyError(
            f"dates must be {what}: a step of {steps[i]:g} days between {dates[i].date()} and {dates[i + 1].date()} "
            f"(median step {median:g} days); {hint}aggregate the data to {per}"
        )
    if not (steps > step).any():
        return frequency, pd.DatetimeIndex([])
    return frequency, full_grid(dates[0], dates[-1], frequency).difference(dates)


def full_grid(first: pd.Timestamp, last: pd.Timestamp, frequency: str) -> pd.DatetimeIndex:
    """Every date of the grid of ``frequency`` from ``first`` to ``last`` (both on the grid)."""
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    if normalize_frequency(frequency) == "monthly":
        n = _months(first, last) + 1
        return next_dates(first - _offset(frequency, first), frequency, n)
    return pd.date_range(first, last, freq=f"{int(step_days(frequency))}D")


def next_dates(last: pd.Timestamp, frequency: str, n: int) -> pd.DatetimeIndex:
    """The ``n`` dates of the grid after ``last`` (monthly: month starts after a month start, month
    ends after a month end)."""
    last = pd.Timestamp(last)
    offset = _offset(frequency, last)
    return pd.DatetimeIndex([last + offset * (k + 1) for k in range(int(n))])


def is_next_period(last: pd.Timestamp, first: pd.Timestamp, frequency: str) -> bool:
    """Whether ``first`` is the date one period after ``last`` on the grid of ``frequency``."""
    return pd.Timestamp(first) == next_dates(last, frequency, 1)[0]


def few_periods_warning(n_periods: int, frequency: str, n_parameters: int, l_max: int, yearly_order: int) -> str | None:
    """A warning (one line) when the data have few periods for what the model asks of them, else None.

    Flags, in the data's periods: fewer than 3 periods per mean parameter (``n_parameters``: the
    coefficients, transform parameters, trend and seasonality terms); a carry-over window
    (``l_max``) longer than a quarter of the periods (the decay is then seen in few independent
    stretches); yearly seasonality with less than a year and a half of data (too few cycles to tell it
    from trend and media). Monthly data meet the first two easily: 3 years are 36 periods.
    """
    name = period_name(frequency, plural=True)
    problems = []
    if n_periods < 3 * n_parameters:
        problems.append(
            f"{n_periods} {name} for {n_parameters} mean parameters ({n_periods / max(n_parameters, 1):.1f} per "
            "parameter; fewer than 3 leaves many to their priors)"
        )
    if l_max > 1 and l_max > n_periods / 4:
        problems.append(f"carry-over over {l_max} {name} (l_max) is more than a quarter of the data")
    years = n_periods / periods_per_year(frequency)
    if yearly_order > 0 and years < 1.5:
        problems.append(
            f"yearly seasonality (order {yearly_order}) from {years:.1f} years of data: few cycles to tell it "
            "from trend and media"
        )
    if not problems:
        return None
    return (
        f"few {name} identify this model: {'; '.join(problems)}. Read contributions and ROAS with their intervals "
        "and identifiability flags; simplify the model (fewer channels, lower yearly_seasonality, shorter l_max, "
        "trend: linear or none), add prior knowledge (media_prior, lift tests) or use finer data"
    )
