"""Deterministic design features computed from dates (NumPy, no model context)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "MAX_WEEKLY_ORDER",
    "WEEK_DAYS",
    "YEAR_DAYS",
    "changepoint_locations",
    "day_of_week_features",
    "day_of_week_mode_names",
    "fourier_features",
    "fourier_mode_names",
    "time_index",
]

YEAR_DAYS = 365.25
WEEK_DAYS = 7.0
#: highest useful day-of-week Fourier order: 3 pairs (6 features) span every zero-mean weekday pattern
MAX_WEEKLY_ORDER = 3


def fourier_mode_names(order: int) -> list[str]:
    """``["sin_1", "cos_1", ..., "sin_n", "cos_n"]``."""
    return [f"{kind}_{k}" for k in range(1, order + 1) for kind in ("sin", "cos")]


def fourier_features(dates: pd.DatetimeIndex, order: int, period: float = YEAR_DAYS) -> np.ndarray:
    """Fourier terms of yearly seasonality, shape ``(date, 2 * order)``.

    Phase is measured in days since 1970-01-01, so the features of any date are the
    same in training and in prediction.
    """
    days = (pd.DatetimeIndex(dates) - pd.Timestamp("1970-01-01")).days.to_numpy(dtype=float)
    out = np.empty((len(days), 2 * order))
    for k in range(1, order + 1):
        angle = 2.0 * np.pi * k * days / period
        out[:, 2 * (k - 1)] = np.sin(angle)
        out[:, 2 * (k - 1) + 1] = np.cos(angle)
    return out


def day_of_week_mode_names(order: int) -> list[str]:
    """``["dow_sin_1", "dow_cos_1", ..., "dow_sin_n", "dow_cos_n"]``."""
    return [f"dow_{name}" for name in fourier_mode_names(order)]


def day_of_week_features(dates: pd.DatetimeIndex, order: int) -> np.ndarray:
    """Fourier terms of the day of the week (period 7 days), shape ``(date, 2 * order)``.

    ``order`` 3 (6 features) spans every zero-mean pattern over the seven weekdays: it is the
    same model as one free effect per weekday (less a reference), in a smooth basis. The phase
    is days since 1970-01-01 (a Thursday), so a date's features depend only on its weekday.
    """
    return fourier_features(dates, order, period=WEEK_DAYS)


def time_index(dates: pd.DatetimeIndex, start: pd.Timestamp, span_days: float) -> np.ndarray:
    """Time in units of the training span: 0 at the first training date, 1 at the last."""
    days = (pd.DatetimeIndex(dates) - pd.Timestamp(start)).days.to_numpy(dtype=float)
    return days / max(span_days, 1.0)


def changepoint_locations(n: int) -> np.ndarray:
    """``n`` changepoints evenly spaced over the first 90% of the training span (t in (0, 0.9])."""
    return np.linspace(0.0, 0.9, n + 1)[1:]
