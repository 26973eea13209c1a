"""Posterior summaries on plain arrays: the one HDI estimator of the package.

:func:`hdi_bounds` is what every interval of bayesmmm is computed with (the tables of
:mod:`bayesmmm.evaluation.summaries`, the service's forecasts): ArviZ's ``hdi`` with
method ``nearest``, vectorized in NumPy, without ArviZ's per-call overhead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hdi_bounds"]


def hdi_bounds(draws: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the highest-density interval of ``draws`` along ``axis``.

    ArviZ's "nearest" estimator: with the ``n`` draws sorted, the narrowest interval
    between two draws ``k = min(floor(prob · n), n - 1)`` places apart (the first one
    on ties), so that it holds ``k + 1`` draws.

    Parameters
    ----------
    draws : array of draws; ``axis`` is the sample axis, every other axis is kept.
    prob : probability of the interval, in (0, 1].
    axis : the axis holding the draws.

    Returns
    -------
    low, high : arrays of ``draws``'s shape without ``axis`` (0-d for 1-D draws).
    """
    if not 0 < prob <= 1:
        raise ValueError(f"prob must be in (0, 1], got {prob}")
    values = np.sort(np.moveaxis(np.asarray(draws), axis, -1), axis=-1)
    n = values.shape[-1]
    k = min(int(np.floor(prob * n)), n - 1)
    widths = np.subtract(values[..., k:], values[..., : n - k], dtype=np.float64)
    first = np.argmin(widths, axis=-1)[..., None]
    low = np.take_along_axis(values, first, axis=-1)[..., 0]
    high = np.take_along_axis(values, first + k, axis=-1)[..., 0]
    return low, high
