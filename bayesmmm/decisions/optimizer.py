"""Budget optimization over the posterior: mean, risk-aware and target-efficiency objectives.

The decision variable is the TOTAL spend per channel over a horizon of ``weeks``
future periods of the data's frequency (days, weeks, months: the argument's name is historical),
paced flat; its response is the flight response of
:class:`~bayesmmm.decisions.response.FlightResponse` (incremental, counted until the carry-over
has decayed). Spend buys exposure at each channel's cost per unit (the stated ``cost_per_unit``
or the recent average: :func:`~bayesmmm.model.value.channel_cost_per_unit`; 1 for spend-only
channels), and with ``data.revenue_per_kpi_column`` the response is revenue, at the recent
revenue per KPI (:func:`~bayesmmm.model.value.future_revenue_per_kpi`); the summary states
``response_unit``, ``roas_unit``, ``cost_per_unit`` and ``revenue_per_kpi``.
The "current" mix is the historical average spend mix per period scaled to the
same total. The objective is evaluated on every posterior draw at once, with exact
gradients, and maximized by SciPy's SLSQP from several deterministic starting points;
the result is then projected onto the constraints so that they hold to rounding error.

Objectives (of the total response ``R`` across draws):

- ``mean``: ``E[R]``;
- ``cvar``: the mean of the worst ``risk`` fraction of draws (CVaR at level ``risk``,
  default 0.1): a plan that is good even if the model is pessimistically right;
- ``mean_sd``: ``E[R] - risk * sd[R]`` (default ``risk`` 1).

Target efficiency: ``target_response`` finds the least total spend whose expected
response reaches the target; ``target_roas`` finds the largest spend (up to the
budget) whose expected ROAS (response / spend) still reaches the target, allocated to
maximize the response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bayesmmm.decisions.response import FlightResponse

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "ALLOCATION_COLUMNS",
    "OptimizationError",
    "OptimizationResult",
    "maximize_allocation",
    "optimize_budget",
    "project_to_budget",
    "run_scenarios",
]

Objective = Literal["mean", "cvar", "mean_sd"]
OBJECTIVES: tuple[str, ...] = ("mean", "cvar", "mean_sd")
DEFAULT_RISK = {"mean": None, "cvar": 0.1, "mean_sd": 1.0}

ALLOCATION_COLUMNS = [
    "channel",
    "current_spend",
    "optimized_spend",
    "current_response_mean",
    "optimized_response_mean",
]


class OptimizationError(ValueError):
    """Infeasible or invalid optimization inputs (bounds, budget, names, targets)."""


@dataclass
class OptimizationResult:
    """Result of :func:`optimize_budget`.

    Attributes
    ----------
    allocation : one row per channel: ``channel, current_spend, optimized_spend,
        current_response_mean, optimized_response_mean`` and their HDI columns, the
        change, ROAS of each mix and the marginal ROAS at the optimum.
    summary : JSON-able dict: inputs, expected response of the current, equal-split and
        optimized mixes with HDIs, uplifts with HDIs and probability of a gain, the
        fraction of the budget reallocated, constraint residuals, optimizer status.
    """

    allocation: pd.DataFrame
    summary: dict[str, Any]
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


# ------------------------------------------------------------------ constraints
def project_to_budget(values: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection onto ``{s : sum(s) = total, lower <= s <= upper}``.

    Solves ``sum(clip(values - tau, lower, upper)) = total`` for ``tau`` by bisection,
    then puts the rounding residual on the channel with the most room, so the sum is
    exact to floating-point precision and the bounds hold exactly.
    """
    values, lower, upper = (np.asarray(a, dtype=float) for a in (values, lower, upper))
    if lower.sum() > total * (1 + 1e-12) + 1e-12 or upper.sum() < total * (1 - 1e-12) - 1e-12:
        raise OptimizationError(
            f"no allocation sums to {total:g} within the bounds (they allow {lower.sum():g} to {upper.sum():g})"
        )
    lo_tau, hi_tau = float(np.min(values - upper)) - 1.0, float(np.max(values - lower)) + 1.0
    for _ in range(200):
        tau = 0.5 * (lo_tau + hi_tau)
        if np.clip(values - tau, lower, upper).sum() > total:
            lo_tau = tau
        else:
            hi_tau = tau
    out = np.clip(values - 0.5 * (lo_tau + hi_tau), lower, upper)
    residual = total - out.sum()
    room = (upper - out) if residual > 0 else (out - lower)
    i = int(np.argmax(room))
    out[i] = np.clip(out[i] + residual, lower[i], upper[i])
    return out


