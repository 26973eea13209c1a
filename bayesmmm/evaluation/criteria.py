"""Model-selection criteria from the pointwise log-likelihood (original units).

- **PSIS-LOO** (ArviZ's ``loo``): ``elpd``, its ``se``, ``p_loo`` and the largest Pareto k
  (a warning when k > 0.7: the estimate is unreliable for those weeks).
- **WAIC** on the deviance scale, ``waic = -2 (lppd - p_waic)`` with
  ``p_waic = Σ_t Var_s(log p(y_t | θ_s))`` (ArviZ 1.x no longer ships WAIC).
- **BIC** ``= -2 max_s log p(y | θ_s) + k log n``: the maximum log-likelihood is taken over
  the posterior draws (a close lower bound of the MLE on these models), ``k`` counts every
  scalar free parameter, ``n`` the weeks.
- **CRPS** and hold-out scores (RMSE, MAPE, interval coverage) of predictive draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "PARETO_K_WARN",
    "bic",
    "crps",
    "holdout_scores",
    "loo",
    "loo_figures",
    "loo_summary",
    "n_parameters",
    "waic",
]

PARETO_K_WARN = 0.7


def _pointwise(idata: Any) -> np.ndarray:
    """Log-likelihood as (samples, observations): a geo model's (chain, draw, date, geo) has
    date × geo observations."""
    ll = idata["log_likelihood"]["y"].transpose("chain", "draw", ...)
    return ll.to_numpy().reshape(ll.sizes["chain"] * ll.sizes["draw"], -1)


def waic(idata: Any) -> dict[str, float]:
    """WAIC from the pointwise log-likelihood: ``elpd_waic``, ``p_waic``, ``waic`` (= -2 elpd), ``se``."""
    from scipy.special import logsumexp

    ll = _pointwise(idata)
    s = ll.shape[0]
    lppd_i = logsumexp(ll, axis=0) - np.log(s)
    p_i = ll.var(axis=0, ddof=1)
    elpd_i = lppd_i - p_i
    n = len(elpd_i)
    se = float(np.sqrt(n * elpd_i.var(ddof=0)))
    return {
        "elpd_waic": float(elpd_i.sum()),
        "p_waic": float(p_i.sum()),
        "waic": float(-2 * elpd_i.sum()),
        "se": 2 * se,
    }


def loo(idata: Any):
    """PSIS-LOO (ArviZ's ``loo``) with pointwise values; warnings about k are reported, not raised."""
    import warnings

    import arviz_stats as az  # arviz re-exports these; its plotting half costs 0.35 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.loo(idata, pointwise=True)


def loo_summary(idata: Any) -> dict[str, float]:
    """PSIS-LOO figures of a fit, as stored in a run's ``diagnostics.json``."""
    return loo_figures(loo(idata))


def loo_figures(res: Any) -> dict[str, float]:
    k = res.pareto_k.to_numpy()
    return {
        "elpd": float(res.elpd),
        "se": float(res.se),
        "p_loo": float(res.p),
        "max_pareto_k": float(np.nanmax(k)),
        "n_high_pareto_k": int((k > PARETO_K_WARN).sum()),
    }


def n_parameters(idata: Any) -> int:
    """Number of scalar free parameters in the posterior (variables marked ``deterministic``, e.g. ``beta``
    under a business-unit media prior, are functions of the others and do not count)."""
    post = idata["posterior"]
    free = [v for v in post.data_vars if "deterministic" not in post[v].attrs]
    return int(sum(np.prod([post.sizes[d] for d in post[v].dims if d not in ("chain", "draw")]) for v in free))


def bic(idata: Any) -> float:
    """``-2 max_draws log p(y | θ) + k log n``."""
    ll = _pointwise(idata)
    return float(-2 * ll.sum(axis=1).max() + n_parameters(idata) * np.log(ll.shape[1]))


def crps(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of sample forecasts, one per observation.

    ``CRPS = E|X - y| - ½ E|X - X'|`` with ``samples`` of shape (draws, observations);
    the pairwise term uses the sorted-sample identity (O(S log S)).
    """
    samples = np.sort(np.asarray(samples, float), axis=0)
    s = samples.shape[0]
    term1 = np.abs(samples - observed[None, :]).mean(axis=0)
    weights = (2 * np.arange(1, s + 1) - s - 1)[:, None]
    term2 = (weights * samples).sum(axis=0) * 2 / s**2
    return term1 - 0.5 * term2


def holdout_scores(predicted: np.ndarray, observed: np.ndarray, prob: float = 0.9) -> dict[str, float]:
    """RMSE and MAPE of the predictive mean, mean CRPS and the interval coverage.

    ``predicted``: draws of the observed target (with noise), shape (draws, weeks).
    """
    mean = predicted.mean(axis=0)
    lo, hi = np.quantile(predicted, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    nonzero = observed != 0
    return {
        "holdout_rmse": float(np.sqrt(np.mean((mean - observed) ** 2))),
        "holdout_mape": float(np.mean(np.abs((mean - observed)[nonzero] / observed[nonzero]))),
        "holdout_crps": float(crps(predicted, observed).mean()),
        "holdout_coverage": float(np.mean((observed >= lo) & (observed <= hi))),
    }
