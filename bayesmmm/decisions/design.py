"""Experiment design: which lift test to run next, by preposterior analysis of the posterior.

For each channel (and, for a geo panel, each candidate set of treated geos) the designer
lists candidate lift tests that start the period after the data ends: go-dark
(``delta_x = -x``), pull-backs (``-F·x``) and scale-ups (``+F·x``) at a few fractions ``F`` up
to ``max_change``, each at several lengths up to ``weeks``. ``x`` is the planned spend in the
test's weeks: the channel's mean spend over the data's last :data:`RECENT_PERIODS` periods
(per geo for a panel), the "business as usual" the test departs from.

What a test would measure (``expected_delta_y``): the model's lift of the test as the
calibration likelihood computes it (:func:`~bayesmmm.model.calibration.design_lift_draws`,
the same :func:`~bayesmmm.model.calibration.model_lift`): the data's last
``carryover_weeks`` periods of actual spend, then the planned spend with the test's weeks set
to ``x + delta_x``, the mean weekly difference of the channel's contribution over the test's
weeks. Carry-over is in it: a short test of a slow channel shows only part of the level
(``capture``: the window's lift over the steady-state lift of the same change).

How precisely (the noise model, ``expected_sigma``): the readout is the mean weekly
difference between the treated target and a counterfactual (control geos or a forecast)
that is as noisy as the treated series, with independent weeks; the weekly noise is the
fit's residual sd (RMSE of the posterior-mean fit, per geo), so
``sigma = rmse · sqrt(2 / weeks)`` (per treated geo; each geo is its own calibration row).
``sigma_needed`` is the standard error at which the expected lift is 2 standard errors
from zero. Replace the noise model by the test vendor's power analysis when there is one.

What it buys (preposterior analysis): for ``n_outcomes`` simulated outcomes (a posterior
draw ``i``, its lift plus measurement noise: ``y = lift_i + sigma · ε``) the posterior is
updated by importance reweighting of the posterior draws with the lift likelihood
(``w ∝ N(y | lift_draw, sigma)``, the likelihood :func:`~bayesmmm.model.calibration.add_lift_likelihood`
adds), and the channel's ROAS posterior sd is measured under the weights; ``roas_sd_after``
is its mean over the outcomes. The reweighting is exact in the limit of many draws; its
effective sample size (``ess``, median over outcomes) says how many draws the updated
posterior rests on: below :data:`MIN_ESS` (``ess_ok`` false) the test is so informative
that ``roas_sd_after`` is unreliable (too few draws inside the new, narrower posterior; it
tends to be too low): refit with the measured result to know.

The budget decision (``evsi``, expected value of sample information): the plan is the
optimizer's allocation of the current weekly spend over ``plan_weeks`` periods, each
channel within ``±plan_change`` of its current spend
(:func:`~bayesmmm.decisions.optimizer.maximize_allocation` on
:class:`~bayesmmm.decisions.response.FlightResponse`, the flight response
:func:`~bayesmmm.decisions.optimizer.optimize_budget` maximizes). For the first
``n_evsi`` simulated outcomes the plan is re-optimized under the reweighted posterior (from
the current plan and the equal split, no random starts) and ``evsi`` is the mean gain of the
re-optimized plan over the current one, both valued under the reweighted posterior (target
units over the plan's horizon; >= 0 up to the optimizer's tolerance). Cheap approximations:
few outcomes, the same reweighted draws, the optimizer at small settings, and only for the
``evsi_tests`` tests that lead by the sd part of ``value`` (the re-optimizations are the slow
part: about 40 ms each on 500 draws); the others get ``evsi = 0`` (``evsi_computed`` false).

The ranking's ``value`` (target units over the plan's horizon) is ``evsi`` plus the expected
reduction of the sd of the tested channel's planned contribution,
``(roas_sd_now − roas_sd_after) × planned spend of the channel over the plan``: what the test
buys for the decision plus what it buys for knowing the channel. It leaves out the cost of
running the test (``response_change``: the expected change of the target over the test,
``spend_change``: of the spend): weigh those next to ``value``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ConfigError
from bayesmmm.data.loading import DataError
from bayesmmm.model.calibration import LiftDesign, check_lift_tests, design_lift_draws

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "DESIGN_COLUMNS",
    "MIN_ESS",
    "RECENT_PERIODS",
    "DesignError",
    "DesignResult",
    "as_lift_test",
    "candidate_lengths",
    "design_tests",
    "importance_weights",
    "measurement_sigma",
    "preposterior_sd",
    "spend_changes",
    "weighted_sd",
]

#: planned spend ``x``: the mean spend over the data's last this many periods
RECENT_PERIODS = 13
#: below this median effective sample size the reweighted posterior is called unreliable
MIN_ESS = 50.0
#: columns of designs.csv, in order (``geo`` only for geo models)
DESIGN_COLUMNS = (
    "rank",
    "test",
    "channel",
    "geo",
    "kind",
    "change",
    "x",
    "delta_x",
    "weeks",
    "start",
    "end",
    "expected_delta_y",
    "delta_y_sd",
    "capture",
    "expected_sigma",
    "sigma_needed",
    "roas_mean",
    "roas_sd_now",
    "roas_sd_after",
    "sd_reduction",
    "ess",
    "ess_ok",
    "evsi",
    "evsi_computed",
    "value",
    "response_change",
    "spend_change",
    "best_for_channel",
)


class DesignError(ConfigError):
    """Bad options of the experiment designer (a bad length, change, channel or geo): the CLI's exit 2."""


