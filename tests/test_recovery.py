"""Parameter recovery with real MCMC against known truth."""

from __future__ import annotations

import numpy as np
import pytest


def test_four_channel_roas_coverage(four_channel_fit):
    """The 90% HDI of ROAS covers the true ROAS for at least 3 of 4 channels."""
    result, truth = four_channel_fit
    roas = result.roas.set_index("channel")
    covered = [
        roas.loc[ch, "roas_hdi_low"] <= t["roas"] <= roas.loc[ch, "roas_hdi_high"]
        for ch, t in truth["channels"].items()
    ]
    assert sum(covered) >= 3, roas[["roas_mean", "roas_hdi_low", "roas_hdi_high"]]
    assert result.diagnostics["max_rhat"] < 1.05


def test_pymc_marketing_example_adstock_alphas(fitted_example):
    """Posterior means of the adstock alphas are within 0.1 of the documented truth (0.4, 0.2)."""
    alpha = fitted_example.idata["posterior"]["adstock_alpha"].mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(alpha, [0.4, 0.2], atol=0.1)


@pytest.mark.slow
def test_pymc_marketing_example_contributions_covered(fitted_example):
    """Documented truth: contribution = beta * logistic(adstock(x), lam) with betas 3000/2000 in y units."""
    from bayesmmm.datasets import load_dataset

    frame = load_dataset("pymc_marketing_example")
    truth = {}
    for ch, alpha, lam, beta in [("x1", 0.4, 4.0, 3000.0), ("x2", 0.2, 3.0, 2000.0)]:
        x = frame[ch].to_numpy()
        w = alpha ** np.arange(8)
        w /= w.sum()
        ad = np.convolve(x, w)[: len(x)]
        truth[ch] = float((beta * (1 - np.exp(-lam * ad)) / (1 + np.exp(-lam * ad))).sum())
    from bayesmmm import roas_table

    table = roas_table(fitted_example, 0.9).set_index("channel")
    for ch, value in truth.items():
        assert table.loc[ch, "contribution_hdi_low"] <= value <= table.loc[ch, "contribution_hdi_high"]