def _starts(current: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float, n_random: int, seed: int):
    k = len(current)
    yield project_to_budget(current, lower, upper, total)
    yield project_to_budget(np.full(k, total / k), lower, upper, total)
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        yield project_to_budget(rng.dirichlet(np.ones(k)) * total, lower, upper, total)


def maximize_allocation(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    total: float,
    lower: np.ndarray,
    upper: np.ndarray,
    current: np.ndarray,
    *,
    n_random_starts: int = 3,
    seed: int = 0,
    progressbar: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Maximize ``fun(s)`` (value, gradient) over ``sum(s) = total, lower <= s <= upper``.

    SLSQP works in budget fractions, from the current mix, the equal split and
    ``n_random_starts`` seeded random feasible points; the best feasible end point wins.
    Deterministic for fixed inputs. ``progressbar`` shows the starts on a terminal.
    """
    from scipy.optimize import minimize

    lower, upper, current = (np.asarray(a, dtype=float) for a in (lower, upper, current))
    if np.allclose(lower, upper):
        s = project_to_budget(lower, lower, upper, total)
        return s, {"success": True, "message": "all channels fixed", "starts": 0, "iterations": 0}
    ref_value = max(abs(fun(project_to_budget(current, lower, upper, total))[0]), 1e-12)

    def scaled(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = fun(u * total)
        return -value / ref_value, -np.asarray(grad) * total / ref_value

    bounds = list(zip(lower / total, upper / total, strict=True))
    constraint = {"type": "eq", "fun": lambda u: u.sum() - 1.0, "jac": lambda u: np.ones_like(u)}
    best: tuple[float, np.ndarray] | None = None
    status = {"success": False, "message": "", "starts": 0, "iterations": 0}
    starts = list(_starts(current, lower, upper, total, n_random_starts, seed))
    if progressbar:
        from bayesmmm.progress import progress

        starts = progress(starts, desc="optimizing", unit="start")
    for start in starts:
        res = minimize(
            scaled,
            start / total,
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=[constraint],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        s = project_to_budget(res.x * total, lower, upper, total)
        value = fun(s)[0]
        status["starts"] += 1
        status["iterations"] += int(res.nit)
        if best is None or value > best[0]:
            best = (value, s)
            status.update(success=bool(res.success), message=str(res.message))
    assert best is not None
    return best[1], status


# ------------------------------------------------------------------- objectives
def _objective(name: str, risk: float | None) -> Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]:
    """Map per-draw totals ``r`` (draw,) and gradients ``g`` (draw, channel) to (value, gradient)."""
    if name == "mean":
        return lambda r, g: (float(r.mean()), g.mean(axis=0))
    if name == "cvar":
        q = float(risk)

        def cvar(r: np.ndarray, g: np.ndarray) -> tuple[float, np.ndarray]:
            k = max(1, int(np.ceil(q * len(r))))
            worst = np.argsort(r, kind="stable")[:k]
            return float(r[worst].mean()), g[worst].mean(axis=0)

        return cvar
    lam = float(risk)

    def mean_sd(r: np.ndarray, g: np.ndarray) -> tuple[float, np.ndarray]:
        mean, sd = r.mean(), r.std()
        gmean = g.mean(axis=0)
        gsd = ((r - mean)[:, None] * (g - gmean)).mean(axis=0) / sd if sd > 0 else np.zeros_like(gmean)
        return float(mean - lam * sd), gmean - lam * gsd

    return mean_sd


def _check_risk(objective: str, risk: float | None) -> float | None:
    if objective not in OBJECTIVES:
        raise OptimizationError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if risk is None:
        return DEFAULT_RISK[objective]
    if objective == "mean":
        raise OptimizationError("--risk applies to the cvar and mean_sd objectives only")
    if objective == "cvar" and not 0 < risk < 1:
        raise OptimizationError(f"cvar's risk is the tail fraction q and must be in (0, 1), got {risk}")
    if objective == "mean_sd" and not (np.isfinite(risk) and risk >= 0):
        raise OptimizationError(f"mean_sd's risk is the weight λ on the sd and must be >= 0, got {risk}")
    return float(risk)


# ---------------------------------------------------------------------- bounds
def _bounds(
    channels: Sequence[str],
    current: np.ndarray,
    budget: float,
    max_change: float | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    fixed: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    k = len(channels)
    lower, upper = np.zeros(k), np.full(k, float(budget))
    if max_change is not None:
        if not (np.isfinite(max_change) and max_change >= 0):
            raise OptimizationError(f"max_change must be a fraction >= 0 (0.2 = ±20%), got {max_change}")
        lower = np.maximum(current * (1 - max_change), 0.0)
        upper = current * (1 + max_change)
    index = {c: i for i, c in enumerate(channels)}
    for name in [*(bounds or {}), *fixed]:
        if name not in index:
            raise OptimizationError(f"unknown channel {name!r} in bounds/fixed; channels: {', '.join(channels)}")
    for name, (lo, hi) in (bounds or {}).items():
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
            raise OptimizationError(f"bound for {name!r} must satisfy 0 <= LO <= HI, got {lo}:{hi}")
        lower[index[name]], upper[index[name]] = lo, hi
    for name in fixed:
        lower[index[name]] = upper[index[name]] = current[index[name]]
    return lower, upper


def _summarize(values: np.ndarray, hdi_prob: float) -> dict[str, float]:
    from bayesmmm.evaluation.summaries import hdi_bounds

    lo, hi = hdi_bounds(values, hdi_prob)
    return {"mean": float(values.mean()), "hdi_low": lo, "hdi_high": hi}


# ------------------------------------------------------------------------ main
def optimize_budget(
    mmm: MMM,
    budget: float | None,
    weeks: int,
    *,
    max_change: float | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    fixed: Sequence[str] = (),
    objective: Objective = "mean",
    risk: float | None = None,
    target_response: float | None = None,
    target_roas: float | None = None,
    hdi_prob: float = 0.9,
    max_draws: int | None = 1000,
    seed: int = 0,
    geo: str | None = None,
    progressbar: bool = False,
) -> OptimizationResult:
    """Allocate a budget across channels to maximize the posterior response.

    Parameters
    ----------
    mmm : a fitted model.
    budget : total spend over the horizon (all channels). With ``target_response`` it
        is an optional cap; otherwise required.
    weeks : horizon in periods of the data's frequency (days of daily data, months of monthly
        data; the name is historical); spend is paced flat within it.
    max_change : allow each channel ± this fraction of its current spend.
    bounds : absolute ``{channel: (low, high)}`` totals over the horizon (override
        ``max_change`` for those channels).
    fixed : channels held at their current spend.
    objective : ``mean``, ``cvar`` or ``mean_sd`` (see the module docstring).
    risk : CVaR tail fraction q (default 0.1) or the mean_sd weight λ (default 1).
    target_response : find the least spend reaching this expected response.
    target_roas : find the largest spend (≤ budget) whose expected ROAS reaches this.
    hdi_prob : probability of the reported HDIs.
    max_draws : posterior draws used (a seeded subsample when there are more).
    seed : seed of the subsample and of the random starting points.
    geo : for a geo model, optimize one geo's budget (its current mix is that geo's
        historical one); default: national (budgets split over geos by historical share).
    progressbar : show the optimizer's starting points on a terminal (never with ``-q``).

    Returns
    -------
    :class:`OptimizationResult`.
    """
    if target_response is not None and target_roas is not None:
        raise OptimizationError("give at most one of target_response and target_roas")
    if budget is None and target_response is None:
        raise OptimizationError("a budget is required (it is optional only with target_response)")
    if budget is not None and not (np.isfinite(budget) and budget > 0):
        raise OptimizationError(f"budget must be a positive number, got {budget}")
    if not (isinstance(weeks, int | np.integer) and weeks >= 1):
        raise OptimizationError(f"the horizon (periods) must be a positive whole number, got {weeks}")
    if not 0 < hdi_prob < 1:
        raise OptimizationError(f"hdi_prob must be in (0, 1), got {hdi_prob}")
    risk = _check_risk(objective, risk)
    channels = list(mmm.channels)
    try:
        engine = FlightResponse(mmm, weeks, max_draws=max_draws, seed=seed, geo=geo)
    except ValueError as exc:
        raise OptimizationError(str(exc)) from None
    spend = mmm.data.channel_spend if geo is None else mmm.data.geo_channel_spend[:, mmm.geos.index(geo)]
    weekly_mix = spend.mean(axis=0)
    if not weekly_mix.sum() > 0:
        raise OptimizationError(f"{geo or 'the data'} has no historical spend: there is no current mix to start from")
    mix = weekly_mix / weekly_mix.sum()
    reduce = _objective(objective, risk)

    def fun(s: np.ndarray) -> tuple[float, np.ndarray]:
        return reduce(*engine.total(s))

    def expected(s: np.ndarray) -> tuple[float, np.ndarray]:
        r, g = engine.total(s)
        return float(r.mean()), g.mean(axis=0)

    if target_response is not None:
        total, solve_info = _least_spend(
            fun, expected, mix, channels, budget, max_change, bounds, fixed, target_response, seed
        )
    elif target_roas is not None:
        total, solve_info = _largest_spend_at_roas(
            fun, expected, mix, channels, budget, max_change, bounds, fixed, target_roas, seed
        )
    else:
        total, solve_info = float(budget), {}
    current = mix * total
    lower, upper = _bounds(channels, current, total, max_change, bounds, fixed)
    optimized, status = maximize_allocation(fun, total, lower, upper, current, seed=seed, progressbar=progressbar)
    equal = project_to_budget(np.full(len(channels), total / len(channels)), lower, upper, total)
    return _result(
        engine,
        channels,
        current,
        optimized,
        equal,
        lower,
        upper,
        total,
        status,
        solve_info,
        {
            "budget": total,
            "budget_given": budget,
            "weeks": int(weeks),  # periods of the data (the key's name is historical)
            "periods": int(weeks),
            "frequency": mmm.data.frequency,
            "objective": objective,
            "risk": risk,
            "max_change": max_change,
            "bounds": {k: list(v) for k, v in (bounds or {}).items()},
            "fixed": list(fixed),
            "target_response": target_response,
            "target_roas": target_roas,
            "hdi_prob": hdi_prob,
            "seed": seed,
            "geo": geo,
            **_units(engine, channels),
        },
    )


def _units(engine: FlightResponse, channels: Sequence[str]) -> dict[str, Any]:
    """What the optimizer's numbers are in: the response's unit and the prices it used."""
    from bayesmmm.model.value import KPI_UNIT, REVENUE_UNIT

    cpu = engine.cost_per_unit
    rpk = engine.revenue_per_kpi
    return {
        "response_unit": "revenue" if engine.value else "KPI",
        "roas_unit": REVENUE_UNIT if engine.value else KPI_UNIT,
        "revenue_per_kpi": (np.asarray(rpk).tolist() if np.ndim(rpk) else float(rpk)) if engine.value else None,
        "cost_per_unit": {
            ch: (cpu[..., i].tolist() if cpu.ndim > 1 else float(cpu[i])) for i, ch in enumerate(channels)
        },
    }


def _solve_budget(predicate: Callable[[float], bool], lo: float, hi: float, iters: int = 40) -> tuple[float, float]:
    """Bisection for the switch point of a monotone predicate (False at lo, True at hi): the final (lo, hi)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi


