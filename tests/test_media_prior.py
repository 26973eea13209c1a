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
    prior (Meridian's total paid-media contribution prior). Checked on the post-processing's shares.
    Independent channels (``pooling: none``; the pooled default's total is tested below)."""
    mmm = MMM(DATA, {**BASE, "media_prior": {"type": kind, "pooling": "none"}})
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


# ------------------------------------------------------- pooling: level, hierarchical
POOLED = {"type": "share", "pooling": "level"}


@pytest.mark.parametrize("pooling", ["level", "hierarchical"])
def test_the_pooled_prior_samples_its_numpy_reference(pooling):
    """log share_c = mu + tau z_c with mu ~ Normal(m0, s_T), z_c ~ Normal(0, 1) and tau = √(s0² − s_T²) (level) or
    tau ~ HalfNormal(√(s0² − s_T²)) (hierarchical); (m0, s0) the independent prior's LogNormal, s_T the total share's
    log-sd. The shares of the post-processing's contributions follow a NumPy sample of that hierarchy, channel by
    channel and in total (two-sample KS); each channel's log share keeps the independent prior's mean and
    variance. With a fixed spread (level) each channel's prior IS the independent LogNormal and the total's mean
    is exactly 0.4, its sd 0.2 √(2 − 1/K)."""
    from bayesmmm.model.media_prior import POOLING_VARIABLES, hierarchical_prior

    mmm = MMM(DATA, {**BASE, "media_prior": {"type": "share", "pooling": pooling}})
    draws, _, share = prior_quantities(mmm, n=4000)
    np.testing.assert_allclose(share, draws["contribution_share"], rtol=1e-9)  # exact, draw by draw
    k, m, s = 3, 0.4, 0.2
    s0 = np.sqrt(np.log1p(k * (s / m) ** 2))  # the independent prior's per-channel log-sd (mean m/k, sd s/√k)
    m0, s_total = np.log(m / k) - s0**2 / 2, np.sqrt(np.log1p((s / m) ** 2))
    h = hierarchical_prior(mmm.require_spec())
    assert (h.mu_mean, h.mu_sd, h.tau_scale) == pytest.approx((m0, s_total, np.sqrt(s0**2 - s_total**2)), rel=1e-12)
    mu, z = draws[POOLING_VARIABLES["level"]], draws[POOLING_VARIABLES["offset"]]
    tau = draws[POOLING_VARIABLES["spread"]] if pooling == "hierarchical" else np.full(len(mu), h.tau_scale)
    assert (POOLING_VARIABLES["spread"] in draws) == (pooling == "hierarchical")
    np.testing.assert_allclose(share, np.exp(mu[:, None] + tau[:, None] * z), rtol=1e-9)
    rng = np.random.default_rng(11)
    n = 200_000
    ref_tau = np.abs(rng.normal(0, h.tau_scale, n)) if pooling == "hierarchical" else np.full(n, h.tau_scale)
    ref = np.exp(rng.normal(m0, s_total, n)[:, None] + ref_tau[:, None] * rng.normal(size=(n, k)))
    for c in range(k):
        assert stats.ks_2samp(share[:, c], ref[:, c]).pvalue > 0.01
    assert stats.ks_2samp(share.sum(axis=1), ref.sum(axis=1)).pvalue > 0.01
    log = np.log(share)
    assert np.abs(log.mean(axis=0) - m0).max() < 4 * s0 / np.sqrt(len(log))
    assert np.abs(np.log(ref).var(axis=0) - s0**2).max() < 0.01  # the reference's log-variance is s0²
    if pooling == "level":  # the channel's own prior is exactly the independent one
        for c in range(k):
            assert stats.kstest(share[:, c], stats.lognorm(s=s0, scale=np.exp(m0)).cdf).pvalue > 0.01
        total = ref.sum(axis=1)
        assert total.mean() == pytest.approx(m, rel=0.01)
        assert total.std() == pytest.approx(s * np.sqrt(2 - 1 / k), rel=0.02)


def test_pooling_config_resolves_validates_and_round_trips():
    from bayesmmm.config.experiment import AUTO_MEDIA_POOLING, MediaPriorConfig, ModelConfig

    resolved = MMM(DATA, BASE).model_config.media_prior
    assert (resolved.type, resolved.pooling) == ("share", AUTO_MEDIA_POOLING)
    for stated in ("none", "level", "hierarchical"):  # a stated pooling is kept
        assert MMM(DATA, {**BASE, "media_prior": {"pooling": stated}}).model_config.media_prior.pooling == stated
    # auto pools the total media share prior of share only: not roas, not user-given priors, not coefficients
    assert MMM(DATA, {**BASE, "media_prior": {"type": "roas"}}).model_config.media_prior.pooling == "none"
    given = {"type": "share", "default": {"dist": "Beta", "alpha": 2, "beta": 8}}
    assert MMM(DATA, {**BASE, "media_prior": given}).model_config.media_prior.pooling == "none"
    assert MMM({**DATA, "geo_column": "geo"}, BASE).model_config.media_prior.pooling == "none"
    with pytest.raises(ValueError, match="pools the total media share prior"):
        MMM(DATA, {**BASE, "media_prior": {**given, "pooling": "hierarchical"}})
    with pytest.raises(ValueError, match="pools the total media share prior"):
        MediaPriorConfig(type="coefficient", pooling="hierarchical")
    with pytest.raises(ConfigError, match="means coefficient here"):
        MMM({**DATA, "geo_column": "geo"}, {**BASE, "media_prior": {"pooling": "hierarchical"}})
    with pytest.raises(ValueError, match="pooling"):
        MediaPriorConfig(pooling="partial")
    config = ModelConfig.model_validate({**BASE, "media_prior": POOLED})
    assert ModelConfig.model_validate_json(config.model_dump_json()) == config


def test_models_saved_before_pooling_load_with_independent_channels():
    from bayesmmm.config.experiment import DataConfig
    from bayesmmm.model.persistence import saved_model_config

    old = '{"media_prior": {"type": "share", "total_share_mean": 0.4}}'  # a share model saved before pooling
    config = saved_model_config(old, DataConfig.model_validate(DATA))
    assert config["media_prior"] == {"type": "share", "total_share_mean": 0.4, "pooling": "none"}
    assert MMM(DATA, config).model_config.media_prior.pooling == "none"  # not the auto default
    assert saved_model_config("{}", DataConfig.model_validate(DATA))["media_prior"] == {
        "type": "coefficient",
        "pooling": "none",
    }


@pytest.fixture(scope="module")
def three_channel_tests(tmp_path_factory):
    """Three always-on channels, each ~2-4% of the target (the total media share prior's mean is 13%
    a channel), with go-dark lift tests (5% se) on ``a`` and ``b`` only: (frame, lift tests)."""
    from bayesmmm.workflows.simulate import ScenarioConfig, write_simulation

    channel = {
        "adstock": {"name": "geometric", "l_max": 4, "params": {"alpha": 0.4}},
        "saturation": {"name": "logistic", "params": {"lam": 1.2}},
    }
    scenario = {
        "name": "three_small",
        "seed": 5,
        "start_date": "2024-01-01",
        "n_weeks": 78,
        "base": 500,
        "trend": {"kind": "linear", "total": 30},
        "channels": {
            name: {"spend": {"shape": 12, "scale": scale}, "beta": beta, **channel}
            for name, scale, beta in (("a", 100, 30), ("b", 200, 40), ("c", 150, 35))
        },
        "noise": {"sigma": 10},
        "lift_tests": {"channels": ["a", "b"], "change": -1.0, "noise": 0.05, "weeks": 4},
    }
    folder = tmp_path_factory.mktemp("three_small")
    data_path, _ = write_simulation(ScenarioConfig.model_validate(scenario), folder)
    return pd.read_csv(data_path), pd.read_csv(folder / "lift_tests.csv")


def test_lift_tests_on_two_channels_pull_the_untested_one_toward_them_only_when_pooled(three_channel_tests):
    """The untested channel's posterior log share is nearer the tested channels' with a pooled prior (level,
    hierarchical) than with independent channels (whose prior keeps pulling it toward 13%)."""
    import arviz as az

    frame, tests = three_channel_tests
    data = {"channel_columns": ["a", "b", "c"]}
    model = {"adstock": {"name": "geometric", "l_max": 4}, "saturation": "logistic", "yearly_seasonality": 0}
    sampler = {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 300, "seed": 3, "progressbar": False}
    gaps, ses, untested = {}, {}, {}
    for pooling in ("none", "level", "hierarchical"):
        mmm = MMM(data, {**model, "media_prior": {"type": "share", "pooling": pooling}}, lift_tests=tests)
        mmm.fit(frame, sampler)
        log_share = np.log(mmm.idata["posterior"]["contribution_share"])
        # per draw: the untested channel's log share minus the tested channels' mean log share
        gap = log_share.sel(channel="c") - log_share.sel(channel=["a", "b"]).mean("channel")
        gaps[pooling], ses[pooling] = float(gap.mean()), float(az.mcse(gap, method="mean"))
        untested[pooling] = float(np.exp(log_share.sel(channel="c").mean()))
    for pooling in ("level", "hierarchical"):
        # nearer, by more than 3 combined Monte Carlo standard errors
        assert abs(gaps["none"]) - abs(gaps[pooling]) > 3 * np.hypot(ses["none"], ses[pooling]), (gaps, ses)
        assert untested[pooling] < untested["none"], untested


@pytest.mark.parametrize("backend", ["nutpie", "pymc", "numpyro", "blackjax"])
def test_every_backend_samples_the_pooled_prior_and_recomputes_beta(backend, tmp_path):
    """The pooled prior's quantity is a deterministic of mu and z: every backend stores it, and the stored
    ``beta`` (recomputed per draw) gives the contributions whose share of the target it is."""
    from bayesmmm.model.media_prior import POOLING_VARIABLES, hierarchical_prior

    mmm = MMM(DATA, {**BASE, "media_prior": POOLED})
    mmm.fit(national_frame(), {"backend": backend, "chains": 2, "draws": 60, "tune": 100, "seed": 2})
    post = mmm.idata["posterior"]
    level, offset = POOLING_VARIABLES["level"], POOLING_VARIABLES["offset"]
    assert {level, offset, "contribution_share", "beta"} <= set(post.data_vars)
    tau = hierarchical_prior(mmm.require_spec()).tau_scale
    np.testing.assert_allclose(post["contribution_share"], np.exp(post[level] + tau * post[offset]), rtol=1e-6)
    share = mmm.posterior_components()["media"].sum("date") / mmm.data.target.sum()
    np.testing.assert_allclose(share.transpose(*post["contribution_share"].dims), post["contribution_share"], rtol=1e-6)
    loaded = MMM.load(mmm.save(tmp_path / "posterior.nc"))
    assert loaded.model_config.media_prior.pooling == "level"
    np.testing.assert_allclose(loaded.posterior_components()["media"], mmm.posterior_components()["media"])
