"""Geo-panel models: data validation, the one-geo special case, recovery on a simulated panel."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import ConfigError, DataConfig, ExperimentConfig, ModelConfig, SamplerConfig
from bayesmmm.data.loading import DataError, frame_to_data
from bayesmmm.model.mmm import MMM, link_of
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

CHANNELS = ["search", "social", "tv"]
GEO_DATA = {"channel_columns": CHANNELS, "target_column": "sales", "geo_column": "geo"}
SMALL_MODEL = {"adstock": {"name": "geometric", "l_max": 6}, "yearly_seasonality": 1}


def geo_scenario(n_geos: int, n_weeks: int = 104, seed: int | None = None):
    sc = load_scenario(builtin_scenario("geo_panel"))
    update = {"n_weeks": n_weeks, "geos": sc.geos.model_copy(update={"n": n_geos})}
    if seed is not None:
        update["seed"] = seed
    return sc.model_copy(update=update)


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, dict]:
    return simulate(geo_scenario(3, n_weeks=60))


# ----------------------------------------------------------------------------- data
def test_panel_to_data_shapes_and_national_view(panel):
    frame, _ = panel
    data = frame_to_data(frame, DataConfig(**GEO_DATA, population_column="population"))
    assert data.geos == ("geo_00", "geo_01", "geo_02")
    assert data.geo_media.shape == (60, 3, 3) and data.geo_target.shape == (60, 3)
    np.testing.assert_allclose(data.media, data.geo_media.sum(axis=1))
    np.testing.assert_allclose(data.target, data.geo_target.sum(axis=1))
    assert data.population.shape == (3,)


def test_panel_rows_in_any_order(panel):
    frame, _ = panel
    a = frame_to_data(frame, DataConfig(**GEO_DATA))
    b = frame_to_data(frame.sample(frac=1.0, random_state=1), DataConfig(**GEO_DATA))
    np.testing.assert_allclose(a.geo_media[:, [a.geos.index(g) for g in b.geos]], b.geo_media)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda f: f.drop(columns="geo"), r"geo column\(s\) 'geo' not found"),
        (lambda f: pd.concat([f, f.iloc[[5]]]), r"geo 'geo_00' has date .* more than once \(rows 7, 182\)"),
        (
            lambda f: f.drop(index=119),
            r"not rectangular: geo 'geo_01' lacks 1 date\(s\) of geo 'geo_00' \(first 2024-02-19\)",
        ),
        (lambda f: f.assign(geo=f["geo"].where(f.index != 3)), r"geo column 'geo' is empty at row 5"),
        (lambda f: f.assign(search=f["search"].where(f.index != 70, -1.0)), r"geo 'geo_01': .*negative spend.*row 72"),
        (
            lambda f: f.assign(population=f["population"].where(f.index != 2, 1.0)),
            r"one positive number per geo; geo 'geo_00'",
        ),
    ],
)
def test_panel_validation_errors(panel, mutate, pattern):
    frame, _ = panel
    config = DataConfig(**GEO_DATA, population_column="population")
    with pytest.raises(DataError, match=pattern):
        frame_to_data(mutate(frame.copy()), config)


def test_geo_config_validation():
    with pytest.raises(ValueError, match="population_column needs a geo panel"):
        DataConfig(channel_columns=["a"], population_column="pop")
    with pytest.raises(ValueError, match=r"model\.geo applies to geo panels only"):
        ExperimentConfig(data={"channel_columns": ["a"]}, model={"geo": {"adstock": "pooled"}})
    with pytest.raises(ConfigError, match=r"model\.geo applies to geo panels only"):
        MMM({"channel_columns": ["a"]}, {"geo": {}})
    with pytest.raises(ValueError, match="appear in more than one role"):
        DataConfig(channel_columns=["a"], geo_column="a")
    ModelConfig(geo={"adstock": "pooled", "seasonality": "pooled"})  # valid


def test_link_of_prior_support():
    assert link_of(Prior(dist="Beta", alpha=1, beta=3)) == "logit"
    assert link_of(Prior(dist="Gamma", alpha=3, beta=1)) == "log"
    assert link_of(Prior(dist="Normal", mu=0, sigma=1)) == "identity"


# ------------------------------------------------------------------ one geo = national
def test_one_geo_model_is_the_national_model(panel):
    frame, _ = panel
    one = frame[frame["geo"] == "geo_01"].reset_index(drop=True)
    model_cfg = {**SMALL_MODEL, "trend": "piecewise", "n_changepoints": 2}
    # a geo panel's media prior is the coefficient prior (media_prior auto); the national model states it
    national = MMM(
        {"channel_columns": CHANNELS, "target_column": "sales"}, {**model_cfg, "media_prior": {"type": "coefficient"}}
    )
    geo = MMM(GEO_DATA, {**model_cfg, "geo": {"adstock": "pooled", "trend": "pooled"}})
    nm, gm = national.build_model(one.drop(columns="geo")), geo.build_model(one)
    assert {v.name for v in nm.free_RVs} == {v.name for v in gm.free_RVs}  # nothing to pool with one geo
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in nm.initial_point().items()}
        geo_point = {k: np.reshape(v, gm.initial_point()[k].shape) for k, v in point.items()}
        np.testing.assert_allclose(nm.compile_logp()(point), gm.compile_logp()(geo_point), rtol=1e-12)


def test_zerosum_pooling_makes_beta_the_geometric_mean_of_the_geos(panel):
    """``geo.beta_pooling: zerosum``: beta_geo_z sums to zero over geos in every draw, so the
    national beta is exactly the geometric mean of the per-geo effects; same outputs
    pipeline (a real short fit, numpyro)."""
    frame, _ = panel
    mmm = MMM(GEO_DATA, {**SMALL_MODEL, "geo": {"beta_pooling": "zerosum"}})
    mmm.fit(frame, {"backend": "numpyro", "chains": 2, "draws": 60, "tune": 60, "seed": 2, "progressbar": False})
    post = mmm.idata["posterior"]
    z = post["beta_geo_z"]
    assert z.dims[2:] == ("channel", "geo")
    np.testing.assert_allclose(z.sum("geo"), 0.0, atol=1e-10)
    draws = {n: post[n].stack(sample=("chain", "draw")).transpose("sample", ...).values for n in mmm.variable_dims()}
    per_geo = mmm.geo_media_parameters(draws)["beta"]  # (sample, geo, channel)
    national = post["beta"].stack(sample=("chain", "draw")).transpose("sample", "channel").values
    np.testing.assert_allclose(np.exp(np.log(per_geo).mean(axis=1)), national, rtol=1e-10)
    assert np.isfinite(mmm.posterior_components()["media_geo"]).all()
    # zerosum is the default of new models (saved models keep theirs: see the next section)
    assert MMM(GEO_DATA, SMALL_MODEL).geo_config.beta_pooling == "zerosum"


def test_zerosum_transform_pooling_makes_the_national_value_the_geos_mean_on_the_link_scale(panel):
    """``geo.param_pooling: zerosum``: a pooled parameter's z sums to zero over geos in every draw,
    so the national ``saturation_lam`` (log link) is the geometric mean of the geos' values and a
    pooled ``adstock_alpha`` (logit link) their mean on the logit scale (a real short fit, numpyro)."""
    from scipy.special import logit

    frame, _ = panel
    geo = {"adstock": "pooled", "saturation": "pooled", "param_pooling": "zerosum"}
    mmm = MMM(GEO_DATA, {**SMALL_MODEL, "saturation": "logistic", "geo": geo})
    mmm.fit(frame, {"backend": "numpyro", "chains": 2, "draws": 60, "tune": 60, "seed": 2, "progressbar": False})
    post = mmm.idata["posterior"]
    for name in ("saturation_lam_geo_z", "adstock_alpha_geo_z"):
        assert post[name].dims[2:] == ("channel", "geo")
        np.testing.assert_allclose(post[name].sum("geo"), 0.0, atol=1e-10)
    draws = {n: post[n].stack(sample=("chain", "draw")).transpose("sample", ...).values for n in mmm.variable_dims()}
    per_geo = mmm.geo_media_parameters(draws)  # (sample, geo, channel)
    national = {n: post[n].stack(sample=("chain", "draw")).transpose("sample", "channel").values for n in per_geo}
    np.testing.assert_allclose(np.exp(np.log(per_geo["saturation_lam"]).mean(axis=1)), national["saturation_lam"])
    np.testing.assert_allclose(logit(per_geo["adstock_alpha"]).mean(axis=1), logit(national["adstock_alpha"]))
    assert np.isfinite(mmm.posterior_components()["media_geo"]).all()


def test_fixed_spread_pools_transform_parameters_without_a_spread_variable(panel):
    """``geo.param_spread: fixed``: no ``*_geo_sigma`` variable; each geo's value is the national
    one moved by ``param_sigma · z`` on the link scale (checked on prior draws against NumPy)."""
    from bayesmmm.evaluation.identifiability import prior_draws

    frame, _ = panel
    geo = {"saturation": "pooled", "param_spread": "fixed", "param_sigma": 0.4, "param_pooling": "zerosum"}
    mmm = MMM(GEO_DATA, {**SMALL_MODEL, "saturation": "logistic", "geo": geo})
    mmm.build_model(frame)
    dims = mmm.variable_dims()
    assert "saturation_lam_geo_sigma" not in dims and dims["saturation_lam_geo_z"] == ("channel", "geo")
    draws = prior_draws(mmm, n=50, seed=4)
    per_geo = mmm.geo_media_parameters(draws)["saturation_lam"]  # (sample, geo, channel)
    z = draws["saturation_lam_geo_z"].transpose(0, 2, 1)  # (sample, geo, channel)
    np.testing.assert_allclose(per_geo, draws["saturation_lam"][:, None, :] * np.exp(0.4 * z), rtol=1e-12)
    np.testing.assert_allclose(z.sum(axis=1), 0.0, atol=1e-10)


def test_fixed_effect_spread_pools_beta_without_a_spread_variable(panel):
    """``geo.beta_spread: fixed``: no ``beta_geo_sigma`` variable; each geo's effect is the national
    one times ``exp(beta_sigma · z)`` (checked on prior draws against NumPy); the default stays learned."""
    from bayesmmm.evaluation.identifiability import prior_draws

    frame, _ = panel
    assert MMM(GEO_DATA, SMALL_MODEL).geo_config.beta_spread == "learned"
    mmm = MMM(GEO_DATA, {**SMALL_MODEL, "geo": {"beta_spread": "fixed", "beta_sigma": 0.3}})
    mmm.build_model(frame)
    dims = mmm.variable_dims()
    assert "beta_geo_sigma" not in dims and dims["beta_geo_z"] == ("channel", "geo")
    draws = prior_draws(mmm, n=50, seed=5)
    per_geo = mmm.geo_media_parameters(draws)["beta"]  # (sample, geo, channel)
    z = draws["beta_geo_z"].transpose(0, 2, 1)
    np.testing.assert_allclose(per_geo, draws["beta"][:, None, :] * np.exp(0.3 * z), rtol=1e-12)
    learned = MMM(GEO_DATA, SMALL_MODEL)
    learned.build_model(frame)
    assert learned.variable_dims()["beta_geo_sigma"] == ("channel",)


# --------------------------------------------------------------------- recovery (MCMC)
@pytest.fixture(scope="module")
def geo_fit(tmp_path_factory):
    from bayesmmm.workflows.experiment import run_experiment

    frame, truth = simulate(geo_scenario(5, seed=11))
    config = ExperimentConfig(
        name="geo_test",
        data=GEO_DATA,
        model=SMALL_MODEL,
        sampler=SamplerConfig(chains=2, draws=300, tune=400, seed=3, progressbar=False),
    )
    run_dir = tmp_path_factory.mktemp("geo") / "run"
    result = run_experiment(config, run_dir, frame=frame)
    return result, frame, truth


def test_geo_recovery_coverage(geo_fit):
    result, _, truth = geo_fit
    national = pd.read_csv(result.run_dir / "roas.csv").set_index("channel")
    covered = [
        national.loc[ch, "roas_hdi_low"] <= truth["channels"][ch]["roas"] <= national.loc[ch, "roas_hdi_high"]
        for ch in CHANNELS
    ]
    assert sum(covered) >= 2, national
    geo = pd.read_csv(result.run_dir / "roas_geo.csv")
    true_roas = [truth["geos"][g]["channels"][c]["roas"] for g, c in zip(geo["geo"], geo["channel"], strict=True)]
    inside = (geo["roas_hdi_low"] <= true_roas) & (np.asarray(true_roas) <= geo["roas_hdi_high"])
    assert inside.mean() >= 0.75, geo.assign(true=true_roas)
    assert result.diagnostics["divergences"] <= 0.01 * 2 * 300  # a rate: at most 1% of the draws


def test_geo_run_folder_outputs(geo_fit):
    result, _, _ = geo_fit
    run = result.run_dir
    geo = pd.read_csv(run / "roas_geo.csv")
    assert list(geo.columns[:3]) == ["geo", "channel", "spend"]
    assert {"roas_mean", "roas_hdi_low", "roas_hdi_high", "contribution_mean"} <= set(geo.columns)
    national = pd.read_csv(run / "roas.csv").set_index("channel")
    # national = sum of geo contributions / sum of spend
    sums = geo.groupby("channel")[["spend", "contribution_mean"]].sum()
    np.testing.assert_allclose(national.loc[sums.index, "spend"], sums["spend"])
    np.testing.assert_allclose(national.loc[sums.index, "contribution_mean"], sums["contribution_mean"], rtol=1e-9)
    contrib = pd.read_csv(run / "contributions.csv")
    assert list(contrib.columns) == ["date", "component", "kind", "mean", "hdi_low", "hdi_high"]
    by_geo = pd.read_csv(run / "contributions_geo.csv")
    mu_geo = by_geo[by_geo["component"] == "mu"].groupby("date")["mean"].sum()
    mu = contrib[contrib["component"] == "mu"].set_index("date")["mean"]
    np.testing.assert_allclose(mu_geo.loc[mu.index], mu, rtol=1e-9)
    assert json.loads((run / "metadata.json").read_text())["geos"][0] == "geo_00"
    assert result.model.log_likelihood().dims == ("chain", "draw", "date", "geo")


def test_geo_model_save_load_predict(geo_fit):
    result, frame, _ = geo_fit
    mmm = result.model
    loaded = MMM.load(result.run_dir)
    assert loaded.is_geo and loaded.geos == mmm.geos
    future = frame.copy()
    future["date"] = (pd.to_datetime(future["date"]) + pd.Timedelta(weeks=104)).dt.strftime("%Y-%m-%d")
    future = future[pd.to_datetime(future["date"]) < pd.to_datetime(frame["date"]).max() + pd.Timedelta(weeks=9)]
    a = mmm.predict(future.drop(columns="sales"), noise=True, seed=1)
    b = loaded.predict(future.drop(columns="sales"), noise=True, seed=1)
    np.testing.assert_allclose(a["mu"], b["mu"])
    np.testing.assert_allclose(a["y"], b["y"])
    np.testing.assert_allclose(a["mu_geo"].sum("geo"), a["mu"], rtol=1e-10)
    assert a["mu"].sizes["date"] == 8
    with pytest.raises(DataError, match="cover the training geos exactly"):
        mmm.predict(future[future["geo"] != "geo_00"].drop(columns="sales"))


def test_geo_flight_response_and_optimizer(geo_fit):
    from bayesmmm.decisions.optimizer import optimize_budget
    from bayesmmm.decisions.response import FlightResponse, marginal_roas

    mmm = geo_fit[0].model
    engine = FlightResponse(mmm, weeks=8, max_draws=100)
    totals = mmm.data.media.mean(axis=0) * 8
    response, grad = engine.per_channel(totals)
    assert response.shape == grad.shape == (100, 3)
    eps = totals * 1e-4
    up, _ = engine.per_channel(totals + eps * np.eye(3)[0])
    np.testing.assert_allclose((up[:, 0] - response[:, 0]) / eps[0], grad[:, 0], rtol=1e-3)
    assert (marginal_roas(mmm) > 0).all()
    # channel totals at scaled spend: each geo in its own units, summed (against the whole mean)
    draws = mmm.posterior_draws(max_draws=50, seed=1)
    for m in (0.6, np.array([1.0, 1.5, 0.2])):
        comps = mmm.evaluate(*mmm.history_inputs(m), draws=draws, components=("media",))
        np.testing.assert_allclose(mmm.media_totals([m], draws)[0], comps["media"].sum(axis=(1, 2)), rtol=1e-10)
    result = optimize_budget(mmm, float(totals.sum()), 8)
    assert result is not None


def test_geo_run_reports_at_national_level_and_is_not_served(geo_fit, tmp_path):
    import shutil

    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.reporting.report import write_report

    result, _, _ = geo_fit
    run_dir = shutil.copytree(result.run_dir, tmp_path / "run")
    page = write_report(run_dir).read_text()
    assert "Key findings" in page and page.count("data:image/png;base64,") >= 8
    assert "<h2>By geo</h2>" in page and (run_dir / "figures" / "roas_geo.png").exists()
    pytest.importorskip("fastapi")
    from bayesmmm.serving.app import ModelService

    with pytest.raises(ConfigError, match="geo model is not supported"):
        ModelService(result.model, "geo", dashboard=False)


def test_per_geo_optimizer_is_consistent_with_the_national_one(geo_fit, fitted_example):
    from bayesmmm.decisions.optimizer import OptimizationError, optimize_budget
    from bayesmmm.decisions.response import FlightResponse

    mmm = geo_fit[0].model
    weeks = 8
    spend = mmm.data.geo_media.sum(axis=0)  # (geo, channel)
    share = spend / spend.sum(axis=0)
    totals = mmm.data.media.mean(axis=0) * weeks * np.linspace(0.5, 1.5, len(mmm.channels))
    national = FlightResponse(mmm, weeks, max_draws=100).per_channel(totals)[0]
    by_geo = sum(
        FlightResponse(mmm, weeks, max_draws=100, geo=g).per_channel(totals * share[i])[0]
        for i, g in enumerate(mmm.geos)
    )
    np.testing.assert_allclose(national, by_geo, rtol=1e-10)

    g = mmm.geos[1]
    budget = float(mmm.data.geo_media[:, 1].sum(axis=1).mean() * weeks)
    res = optimize_budget(mmm, budget, weeks, geo=g, max_change=0.3, max_draws=200)
    alloc = res.allocation
    assert res.summary["geo"] == g
    assert alloc["optimized_spend"].sum() == pytest.approx(budget, rel=1e-12)
    mix = mmm.data.geo_media[:, 1].mean(axis=0)
    np.testing.assert_allclose(alloc["current_spend"], mix / mix.sum() * budget, rtol=1e-12)
    assert res.summary["response"]["optimized"]["mean"] >= res.summary["response"]["current"]["mean"]
    with pytest.raises(OptimizationError, match="unknown geo 'atlantis'"):
        optimize_budget(mmm, budget, weeks, geo="atlantis", max_draws=50)
    with pytest.raises(OptimizationError, match="model is national"):
        optimize_budget(fitted_example, 1000.0, weeks, geo=g, max_draws=50)


# ------------------------------------------------------------ honest per-geo intervals
def test_old_geo_models_load_with_the_options_they_were_fitted_with():
    """Saved models written before ``geo.sigma`` existed (and ``zerosum`` became the default) mean
    what they meant: one noise scale, non-centered deviations (the stored 3-geo reference model
    is one); new geo models are saved with every geo option written out."""
    from pathlib import Path

    from bayesmmm.model.persistence import saved_model_config

    old = MMM.load(Path(__file__).parent / "reference" / "geo.nc")
    assert old.geo_config.sigma == "shared" and old.geo_config.beta_pooling == "noncentered"
    assert old.geo_config.saturation == "shared" and old.geo_config.param_sigma == 0.3
    assert old.variable_dims()["sigma"] == ()
    assert "saturation_lam_geo_z" not in old.variable_dims()
    data = DataConfig(**GEO_DATA)
    legacy = {
        "sigma": "shared",
        "beta_pooling": "noncentered",
        "saturation": "shared",
        "param_sigma": 0.3,
        "param_pooling": "noncentered",
        "param_spread": "learned",
    }
    assert saved_model_config('{"geo": null}', data)["geo"] == legacy
    written = {**legacy, "sigma": "per_geo", "beta_pooling": "zerosum"}
    assert saved_model_config(json.dumps({"geo": written}), data)["geo"] == written  # written out in full: kept
    assert "geo" not in saved_model_config("{}", DataConfig(channel_columns=CHANNELS, target_column="sales"))
    new = MMM(GEO_DATA, SMALL_MODEL)
    assert new.geo_config.sigma == "per_geo" and new.geo_config.beta_pooling == "zerosum"
    assert new.geo_config.saturation == "pooled" and new.geo_config.param_sigma == 0.5
    assert new.geo_config.param_pooling == "zerosum" and new.geo_config.param_spread == "fixed"


def test_per_geo_noise_recovers_each_geos_noise_and_covers_per_geo_roas():
    """The noise part of the per-geo intervals: geos differ in how noisy they are relative to
    their size, which one noise scale for all cannot say. On a panel whose geos have the SAME
    absolute noise (so, relative to their sales, the small geos are several times noisier) the
    default model's per-geo noise scales match the simulator's truth, its per-geo ROAS 90%
    intervals all cover the truth and the default pooling does not diverge (real MCMC, numpyro)."""
    sc = geo_scenario(3, n_weeks=80, seed=7)
    sc = sc.model_copy(update={"geos": sc.geos.model_copy(update={"population_sd_log": 1.0, "noise_size_power": 0.0})})
    frame, truth = simulate(sc)
    mmm = MMM(GEO_DATA, SMALL_MODEL)
    mmm.fit(frame, {"backend": "numpyro", "chains": 2, "draws": 300, "tune": 300, "seed": 4, "progressbar": False})
    true_sigma = np.array([truth["geos"][g]["noise_sigma"] for g in mmm.geos]) / np.asarray(mmm.scales.target)
    # the panel is what the test is about: any one scale is off by > 2x for some geo
    assert true_sigma.max() / true_sigma.min() > 5
    sigma = mmm.idata["posterior"]["sigma"]
    assert sigma.dims[2:] == ("geo",)
    np.testing.assert_allclose(sigma.mean(("chain", "draw")), true_sigma, rtol=0.3)
    # the per-geo noise is what the predictive core's log-likelihood uses
    ll = mmm.log_likelihood()
    assert ll.dims[-2:] == ("date", "geo") and np.isfinite(ll).all()
    from bayesmmm.evaluation.summaries import roas_geo_table

    geo = roas_geo_table(mmm, 0.9)
    true_roas = [truth["geos"][g]["channels"][c]["roas"] for g, c in zip(geo["geo"], geo["channel"], strict=True)]
    inside = (geo["roas_hdi_low"] <= true_roas) & (np.asarray(true_roas) <= geo["roas_hdi_high"])
    assert inside.mean() >= 8 / 9, geo.assign(true=true_roas)
    # "does not diverge" as a rate with a margin (a count on 600 draws moves with upstream releases)
    assert float(mmm.idata["sample_stats"]["diverging"].mean()) <= 0.01
