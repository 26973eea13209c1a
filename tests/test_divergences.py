"""The divergence-location rank test (bayesmmm.evaluation.divergences) against constructed posteriors
whose divergent draws are known, and its place in the diagnostics."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmmm.config.experiment import DiagnosticsConfig
from bayesmmm.evaluation.divergences import divergence_locations
from bayesmmm.evaluation.summaries import diagnostics

CHAINS, DRAWS = 4, 500


def tree(posterior: dict[str, tuple[tuple[str, ...], np.ndarray]], diverging: np.ndarray, coords=None) -> xr.DataTree:
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), **(coords or {})}
    post = xr.Dataset({k: (("chain", "draw", *dims), v) for k, (dims, v) in posterior.items()}, coords=coords)
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)}, coords=coords)
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_flags_the_parameter_the_divergences_follow_and_not_the_others():
    rng = np.random.default_rng(0)
    kappa = rng.lognormal(0.0, 0.5, (CHAINS, DRAWS, 2))
    other = rng.normal(size=(CHAINS, DRAWS))
    # divergences in the lowest 10% of kappa[newsletter] only, a third of those draws
    low = kappa[..., 1] < np.quantile(kappa[..., 1], 0.1)
    diverging = low & (rng.uniform(size=low.shape) < 1 / 3)
    t = tree(
        {"saturation_kappa_organic": (("organic",), kappa), "intercept": ((), other)},
        diverging,
        coords={"organic": ["search_like", "newsletter"]},
    )
    out = divergence_locations(t)
    assert out["divergences"] == int(diverging.sum()) > 30
    assert out["per_chain"] == [int(v) for v in diverging.sum(axis=1)]
    top = out["parameters"][0]
    assert top["parameter"] == "saturation_kappa_organic[newsletter]"
    assert top["direction"] == "low" and top["percentile"] < 0.1
    # the closed form of the statistic: mean percentile of the divergent draws, null sd sqrt(1/(12 n))
    flat = kappa[..., 1].reshape(-1)
    ranks = np.argsort(np.argsort(flat))
    mean = ((ranks + 0.5) / flat.size)[diverging.reshape(-1)].mean()
    assert np.isclose(top["z"], (mean - 0.5) / np.sqrt(1 / (12 * diverging.sum())), atol=0.05)
    assert [p["parameter"] for p in out["parameters"]] == ["saturation_kappa_organic[newsletter]"]
    assert "model.organic.saturation" in out["advice"] and "low saturation_kappa_organic[newsletter]" in out["summary"]


def test_divergences_unrelated_to_every_parameter_flag_none():
    rng = np.random.default_rng(1)
    posterior = {f"p{i}": ((), rng.normal(size=(CHAINS, DRAWS))) for i in range(8)}
    diverging = rng.uniform(size=(CHAINS, DRAWS)) < 0.02
    out = divergence_locations(tree(posterior, diverging))
    assert out["divergences"] == int(diverging.sum()) > 20
    assert out["parameters"] == [] and out["advice"] is None
    assert out["summary"] == "divergent draws not concentrated in any parameter"


def test_no_divergences_no_locations_and_one_chain_is_named():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(CHAINS, DRAWS))
    assert divergence_locations(tree({"x": ((), x)}, np.zeros((CHAINS, DRAWS), bool))) is None
    diverging = np.zeros((CHAINS, DRAWS), bool)
    diverging[2, ::50] = True
    out = divergence_locations(tree({"x": ((), x)}, diverging))
    assert out["per_chain"] == [0, 0, 10, 0] and out["summary"].endswith("all in chain 2")


def test_diagnostics_name_the_location_in_the_problem():
    rng = np.random.default_rng(3)
    beta = rng.lognormal(size=(CHAINS, DRAWS))
    diverging = beta > np.quantile(beta, 0.97)
    d = diagnostics(tree({"beta_organic": ((), beta)}, diverging), DiagnosticsConfig(max_divergences=0))
    assert d["divergence_locations"]["parameters"][0]["parameter"] == "beta_organic"
    assert d["problems"][-1].startswith(f"{int(diverging.sum())} divergences > 0 (divergent draws at high beta_organic")
