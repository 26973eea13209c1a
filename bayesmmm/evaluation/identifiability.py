"""Identifiability check: did the data move each channel's ROAS away from its prior?

Per channel, the prior of ROAS (prior draws of the model's own free variables pushed
through the predictive core over the training weeks, :meth:`Predictive.evaluate`) is
compared with its posterior:

- ``contraction = 1 − var_post / var_prior``: the share of the prior's variance the data
  removed (1: the data decided; 0: the posterior is as wide as the prior);
- ``log_contraction``: the same on ``log ROAS`` (relative uncertainty; ``null`` when a draw
  is not positive);
- ``shift = (mean_post − mean_prior) / sd_prior``: how far the posterior moved;
- ``prior_driven = log_contraction < threshold`` (``diagnostics.prior_driven_contraction``,
  default 0.9; ``contraction`` where ``log_contraction`` is undefined).

Why the log scale and 0.9: the default coefficient prior allows media to explain the
whole target, so the prior of ROAS is very wide (on the four-channel demo its 90% range
spans a factor of about 45 and its sd is 4–7× the true ROAS). ANY fit removes most of that
variance: measured on the demo's data (2 × 300 draws), the raw ``contraction`` was 0.88–0.99
for all four channels although their ROAS was off by +24% to +210% with 90% intervals
spanning factors of 5–14; it cannot tell a pinned channel from a prior-driven one. On the
log scale the uncalibrated channels had 0.54–0.83, the channels with a go-dark lift test
0.96–0.99 (search, ctv; intervals spanning factors below 2), and the channel without a
test 0.81. ``log_contraction >= 0.9`` means the posterior's log-sd is at most √0.1 ≈ 32% of
the prior's (prior log-sd ≈ 1.2 here), i.e. a 90% interval spanning at most about a factor
of 3.5: the data, not the prior, decided the order of magnitude and more.

For a flagged channel the check says what a lift test would show: a ±50% change of the
channel's spend for 4 weeks (the 4 weeks ending ``carryover_weeks`` weeks before the end
of the data, at their mean spend), as the model's posterior weekly lift with its HDI
(:func:`~bayesmmm.model.calibration.lift_draws`, the same computation the calibration's
likelihood uses). A test that measures it with a standard error well below the interval's
width will pin the channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "DEFAULT_THRESHOLD",
    "add_calibration_diagnostics",
    "expected_test_lift",
    "expected_test_lifts",
    "identifiability",
    "prior_draws",
    "roas_draws",
]

#: ``prior_driven`` when the data removed less than this share of the prior's log-ROAS variance
DEFAULT_THRESHOLD = 0.9


def prior_draws(mmm: MMM, n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` draws of the model's free variables from their priors: name → (sample, ...).

    All ``n`` draws come from one call of one function when every free variable's prior is a
    root of the graph (no free variable among its parameters: the case for every built-in
    prior): each is resized to ``(n, ...)`` and the deterministic ones (``beta`` under a
    business-unit prior) are vectorized over that axis. Otherwise, PyMC's
    ``sample_prior_predictive`` draws them one at a time (about 1 ms each).
    """
    names = list(mmm.variable_dims())
    model = mmm.build_model()
    prior = _vectorized_prior(model, names, n, seed)
    if prior is None:
        prior = _prior_one_by_one(model, names, n, seed)
    dims = mmm.variable_dims()
    out = {}
    for name in names:
        arr = np.asarray(prior[name], dtype="float64")
        out[name] = arr.reshape(n, *arr.shape[arr.ndim - len(dims[name]) :])
    return out


def _vectorized_prior(model: Any, names: list[str], n: int, seed: int) -> dict[str, np.ndarray] | None:
    """The free variables' (and deterministics') prior draws from one batched function; None when a
    free variable's prior depends on another free variable (resizing it alone would break the link)."""
    from pymc.distributions.shape_utils import change_dist_size
    from pymc.pytensorf import compile as compile_fn
    from pytensor.graph.replace import vectorize_graph
    from pytensor.graph.traversal import ancestors

    from bayesmmm.components.base import numpy_mode

    free = list(model.free_RVs)
    if any(set(ancestors(rv.owner.inputs)) & set(free) for rv in free):
        return None
    batched = {rv: change_dist_size(rv, (n,), expand=True) for rv in free}
    outputs = vectorize_graph([model[name] for name in names], replace=batched)
    fn = compile_fn([], outputs, random_seed=seed, mode=numpy_mode(fast_compile=True))
    return dict(zip(names, fn(), strict=True))


