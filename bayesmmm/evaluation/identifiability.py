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
width will pin the channel. A channel that stays prior-driven although it has a go-dark test
gets different advice (:func:`lift_advice`): where the test's weeks are short next to the
channel's carry-over, the readout shows only part of the level (a 4-week go-dark of a
geometric ``alpha = 0.8`` channel: 49%), and the level trades off against the carry-over,
so the advice names the test length that would show 80%.

A narrow posterior is not always a data-driven one: a channel that is always on never shows the
response near zero spend, so its contribution is mostly the saturation curve extrapolated below
the inputs observed. :mod:`bayesmmm.evaluation.extrapolation` measures that share
(``extrapolated_share``, flag ``extrapolated``), reported with the contraction here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.data.frequency import period_name, periods_between, periods_in_days
from bayesmmm.evaluation.extrapolation import DEFAULT_SHARE, extrapolation
from bayesmmm.model.media_prior import posterior_coefficients, posterior_organic_coefficients

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "CAPTURE_GOAL",
    "DEFAULT_THRESHOLD",
    "TEST_WEEKS",
    "add_calibration_diagnostics",
    "contraction_entry",
    "default_test_periods",
    "expected_test_lift",
    "expected_test_lifts",
    "identifiability",
    "lift_advice",
    "organic_identifiability",
    "posterior_adstock_weights",
    "prior_draws",
    "roas_draws",
    "varying_identifiability",
    "weeks_to_capture",
    "window_capture",
]

#: ``prior_driven`` when the data removed less than this share of the prior's log-ROAS variance
DEFAULT_THRESHOLD = 0.9
#: length (weeks: 28 days, in periods of the data by :func:`default_test_periods`) of the test the check
#: describes for a flagged channel
TEST_WEEKS = 4


