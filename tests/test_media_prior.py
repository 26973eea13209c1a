"""Priors in business units (model.media_prior): an exact reparameterization of beta."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmmm import MMM, ConfigError
from tests.reference.make_reference import national_frame

DATA = {"target_column": "sales", "channel_columns": ["search", "social", "tv"], "control_columns": ["price"]}
BASE = {"adstock": {"name": "geometric", "l_max": 6}, "saturation": "logistic", "yearly_seasonality": 1}
ROAS_PRIOR = {"dist": "LogNormal", "mu": float(np.log(0.3)), "sigma": 0.5}


def prior_quantities(mmm: MMM, n: int = 2000) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Prior draws of the model's variables, and the ROAS and the share of the target they imply
    (the post-processing's own contributions, not the reparameterization's formula)."""
    from bayesmmm.evaluation.identifiability import prior_draws, roas_draws

    mmm.build_model(national_frame())
    draws = prior_draws(mmm, n=n, seed=1)
    roas = roas_draws(mmm, draws)
    share = roas * mmm.data.media.sum(axis=0) / mmm.data.target.sum()
    return draws, roas, share


def test_a_roas_prior_samples_the_requested_distribution():
    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "roas", "default": ROAS_PRIOR}})
    draws, roas, _ = prior_quantities(mmm)
    np.testing.assert_allclose(roas, draws["roas"], rtol=1e-9)  # exact, draw by draw
    reference = stats.lognorm(s=ROAS_PRIOR["sigma"], scale=np.exp(ROAS_PRIOR["mu"]))
    for c in range(3):
        assert stats.kstest(roas[:, c], reference.cdf).pvalue > 0.01
    # and beta itself is no longer HalfNormal(1): its spread follows the channels' curves
    assert not np.allclose(draws["beta"].std(axis=0), draws["beta"].std(axis=0).mean(), rtol=0.05)


def test_share_and_per_channel_priors():
    priors = {"tv": {"dist": "Beta", "alpha": 2.0, "beta": 30.0}}
    mmm = MMM(
        DATA,
        {
            **BASE,
            "media_prior": {"type": "share", "default": {"dist": "Beta", "alpha": 2, "beta": 8}, "channels": priors},
        },
    )
    _, _, share = prior_quantities(mmm)
    for c, (a, b) in enumerate([(2, 8), (2, 8), (2, 30)]):
        assert stats.kstest(share[:, c], stats.beta(a, b).cdf).pvalue > 0.01


def test_a_marginal_roas_prior_is_the_response_of_one_percent_more_spend():
    from bayesmmm.evaluation.identifiability import prior_draws

    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "mroas", "default": ROAS_PRIOR}})
    mmm.build_model(national_frame())
    draws = prior_draws(mmm, n=300, seed=2)
    dates, media, controls = mmm.history_inputs()
    base = mmm.evaluate(dates, media, controls, draws=draws)["media"].sum(axis=1)
    up = mmm.evaluate(dates, media * 1.01, controls, draws=draws)["media"].sum(axis=1)
    mroas = (up - base) / (0.01 * media.sum(axis=0))
    np.testing.assert_allclose(mroas, draws["mroas"], rtol=1e-8)


def test_a_fit_with_a_roas_prior_reports_the_roas_it_sampled(tmp_path):
    from bayesmmm import roas_table
    from bayesmmm.evaluation.criteria import n_parameters

    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "roas", "default": ROAS_PRIOR}})
    mmm.fit(national_frame(), {"backend": "numpyro", "chains": 2, "draws": 150, "tune": 200, "seed": 4})
    post = mmm.idata["posterior"]
    table = roas_table(mmm)
    np.testing.assert_allclose(table["roas_mean"], post["roas"].mean(("chain", "draw")), rtol=1e-8)
    coefficient_model = MMM(DATA, {**BASE, "media_prior": {"type": "coefficient"}})
    coefficient_model.build_model(national_frame())
    assert n_parameters(mmm.idata) == sum(
        int(np.prod([len(mmm.coords()[d]) for d in dims])) for dims in coefficient_model.variable_dims().values()
    )  # roas replaces beta: the same number of free parameters
    loaded = MMM.load(mmm.save(tmp_path / "posterior.nc"))
    np.testing.assert_allclose(roas_table(loaded)["roas_mean"], table["roas_mean"], rtol=1e-12)
    future = national_frame().tail(3)
    future["date"] = (pd.to_datetime(future["date"]) + pd.Timedelta(weeks=3)).dt.strftime("%Y-%m-%d")
    assert np.isfinite(loaded.predict(future)["mu"]).all()


@pytest.mark.parametrize(
    ("media_prior", "message"),
    [
        ({"type": "coefficient", "default": ROAS_PRIOR}, "apply to type roas"),
        (
            {"type": "roas", "default": ROAS_PRIOR, "channels": {"tv": {"dist": "Gamma", "alpha": 2, "beta": 2}}},
            "same distribution",
        ),
    ],
)
def test_bad_media_prior_configs(media_prior, message):
    with pytest.raises(ValueError, match=message):
        MMM(DATA, {**BASE, "media_prior": media_prior})


