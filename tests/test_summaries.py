"""The NumPy HDI gives ArviZ's numbers (method ``nearest``), over any extra dims, ties included."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayesmmm.evaluation.summaries import hdi, hdi_bounds


@pytest.mark.parametrize(
    ("shape", "dims"),
    [
        ((4, 250), ("chain", "draw")),
        ((2, 100, 3), ("chain", "draw", "channel")),
        ((3, 7, 5, 2), ("chain", "draw", "date", "channel")),
        ((2, 1, 3), ("channel", "chain", "draw")),  # chain/draw not leading, one draw per chain
    ],
)
@pytest.mark.parametrize("prob", [0.5, 0.9, 0.94, 1.0])
def test_hdi_matches_arviz(shape, dims, prob):
    rng = np.random.default_rng(sum(shape))
    # rounded gamma draws: skewed, with many ties (argmin must pick the same interval)
    da = xr.DataArray(rng.gamma(2.0, size=shape).round(1), dims=dims)
    da = da.assign_coords({d: np.arange(da.sizes[d]) * 2 for d in dims if d not in ("chain", "draw")})
    lo, hi = hdi(da, prob)
    ref = az.hdi(da, prob=prob)
    for ours, bound in ((lo, "lower"), (hi, "upper")):
        expected = ref.sel(ci_bound=bound, drop=True).transpose(*ours.dims)
        np.testing.assert_array_equal(ours.to_numpy(), expected.to_numpy())
        assert dict(ours.coords.items()).keys() == dict(expected.coords.items()).keys()
    assert (lo <= hi).all()


def test_hdi_bounds_and_bad_prob():
    x = np.arange(100.0)
    assert hdi_bounds(x, 0.9) == (0.0, 90.0)
    with pytest.raises(ValueError, match="prob"):
        hdi_bounds(x, 1.5)