def _best_at(fun, expected, mix, channels, total, max_change, bounds, fixed, seed) -> tuple[float, np.ndarray]:
    current = mix * total
    lower, upper = _bounds(channels, current, total, max_change, bounds, fixed)
    s, _ = maximize_allocation(fun, total, lower, upper, current, n_random_starts=1, seed=seed)
    return expected(s)[0], s


def _least_spend(fun, expected, mix, channels, cap, max_change, bounds, fixed, target, seed):
    if not (np.isfinite(target) and target > 0):
        raise OptimizationError(f"target_response must be a positive number, got {target}")
    if cap is not None:
        hi = float(cap)
    elif bounds and set(bounds) == set(channels):
        hi = float(sum(bounds[c][1] for c in channels))
    else:
        raise OptimizationError("target_response needs a budget cap (--budget) or a --bound for every channel")
    best_hi, _ = _best_at(fun, expected, mix, channels, hi, max_change, bounds, fixed, seed)
    if best_hi < target:
        raise OptimizationError(
            f"target response {target:g} is out of reach: the best allocation of {hi:g} yields {best_hi:.4g} "
            "in expectation; raise the budget cap or lower the target"
        )
    _, total = _solve_budget(  # the upper end reaches the target
        lambda b: _best_at(fun, expected, mix, channels, b, max_change, bounds, fixed, seed)[0] >= target,
        0.0,
        hi,
    )
    return total, {"mode": "target_response", "target": target, "spend_needed": total}


