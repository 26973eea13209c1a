"""Extrapolated contribution: how much of a channel's contribution lies below the inputs the data show.

A channel's contribution is its response minus the response at zero input. A channel whose spend
is always on never shows the response near zero, so most of that difference is the saturation
curve extrapolated below the lowest input observed, and the curve's form, not the data, decides
it. A one-parameter curve (``logistic``: ``lam`` alone) ties that extrapolation to its curvature
over the observed range, so the posterior is precise and can still be far off: measured on an
independent geo generator with Hill truth, a logistic fit's 90% intervals of the contribution
held the truth in 62% of geos (58% nationally; one curve shared by the geos, the geo default then),
while ``model.saturation: hill`` held it in 94%; with each geo on its own curve (the geo default
now) the logistic reaches 80%, its misses still mostly underestimates. The prior-vs-posterior
check (``prior_driven``) does not see this: the posterior is narrow. This check does.

Per channel ``c`` and posterior draw, with ``a_t`` the channel's adstocked, scaled saturation input
in training period ``t`` (per geo for a panel) and ``f`` that draw's saturation:

- ``a_lo``: the :data:`LOW_PERCENTILE`-th percentile of ``a_t`` over the training periods (per geo);
- ``share = Σ_t [f(min(a_t, a_lo)) − f(0)] / Σ_t [f(a_t) − f(0)]``: the part of the contribution
  below ``a_lo``, which no period of the data shows from below.

``beta`` cancels in a national model; a panel sums each geo's numerator and denominator in original
units (``beta_g · s_y,g``, the per-geo parameters of :func:`~bayesmmm.model.geo.geo_media_parameters`)
before dividing. A time-varying channel's periods are weighted by its multiplier, as its contribution
is. A flighted channel whose adstocked input decays to about zero between flights has
``a_lo ≈ 0`` and a share near 0; an always-on channel at 0.6–1.5× its mean, under a logistic curve
with ``lam = 1.5``, has 0.6–0.8 (measured over prior draws of the adstock). ``extrapolated`` flags a
posterior median share of at least ``diagnostics.extrapolated_share`` (default :data:`DEFAULT_SHARE`).

Exposure channels are covered (their curves act on exposure, as ``a_t`` does here), and organic media
with their own transforms. Reach & frequency channels are not: their response is linear in the
adstocked reach (the saturation acts on frequency), so their share is ``None``.

Nothing is stored with a fit: the share is computed from the posterior (thinned to
:data:`MAX_DRAWS` draws; 0.3 s on a 10-channel daily model of 3 years with 28 lags, measured), so a
model saved by an earlier version gets it on load. ``a_lo`` counts the first ``l_max − 1`` periods,
whose adstock starts from zero history; measured on the built-in scenarios, leaving them out moves
the true share by at most 0.06.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmmm.evaluation.summaries import hdi_bounds

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "DEFAULT_SHARE",
    "LOW_PERCENTILE",
    "MAX_DRAWS",
    "extrapolation",
    "extrapolation_advice",
    "low_inputs",
    "share_draws",
    "share_from_totals",
]

#: ``extrapolated`` when the posterior median share is at least this (``diagnostics.extrapolated_share``)
DEFAULT_SHARE = 0.5
#: the percentile of the adstocked input over the training periods taken as the lowest input the data show
LOW_PERCENTILE = 5.0
#: posterior draws the share is computed on (a seeded subsample)
MAX_DRAWS = 300
#: draws per batch: bounds the memory of (draws, date, geo, channel) arrays on large panels
_BATCH = 100


def low_inputs(adstocked: np.ndarray, percentile: float = LOW_PERCENTILE) -> np.ndarray:
    """``a_lo``: the ``percentile``-th percentile over the dates (axis 1) of ``adstocked`` (sample, date,
    [geo,] column), kept as a length-1 date axis so that it broadcasts against ``adstocked``."""
    return np.percentile(np.asarray(adstocked, dtype="float64"), percentile, axis=1, keepdims=True)


def share_from_totals(
    full: np.ndarray, low: np.ndarray, zero: np.ndarray, scale: float | np.ndarray = 1.0
) -> np.ndarray:
    """The extrapolated share from three sums over the dates of ``beta · f(·)``, (sample, [geo,] column):
    at ``a_t`` (``full``), at ``min(a_t, a_lo)`` (``low``) and at 0 (``zero``).

    A panel's (sample, geo, column) sums are weighted by the target's scale of each geo (``scale``,
    (geo,): each geo in original units) and summed over geos before dividing. Returns (sample, column);
    NaN where the column contributes nothing (no input, or ``beta = 0``).
    """
    numerator, denominator = np.asarray(low) - np.asarray(zero), np.asarray(full) - np.asarray(zero)
    if numerator.ndim == 3:
        weights = np.broadcast_to(np.asarray(scale, dtype="float64"), (numerator.shape[1],)).reshape(1, -1, 1)
        numerator, denominator = (numerator * weights).sum(axis=1), (denominator * weights).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0), np.nan)


def share_draws(
    mmm: MMM,
    block: str = "media",
    draws: Mapping[str, np.ndarray] | None = None,
    max_draws: int = MAX_DRAWS,
    seed: int = 0,
    percentile: float = LOW_PERCENTILE,
) -> np.ndarray:
    """The extrapolated share per draw, (sample, column): the channels (``block="media"``) or the organic
    media (``"organic"``) of ``mmm``'s training data.

    ``draws``: the model's free variables (default: a seeded subsample of ``max_draws`` posterior draws).
    The adstock and saturation are the model's own compiled ones
    (:meth:`~bayesmmm.model.predictive.Predictive.media_functions`, as the response curves use).
    NaN for reach & frequency channels (see the module docstring).
    """
    spec = mmm.require_spec()
    predictive = mmm.predictive
    if draws is None:
        draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    adstock_fn, saturate_fn, order = predictive.media_functions(block)
    inputs = spec.training_design()[block]  # scaled, (date, [geo,] column)
    weights = np.ones(inputs.shape[:-1])
    ones = np.ones((1, 1, 1, 1) if spec.is_geo else (1, 1, 1))
    n = len(next(iter(draws.values())))
    parts = []
    for start in range(0, n, _BATCH):
        batch = {k: np.asarray(v[start : start + _BATCH], dtype="float64") for k, v in draws.items()}
        values = [batch[k] for k in order]
        multiplier = predictive.training_multiplier(batch) if block == "media" else ones
        carried = np.asarray(adstock_fn(inputs, *values))  # (sample, date, [geo,] column)
        clipped = np.minimum(carried, low_inputs(carried, percentile))
        totals = [
            np.asarray(saturate_fn(a, weights, multiplier, *values)) for a in (carried, clipped, np.zeros_like(carried))
        ]
        parts.append(share_from_totals(*totals, spec.scales.target))
    share = np.concatenate(parts)
    if block == "media" and spec.rf_channels:
        share[:, list(spec.rf_index)] = np.nan
    return share


def extrapolation_advice(name: str, share: float, saturation: str, n_parameters: int, organic: bool = False) -> str:
    """Plain words for a flagged channel (or organic medium, ``organic``): what the share means and what
    to do; ``saturation`` / ``n_parameters``: its saturation's name and number of parameters."""
    key = "model.organic.saturation" if organic else "model.saturation"
    head = (
        f"{name}: {share:.0%} of its contribution lies below the lowest input the data show "
        f"(the {LOW_PERCENTILE:g}th percentile of its adstocked input), so the saturation form ({saturation}), "
        "not the data, decides it, and its interval is only as wide as that form allows"
    )
    if organic and n_parameters <= 1:
        return f"{head}; a two-parameter saturation (`{key}: hill`) gives an honest interval"
    if organic:  # no spend, so no lift test: only a change of the medium's own volume shows the low end
        return (
            f"{head}; only data with the medium paused or at a much lower volume for a stretch (a holdout of "
            "sends, say) measure it"
        )
    test = "a go-dark lift test (`calibration.lift_tests`)"
    if n_parameters <= 1:
        other = "michaelis_menten" if saturation != "michaelis_menten" else "logistic"
        return (
            f"{head} (a one-parameter curve like {saturation} pins it); compare it by PSIS-LOO with "
            f"{other}, which extrapolates differently (`selection: {{saturation: [{saturation}, {other}]}}`, "
            f"`bayesmmm select`), use a two-parameter saturation (`{key}: hill`) for an honest interval, "
            f"or {test} to measure it"
        )
    return f"{head}; {test} measures it"


