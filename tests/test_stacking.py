"""Stacked posteriors (bayesmmm.evaluation.stacking): the mixture's draws and ROAS tables against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmmm import MMM
from bayesmmm.evaluation.stacking import mixture_indices, stack_components, stacked_roas_tables
from bayesmmm.evaluation.summaries import hdi_bounds, roas_table
from tests.conftest import MMM_EXAMPLE_DATA, SMALL_SAMPLER


def test_mixture_indices_follow_the_weights_and_draw_without_replacement():
    picks = mixture_indices([400, 350], [0.25, 0.75], 400, seed=3)
    n0, n1 = (len(p) for p in picks)
    assert n0 + n1 == 400 and abs(n0 - 100) < 40  # Multinomial(400, 0.25): sd 8.7
    assert len(set(picks[0])) == n0 and len(set(picks[1])) == n1  # no repeats while a candidate has enough
    assert picks[1].max() < 350
    only = mixture_indices([50, 60], [0.0, 2.0], 100, seed=1)  # weights are normalized; 100 > 60: with replacement
    assert len(only[0]) == 0 and len(only[1]) == 100 and only[1].max() < 60
    for bad in ([1.0], [-0.5, 1.5], [0.0, 0.0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="weights"):
            mixture_indices([10, 10], bad, 5)


@pytest.fixture(scope="module")
def two_forms(fitted_example, mmm_example_frame):
    mm = MMM(
        MMM_EXAMPLE_DATA,
        {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "michaelis_menten", "trend": "linear"},
    )
    mm.fit(mmm_example_frame, SMALL_SAMPLER)
    return fitted_example, mm


def test_stacked_roas_is_the_mixture_of_the_two_posteriors(two_forms):
    a, b = two_forms
    comps = [a.posterior_components(), b.posterior_components()]
    national, geo = stacked_roas_tables([a, b], [0.4, 0.6], hdi_prob=0.9, n_draws=1000, seed=7)
    assert geo is None
    # reference: the same picks of each model's own ROAS draws, in NumPy
    spend = a.data.channel_spend.sum(axis=0)
    draws = [
        c["media"].sum("date").stack(s=("chain", "draw")).transpose("s", "channel").to_numpy() / spend for c in comps
    ]
    picks = mixture_indices([len(d) for d in draws], [0.4, 0.6], 1000, seed=7)
    mixed = np.concatenate([d[p] for d, p in zip(draws, picks, strict=True)])
    np.testing.assert_allclose(national["roas_mean"], mixed.mean(axis=0), rtol=1e-9)
    for j in range(mixed.shape[1]):
        assert (national["roas_hdi_low"][j], national["roas_hdi_high"][j]) == pytest.approx(
            hdi_bounds(mixed[:, j], 0.9)
        )
    # the mixture's mean lies between the two models' means, at 0.4 / 0.6 up to the multinomial's noise
    ta, tb = roas_table(a, 0.9, comps[0]), roas_table(b, 0.9, comps[1])
    expected = 0.4 * ta["roas_mean"] + 0.6 * tb["roas_mean"]
    gap = np.abs(ta["roas_mean"] - tb["roas_mean"])
    assert (np.abs(national["roas_mean"] - expected) <= 0.1 * gap + 0.05 * expected).all()


def test_one_weight_reproduces_that_model_and_mismatched_data_is_refused(two_forms):
    a, b = two_forms
    comps = a.posterior_components()
    size = comps.sizes["chain"] * comps.sizes["draw"]
    alone, _ = stacked_roas_tables([a, b], [1.0, 0.0], n_draws=size)  # every draw of a, once: a permutation
    own = roas_table(a, 0.9, comps)
    np.testing.assert_allclose(alone["roas_mean"], own["roas_mean"], rtol=1e-9)
    np.testing.assert_allclose(alone["roas_hdi_low"], own["roas_hdi_low"], rtol=1e-9)
    mixed = stack_components([comps, b.posterior_components()], [0.5, 0.5], n_draws=200)
    assert mixed.sizes["chain"] == 1 and mixed.sizes["draw"] == 200 and "media" in mixed
    with pytest.raises(ValueError, match="share none"):
        stack_components([comps[["media"]], comps[["baseline"]] if "baseline" in comps else comps[[]]], [1, 1])