@dataclass
class DesignResult:
    """``table``: designs.csv's rows, ranked; ``summary``: settings and per-channel figures."""

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ pure maths
def importance_weights(lift: np.ndarray, outcomes: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Normalized importance weights of the draws given simulated test outcomes.

    Parameters
    ----------
    lift : (draw, row) the model's lift per draw of each measured row (original units).
    outcomes : (outcome, row) simulated measurements.
    sigma : (row,) their standard errors.

    Returns
    -------
    (outcome, draw) weights ``∝ Π_row N(outcome | lift_draw, sigma)``, each row summing to 1.
    """
    lift = np.atleast_2d(np.asarray(lift, dtype=float).T).T if np.ndim(lift) == 1 else np.asarray(lift, float)
    outcomes = np.asarray(outcomes, dtype=float).reshape(-1, lift.shape[1])
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (lift.shape[1],))
    z = (outcomes[:, None, :] - lift[None, :, :]) / sigma
    logw = -0.5 * np.sum(z * z, axis=2)
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw)
    return w / w.sum(axis=1, keepdims=True)


def weighted_sd(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sd of ``values`` (draw,) or (draw, k) under each row of ``weights`` (outcome, draw)."""
    mean = weights @ values
    second = weights @ (values * values)
    return np.sqrt(np.clip(second - mean * mean, 0.0, None))


def preposterior_sd(
    values: np.ndarray, lift: np.ndarray, sigma: np.ndarray, n_outcomes: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preposterior sd of ``values`` after a test whose lift per draw is ``lift``.

    Simulates ``n_outcomes`` outcomes (a draw ``i``, then ``lift_i + sigma · ε``), reweights
    the draws by each (:func:`importance_weights`) and measures the sd of ``values`` under
    the weights.

    Returns
    -------
    ``(sd_after, ess, weights)``: (outcome, ...) sd after each outcome, (outcome,) effective
    sample sizes ``1 / Σ w²``, and the (outcome, draw) weights.
    """
    lift = np.asarray(lift, dtype=float)
    lift = lift[:, None] if lift.ndim == 1 else lift
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, lift.shape[0], size=n_outcomes)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (lift.shape[1],))
    outcomes = lift[idx] + sigma * rng.standard_normal((n_outcomes, lift.shape[1]))
    w = importance_weights(lift, outcomes, sigma)
    return weighted_sd(np.asarray(values, dtype=float), w), 1.0 / np.sum(w * w, axis=1), w


def measurement_sigma(rmse: np.ndarray | float, weeks: int) -> np.ndarray:
    """The noise model's standard error of a test's mean weekly readout: ``rmse · sqrt(2 / weeks)``."""
    return np.asarray(rmse, dtype=float) * math.sqrt(2.0 / weeks)


def candidate_lengths(weeks: int) -> list[int]:
    """Candidate test lengths up to ``weeks``: 2, 4, 8, 12 (and ``weeks`` itself)."""
    if int(weeks) != weeks or weeks < 1:
        raise DesignError(f"--weeks must be a positive whole number of periods, got {weeks}")
    out = sorted({w for w in (2, 4, 8, 12) if w <= weeks} | {int(weeks)})
    return out


def spend_changes(max_change: float) -> list[tuple[str, float]]:
    """(kind, signed fraction) candidates: go-dark, pull-backs and scale-ups at ``max_change/2`` and ``max_change``."""
    if not (np.isfinite(max_change) and 0 < max_change <= 10):
        raise DesignError(
            f"--max-change must be a fraction of the planned spend in (0, 10] (0.5 = ±50%), got {max_change}"
        )
    out = [("go_dark", -1.0)]
    for f in sorted({max_change / 2, max_change}):
        if f < 1:
            out.append(("pull_back", -f))
        out.append(("scale_up", f))
    return out


# -------------------------------------------------------------- the candidates
def _residual_rmse(mmm: MMM) -> np.ndarray:
    """(geo,) RMSE of the posterior-mean fit per geo (national: one value)."""
    comps = mmm.posterior_components()
    if mmm.is_geo:
        mu = comps["mu_geo"].mean(("chain", "draw")).to_numpy()
        return np.sqrt(np.mean((mmm.data.geo_target - mu) ** 2, axis=0))
    mu = comps["mu"].mean(("chain", "draw")).to_numpy()
    return np.array([float(np.sqrt(np.mean((mmm.data.target - mu) ** 2)))])


def _geo_sets(mmm: MMM, channel: int, geos: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, geos) candidate sets of treated geos: each geo, the top 2 and top half by the channel's spend."""
    spend = mmm.data.geo_media[:, :, channel].sum(axis=0)
    order = sorted(geos, key=lambda g: -spend[mmm.geos.index(g)])
    sets = [(g, (g,)) for g in order]
    for k in sorted({2, max(len(order) // 2, 1)}):
        if 1 < k < len(order):
            sets.append((f"top{k}", tuple(order[:k])))
    if len(order) > 1:
        sets.append(("all", tuple(order)))
    return sets


def _candidates(mmm: MMM, channels, geos, lengths, changes, x_plan) -> list[dict[str, Any]]:
    out = []
    for channel in channels:
        c = mmm.channels.index(channel)
        sets = _geo_sets(mmm, c, geos) if mmm.is_geo else [(None, (None,))]
        for label, members in sets:
            g_idx = [mmm.geos.index(g) if g is not None else 0 for g in members]
            x = np.array([x_plan[g, c] for g in g_idx])
            keep = x > 0
            if not keep.any():
                continue
            members = tuple(m for m, k in zip(members, keep, strict=True) if k)
            g_idx = [g for g, k in zip(g_idx, keep, strict=True) if k]
            for kind, change in changes:
                for weeks in lengths:
                    out.append(
                        {
                            "channel": channel,
                            "c": c,
                            "label": label,
                            "geos": members,
                            "g": g_idx,
                            "kind": kind,
                            "change": change,
                            "weeks": weeks,
                        }
                    )
    return out


def _future_design(mmm: MMM, candidates: list[dict[str, Any]], x_plan: np.ndarray, horizon: int) -> tuple:
    """One :class:`LiftDesign` with a column per (candidate, geo) for the window after the data, and one
    per candidate-geo steady state of the same change (for ``capture``)."""
    spec = mmm.require_spec()
    n = mmm.data.n_dates
    carry = min(spec.carryover_weeks, n)
    rows = carry + horizon
    media = mmm.data.geo_media if mmm.is_geo else mmm.data.media[:, None, :]
    s_media = np.asarray(spec.scales.media, dtype=float).reshape(-1, len(mmm.channels))
    s_y = np.atleast_1d(np.asarray(spec.scales.target, dtype=float))
    cols = [(i, g) for i, cand in enumerate(candidates) for g in cand["g"]]
    k = len(cols)
    base, treat, weights = np.zeros((rows, 2 * k)), np.zeros((rows, 2 * k)), np.zeros((rows, 2 * k))
    channel, geo = np.zeros(2 * k, dtype="int64"), np.zeros(2 * k, dtype="int64")
    for j, (i, g) in enumerate(cols):
        cand = candidates[i]
        c, w = cand["c"], cand["weeks"]
        s = s_media[g if len(s_media) > 1 else 0, c]
        x = x_plan[g, c]
        hist = media[n - carry :, g, c] / s
        base[:carry, j], treat[:carry, j] = hist, hist
        base[carry:, j], treat[carry:, j] = x / s, x / s
        treat[carry : carry + w, j] = x * (1 + cand["change"]) / s
        weights[carry : carry + w, j] = 1.0 / w
        # steady state of the same change: constant spend, read at the last row
        base[:, k + j], treat[:, k + j] = x / s, x * (1 + cand["change"]) / s
        weights[-1, k + j] = 1.0
        channel[j] = channel[k + j] = c
        geo[j] = geo[k + j] = g
    sy = s_y[geo] if len(s_y) > 1 else np.full(2 * k, s_y[0])
    design = LiftDesign(
        base=base,
        treat=treat,
        weights=weights,
        channel=channel,
        geo=geo,
        delta_y=np.zeros(2 * k),
        sigma=np.ones(2 * k),
        target_scale=sy,
    )
    return design, cols


def _planned_spend(mmm: MMM, recent: int) -> np.ndarray:
    """(geo|1, channel) mean spend over the data's last ``recent`` periods."""
    media = mmm.data.geo_media if mmm.is_geo else mmm.data.media[:, None, :]
    return media[-min(recent, len(media)) :].mean(axis=0)


def _check_names(given: Sequence[str] | None, known: Sequence[str], what: str, option: str) -> list[str]:
    if not given:
        return list(known)
    unknown = [g for g in given if g not in known]
    if unknown:
        raise DesignError(f"{option}: unknown {what} {unknown[0]!r}; the model's {what}s: {', '.join(known)}")
    return list(dict.fromkeys(given))


# ------------------------------------------------------------------- the EVSI
class _Plan:
    """The budget plan and its re-optimization under reweighted draws (see the module docstring)."""

    def __init__(self, mmm: MMM, plan_weeks: int, plan_change: float, max_draws: int, seed: int, x_plan) -> None:
        from bayesmmm.decisions.optimizer import maximize_allocation
        from bayesmmm.decisions.response import FlightResponse

        self._maximize = maximize_allocation
        self.engine = FlightResponse(mmm, plan_weeks, max_draws=max_draws, seed=seed)
        self.current = x_plan.sum(axis=0) * plan_weeks  # (channel,) totals over the plan
        self.total = float(self.current.sum())
        self.lower = self.current * (1 - plan_change)
        self.upper = self.current * (1 + plan_change)
        uniform = np.full(self.engine.n_draws, 1.0 / self.engine.n_draws)
        self.plan = self.optimize(uniform, self.current)

    def value(self, s: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        r, g = self.engine.total(s)
        return float(w @ r), w @ g

    def optimize(self, w: np.ndarray, start: np.ndarray) -> np.ndarray:
        s, _ = self._maximize(
            lambda s: self.value(s, w), self.total, self.lower, self.upper, start, n_random_starts=0, seed=0
        )
        return s

    def evsi(self, weights: np.ndarray) -> float:
        gains = []
        for w in weights:
            better = self.optimize(w, self.plan)
            gains.append(max(self.value(better, w)[0] - self.value(self.plan, w)[0], 0.0))
        return float(np.mean(gains))


# -------------------------------------------------------------------- main
def design_tests(
    mmm: MMM,
    *,
    weeks: int = 12,
    max_change: float = 0.5,
    channels: Sequence[str] | None = None,
    geos: Sequence[str] | None = None,
    max_draws: int = 500,
    n_outcomes: int = 200,
    n_evsi: int = 8,
    plan_weeks: int = 13,
    plan_change: float = 0.5,
    evsi_tests: int = 16,
    seed: int = 0,
) -> DesignResult:
    """Candidate lift tests ranked by what they buy (see the module docstring).

    Parameters
    ----------
    mmm : a fitted model.
    weeks : the longest test, in periods of the data (lengths 2, 4, 8, 12 up to it, and it).
    max_change : pull-backs and scale-ups change the planned spend by ``max_change/2`` and
        ``max_change`` (fractions; pull-backs below 1); go-dark tests are always candidates.
    channels, geos : restrict the candidates (default: every channel; every geo of a panel).
    max_draws : posterior draws used (a seeded subsample).
    n_outcomes : simulated outcomes per test for ``roas_sd_after``.
    n_evsi : the first this many outcomes re-optimize the plan for ``evsi`` (0: no EVSI).
    plan_weeks, plan_change : the budget plan whose value of information is ``evsi``.
    evsi_tests : ``evsi`` is computed for this many tests, those leading by the sd part of
        ``value`` (the others get ``evsi = 0``, flagged by ``evsi_computed``).
    seed : seed of the draws' subsample and of the simulated outcomes.

    Returns
    -------
    :class:`DesignResult`: ``table`` ranked by ``value`` (one row per test and treated geo),
    ``summary`` the settings, the noise model and per channel the sd now and after its best test.
    """
    from bayesmmm.evaluation.identifiability import roas_draws

    mmm.require_fitted()
    lengths = candidate_lengths(weeks)
    changes = spend_changes(max_change)
    if max_draws < 20:
        raise DesignError(f"max_draws must be at least 20, got {max_draws}")
    channels = _check_names(channels, mmm.channels, "channel", "--channels")
    if geos and not mmm.is_geo:
        raise DesignError("--geos: the model is national (no data.geo_column); drop --geos")
    geos = _check_names(geos, mmm.geos, "geo", "--geos") if mmm.is_geo else []
    x_plan = _planned_spend(mmm, RECENT_PERIODS)
    candidates = _candidates(mmm, channels, geos, lengths, changes, x_plan)
    if not candidates:
        raise DesignError(
            f"no candidate test: {', '.join(channels)} spent nothing over the last {RECENT_PERIODS} periods"
        )
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    design, cols = _future_design(mmm, candidates, x_plan, max(lengths))
    lifts = design_lift_draws(mmm.require_spec(), draws, design)  # (draw, 2k)
    k = len(cols)
    window, steady = lifts[:, :k], lifts[:, k:]
    roas = roas_draws(mmm, draws)  # (draw, channel)
    rmse = _residual_rmse(mmm)
    plan = _Plan(mmm, plan_weeks, plan_change, max_draws, seed, x_plan) if n_evsi > 0 else None
    planned_total = x_plan.sum(axis=0) * plan_weeks
    dates = pd.DatetimeIndex(mmm.data.dates)
    step = dates[-1] - dates[-2] if len(dates) > 1 else pd.Timedelta(days=7)
    rows = []
    by_cand: dict[int, list[int]] = {}
    for j, (i, _) in enumerate(cols):
        by_cand.setdefault(i, []).append(j)
    pre = []
    for i, cand in enumerate(candidates):
        c, w = cand["c"], cand["weeks"]
        sigma = measurement_sigma(rmse[cand["g"]] if mmm.is_geo else rmse, w)
        sd_after, ess, weights = preposterior_sd(roas[:, c], window[:, by_cand[i]], sigma, n_outcomes, seed)
        sd_now = float(np.std(roas[:, c]))
        # E[sd | y] <= sd now (law of total variance); a test that barely informs the channel can
        # land a hair above it by Monte Carlo error of the outcomes: clipped to it
        after = min(float(sd_after.mean()), sd_now)
        pre.append((sigma, sd_now, after, ess, weights[:n_evsi], (sd_now - after) * float(planned_total[c])))
    # the EVSI (re-optimizations, the slow part) of the leading tests by the sd part of the value
    leading = set(np.argsort([-p[5] for p in pre], kind="stable")[:evsi_tests].tolist()) if plan else set()
    for i, cand in enumerate(candidates):
        js = by_cand[i]
        c, w = cand["c"], cand["weeks"]
        sigma, sd_now, after, ess, weights, sd_value = pre[i]
        evsi = plan.evsi(weights) if i in leading else 0.0
        value = evsi + sd_value
        start, end = dates[-1] + step, dates[-1] + w * step
        for r, j in enumerate(js):
            g = cand["g"][r]
            x = float(x_plan[g, c])
            lift = window[:, j]
            ss = float(steady[:, j].mean())
            rows.append(
                {
                    "test": i,
                    "channel": cand["channel"],
                    "geo": cand["geos"][r],
                    "geo_set": cand["label"],
                    "kind": cand["kind"],
                    "change": cand["change"],
                    "x": x,
                    "delta_x": cand["change"] * x,
                    "weeks": w,
                    "start": start.date().isoformat(),
                    "end": end.date().isoformat(),
                    "expected_delta_y": float(lift.mean()),
                    "delta_y_sd": float(lift.std()),
                    "capture": float(lift.mean() / ss) if ss != 0 else float("nan"),
                    "expected_sigma": float(sigma[r]),
                    "sigma_needed": abs(float(lift.mean())) / 2.0,
                    "roas_mean": float(roas[:, c].mean()),
                    "roas_sd_now": sd_now,
                    "roas_sd_after": after,
                    "sd_reduction": 1.0 - after / sd_now if sd_now > 0 else 0.0,
                    "ess": float(np.median(ess)),
                    "ess_ok": bool(np.median(ess) >= MIN_ESS),
                    "evsi": evsi,
                    "evsi_computed": i in leading,
                    "value": value,
                    "response_change": float(lift.mean()) * w,
                    "spend_change": cand["change"] * x * w,
                }
            )
    table = pd.DataFrame(rows)
    order = table.groupby("test")["value"].first().sort_values(ascending=False, kind="stable")
    rank = {t: r + 1 for r, t in enumerate(order.index)}
    table["rank"] = table["test"].map(rank)
    table = table.sort_values(["rank", "geo"] if mmm.is_geo else ["rank"], kind="stable").reset_index(drop=True)
    best = table.groupby("channel")["rank"].transform("min")
    table["best_for_channel"] = table["rank"] == best
    columns = [c for c in DESIGN_COLUMNS if c != "geo" or mmm.is_geo]
    if mmm.is_geo:
        columns.insert(columns.index("geo") + 1, "geo_set")
    table = table[columns]
    summary = {
        "weeks": lengths,
        "max_change": max_change,
        "changes": [c for _, c in changes],
        "data_end": str(dates[-1].date()),
        "planned_spend_periods": RECENT_PERIODS,
        "max_draws": len(roas),
        "n_outcomes": n_outcomes,
        "n_evsi": n_evsi,
        "evsi_tests": evsi_tests,
        "plan": {
            "weeks": plan_weeks,
            "max_change": plan_change,
            "current": dict(zip(mmm.channels, map(float, plan.current), strict=True)) if plan else None,
            "optimized": dict(zip(mmm.channels, map(float, plan.plan), strict=True)) if plan else None,
        },
        "noise": {
            "model": "sigma = rmse * sqrt(2 / weeks) per treated geo",
            "rmse": dict(zip(mmm.geos or ("national",), map(float, rmse), strict=True)),
        },
        "channels": {
            ch: {
                "roas_sd_now": float(part["roas_sd_now"].iloc[0]),
                "best_roas_sd_after": float(part["roas_sd_after"].min()),
                "best_test_rank": int(part["rank"].min()),
            }
            for ch, part in table.groupby("channel", sort=False)
        },
        "low_ess_tests": int(table.loc[~table["ess_ok"], "test"].nunique()),
    }
    return DesignResult(table=table, summary=summary)


def as_lift_test(designs: pd.DataFrame, delta_y: Sequence[float], sigma: Sequence[float]) -> pd.DataFrame:
    """Rows of ``designs.csv`` with their measured ``delta_y, sigma``: checked calibration rows.

    Keeps the lift-test contract's columns (``channel, x, delta_x[, geo], start, end``), adds the
    measurements and checks them with :func:`~bayesmmm.model.calibration.check_lift_tests`.
    """
    keep = [c for c in ("channel", "x", "delta_x", "geo", "start", "end") if c in designs.columns]
    frame = designs[keep].copy()
    if len(delta_y) != len(frame) or len(sigma) != len(frame):
        raise DataError(f"give one delta_y and one sigma per design row ({len(frame)} rows)")
    frame["delta_y"], frame["sigma"] = list(delta_y), list(sigma)
    return check_lift_tests(frame, source="designed lift tests")
