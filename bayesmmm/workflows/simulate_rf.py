"""Simulated reach & frequency channels with known truth (a scenario's ``reach_frequency:`` block).

Each R&F channel spends ``Gamma(shape, scale)`` per period (optionally on/off), buys impressions at
a cost per impression that wobbles around ``cost_per_impression``, and splits them into reach and
frequency: ``frequency_t = 1 + (frequency_mean − 1) · exp(frequency_sd · z_t)`` (at least 1, drawn
independently of spend, so that the data inform the frequency curve) and ``reach_t = impressions_t /
frequency_t``. Its true contribution is Meridian's form::

    beta · adstock(reach_t / s · hill(frequency_t; slope, ec))

with ``s`` the mean impressions over periods with impressions (the model's media scale) and the
registered adstock. The truth records the ROAS (contribution / spend) and the optimal frequency:
``ec · (slope − 1)^(1/slope)`` for ``slope > 1`` (else 1), the frequency that maximizes the
contribution per impression (:func:`~bayesmmm.data.reach.optimal_frequency_hill`), together with the
largest frequency of the data (Meridian's grid stops there).

The draws come from their own random stream (``[seed, 27, k]``): a scenario without R&F
channels simulates exactly what it did before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from bayesmmm.data.reach import hill, optimal_frequency_hill

__all__ = ["RFChannelSpec", "rf_data_keys", "simulate_rf_channels"]


class RFChannelSpec(BaseModel):
    """One simulated reach & frequency channel (columns ``<name>_spend``, ``<name>_reach``,
    ``<name>_frequency`` unless named)."""

    model_config = ConfigDict(extra="forbid")

    spend_shape: float = Field(4.0, gt=0, description="Gamma shape of spend per period")
    spend_scale: float = Field(250.0, gt=0, description="Gamma scale of spend per period")
    on_probability: float = Field(1.0, gt=0, le=1, description="probability that a period has spend")
    cost_per_impression: float = Field(0.01, gt=0)
    cost_noise_sd_log: float = Field(0.05, ge=0)
    frequency_mean: float = Field(3.0, ge=1)
    frequency_sd: float = Field(0.4, ge=0, description="sd of log(frequency - 1) around log(frequency_mean - 1)")
    adstock: str = "geometric"
    l_max: int = Field(8, ge=1)
    adstock_params: dict[str, float] = {"alpha": 0.4}
    slope: float = Field(2.5, gt=0, description="true Hill slope of the frequency curve")
    ec: float = Field(2.0, gt=0, description="true frequency at half saturation")
    beta: float = Field(ge=0, description="target units per unit of scaled reach x hill(frequency)")
    spend_column: str | None = None
    reach_column: str | None = None
    frequency_column: str | None = None

    def columns(self, name: str) -> dict[str, str]:
        """The channel's spend, reach and frequency columns."""
        return {
            "spend": self.spend_column or f"{name}_spend",
            "reach": self.reach_column or f"{name}_reach",
            "frequency": self.frequency_column or f"{name}_frequency",
        }


def simulate_rf_channels(
    specs: dict[str, RFChannelSpec], dates: pd.DatetimeIndex, seed: int, frame: pd.DataFrame, series_key: str
) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Add each R&F channel's spend, reach and frequency columns to ``frame``; return the total true
    contribution per period and each channel's truth (as the scenario's channels: ``roas``,
    ``contribution``, ``spend``, the per-period series under ``series_key``, plus the R&F truth)."""
    from bayesmmm.components import ADSTOCKS

    n = len(dates)
    total = np.zeros(n)
    truth: dict[str, dict[str, Any]] = {}
    for k, (name, spec) in enumerate(specs.items()):
        rng = np.random.default_rng([seed, 27, k])
        spend = rng.gamma(spec.spend_shape, spec.spend_scale, size=n) * (rng.uniform(size=n) < spec.on_probability)
        cpi = spec.cost_per_impression * np.exp(spec.cost_noise_sd_log * rng.standard_normal(n))
        impressions = spend / cpi
        frequency = 1.0 + (spec.frequency_mean - 1.0) * np.exp(spec.frequency_sd * rng.standard_normal(n))
        frequency = np.where(impressions > 0, frequency, 1.0)
        reach = impressions / frequency
        scale = float(impressions[impressions > 0].mean())
        adstock = ADSTOCKS.get(spec.adstock)(l_max=spec.l_max)
        carried = adstock.evaluate(reach / scale * hill(frequency, spec.slope, spec.ec), **spec.adstock_params)
        contribution = spec.beta * np.asarray(carried)
        total += contribution
        cols = spec.columns(name)
        frame[cols["spend"]] = spend
        frame[cols["reach"]] = reach
        frame[cols["frequency"]] = frequency
        max_freq = float(frequency[impressions > 0].max())
        optimal = float(np.minimum(optimal_frequency_hill(spec.slope, spec.ec), max_freq))
        truth[name] = {
            "reach_frequency": True,
            "spend_column": cols["spend"],
            "reach_column": cols["reach"],
            "frequency_column": cols["frequency"],
            "adstock": {"name": spec.adstock, "l_max": spec.l_max, **spec.adstock_params},
            "frequency_curve": {"name": "hill", "slope": spec.slope, "ec": spec.ec},
            "beta": spec.beta,
            "exposure_scale": scale,
            "spend": float(spend.sum()),
            "impressions": float(impressions.sum()),
            "cost_per_unit": float(spend.sum() / impressions.sum()),
            "contribution": float(contribution.sum()),
            "roas": float(contribution.sum() / spend.sum()),
            "optimal_frequency": optimal,
            "max_frequency": max_freq,
            "mean_frequency": float(impressions.sum() / reach.sum()),
            series_key: contribution.round(6).tolist(),
        }
    return total, truth


def rf_data_keys(specs: dict[str, RFChannelSpec]) -> dict[str, dict[str, str]]:
    """The ``data.channels`` entries that fit the simulated R&F channels (issue 27's keys)."""
    return {name: spec.columns(name) for name, spec in specs.items()}
