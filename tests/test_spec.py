"""The frozen ModelSpec and per-posterior Predictive: a view of a posterior cannot disagree with itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr


def test_the_spec_is_frozen_and_built_once_per_binding(fitted_example):
    spec = fitted_example.spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.scales = None
    with pytest.raises(TypeError):
        spec.priors["beta"] = None  # read-only mapping
    with pytest.raises(TypeError):
        spec.variable_dims["beta"] = ()
    assert fitted_example.predictive.spec is spec
    assert fitted_example.predictive is fitted_example.predictive  # one per (spec, posterior)
    design = spec.training_design()
    assert not design["media"].flags.writeable


def test_a_thinned_predictive_evaluates_exactly_the_draws_it_reports(fitted_example):
    """Thinning makes a new Predictive over fewer draws; everything it computes uses those draws only."""
    full = fitted_example.predictive
    view = full.thinned(100)
    post = fitted_example.idata["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    assert n > 100 and view.n_draws <= 100 and view is not full
    assert view.spec is full.spec  # the compiled functions are shared, not the posterior
    draws = view.posterior_draws()
    assert {len(v) for v in draws.values()} == {view.n_draws}
    step = int(np.ceil(n / 100))
    expected = post["beta"].isel(draw=slice(None, None, step)).to_numpy().reshape(-1, post.sizes["channel"])
    np.testing.assert_array_equal(draws["beta"], expected)
    comps = view.posterior_components()
    assert comps.sizes["chain"] * comps.sizes["draw"] == view.n_draws
    # the same numbers as the full posterior's decomposition restricted to those draws
    full_media = full.posterior_components()["media"].isel(draw=slice(None, None, step))
    np.testing.assert_allclose(comps["media"].to_numpy(), full_media.to_numpy(), rtol=1e-12)
    assert full.thinned(None) is full and full.thinned(n) is full
    with pytest.raises(ValueError, match="at least the number of chains"):
        full.thinned(1)


def test_the_model_predictive_follows_its_posterior(fitted_example):
    """Replacing the posterior gives a new Predictive (no stale view of the old one)."""
    import copy

    mmm = copy.copy(fitted_example)
    before = mmm.predictive
    post = mmm.idata["posterior"].to_dataset().isel(draw=slice(0, 10))
    mmm.idata = xr.DataTree.from_dict({"posterior": post})
    after = mmm.predictive
    assert after is not before and after.n_draws == 10 * post.sizes["chain"]
    assert len(mmm.posterior_draws()["beta"]) == after.n_draws
    assert before.n_draws > after.n_draws  # the original's view is untouched
