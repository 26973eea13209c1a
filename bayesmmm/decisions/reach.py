"""Reach & frequency decisions: the optimal frequency (``rf.csv``) and response surfaces over reach and frequency.

**Optimal frequency** (Meridian's definition, ``Analyzer.optimal_freq``): the historical spend
is held fixed, the frequency is set to the same value ``f`` in every period (and geo), and reach
becomes ``impressions / f`` in each period, so the impressions (and the spend, at the channel's
cost per impression) are unchanged; the channel's ROAS is computed for each ``f`` of a grid (1 to
the largest frequency in the data, step 0.1), and the optimal frequency is the ``f`` whose
posterior MEAN ROAS is largest. bayesmmm adds its uncertainty: the same argmax per posterior draw,
summarized by its HDI (Meridian reports the point only).

With Meridian's form (:mod:`bayesmmm.model.reach`: Hill on frequency, linear in reach, a linear
adstock) the ROAS at fixed impressions is proportional to ``hill(f) / f``, so the optimal frequency
does not depend on the spend level: ``ec · (slope − 1)^(1/slope)`` for a slope above 1, else the
lowest frequency (:func:`~bayesmmm.data.reach.optimal_frequency_hill`). It is computed here on the
model's own graph (any registered adstock) all the same.

**Response surface**: each R&F channel's contribution over its training history with its reach
scaled by ``m`` and its frequency set to ``f`` (``reach_multiplier × frequency`` grid), with the
spend that buys those impressions at the recent cost per impression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.model.mean import adstocked_media, placeholders, saturated_media
from bayesmmm.model.value import channel_cost_per_unit, history_spend, roas_unit, value_weights
from bayesmmm.stats import hdi_bounds

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "FREQUENCY_STEP",
    "frequency_grid",
    "plan_frequencies",
    "rf_roas_grid",
    "rf_surface",
    "rf_table",
    "rf_totals",
]

#: the step of the frequency grid (Meridian's)
FREQUENCY_STEP = 0.1


@convolution_graphs()
def _compile_totals(spec: ModelSpec):
    """``(media, frequency, weights, *draws)`` → (sample, [geo,] channel): contributions summed over dates."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode
    from bayesmmm.model.geo import geo_parameters

    dims = spec.variable_dims
    panel = pt.tensor3 if spec.is_geo else pt.matrix
    media, frequency = panel("media", dtype="float64"), panel("frequency", dtype="float64")
    weights = (pt.matrix if spec.is_geo else pt.vector)("weights", dtype="float64")
    core, batched = placeholders(dims)
    params = geo_parameters(spec, core) if spec.is_geo else core
    carried = adstocked_media(spec, media, params, frequency=frequency)
    totals = pt.sum(saturated_media(spec, carried, params) * weights[..., None], axis=0)
    totals = vectorize_graph(totals, {core[n]: batched[n] for n in dims})
    fn = pytensor.function(
        [media, frequency, weights, *batched.values()], totals, mode=numpy_mode(), on_unused_input="ignore"
    )
    return fn, list(dims)


def rf_totals(
    mmm: MMM, media: np.ndarray, frequency: np.ndarray, draws: Mapping[str, np.ndarray], value: bool = True
) -> np.ndarray:
    """Each channel's contribution over the training dates for scaled ``media`` (impressions for R&F
    channels) at ``frequency`` (both in the training design's layout), original units (revenue with
    ``value`` and a revenue per KPI), summed over geos: (sample, channel)."""
    spec = mmm.require_spec()
    if "rf_totals" not in spec.memo:
        spec.memo["rf_totals"] = _compile_totals(spec)
    fn, order = spec.memo["rf_totals"]
    weights = value_weights(spec) if value else np.ones(media.shape[:-1])
    out = np.asarray(fn(media, frequency, weights, *[np.asarray(draws[k], dtype="float64") for k in order]))
    scale = np.asarray(spec.scales.target, dtype=float)
    if spec.is_geo:
        return (out * scale.reshape(-1, 1)).sum(axis=1)
    return out * scale