def _largest_spend_at_roas(fun, expected, mix, channels, cap, max_change, bounds, fixed, target, seed):
    if not (np.isfinite(target) and target > 0):
        raise OptimizationError(f"target_roas must be a positive number, got {target}")

    def roas(b: float) -> float:
        return _best_at(fun, expected, mix, channels, b, max_change, bounds, fixed, seed)[0] / b

    tiny = float(cap) * 1e-4
    if roas(tiny) < target:
        raise OptimizationError(
            f"no spend reaches an expected ROAS of {target:g}: even the first {tiny:g} returns {roas(tiny):.4g} "
            "per unit; lower the target"
        )
    if roas(float(cap)) >= target:
        return float(cap), {"mode": "target_roas", "target": target, "spend_needed": float(cap), "capped": True}
    total, _ = _solve_budget(lambda b: roas(b) < target, tiny, float(cap))  # the lower end keeps the ROAS
    return total, {"mode": "target_roas", "target": target, "spend_needed": total, "capped": False}


def _result(engine, channels, current, optimized, equal, lower, upper, total, status, solve_info, inputs):
    from bayesmmm.evaluation.summaries import hdi_bounds

    hdi_prob = inputs["hdi_prob"]
    r_cur, _ = engine.per_channel(current)
    r_opt, g_opt = engine.per_channel(optimized)
    r_eq, _ = engine.per_channel(equal)
    t_cur, t_opt, t_eq = r_cur.sum(1), r_opt.sum(1), r_eq.sum(1)
    rows = []
    for i, ch in enumerate(channels):
        c_lo, c_hi = hdi_bounds(r_cur[:, i], hdi_prob)
        o_lo, o_hi = hdi_bounds(r_opt[:, i], hdi_prob)
        rows.append(
            {
                "channel": ch,
                "current_spend": current[i],
                "optimized_spend": optimized[i],
                "current_response_mean": r_cur[:, i].mean(),
                "optimized_response_mean": r_opt[:, i].mean(),
                "current_response_hdi_low": c_lo,
                "current_response_hdi_high": c_hi,
                "optimized_response_hdi_low": o_lo,
                "optimized_response_hdi_high": o_hi,
                "change": optimized[i] - current[i],
                "change_pct": (optimized[i] / current[i] - 1) if current[i] > 0 else float("nan"),
                "current_roas_mean": r_cur[:, i].mean() / current[i] if current[i] > 0 else float("nan"),
                "optimized_roas_mean": r_opt[:, i].mean() / optimized[i] if optimized[i] > 0 else float("nan"),
                "optimized_marginal_roas_mean": g_opt[:, i].mean(),
                "lower_bound": lower[i],
                "upper_bound": upper[i],
            }
        )
    allocation = pd.DataFrame(rows)
    allocation.attrs["hdi_prob"] = hdi_prob
    summary = {
        **inputs,
        "channels": list(channels),
        "draws_used": engine.n_draws,
        "response": {
            "current": _summarize(t_cur, hdi_prob),
            "equal_split": _summarize(t_eq, hdi_prob),
            "optimized": _summarize(t_opt, hdi_prob),
        },
        "uplift_vs_current": {**_summarize(t_opt - t_cur, hdi_prob), "prob_positive": float((t_opt > t_cur).mean())},
        "uplift_vs_equal_split": {**_summarize(t_opt - t_eq, hdi_prob), "prob_positive": float((t_opt > t_eq).mean())},
        "uplift_vs_current_pct": float(t_opt.mean() / t_cur.mean() - 1) if t_cur.mean() != 0 else None,
        "fraction_reallocated": float(np.abs(optimized - current).sum() / (2 * total)),
        "roas": {"current": float(t_cur.mean() / total), "optimized": float(t_opt.mean() / total)},
        "constraints": {
            "sum_residual": float(optimized.sum() - total),
            "max_bound_violation": float(max(np.max(lower - optimized), np.max(optimized - upper), 0.0)),
        },
        "optimizer": status,
        **({"target": solve_info} if solve_info else {}),
    }
    return OptimizationResult(allocation, summary, {"current": t_cur, "optimized": t_opt, "equal_split": t_eq})