def test_media_prior_needs_a_prior_for_every_channel_and_known_names():
    # roas / share give unnamed channels the total media share prior; mroas has no automatic prior
    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "mroas", "channels": {"search": ROAS_PRIOR}}})
    with pytest.raises(ConfigError, match="no prior for"):
        mmm.build_model(national_frame())
    mmm = MMM(
        DATA,
        {**BASE, "media_prior": {"type": "roas", "channels": {"search": {"dist": "Gamma", "alpha": 2, "beta": 2}}}},
    )
    with pytest.raises(ConfigError, match="same distribution"):  # the automatic prior is LogNormal
        mmm.build_model(national_frame())
    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "roas", "default": ROAS_PRIOR, "channels": {"radio": ROAS_PRIOR}}})
    with pytest.raises(ConfigError, match="radio"):
        mmm.build_model(national_frame())


# ------------------------------------------------------------ the default: type auto
def test_auto_means_share_for_national_models_and_coefficient_for_geo_or_a_beta_prior():
    assert MMM(DATA, BASE).model_config.media_prior.type == "share"
    beta_prior = {**BASE, "priors": {"beta": {"dist": "HalfNormal", "sigma": 2.0}}}
    assert MMM(DATA, beta_prior).model_config.media_prior.type == "coefficient"  # a coefficient prior was asked for
    assert MMM({**DATA, "geo_column": "geo"}, BASE).model_config.media_prior.type == "coefficient"  # national only
    for kind in ("coefficient", "roas"):  # a stated type is kept
        assert MMM(DATA, {**BASE, "media_prior": {"type": kind}}).model_config.media_prior.type == kind
    with pytest.raises(ValueError, match="name the type"):
        MMM(DATA, {**BASE, "media_prior": {"default": ROAS_PRIOR}})


def test_a_beta_prior_with_a_business_unit_type_is_refused_in_an_experiment():
    from bayesmmm.config.experiment import ExperimentConfig

    data = {**DATA, "path": "data.csv"}
    model = {**BASE, "priors": {"beta": {"dist": "HalfNormal", "sigma": 2.0}}}
    ExperimentConfig.model_validate({"data": data, "model": model})  # auto: the coefficient prior
    with pytest.raises(ValueError, match=r"priors\.beta is the coefficient prior"):
        ExperimentConfig.model_validate({"data": data, "model": {**model, "media_prior": {"type": "share"}}})


@pytest.mark.parametrize("kind", ["share", "roas"])
def test_the_total_media_share_prior(kind):
    """Without media_prior.default the channels' shares add up to a total with mean 0.4 and sd 0.2
    (independent LogNormals: the moments add); share splits it evenly, roas gives every channel one ROAS
    prior (Meridian's total paid-media contribution prior). Checked on the post-processing's shares."""
    mmm = MMM(DATA, {**BASE, "media_prior": {"type": kind}})
    _, roas, share = prior_quantities(mmm, n=4000)
    total = share.sum(axis=1)
    assert abs(total.mean() - 0.4) < 0.02 and abs(total.std() - 0.2) < 0.02
    spend, y = mmm.data.media.sum(axis=0), mmm.data.target.sum()
    if kind == "share":
        mean, sd, values = np.full(3, 0.4 / 3), np.full(3, 0.2 / np.sqrt(3)), share
    else:
        mean, sd, values = np.full(3, 0.4 * y / spend.sum()), np.full(3, 0.2 * y / np.sqrt((spend**2).sum())), roas
    sigma = np.sqrt(np.log1p((sd / mean) ** 2))
    for c in range(3):
        reference = stats.lognorm(s=sigma[c], scale=mean[c] * np.exp(-(sigma[c] ** 2) / 2))
        assert stats.kstest(values[:, c], reference.cdf).pvalue > 0.01


def test_models_saved_before_media_prior_load_as_coefficient_models():
    from pathlib import Path

    mmm = MMM.load(Path(__file__).resolve().parent / "reference" / "national.nc")
    assert mmm.model_config.media_prior.type == "coefficient" and mmm.media_prior_variable is None


def test_prior_draws_batched_when_priors_are_roots_one_by_one_otherwise():
    """The batched prior draws (one call for all draws) match PyMC's one-draw-at-a-time sampler in
    distribution; a prior with a free parameter (hierarchical) is drawn one at a time."""
    import pymc as pm

    from bayesmmm.evaluation.identifiability import _prior_one_by_one, _vectorized_prior

    with pm.Model() as roots:
        pm.LogNormal("a", 0.0, 0.5, shape=3)
        pm.Beta("b", 2.0, 5.0)
    batched = _vectorized_prior(roots, ["a", "b"], 2000, 1)
    single = _prior_one_by_one(roots, ["a", "b"], 2000, 2)
    assert batched["a"].shape == (2000, 3) and batched["b"].shape == (2000,)
    assert stats.ks_2samp(batched["a"][:, 1], np.asarray(single["a"])[:, 1]).pvalue > 0.01
    assert stats.kstest(batched["b"], stats.beta(2.0, 5.0).cdf).pvalue > 0.01
    assert len(np.unique(batched["a"][:, 0])) == 2000  # independent draws, not one repeated
    with pm.Model() as hierarchical:
        scale = pm.HalfNormal("scale")
        pm.Normal("x", 0.0, scale)
    assert _vectorized_prior(hierarchical, ["scale", "x"], 10, 0) is None