def prior_draws(mmm: MMM, n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` draws of the model's free variables from their priors: name → (sample, ...).

    All ``n`` draws come from one call of one function when every free variable's prior is a
    root of the graph (no free variable among its parameters: the case for every built-in
    prior): each is resized to ``(n, ...)`` and the deterministic ones (``beta`` under a
    business-unit prior) are vectorized over that axis. Otherwise, PyMC's
    ``sample_prior_predictive`` draws them one at a time (about 1 ms each).
    """
    names = list(mmm.variable_dims())
    # beta under a business-unit prior: from the drawn quantity by the NumPy form of the graph's own
    # function (posterior_coefficients), not by the sampling graph, whose adstock scan would step
    # through the dates once per draw in Python (23 s of a 3-year daily fit, measured)
    derived = ["beta"] if mmm.media_prior_variable and "beta" in names else []
    if mmm.require_spec().organic_share:  # beta_organic likewise (model.organic.prior: share)
        derived.append("beta_organic")
    graph_names = [name for name in names if name not in derived]
    model = mmm.build_model()
    prior = _vectorized_prior(model, graph_names, n, seed)
    if prior is None:
        prior = _prior_one_by_one(model, graph_names, n, seed)
    dims = mmm.variable_dims()
    out = {}
    for name in graph_names:
        arr = np.asarray(prior[name], dtype="float64")
        out[name] = arr.reshape(n, *arr.shape[arr.ndim - len(dims[name]) :])
    if "beta" in derived:
        out["beta"] = posterior_coefficients(mmm.require_spec(), {k: v[None] for k, v in out.items()})[0]
    if "beta_organic" in derived:
        draws = {k: v[None] for k, v in out.items()}
        out["beta_organic"] = posterior_organic_coefficients(mmm.require_spec(), draws)[0]
    return {name: out[name] for name in names}


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
    """ROAS of each channel over the training weeks per draw: (sample, channel) (national for a panel), per
    unit of spend, in revenue where the data have a revenue per KPI (as ``roas_table``)."""
    return mmm.media_totals([1.0], draws, value=True)[0] / mmm.data.channel_spend.sum(axis=0)


def default_test_periods(mmm: MMM) -> int:
    """The default test length in periods of the model's data: :data:`TEST_WEEKS` weeks (28 days,
    4 weeks, 1 month)."""
    return periods_in_days(7 * TEST_WEEKS, mmm.data.frequency)


def expected_test_lift(
    mmm: MMM, channel: str, change: float = 0.5, weeks: int | None = None, hdi_prob: float = 0.9
) -> dict[str, Any]:
    """The posterior lift per period a test changing ``channel``'s spend by ``±change`` for ``weeks``
    periods (default :func:`default_test_periods`: four weeks) would show.

    Returns ``{"window", "x", "plus": {...}, "minus": {...}}`` with the weekly spend ``x``
    (mean of the window, national) and, for each direction, ``delta_x``, the lift's
    posterior ``mean`` and ``hdi`` (original units, national).
    """
    return expected_test_lifts(mmm, [channel], change, weeks, hdi_prob)[channel]


def expected_test_lifts(
    mmm: MMM, channels: list[str], change: float = 0.5, weeks: int | None = None, hdi_prob: float = 0.9
) -> dict[str, dict[str, Any]]:
    """:func:`expected_test_lift` of several channels at once (one evaluation of the lift graph)."""
    from bayesmmm.evaluation.summaries import hdi_bounds
    from bayesmmm.model.calibration import check_lift_tests

    if not channels:
        return {}
    if weeks is None:
        weeks = default_test_periods(mmm)
    dates = pd.DatetimeIndex(mmm.data.dates)
    end = max(len(dates) - 1 - min(mmm.carryover_weeks, len(dates) // 2), weeks - 1)
    start = max(end - weeks + 1, 0)
    geos = list(mmm.geos) if mmm.is_geo else [None]
    # lift tests are stated in spend (calibration converts to exposure over the window)
    media = mmm.data.geo_channel_spend if mmm.is_geo else mmm.data.channel_spend[:, None, :]
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
    lifts = mmm.lift_draws(tests=tests).reshape(-1, len(channels), 2, len(geos)).sum(axis=3)
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


def contraction_entry(p: np.ndarray, q: np.ndarray, quantity: str, threshold: float) -> tuple[dict[str, Any], float]:
    """How far the data moved a quantity's prior draws ``p`` to its posterior draws ``q``.

    Returns the entry (``{quantity}_prior_mean`` / ``_prior_sd`` / ``_posterior_mean`` /
    ``_posterior_sd``, ``contraction`` = 1 − var_post / var_prior, ``log_contraction`` the same on
    logs when both are positive, ``shift`` in prior sds, ``prior_driven``) and the measure
    compared with ``threshold`` (the log contraction where defined, else the contraction).
    """
    sd_prior, sd_post = float(np.std(p, ddof=1)), float(np.std(q, ddof=1))
    contraction = 1.0 - sd_post**2 / sd_prior**2 if sd_prior > 0 else 0.0
    log_contraction = None
    if (p > 0).all() and (q > 0).all() and np.var(np.log(p)) > 0:
        log_contraction = float(1.0 - np.var(np.log(q), ddof=1) / np.var(np.log(p), ddof=1))
    measure = contraction if log_contraction is None else log_contraction
    entry: dict[str, Any] = {
        f"{quantity}_prior_mean": float(np.mean(p)),
        f"{quantity}_prior_sd": sd_prior,
        f"{quantity}_posterior_mean": float(np.mean(q)),
        f"{quantity}_posterior_sd": sd_post,
        "contraction": contraction,
        "log_contraction": log_contraction,
        "shift": (float(np.mean(q)) - float(np.mean(p))) / sd_prior if sd_prior > 0 else 0.0,
        "prior_driven": bool(measure < threshold),
    }
    return entry, measure


def identifiability(
    mmm: MMM,
    threshold: float = DEFAULT_THRESHOLD,
    n_prior: int = 1000,
    seed: int = 0,
    hdi_prob: float = 0.9,
    extrapolated_threshold: float = DEFAULT_SHARE,
) -> dict[str, Any]:
    """Prior-vs-posterior ROAS per channel; see the module docstring. With it, the extrapolated
    contribution (:func:`~bayesmmm.evaluation.extrapolation.extrapolation`): how much of each channel's
    contribution lies below the lowest input the data show.

    Returns
    -------
    ``{"threshold": ..., "channels": {channel: {roas_prior_mean, roas_prior_sd,
    roas_posterior_mean, roas_posterior_sd, contraction, log_contraction, shift, prior_driven[, advice,
    expected_test], extrapolated_share, extrapolated_share_hdi, extrapolated[, extrapolation_advice]}},
    "prior_driven": [channels], "extrapolated_threshold": ..., "extrapolated": [channels]}``. A
    prior-driven channel carries ``advice`` (plain words) and ``expected_test``
    (:func:`expected_test_lift`); an extrapolated one ``extrapolation_advice``. Organic media get the
    same under ``organic`` (``organic_prior_driven``, ``organic_extrapolated``).
    """
    mmm.require_fitted()
    prior_sample = prior_draws(mmm, n_prior, seed)
    prior = roas_draws(mmm, prior_sample)
    post = roas_draws(mmm, mmm.posterior_draws())
    channels: dict[str, Any] = {}
    measures: dict[str, float] = {}
    for c, name in enumerate(mmm.channels):
        entry, measure = contraction_entry(prior[:, c], post[:, c], "roas", threshold)
        measures[name] = measure
        channels[name] = entry
    organic = organic_identifiability(mmm, prior_sample, threshold) if mmm.require_spec().organic else {}
    flagged = [name for name, entry in channels.items() if entry["prior_driven"]]
    tests = expected_test_lifts(mmm, flagged, hdi_prob=hdi_prob)  # one evaluation for every flagged channel
    weights = posterior_adstock_weights(mmm) if flagged else {}
    for name in flagged:
        entry, measure = channels[name], measures[name]
        test = tests[name]
        entry["expected_test"] = test
        plus, minus = test["plus"], test["minus"]
        what = lift_advice(mmm, name, weights)
        period = period_name(mmm.data.frequency)
        entry["advice"] = (
            f"{name}: ROAS is prior-driven (the data removed {max(measure, 0):.1%} of the prior's "
            f"log-variance); {what}. Changing its spend by ±50% (±{plus['delta_x']:,.0f} a {period}) for "
            f"{test['weeks']} {period}s should move the target by {plus['mean']:+,.1f} / {minus['mean']:+,.1f} "
            f"a {period} (posterior {hdi_prob:.0%} HDI [{plus['hdi'][0]:,.1f}, {plus['hdi'][1]:,.1f}] / "
            f"[{minus['hdi'][0]:,.1f}, {minus['hdi'][1]:,.1f}]); add its result under calibration.lift_tests"
        )
    extrapolated = extrapolation(mmm, extrapolated_threshold, hdi_prob=hdi_prob, seed=seed)
    for name, entry in extrapolated["channels"].items():
        channels[name].update(entry)
    for name, entry in extrapolated["organic"].items():
        organic[name].update(entry)
    out = {
        "threshold": threshold,
        "n_prior_draws": n_prior,
        "channels": channels,
        "prior_driven": flagged,
        "extrapolated_threshold": extrapolated_threshold,
        "extrapolated": [name for name, entry in channels.items() if entry["extrapolated"]],
    }
    varying = varying_identifiability(mmm, prior_sample)
    if varying:  # model.time_varying_media: is the change itself identified?
        out["time_varying"] = varying
    if organic:  # organic media: no spend, so the check is on their contribution
        out["organic"] = organic
        out["organic_prior_driven"] = [name for name, entry in organic.items() if entry["prior_driven"]]
        out["organic_extrapolated"] = [name for name, entry in organic.items() if entry["extrapolated"]]
    return out


#: the contraction of a time-varying channel's log change above which the change counts as identified
CHANGE_THRESHOLD = 0.5


def varying_identifiability(
    mmm: MMM, prior: Mapping[str, np.ndarray], threshold: float = CHANGE_THRESHOLD
) -> dict[str, dict[str, Any]]:
    """Is the change of a time-varying channel's effect identified (``model.time_varying_media``)?

    Per chosen channel, prior vs posterior (:func:`contraction_entry`) of

    - ``amplitude``: the multiplier component's amplitude variable (how much the effect may move);
    - ``change``: ``log_change``, the log of the mean multiplier over the last quarter of the training
      periods over that of the first quarter: how far, and which way, the effect moved from the start to
      the end (quarters of the history, not single periods: a smooth curve's ends are its least certain part).

    ``p_decline`` is the posterior probability that the effect at the end is below the start's;
    ``identified`` says the data removed at least ``threshold`` of the change's prior variance (else the
    reported path is mostly the prior's: read the multiplier's interval, or run a dated lift test).
    Empty for a model without time-varying effects.
    """
    spec = mmm.require_spec()
    config = spec.model_config.time_varying_media
    if config is None:
        return {}
    window = max(1, spec.data.n_dates // 4)
    dates = spec.data.dates
    ends = dates[:window].append(dates[-window:])

    def change(draws: Mapping[str, np.ndarray]) -> np.ndarray:
        m = mmm.predictive.multiplier(ends, draws)  # (sample, 2 window, channel)
        return np.log(m[:, window:].mean(axis=1) / m[:, :window].mean(axis=1))

    p_change, q_change = change(prior), change(mmm.posterior_draws())
    amplitude = spec.varying.amplitude_variable
    posterior = mmm.posterior_draws()
    out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(config.channels):
        c = spec.channels.index(name)
        entry, _ = contraction_entry(p_change[:, c], q_change[:, c], "log_change", threshold)
        result: dict[str, Any] = {
            "change": entry,
            "p_decline": float(np.mean(q_change[:, c] < 0)),
            "identified": not entry["prior_driven"],
            "window_periods": window,
        }
        if amplitude is not None:
            result["amplitude"] = contraction_entry(
                np.asarray(prior[amplitude])[:, k], np.asarray(posterior[amplitude])[:, k], "amplitude", threshold
            )[0]
        out[name] = result
    return out


def organic_identifiability(
    mmm: MMM, prior: Mapping[str, np.ndarray], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, dict[str, Any]]:
    """Prior vs posterior of each organic medium's contribution over the training weeks.

    The same measures as for a channel's ROAS (``contraction``, ``log_contraction``, ``shift``,
    ``prior_driven``), on the contribution (organic media have no spend): is the organic effect
    identified by the data, or is what the model reports its prior? ``prior``: :func:`prior_draws`.
    """
    from bayesmmm.decisions.response import organic_totals

    p_all = organic_totals(mmm, [1.0], prior)[0]
    q_all = organic_totals(mmm, [1.0], mmm.posterior_draws())[0]
    out: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(mmm.require_spec().organic):
        out[name] = contraction_entry(p_all[:, c], q_all[:, c], "contribution", threshold)[0]
    return out


#: share of a go-dark's full effect a test's window should show before it pins the level
CAPTURE_GOAL = 0.8


def window_capture(weights: np.ndarray, weeks: int) -> float:
    """Mean share of the steady-state effect lost over the first ``weeks`` weeks of going dark.

    ``weights``: the adstock's lag weights (lag 0 first). Going dark at week 1, week ``t`` has
    lost the weights of lags ``0..t-1`` of the adstocked spend (linear in spend, saturation
    aside); a test whose readout is the mean over its ``weeks`` weeks shows this share of the
    channel's level. Geometric ``alpha = 0.8`` over 8 lags: 0.49 for 4 weeks, 0.80 for 12.
    """
    w = np.clip(np.asarray(weights, dtype="float64"), 0.0, None)
    if w.sum() <= 0 or weeks < 1:
        return 1.0
    cum = np.cumsum(w / w.sum())
    lost = cum[np.minimum(np.arange(weeks), len(cum) - 1)]  # week t (1-based) has lost lags 0..t-1
    return float(lost.mean())


def weeks_to_capture(weights: np.ndarray, goal: float = CAPTURE_GOAL, longest: int = 104) -> int | None:
    """The shortest go-dark test (weeks) whose mean readout shows ``goal`` of the level, or None."""
    for weeks in range(1, longest + 1):
        if window_capture(weights, weeks) >= goal:
            return weeks
    return None


def lift_advice(mmm: MMM, name: str, weights: Mapping[str, np.ndarray] | None = None) -> str:
    """What to do about a prior-driven channel, given the lift tests it already has.

    No test: run one (a go-dark test pins the level), for as many weeks as
    :func:`weeks_to_capture` says when the channel's posterior carry-over makes 4 weeks too
    short. Tests that are not go-dark: they pin only part of the curve. A dated go-dark test
    whose window shows less than :data:`CAPTURE_GOAL` of the level (:func:`window_capture`
    with the posterior mean adstock weights): run it for longer. Otherwise (the level is
    pinned): test another spend level. ``weights``: :func:`posterior_adstock_weights`, when the
    caller advises on several channels (computed here otherwise).
    """
    if weights is None:
        weights = posterior_adstock_weights(mmm)
    weights_c = weights.get(name)
    tests = mmm.lift_tests
    mine = tests[tests["channel"] == name] if tests is not None else None
    frequency = mmm.data.frequency
    periods, default = period_name(frequency, plural=True), default_test_periods(mmm)
    longest = max(104, 2 * mmm.adstock.l_max)
    if mine is None or not len(mine):
        needed = weeks_to_capture(weights_c, longest=longest) if weights_c is not None else None
        if needed is None or needed <= default:
            return "run a lift test (a go-dark test pins the level)"
        return (
            f"run a lift test: a go-dark test pins the level, and with this channel's carry-over (posterior "
            f"adstock) it should run {needed} {periods} to show {CAPTURE_GOAL:.0%} of it ({default} {periods} would "
            f"show {window_capture(weights_c, default):.0%})"
        )
    dark = mine[np.isclose(mine["delta_x"], -mine["x"])]
    if not len(dark):
        return (
            "its lift test pins only part of the curve: run another at a different spend level (a go-dark "
            "test pins the level)"
        )
    dated = dark.dropna(subset=["start", "end"]) if {"start", "end"} <= set(dark.columns) else dark.iloc[:0]
    if len(dated) < len(dark):  # a steady-state go-dark already shows the whole level
        return _shape_advice()
    weeks = max(periods_between(r.start, r.end, frequency) for r in dated.itertuples())
    if weights_c is None:
        return _shape_advice()
    shown = window_capture(weights_c, weeks)
    if shown >= CAPTURE_GOAL:
        return _shape_advice()
    needed = weeks_to_capture(weights_c, longest=longest)
    longer = f"a go-dark test of {needed} {periods} would show {CAPTURE_GOAL:.0%}" if needed else "test for longer"
    return (
        f"its {weeks}-{period_name(frequency)} go-dark test shows only about {shown:.0%} of the channel's level, "
        f"because its effect carries over for {periods} (posterior adstock), so the level and the carry-over "
        f"trade off: {longer}"
    )


def posterior_adstock_weights(mmm: MMM, max_draws: int = 200) -> dict[str, np.ndarray]:
    """Each channel's posterior mean adstock lag weights (lag 0 first); empty where the adstock has
    no lag weights (e.g. a plugin that overrides ``apply``)."""
    try:
        from bayesmmm.decisions.response import adstock_weights

        table = adstock_weights(mmm, max_draws=max_draws)
    except (NotImplementedError, AttributeError, TypeError, ValueError, KeyError):
        return {}
    return {str(name): part.sort_values("lag")["weight_mean"].to_numpy() for name, part in table.groupby("channel")}


def _shape_advice() -> str:
    return (
        "its go-dark test pins the curve's level at the tested spend, not the shape below it: run another "
        "at a different spend level (e.g. a ±50% test)"
    )


def add_calibration_diagnostics(mmm: MMM, diag: dict[str, Any], config: Any, hdi_prob: float = 0.9) -> None:
    """Add ``identifiability`` (and ``calibration`` for a calibrated model) to ``diagnostics.json``'s dict.

    ``config``: the :class:`~bayesmmm.config.experiment.DiagnosticsConfig`; with
    ``fail_on_prior_driven`` a prior-driven channel is a problem of the gate.
    """
    if mmm.lift_tests is not None:
        from bayesmmm.model.calibration import calibration_summary

        summary = calibration_summary(mmm.require_spec(), mmm.posterior_draws(), mmm.lift_tests, hdi_prob)
        diag["calibration"] = {"lift_tests": summary}
    if not config.identifiability:
        return
    ident = identifiability(
        mmm, config.prior_driven_contraction, hdi_prob=hdi_prob, extrapolated_threshold=config.extrapolated_share
    )
    diag["identifiability"] = ident
    if ident["prior_driven"] and config.fail_on_prior_driven:
        diag["problems"].append(f"prior-driven ROAS: {', '.join(ident['prior_driven'])} (run lift tests)")
        diag["passed"] = False
