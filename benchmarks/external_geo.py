"""An independent geo-panel generator: plain NumPy, nothing from bayesmmm.

Written to test the geo model on panels that are NOT built the way the model (and our own
simulator, :func:`bayesmmm.workflows.simulate.simulate_geo`) thinks about geos. It differs
from ours in each respect issue 25 names:

- **geo sizes** very different: populations log-normal with log-sd ``size_sd_log`` (default
  1.0: the largest of 10 geos is typically 15-30x the smallest);
- **per-geo spend intensity**: a geo's spend per head on a channel varies around the
  channel's national level (log-sd ``intensity_sd_log``), so geos sit at different points of
  the response curve;
- **per-geo media effects** drawn from another distribution than the model's pooling prior:
  per-head effects times a log-normal factor of log-sd ``effect_sd_log`` (0.7; the model's
  spread prior is ``HalfNormal(0.5)``) or a uniform factor on [1 - w, 1 + w];
- **saturation in the generator's own units**: a Hill curve (shapes ``hill_shape``) ``x^s / (x^s + K^s)`` on spend per
  head (``per_capita``, Meridian's convention) or on absolute spend (``absolute``), with one
  ``K`` per channel for all geos (times a per-geo factor of log-sd ``param_sd_log``), not on
  each geo's spend relative to its own mean;
- **adstock not normalized**: geometric weights ``alpha^l``, l = 0..L-1, summing to about
  ``1 / (1 - alpha)`` (``normalized=True`` divides by the sum), ``alpha`` varying a little by geo;
- **noise heteroscedastic**: sd ``c_g · mu_gt^noise_power`` (Poisson-like for power 0.5: a small
  geo is relatively noisier, and every geo is noisier in its high weeks), ``c_g`` with its own
  log-normal geo factor;
- the baseline: per-geo level (size times a log-normal factor), relative trend slope and
  seasonal amplitude drawn per geo.

:func:`external_geo_panel` returns the long frame (``date, geo, sales, <channels>,
population``) and the truth: per geo × channel ``contribution`` (sum over weeks of the
channel's effect on sales), ``spend`` and ``roas``; national sums; the generator's parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["external_geo_panel", "geometric_adstock", "hill"]

CHANNEL_NAMES = ("search", "social", "tv", "display", "radio", "video", "print", "ooh")


def geometric_adstock(x: np.ndarray, alpha: np.ndarray, lags: int, normalized: bool) -> np.ndarray:
    """Geometric carry-over over ``lags`` weeks; ``x`` (week, ...), ``alpha`` broadcasting over ``x[0]``."""
    out = np.zeros_like(x)
    total = np.zeros_like(alpha)
    for lag in range(lags):
        w = alpha**lag
        total = total + w
        out[lag:] += w * x[: len(x) - lag]
    return out / total if normalized else out


def hill(x: np.ndarray, half: np.ndarray, shape: np.ndarray) -> np.ndarray:
    return x**shape / (x**shape + half**shape)


def external_geo_panel(
    n_geos: int,
    n_channels: int = 4,
    n_weeks: int = 104,
    seed: int = 0,
    *,
    size_sd_log: float = 1.0,
    intensity_sd_log: float = 0.4,
    effect: str = "lognormal",
    effect_sd_log: float = 0.7,
    effect_width: float = 0.75,
    saturation_units: str = "per_capita",
    param_sd_log: float = 0.2,
    lags: int = 8,
    normalized: bool = False,
    noise_power: float = 0.5,
    noise_geo_sd_log: float = 0.3,
    noise_level: float = 0.04,
    media_share: float = 0.3,
    hill_shape: tuple[float, float] = (0.7, 1.3),
    curve: str = "hill",
    trend_sd: float = 0.05,
    season_sd: float = 0.03,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate a geo panel (see the module docstring) and its truth.

    Parameters
    ----------
    n_geos, n_channels, n_weeks, seed : panel shape and random seed.
    size_sd_log : log-sd of the geos' populations.
    intensity_sd_log : log-sd of a geo's spend per head on a channel around the channel's level.
    effect : ``lognormal`` (per-geo factor ``exp(effect_sd_log · N(0, 1))``) or ``uniform``
        (factor uniform on ``[1 - effect_width, 1 + effect_width]``) of the per-head effect.
    saturation_units : ``per_capita`` (Hill on adstocked spend per 1000 people), ``absolute``
        (on adstocked spend) or ``own`` (on adstocked spend over the geo's mean active-week spend:
        our simulator's and model's convention, for isolating this respect).
    param_sd_log : log-sd (logit-sd for ``alpha``) of per-geo deviations of ``alpha`` and ``K``.
    lags, normalized : adstock length; whether its weights are divided by their sum.
    noise_power, noise_geo_sd_log, noise_level : noise sd ``c_g · mu^noise_power`` with ``c_g`` set
        so that a geo of median size has sd ``noise_level · mean(mu)``, times ``exp(noise_geo_sd_log · N)``.
    media_share : the media's approximate share of total sales.
    hill_shape : range of the channels' Hill shapes (uniform). Up to about 1.3 the curves are
        concave or nearly (as Meridian's default shape 1); S-shaped curves (shape 2-2.5) bias
        the NATIONAL contributions of a logistic model by 40-50% on their own (functional form,
        not geo structure: measured in ``benchmarks/README.md``).
    trend_sd, season_sd : spread across geos of the baseline's relative trend slope (mean 0.1 over
        the panel) and seasonal amplitude (mean 0.08); 0 gives every geo the same baseline shape.
    curve : ``hill`` (the default) or ``logistic``: ``tanh(x / K)``, i.e. ``(1 - e^(-2x/K)) / (1 +
        e^(-2x/K))``, the model's own family, with ``K`` drawn as the Hill's half-point (every other
        respect unchanged): it isolates the geo structure from the curve's form.
    """
    if n_channels > len(CHANNEL_NAMES):
        raise ValueError(f"at most {len(CHANNEL_NAMES)} channels")
    rng = np.random.default_rng([seed, 2025])
    channels = list(CHANNEL_NAMES[:n_channels])
    geos = [f"g{g:02d}" for g in range(n_geos)]
    t = np.arange(n_weeks)
    population = 1e6 * np.exp(size_sd_log * rng.standard_normal(n_geos))
    heads = population / 1e3  # thousands of people

    # ---- spend: national per-head level × geo intensity × weekly pattern (flighted for some)
    level = rng.uniform(0.5, 3.0, n_channels)  # spend per 1000 people per week
    intensity = np.exp(intensity_sd_log * rng.standard_normal((n_geos, n_channels)))
    pattern = np.empty((n_weeks, n_channels))
    for c in range(n_channels):
        wave = 1 + 0.4 * np.sin(2 * np.pi * (t / rng.uniform(20, 60) + rng.uniform()))
        base = rng.gamma(4.0, 0.25, n_weeks) * wave
        if c % 3 == 2:  # flighted: off in about a third of the weeks
            base = base * (rng.uniform(size=n_weeks) > 0.35)
        pattern[:, c] = base
    jitter = np.exp(0.25 * rng.standard_normal((n_weeks, n_geos, n_channels)))
    spend = heads[None, :, None] * level * intensity[None] * pattern[:, None, :] * jitter  # (week, geo, ch)

    # ---- carry-over (unnormalized geometric), per-geo alpha around the channel's
    alpha_c = rng.uniform(0.1, 0.7, n_channels)
    logit = np.log(alpha_c / (1 - alpha_c)) + param_sd_log * rng.standard_normal((n_geos, n_channels))
    alpha = 1 / (1 + np.exp(-logit))  # (geo, ch)
    carried = geometric_adstock(spend, alpha, lags, normalized)
    if saturation_units == "per_capita":
        x = carried / heads[None, :, None]
    elif saturation_units == "absolute":
        x = carried
    elif saturation_units == "own":  # each geo's spend relative to its own mean (as our simulator and model)
        x = carried / np.array([[np.mean(s[s > 0]) if (s > 0).any() else 1.0 for s in row] for row in spend.T]).T
    else:
        raise ValueError("saturation_units: per_capita, absolute or own")

    # ---- Hill saturation, K in the generator's units (one per channel × a small geo factor)
    typical = np.array([np.median(x[:, :, c][x[:, :, c] > 0]) for c in range(n_channels)])
    half = typical * rng.uniform(0.6, 1.6, n_channels)
    half_g = half[None, :] * np.exp(param_sd_log * rng.standard_normal((n_geos, n_channels)))
    shape = rng.uniform(*hill_shape, n_channels)
    if curve == "hill":
        response = hill(x, half_g[None], shape[None, None])  # (week, geo, ch) in [0, 1)
    elif curve == "logistic":
        response = np.tanh(x / half_g[None])
    else:
        raise ValueError("curve: hill or logistic")

    # ---- baseline per head, and per-geo effects
    base_head = 100.0  # sales per 1000 people per week
    base_level = heads * base_head * np.exp(0.2 * rng.standard_normal(n_geos))
    slope = rng.normal(0.1, trend_sd, n_geos)
    amp = np.clip(rng.normal(0.08, season_sd, n_geos), 0.0, None)
    phase = rng.uniform(0, 2 * np.pi)
    season = np.sin(2 * np.pi * t / 52.18 + phase)
    baseline = base_level[None] * (1 + slope[None] * t[:, None] / n_weeks + amp[None] * season[:, None])
    if effect == "lognormal":
        factor = np.exp(effect_sd_log * rng.standard_normal((n_geos, n_channels)))
    elif effect == "uniform":
        factor = rng.uniform(1 - effect_width, 1 + effect_width, (n_geos, n_channels))
    else:
        raise ValueError("effect: lognormal or uniform")
    weights = rng.dirichlet(np.full(n_channels, 3.0))
    # per-head effect of channel c so that media are about media_share of national sales
    mean_resp = response.mean(axis=0)  # (geo, ch)
    per_head = np.empty(n_channels)
    for c in range(n_channels):
        media_c = np.sum(heads * factor[:, c] * mean_resp[:, c])
        per_head[c] = weights[c] * media_share / (1 - media_share) * np.sum(heads * base_head) / media_c
    effect_gc = heads[:, None] * per_head[None] * factor  # (geo, ch): sales per week at full saturation
    contribution = response * effect_gc[None]  # (week, geo, ch)
    mu = baseline + contribution.sum(axis=-1)

    # ---- heteroscedastic noise
    median_geo = int(np.argsort(population)[n_geos // 2])
    c0 = noise_level * mu[:, median_geo].mean() / mu[:, median_geo].mean() ** noise_power
    c_g = c0 * np.exp(noise_geo_sd_log * rng.standard_normal(n_geos))
    sd = c_g[None] * mu**noise_power
    sales = mu + sd * rng.standard_normal(mu.shape)

    dates = pd.date_range("2023-01-02", periods=n_weeks, freq="7D")
    frames = []
    for g, geo in enumerate(geos):
        frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "geo": geo, "sales": sales[:, g]})
        for c, ch in enumerate(channels):
            frame[ch] = spend[:, g, c]
        frame["population"] = population[g]
        frames.append(frame)
    contrib_gc = contribution.sum(axis=0)
    spend_gc = spend.sum(axis=0)
    truth = {
        "channels": {
            ch: {
                "contribution": float(contrib_gc[:, c].sum()),
                "spend": float(spend_gc[:, c].sum()),
                "roas": float(contrib_gc[:, c].sum() / spend_gc[:, c].sum()),
                "alpha": float(alpha_c[c]),
                "hill_half": float(half[c]),
                "hill_shape": float(shape[c]),
            }
            for c, ch in enumerate(channels)
        },
        "geos": {
            geo: {
                "population": float(population[g]),
                "noise_sd_mean": float(sd[:, g].mean()),
                "relative_noise": float(sd[:, g].mean() / mu[:, g].mean()),
                "channels": {
                    ch: {
                        "contribution": float(contrib_gc[g, c]),
                        "spend": float(spend_gc[g, c]),
                        "roas": float(contrib_gc[g, c] / spend_gc[g, c]),
                        "effect_factor": float(factor[g, c]),
                        "mean_saturation": float(mean_resp[g, c]),
                    }
                    for c, ch in enumerate(channels)
                },
            }
            for g, geo in enumerate(geos)
        },
        "media_share": float(contribution.sum() / mu.sum()),
    }
    return pd.concat(frames, ignore_index=True), truth