def extrapolation(
    mmm: MMM,
    threshold: float = DEFAULT_SHARE,
    hdi_prob: float = 0.9,
    max_draws: int = MAX_DRAWS,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The extrapolated share of each channel (and organic medium) of a fitted model; see the module docstring.

    Returns
    -------
    ``{"channels": {channel: entry}, "organic": {organic: entry}}`` (``organic`` empty without organic
    media); an entry is ``extrapolated_share`` (the posterior median; ``None`` where undefined),
    ``extrapolated_share_hdi`` (``[low, high]`` or ``None``), ``extrapolated`` (median ≥ ``threshold``)
    and, when flagged, ``extrapolation_advice`` (:func:`extrapolation_advice`).
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a share in [0, 1], got {threshold}")
    spec = mmm.require_spec()
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    out: dict[str, dict[str, dict[str, Any]]] = {"channels": {}, "organic": {}}
    blocks = [("channels", "media", spec.channels)]
    if spec.organic:
        blocks.append(("organic", "organic", spec.organic))
    for key, block, names in blocks:
        share = share_draws(mmm, block, draws)
        saturation = spec.transforms(block)[1]
        for c, name in enumerate(names):
            column = share[:, c]
            column = column[np.isfinite(column)]
            if not len(column):
                out[key][name] = {"extrapolated_share": None, "extrapolated_share_hdi": None, "extrapolated": False}
                continue
            median = float(np.median(column))
            lo, hi = hdi_bounds(column, hdi_prob)
            entry: dict[str, Any] = {
                "extrapolated_share": median,
                "extrapolated_share_hdi": [float(lo), float(hi)],
                "extrapolated": bool(median >= threshold),
            }
            if entry["extrapolated"]:
                entry["extrapolation_advice"] = extrapolation_advice(
                    name, median, saturation.name, len(saturation.variable_names), organic=block == "organic"
                )
            out[key][name] = entry
    return out