def _prior_one_by_one(model: Any, names: list[str], n: int, seed: int) -> dict[str, np.ndarray]:
    import pymc as pm

    from bayesmmm.components.base import numpy_mode

    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)  # not PyMC's "Sampling: [...]" line in the middle of a fit's summary
    try:
        return pm.sample_prior_predictive(
            draws=n,
            model=model,
            var_names=names,
            random_seed=seed,
            return_inferencedata=False,
            compile_kwargs={"mode": numpy_mode(fast_compile=True)},
        )
    finally:
        logger.setLevel(level)


def roas_draws(mmm: MMM, draws: dict[str, np.ndarray]) -> np.ndarray:
    """ROAS of each channel over the training weeks per draw: (sample, channel) (national for a panel)."""
    return mmm.media_totals([1.0], draws)[0] / mmm.data.media.sum(axis=0)


def expected_test_lift(
    mmm: MMM, channel: str, change: float = 0.5, weeks: int = 4, hdi_prob: float = 0.9
) -> dict[str, Any]:
    """The posterior weekly lift a test changing ``channel``'s spend by ``±change`` for ``weeks`` weeks would show.

    Returns ``{"window", "x", "plus": {...}, "minus": {...}}`` with the weekly spend ``x``
    (mean of the window, national) and, for each direction, ``delta_x``, the lift's
    posterior ``mean`` and ``hdi`` (original units, national).
    """
    return expected_test_lifts(mmm, [channel], change, weeks, hdi_prob)[channel]