def run_scenarios(
    mmm: MMM, budget: float, weeks: int, changes: Sequence[float], **kwargs: Any
) -> tuple[pd.DataFrame, list[OptimizationResult]]:
    """Optimize several budgets ``budget * (1 + change)`` with the same options.

    ``progressbar=True`` among the options shows one bar over the scenarios (on a terminal, unless ``-q``).

    Returns
    -------
    table : one row per scenario: ``change, budget, current_response_mean,
        optimized_response_mean`` with HDIs, uplift and its probability, ROAS of both
        mixes, fraction reallocated, and ``<channel>_spend`` columns.
    results : the full result of each scenario.
    """
    from bayesmmm.progress import progress

    rows, results = [], []
    for change in changes:
        if not change > -1:
            raise OptimizationError(f"scenario change {change} would leave no budget; use values > -1")
    shown = progress(changes, desc="scenarios", unit="budget") if kwargs.get("progressbar") else changes
    for change in shown:
        result = optimize_budget(mmm, budget * (1 + change), weeks, **{**kwargs, "progressbar": False})
        s = result.summary
        row = {
            "change": float(change),
            "budget": s["budget"],
            "current_response_mean": s["response"]["current"]["mean"],
            "optimized_response_mean": s["response"]["optimized"]["mean"],
            "optimized_response_hdi_low": s["response"]["optimized"]["hdi_low"],
            "optimized_response_hdi_high": s["response"]["optimized"]["hdi_high"],
            "uplift_mean": s["uplift_vs_current"]["mean"],
            "uplift_prob_positive": s["uplift_vs_current"]["prob_positive"],
            "current_roas": s["roas"]["current"],
            "optimized_roas": s["roas"]["optimized"],
            "fraction_reallocated": s["fraction_reallocated"],
        }
        for _, r in result.allocation.iterrows():
            row[f"{r['channel']}_spend"] = r["optimized_spend"]
        rows.append(row)
        results.append(result)
    return pd.DataFrame(rows), results
