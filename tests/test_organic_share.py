"""The organic media's business-unit prior (``model.organic.prior: share``): the free variable is the
organic medium's contribution as a share of the KPI, ``beta_organic`` its exact function.

Checked against independent references: the share identity per posterior draw (contributions summed
with NumPy against the target total), the prior's draws against scipy's Beta (KS test), a NumPy loop
of the adstock and saturation for ``beta_organic`` on prior draws, and recovery of a known share on
data simulated in ``test_roles``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmmm.config.experiment import ConfigError, ExperimentConfig
from bayesmmm.model.mmm import MMM
from tests.test_roles import _geometric_logistic, _simulate

DATA = {
    "channel_columns": ["tv"],
    "organic_columns": ["newsletter"],
    "treatment_columns": ["price"],
    "treatment_baseline": 1.0,
    "event_columns": ["events"],
}
MODEL = {"yearly_seasonality": 0, "trend": "none", "organic": {"prior": "share"}}


@pytest.fixture(scope="module")
def share_fit():
    frame, truth = _simulate()
    mmm = MMM(DATA, MODEL)
    mmm.fit(frame, chains=2, draws=250, tune=300, seed=5, progressbar=False)
    return mmm, frame, truth


def test_posterior_share_is_the_contribution_share_and_recovers_the_truth(share_fit, tmp_path):
    mmm, frame, truth = share_fit
    post = mmm.idata["posterior"]
    total = float(frame["sales"].sum())
    contribution = mmm.posterior_components()["organic_media"].sum("date").to_numpy()[..., 0]
    np.testing.assert_allclose(contribution / total, post["organic_share"].to_numpy()[..., 0], rtol=1e-8)
    assert "organic_share" in post["beta_organic"].attrs["deterministic"]
    share = post["organic_share"].to_numpy().ravel()
    true_share = truth["newsletter_total"] / total  # 2.7%, in the Beta(1, 99) prior's upper tail
    lo, hi = np.quantile(share, [0.05, 0.95])
    assert lo <= true_share <= hi and np.median(share) == pytest.approx(true_share, rel=0.25)
    assert float(mmm.idata["sample_stats"]["diverging"].mean()) <= 0.01
    mmm.save(tmp_path / "m")  # a saved model gives the same organic contributions (the same beta_organic)
    loaded = MMM.load(tmp_path / "m")
    np.testing.assert_allclose(
        loaded.posterior_components()["organic_media"].to_numpy(),
        mmm.posterior_components()["organic_media"].to_numpy(),
        rtol=1e-10,
    )


def test_prior_draws_follow_the_share_prior_and_map_to_beta_by_the_curve(share_fit):
    from bayesmmm.evaluation.identifiability import prior_draws

    mmm, frame, _ = share_fit
    draws = prior_draws(mmm, 2000, seed=3)
    share = draws["organic_share"][:, 0]
    assert stats.kstest(share, stats.beta(1.0, 99.0).cdf).pvalue > 0.01
    spec = mmm.require_spec()
    x = frame["newsletter"].to_numpy() / spec.scales.organic[0]
    target_total = float(frame["sales"].sum()) / float(spec.scales.target)
    for k in range(5):  # beta_organic = share · Y / (s_y Σ_t saturation(adstock(x))_t), a NumPy loop
        curve = _geometric_logistic(
            x, draws["adstock_alpha_organic"][k, 0], draws["saturation_lam_organic"][k, 0], spec.organic_adstock.l_max
        )
        assert draws["beta_organic"][k, 0] == pytest.approx(share[k] * target_total / curve.sum(), rel=1e-8)


def test_identifiability_uses_the_share_prior(share_fit):
    from bayesmmm.evaluation.identifiability import identifiability

    mmm, frame, _ = share_fit
    entry = identifiability(mmm, n_prior=500)["organic"]["newsletter"]
    # the prior's mean contribution is the Beta(1, 99) mean share of the target: 1% (the coefficient
    # prior's, HalfNormal(1) in mean-target units, is about 45% here)
    assert entry["contribution_prior_mean"] / frame["sales"].sum() == pytest.approx(0.01, rel=0.15)


def test_share_prior_is_national_only_and_round_trips():
    frame, _ = _simulate()
    geo = frame.assign(geo="a")
    geo = pd.concat([geo, frame.assign(geo="b")], ignore_index=True)
    mmm = MMM({**DATA, "geo_column": "geo"}, MODEL)
    with pytest.raises(ConfigError, match=r"organic\.prior: share is implemented for national models"):
        mmm.build_model(geo)
    config = ExperimentConfig.model_validate({"data": DATA, "model": {**MODEL, "priors": {}}})
    assert config.model.organic.prior == "share"
    assert ExperimentConfig.from_yaml(config.to_yaml()) == config
    with pytest.raises(ValueError, match="prior"):
        ExperimentConfig.model_validate({"data": DATA, "model": {"organic": {"prior": "roas"}}})


def test_joint_refresh_refuses_the_share_prior_with_the_fix(share_fit):
    from bayesmmm.model.sequential import SequentialUpdate

    old, frame, _ = share_fit
    new = MMM(DATA, MODEL)
    new.fixed_scales = old.scales
    new.sequential = SequentialUpdate(old.idata["posterior"].to_dataset(), old.require_spec())
    with pytest.raises(ConfigError, match="prior-from-posterior-kind marginal"):
        new.build_model(frame)