def expected_test_lifts(
    mmm: MMM, channels: list[str], change: float = 0.5, weeks: int = 4, hdi_prob: float = 0.9
) -> dict[str, dict[str, Any]]:
    """:func:`expected_test_lift` of several channels at once (one evaluation of the lift graph)."""
    from bayesmmm.evaluation.summaries import hdi_bounds
    from bayesmmm.model.calibration import check_lift_tests, lift_draws

    if not channels:
        return {}
    dates = pd.DatetimeIndex(mmm.data.dates)
    end = max(len(dates) - 1 - min(mmm.carryover_weeks, len(dates) // 2), weeks - 1)
    start = max(end - weeks + 1, 0)
    geos = list(mmm.geos) if mmm.is_geo else [None]
    media = mmm.data.geo_media if mmm.is_geo else mmm.data.media[:, None, :]
    spends, rows = {}, []
    for channel in channels:
        c = mmm.channels.index(channel)
        x = media[start : end + 1, :, c].mean(axis=0)  # (geo,)
        active = np.where(media[:, :, c] > 0, media[:, :, c], np.nan)
        fallback = np.nan_to_num(np.nanmean(active, axis=0), nan=1.0)
        x = np.where(x > 0, x, fallback)  # a channel dark in the window: test at its mean active spend
        spends[channel] = float(x.sum())
        for sign in (1.0, -1.0):
            for g, geo in enumerate(geos):
                rows.append(
                    {
                        "channel": channel,
                        "x": float(x[g]),
                        "delta_x": sign * change * float(x[g]),
                        "delta_y": 0.0,
                        "sigma": 1.0,
                        **({"geo": geo} if geo is not None else {}),
                        "start": dates[start],
                        "end": dates[end],
                    }
                )
    tests = check_lift_tests(pd.DataFrame(rows), source="expected lift")
    # (sample, channel, ±, geo) → national
    lifts = lift_draws(mmm, tests=tests).reshape(-1, len(channels), 2, len(geos)).sum(axis=3)
    out: dict[str, dict[str, Any]] = {}
    for i, channel in enumerate(channels):
        entry: dict[str, Any] = {
            "window": f"{dates[start].date()}..{dates[end].date()}",
            "weeks": int(end - start + 1),
            "x": spends[channel],
        }
        for k, name in enumerate(("plus", "minus")):
            lo, hi = hdi_bounds(lifts[:, i, k], hdi_prob)
            entry[name] = {
                "delta_x": (1 if k == 0 else -1) * change * spends[channel],
                "mean": float(lifts[:, i, k].mean()),
                "hdi": [lo, hi],
            }
        out[channel] = entry
    return out


def identifiability(
    mmm: MMM,
    threshold: float = DEFAULT_THRESHOLD,
    n_prior: int = 1000,
    seed: int = 0,
    hdi_prob: float = 0.9,
) -> dict[str, Any]:
    """Prior-vs-posterior ROAS per channel; see the module docstring.

    Returns
    -------
    ``{"threshold": ..., "channels": {channel: {roas_prior_mean, roas_prior_sd,
    roas_posterior_mean, roas_posterior_sd, contraction, log_contraction, shift, prior_driven[, advice,
    expected_test]}}, "prior_driven": [channels]}``. A flagged channel carries ``advice`` (plain
    words) and ``expected_test`` (:func:`expected_test_lift`).
    """
    mmm.require_fitted()
    prior = roas_draws(mmm, prior_draws(mmm, n_prior, seed))
    post = roas_draws(mmm, mmm.posterior_draws())
    channels: dict[str, Any] = {}
    measures: dict[str, float] = {}
    for c, name in enumerate(mmm.channels):
        p, q = prior[:, c], post[:, c]
        sd_prior, sd_post = float(np.std(p, ddof=1)), float(np.std(q, ddof=1))
        contraction = 1.0 - sd_post**2 / sd_prior**2 if sd_prior > 0 else 0.0
        log_contraction = None
        if (p > 0).all() and (q > 0).all() and np.var(np.log(p)) > 0:
            log_contraction = float(1.0 - np.var(np.log(q), ddof=1) / np.var(np.log(p), ddof=1))
        measure = contraction if log_contraction is None else log_contraction
        entry: dict[str, Any] = {
            "roas_prior_mean": float(np.mean(p)),
            "roas_prior_sd": sd_prior,
            "roas_posterior_mean": float(np.mean(q)),
            "roas_posterior_sd": sd_post,
            "contraction": contraction,
            "log_contraction": log_contraction,
            "shift": (float(np.mean(q)) - float(np.mean(p))) / sd_prior if sd_prior > 0 else 0.0,
            "prior_driven": bool(measure < threshold),
        }
        measures[name] = measure
        channels[name] = entry
    flagged = [name for name, entry in channels.items() if entry["prior_driven"]]
    tests = expected_test_lifts(mmm, flagged, hdi_prob=hdi_prob)  # one evaluation for every flagged channel
    for name in flagged:
        entry, measure = channels[name], measures[name]
        test = tests[name]
        entry["expected_test"] = test
        plus, minus = test["plus"], test["minus"]
        tested = mmm.lift_tests is not None and name in set(mmm.lift_tests["channel"])
        what = (
            "its lift test pins only part of the curve: run another at a different spend level (a go-dark "
            "test pins the level)"
            if tested
            else "run a lift test"
        )
        entry["advice"] = (
            f"{name}: ROAS is prior-driven (the data removed {max(measure, 0):.1%} of the prior's "
            f"log-variance); {what}. Changing its spend by ±50% (±{plus['delta_x']:,.0f} a week) for "
            f"{test['weeks']} weeks should move the target by {plus['mean']:+,.1f} / {minus['mean']:+,.1f} "
            f"a week (posterior {hdi_prob:.0%} HDI [{plus['hdi'][0]:,.1f}, {plus['hdi'][1]:,.1f}] / "
            f"[{minus['hdi'][0]:,.1f}, {minus['hdi'][1]:,.1f}]); add its result under calibration.lift_tests"
        )
    return {"threshold": threshold, "n_prior_draws": n_prior, "channels": channels, "prior_driven": flagged}


def add_calibration_diagnostics(mmm: MMM, diag: dict[str, Any], config: Any, hdi_prob: float = 0.9) -> None:
    """Add ``identifiability`` (and ``calibration`` for a calibrated model) to ``diagnostics.json``'s dict.

    ``config``: the :class:`~bayesmmm.config.experiment.DiagnosticsConfig`; with
    ``fail_on_prior_driven`` a prior-driven channel is a problem of the gate.
    """
    if mmm.lift_tests is not None:
        from bayesmmm.model.calibration import calibration_summary

        diag["calibration"] = {"lift_tests": calibration_summary(mmm, hdi_prob)}
    if not config.identifiability:
        return
    ident = identifiability(mmm, config.prior_driven_contraction, hdi_prob=hdi_prob)
    diag["identifiability"] = ident
    if ident["prior_driven"] and config.fail_on_prior_driven:
        diag["problems"].append(f"prior-driven ROAS: {', '.join(ident['prior_driven'])} (run lift tests)")
        diag["passed"] = False
