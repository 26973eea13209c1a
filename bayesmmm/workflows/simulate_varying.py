"""Simulated channels whose true effect changes over time (``channels.<name>.effect_change``).

A channel's true contribution is ``beta · m_t · saturation(adstock(x))_t`` with the path ``m_t``:

- ``step``: 1 before the period at fraction ``at`` of the history, ``factor`` from it on
  (``factor: 0.5, at: 0.5``: the effect halves mid-history);
- ``linear``: from 1 at the first period to ``factor`` at the last.

The truth keeps ``beta`` (the effect before any change), the path (``effect_multiplier``), the
effect at the end (``beta_latest = beta · m_last``: what a plan made now meets) and the
channel's true ROAS per calendar year (``roas_by_year``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EffectChangeSpec", "effect_path", "roas_by_year"]


class EffectChangeSpec(BaseModel):
    """How a channel's true effect changes over the simulated history."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["step", "linear"] = "step"
    factor: float = Field(0.5, gt=0, description="the effect after the change, as a multiple of the effect before")
    at: float = Field(0.5, gt=0, lt=1, description="step: fraction of the history where the effect changes")


def effect_path(spec: EffectChangeSpec, n: int) -> np.ndarray:
    """The true multiplier ``m_t`` of the channel's effect over ``n`` periods."""
    if spec.kind == "step":
        return np.where(np.arange(n) >= round(spec.at * n), spec.factor, 1.0)
    return np.linspace(1.0, spec.factor, n)


def roas_by_year(dates: pd.DatetimeIndex, contribution: np.ndarray, spend: np.ndarray) -> dict[str, float]:
    """True ROAS of each calendar year of ``dates``: the year's contribution over its spend."""
    years = pd.DatetimeIndex(dates).year.to_numpy()
    out = {}
    for year in dict.fromkeys(years):
        mask = years == year
        total = float(spend[mask].sum())
        out[str(year)] = float(contribution[mask].sum() / total) if total > 0 else float("nan")
    return out