def frequency_grid(mmm: MMM, grid: Sequence[float] | None = None) -> np.ndarray:
    """The frequencies evaluated: ``grid``, or Meridian's default, 1 to the largest frequency of the
    R&F channels in the data (at least 2) in steps of :data:`FREQUENCY_STEP`."""
    if grid is not None:
        out = np.asarray(sorted(float(g) for g in grid))
        if not len(out) or out[0] < 1:
            raise ValueError("frequencies must be >= 1 (exposures per person reached)")
        return out
    spec = mmm.require_spec()
    data = spec.data
    freq = data.geo_rf_frequency if spec.is_geo else data.rf_frequency
    top = max(2.0, float(np.max(freq[..., list(spec.rf_index)])))
    return np.round(np.arange(1.0, top + FREQUENCY_STEP / 2, FREQUENCY_STEP), 10)


def _require_rf(mmm: MMM) -> ModelSpec:
    mmm.require_fitted()
    spec = mmm.require_spec()
    if not spec.rf_channels:
        raise ValueError(
            "the model has no reach & frequency channels (data.channels.<name>: {spend, reach, frequency})"
        )
    return spec


def rf_roas_grid(
    mmm: MMM, grid: Sequence[float] | None = None, max_draws: int | None = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """ROAS of each R&F channel at each frequency of the grid, impressions (and spend) held at their
    history: ``(frequencies, roas)`` with roas ``(frequency, sample, rf_channel)``."""
    spec = _require_rf(mmm)
    freqs = frequency_grid(mmm, grid)
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    design = spec.training_design()
    rf = list(spec.rf_index)
    spend = history_spend(spec).sum(axis=tuple(range(history_spend(spec).ndim - 1)))[rf]
    out = np.empty((len(freqs), len(next(iter(draws.values()))), len(rf)))
    for i, f in enumerate(freqs):
        frequency = np.array(design["frequency"])
        frequency[..., rf] = f
        totals = rf_totals(mmm, design["media"], frequency, draws)[:, rf]
        out[i] = np.divide(totals, spend, out=np.full(totals.shape, np.nan), where=spend > 0)
    return freqs, out


def rf_table(
    mmm: MMM,
    hdi_prob: float = 0.9,
    grid: Sequence[float] | None = None,
    max_draws: int | None = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """``rf.csv``: per R&F channel its optimal frequency (Meridian's: the argmax of the posterior mean
    ROAS over the grid) with the HDI of the per-draw argmax, the ROAS there and at the historical
    frequency (each with its HDI), the recent average frequency and the plan frequency the optimizer
    buys at (:func:`plan_frequencies`)."""
    spec = _require_rf(mmm)
    freqs, roas = rf_roas_grid(mmm, grid, max_draws, seed)
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    design = spec.training_design()
    rf = list(spec.rf_index)
    spend = history_spend(spec).sum(axis=tuple(range(history_spend(spec).ndim - 1)))[rf]
    historical = rf_totals(mmm, design["media"], design["frequency"], draws)[:, rf] / spend
    best = np.nanargmax(np.nanmean(roas, axis=1), axis=0)  # (rf_channel,)
    per_draw = freqs[np.nanargmax(np.where(np.isfinite(roas), roas, -np.inf), axis=0)]  # (sample, rf_channel)
    f_lo, f_hi = hdi_bounds(per_draw, hdi_prob)
    at_best = roas[best, :, np.arange(len(rf))]  # (rf_channel, sample)
    b_lo, b_hi = hdi_bounds(at_best, hdi_prob, axis=1)
    h_lo, h_hi = hdi_bounds(historical, hdi_prob)
    plan = plan_frequencies(mmm, freqs=freqs, roas=roas)
    from bayesmmm.model.reach import plan_frequency

    recent = plan_frequency(spec)[rf]
    rows = []
    for j, name in enumerate(spec.rf_channels):
        rows.append(
            {
                "channel": name,
                "optimal_frequency": float(freqs[best[j]]),
                "optimal_frequency_hdi_low": float(f_lo[j]),
                "optimal_frequency_hdi_high": float(f_hi[j]),
                "roas_at_optimal": float(np.mean(at_best[j])),
                "roas_at_optimal_hdi_low": float(b_lo[j]),
                "roas_at_optimal_hdi_high": float(b_hi[j]),
                "roas": float(np.mean(historical[:, j])),
                "roas_hdi_low": float(h_lo[j]),
                "roas_hdi_high": float(h_hi[j]),
                "recent_frequency": float(recent[j]),
                "plan_frequency": float(plan[spec.channels.index(name)]),
                "grid_min": float(freqs[0]),
                "grid_max": float(freqs[-1]),
                "roas_unit": roas_unit(spec.data),
                "hdi_prob": hdi_prob,
            }
        )
    return pd.DataFrame(rows)


def plan_frequencies(
    mmm: MMM, freqs: np.ndarray | None = None, roas: np.ndarray | None = None, max_draws: int | None = 1000
) -> np.ndarray:
    """The frequency the optimizer buys each channel at, (channel,): an R&F channel's stated
    ``data.channels.<name>.plan_frequency``, else its optimal frequency (:func:`rf_table`'s); 1 for
    other channels (unused). ``freqs``/``roas``: a :func:`rf_roas_grid` already computed."""
    spec = mmm.require_spec()
    out = np.ones(len(spec.channels))
    if not spec.rf_channels:
        return out
    stated = {n: c.plan_frequency for n, c in (spec.data_config.channels or {}).items()}
    if any(stated[n] is None for n in spec.rf_channels):
        if roas is None:
            freqs, roas = rf_roas_grid(mmm, max_draws=max_draws)
        best = freqs[np.nanargmax(np.nanmean(roas, axis=1), axis=0)]
    for j, name in enumerate(spec.rf_channels):
        out[spec.rf_index[j]] = stated[name] if stated[name] is not None else float(best[j])
    return out


def rf_surface(
    mmm: MMM,
    reach_multipliers: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    frequencies: Sequence[float] | None = None,
    hdi_prob: float = 0.9,
    max_draws: int | None = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """The response surface of each R&F channel over reach and frequency (``rf_surface.csv``): its
    contribution over the training history (revenue with a revenue per KPI) with reach scaled by
    ``reach_multiplier`` and frequency set to ``frequency`` in every period, the spend those
    impressions cost at the recent cost per impression, and the ROAS; mean and HDI per grid point."""
    spec = _require_rf(mmm)
    if frequencies is None:
        full = frequency_grid(mmm)
        frequencies = np.unique(np.round(np.linspace(1.0, full[-1], 10), 2))
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    design = spec.training_design()
    rf = list(spec.rf_index)
    reach_scaled = design["media"][..., rf] / design["frequency"][..., rf]  # scaled reach
    media_scale = np.asarray(spec.scales.media, dtype=float)[..., rf]
    cpi = np.asarray(channel_cost_per_unit(spec), dtype=float)[..., rf]  # per impression
    rows: list[dict[str, Any]] = []
    for m in reach_multipliers:
        for f in frequencies:
            media, frequency = np.array(design["media"]), np.array(design["frequency"])
            media[..., rf] = reach_scaled * float(m) * float(f)
            frequency[..., rf] = float(f)
            totals = rf_totals(mmm, media, frequency, draws)[:, rf]  # (sample, rf_channel)
            impressions = media[..., rf] * media_scale
            spend = (impressions * cpi).sum(axis=tuple(range(impressions.ndim - 1)))
            lo, hi = hdi_bounds(totals, hdi_prob)
            for j, name in enumerate(spec.rf_channels):
                mean = float(totals[:, j].mean())
                rows.append(
                    {
                        "channel": name,
                        "reach_multiplier": float(m),
                        "frequency": float(f),
                        "impressions": float(impressions[..., j].sum()),
                        "spend": float(spend[j]),
                        "contribution": mean,
                        "contribution_hdi_low": float(lo[j]),
                        "contribution_hdi_high": float(hi[j]),
                        "roas": mean / float(spend[j]) if spend[j] > 0 else float("nan"),
                        "hdi_prob": hdi_prob,
                    }
                )
    return pd.DataFrame(rows)
