"""The one HDI estimator: ArviZ's numbers (method ``nearest``) on any shape and axis, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base import array_stats

from bayesmmm.stats import hdi_bounds


def loop_hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """The definition, one interval at a time: the narrowest of the intervals spanning k + 1 sorted draws."""
    s = sorted(draws)
    n = len(s)
    k = min(int(np.floor(prob * n)), n - 1)
    best = 0
    for i in range(n - k):
        if s[i + k] - s[i] < s[best + k] - s[best]:
            best = i
    return s[best], s[best + k]


SHAPES = [((500,), 0), ((400, 3), 0), ((3, 250), 1), ((2, 7, 101), 2), ((60, 4, 5), 0), ((1, 3), 0)]


@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-axis{a}" for s, a in SHAPES])
@pytest.mark.parametrize("prob", [0.5, 0.8, 0.9, 0.94, 1.0])
def test_hdi_bounds_is_arviz_nearest_and_the_plain_loop(shape, axis, prob):
    rng = np.random.default_rng(sum(shape) + axis)
    # rounded gamma draws: skewed, with many ties (the first narrowest interval must be the one picked)
    draws = rng.gamma(2.0, size=shape).round(1)
    low, high = hdi_bounds(draws, prob, axis=axis)
    kept = shape[:axis] + shape[axis + 1 :]
    assert low.shape == high.shape == kept
    ref = array_stats.hdi(draws, prob, axis=axis, method="nearest")  # ArviZ's array layer: (..., 2)
    np.testing.assert_array_equal(low, ref[..., 0])
    np.testing.assert_array_equal(high, ref[..., 1])
    samples_last = np.moveaxis(draws, axis, -1)
    for index in np.ndindex(kept):
        assert (low[index], high[index]) == loop_hdi(samples_last[index], prob)
    assert (low <= high).all()


def test_hdi_bounds_of_one_dimensional_draws_and_bad_prob():
    low, high = hdi_bounds(np.arange(100.0), 0.9)
    assert (float(low), float(high)) == (0.0, 90.0) and low.shape == ()
    for prob in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="prob"):
            hdi_bounds(np.arange(10.0), prob)
