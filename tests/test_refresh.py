"""bayesmmm refresh: the new data's grid, the first fit's scales, warm start, posterior-as-prior, changes.csv."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bayesmmm.cli import app
from bayesmmm.config.experiment import DataConfig
from bayesmmm.data.loading import DataError, frame_to_data
from bayesmmm.inference.warm import default_warm_tune, metric_from_draws
from bayesmmm.model.mmm import MMM
from bayesmmm.model.posterior_priors import fitted_prior, moments, posterior_priors
from bayesmmm.model.warm_start import unconstrained_draws
from bayesmmm.workflows.refresh import CHANGES_FILE, check_extends, prob_moved, warm_start_values
from tests.conftest import HOLDOUT_WEEKS, MMM_EXAMPLE_DATA

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _data(frame: pd.DataFrame):
    return frame_to_data(frame, DataConfig.model_validate(MMM_EXAMPLE_DATA))


# ------------------------------------------------------------------ the grid
def test_new_data_must_extend_the_old_dates(mmm_example_frame):
    frame = mmm_example_frame
    old = _data(frame.iloc[:100])
    assert check_extends(old, _data(frame)) == len(frame) - 100
    with pytest.raises(DataError, match=r"after the first fit's last date.*give the whole table"):
        check_extends(old, _data(frame.iloc[100:]))
    with pytest.raises(DataError, match="must begin with the first fit's periods"):
        check_extends(old, _data(frame.iloc[5:]))
    with pytest.raises(DataError, match="add no period"):
        check_extends(old, _data(frame.iloc[:100]))
    shifted = frame.copy()
    shifted["date_week"] = pd.to_datetime(shifted["date_week"]) + pd.Timedelta(days=1)
    shifted.loc[0, "date_week"] = pd.to_datetime(frame.loc[0, "date_week"])  # same start, then off the grid
    with pytest.raises(DataError):
        check_extends(old, _data(shifted))


def test_prob_moved_is_the_pairwise_frequency():
    rng = np.random.default_rng(0)
    old, new = rng.lognormal(0, 0.2, 300), rng.lognormal(0.05, 0.1, 200)
    count = sum(abs(b / a - 1) > 0.1 for a in old for b in new)
    assert prob_moved(new, old) == pytest.approx(count / (300 * 200), abs=1e-12)
    same = np.full(10, 2.0)
    assert prob_moved(same, same) == 0.0 and prob_moved(same * 1.2, same) == 1.0


# ------------------------------------------------------------ fitted priors
def test_fitted_priors_match_the_draws_moments():
    rng = np.random.default_rng(1)
    positive = rng.gamma(3.0, 0.5, size=(4000, 3))
    p = fitted_prior(positive, "positive")
    assert p.dist == "LogNormal"
    np.testing.assert_allclose(p.params["mu"], np.log(positive).mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.params["sigma"], np.log(positive).std(0, ddof=1), rtol=1e-12)
    unit = rng.beta(2.0, 5.0, size=4000)
    b = fitted_prior(unit, "unit")
    a, c = b.params["alpha"], b.params["beta"]
    assert b.dist == "Beta"
    assert stats.beta(a, c).mean() == pytest.approx(unit.mean(), rel=1e-10)
    assert stats.beta(a, c).var() == pytest.approx(unit.var(ddof=1), rel=1e-10)
    assert a == pytest.approx(2.0, rel=0.1) and c == pytest.approx(5.0, rel=0.1)  # recovers the truth
    real = rng.normal(0.3, 2.0, size=4000)
    n = fitted_prior(real, "real")
    assert (n.dist, n.params["mu"], n.params["sigma"]) == (
        "Normal",
        pytest.approx(real.mean()),
        pytest.approx(real.std(ddof=1)),
    )
    mu, sd = moments(real, "real")
    assert mu == pytest.approx(real.mean()) and sd == pytest.approx(real.std(ddof=1))


def test_posterior_priors_are_the_old_posterior_moments(fitted_example):
    mmm = fitted_example
    fitted = posterior_priors(mmm)
    post = mmm.idata["posterior"]

    def draws(name):
        arr = post[name].to_numpy()
        return arr.reshape(-1, *arr.shape[2:])

    cfg = fitted.model_config
    quantity = {"share": "contribution_share", "roas": "roas", "mroas": "mroas"}.get(mmm.model_config.media_prior.type)
    if quantity:
        assert cfg.media_prior.pooling == "none" and cfg.media_prior.default is None
        for c, ch in enumerate(mmm.channels):
            prior = cfg.media_prior.channels[ch]
            logq = np.log(draws(quantity)[:, c])
            assert prior.dist == "LogNormal"
            assert prior.params["mu"] == pytest.approx(logq.mean(), rel=1e-10)
            assert prior.params["sigma"] == pytest.approx(logq.std(ddof=1), rel=1e-10)
    else:
        np.testing.assert_allclose(cfg.priors["beta"].params["mu"], np.log(draws("beta")).mean(0), rtol=1e-10)
    alpha = draws(mmm.adstock.variable_name("alpha"))
    beta_prior = cfg.adstock.priors["alpha"]
    mean = np.array(beta_prior.params["alpha"]) / (
        np.array(beta_prior.params["alpha"]) + np.array(beta_prior.params["beta"])
    )
    np.testing.assert_allclose(mean, alpha.mean(0), rtol=1e-10)
    logsig = np.log(draws("sigma"))
    assert cfg.priors["sigma"].dist == "LogNormal"
    assert cfg.priors["sigma"].params["mu"] == pytest.approx(logsig.mean(), rel=1e-10)
    g = draws("gamma_control")
    np.testing.assert_allclose(cfg.priors["gamma_control"].params["mu"], g.mean(0), rtol=1e-10)
    np.testing.assert_allclose(cfg.priors["gamma_control"].params["sigma"], g.std(0, ddof=1), rtol=1e-10)
    for kept in ("intercept", "trend_slope", "gamma_fourier"):  # time-varying terms keep their priors
        assert cfg.priors.get(kept) == mmm.model_config.priors.get(kept)
    assert set(fitted.fitted) >= {"sigma", "gamma_control", mmm.adstock.variable_name("alpha")}


def test_initial_values_become_the_models_initial_point(fitted_example):
    mmm = MMM(fitted_example.data_config, fitted_example.model_config)
    mmm.fixed_scales = fitted_example.scales
    start = warm_start_values(fitted_example)
    mmm.initial_values = start
    frame = pd.DataFrame(
        {
            "date_week": fitted_example.data.dates,
            "y": fitted_example.data.target,
            **{c: fitted_example.data.media[:, i] for i, c in enumerate(fitted_example.channels)},
            **{c: fitted_example.data.controls[:, i] for i, c in enumerate(fitted_example.controls)},
        }
    )
    model = mmm.build_model(frame)
    assert mmm.scales == fitted_example.scales
    point = model.initial_point()
    sigma_value = next(k for k in point if k.startswith("sigma"))
    assert np.exp(point[sigma_value]) == pytest.approx(float(start["sigma"]), rel=1e-9)  # log-transformed
    assert np.allclose(point["gamma_control"], start["gamma_control"])


# ------------------------------------------------------------------- the CLI
def test_refresh_cli_errors_are_clear(tmp_path, example_run, mmm_example_frame):
    runner = CliRunner()
    csv = tmp_path / "new.csv"
    mmm_example_frame.iloc[-HOLDOUT_WEEKS:].to_csv(csv, index=False)
    res = runner.invoke(app, ["refresh", str(tmp_path / "nope"), "--data", str(csv)])
    assert res.exit_code == 2 and "does not exist" in ANSI.sub("", res.output)
    res = runner.invoke(app, ["refresh", str(example_run), "--data", str(csv), "-o", str(tmp_path / "r")])
    out = ANSI.sub("", res.output)
    assert res.exit_code == 2 and "give the whole table" in out, out
    assert not (tmp_path / "r").exists()


def test_refresh_keeps_the_scales_and_writes_changes(tmp_path, example_run, mmm_example_frame):
    csv = tmp_path / "full.csv"
    mmm_example_frame.to_csv(csv, index=False)
    out = tmp_path / "refresh"
    res = CliRunner().invoke(
        app,
        ["-q", "refresh", str(example_run), "--data", str(csv), "-o", str(out), "--draws", "200", "--tune", "300"],
    )
    assert res.exit_code == 0, res.output
    old, new = MMM.load(example_run), MMM.load(out)
    assert new.scales == old.scales  # the first fit's scales, not the full data's
    assert new.data.n_dates == old.data.n_dates + HOLDOUT_WEEKS
    t = new.require_spec().training_design()["t"]
    assert t[old.data.n_dates - 1] == pytest.approx(1.0) and t[-1] > 1.0  # t continues past 1
    changes = pd.read_csv(out / CHANGES_FILE)
    assert list(changes["channel"]) == list(old.channels)
    for q in ("roas", "mroas", "contribution"):
        for col in ("old_mean", "old_hdi_low", "old_hdi_high", "new_mean", "new_hdi_low", "new_hdi_high"):
            assert changes[f"{q}_{col}"].notna().all()
        assert changes[f"{q}_prob_moved"].between(0, 1).all()
        assert (changes[f"{q}_old_hdi_low"] <= changes[f"{q}_old_mean"]).all()
        assert (changes[f"{q}_new_mean"] <= changes[f"{q}_new_hdi_high"]).all()
    old_roas = pd.read_csv(example_run / "roas.csv")  # the first run's own table: same weeks, same draws
    np.testing.assert_allclose(changes["roas_old_mean"], old_roas["roas_mean"], rtol=1e-9)
    # more data of the same process: the refreshed ROAS stays within the first fit's interval
    assert (changes["roas_new_mean"] >= changes["roas_old_hdi_low"]).all()
    assert (changes["roas_new_mean"] <= changes["roas_old_hdi_high"]).all()
    info = json.loads((out / "refresh.json").read_text())
    assert info["new_periods"] == HOLDOUT_WEEKS and info["prior_from_posterior"] is False
    res = CliRunner().invoke(app, ["-q", "report", str(out)])
    assert res.exit_code == 0, res.output
    assert "<h2>What changed</h2>" in (out / "report.html").read_text()


# ------------------------------------------------------------- warm metric
def test_metric_from_draws_is_the_shrunk_covariance():
    rng = np.random.default_rng(3)
    cov = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, -0.3], [0.0, -0.3, 0.25]])
    x = rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=3000)
    n = len(x)
    dense = metric_from_draws(x, dense=True)
    expected = n / (n + 5) * np.cov(x, rowvar=False) + 1e-3 * 5 / (n + 5) * np.eye(3)
    np.testing.assert_allclose(dense, expected, rtol=1e-12)
    np.testing.assert_allclose(dense, cov, atol=0.15)  # recovers the truth
    np.testing.assert_allclose(metric_from_draws(x, dense=False), np.diag(dense), rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(metric_from_draws(x[:3], dense=True)) > 0)  # 3 draws: still positive definite
    with pytest.raises(ValueError, match="draws must be"):
        metric_from_draws(x[:1], dense=True)


def test_default_warm_tune():
    assert default_warm_tune(1000) == 200
    assert default_warm_tune(500) == 100
    assert default_warm_tune(300) == 100
    assert default_warm_tune(60) == 60  # never more than the cold warm-up


def test_unconstrained_draws_follow_the_models_transforms(fitted_example):
    mmm = MMM(fitted_example.data_config, fitted_example.model_config)
    mmm.fixed_scales = fitted_example.scales
    model = mmm.build_model(_example_frame(fitted_example))
    post = fitted_example.idata["posterior"].to_dataset()
    draws = unconstrained_draws(model, post, max_draws=10**6)
    names = [v.name for v in model.value_vars]
    flat = {name: d for name, d in zip(names, draws, strict=True)}

    def raw(name):
        arr = post[name].to_numpy()
        return arr.reshape(-1, *arr.shape[2:])

    np.testing.assert_allclose(flat["sigma_log__"], np.log(raw("sigma")), rtol=1e-10)
    alpha = mmm.adstock.variable_name("alpha")
    np.testing.assert_allclose(flat[f"{alpha}_logodds__"], np.log(raw(alpha) / (1 - raw(alpha))), rtol=1e-8)
    np.testing.assert_allclose(flat["gamma_control"], raw("gamma_control"), rtol=1e-12)  # untransformed
    assert unconstrained_draws(model, post.drop_vars("sigma")) == "the first posterior has no 'sigma'"


Y_OBS = np.array([310.0, 120.0, 250.0, 190.0])


def _conjugate_model():
    """``a ~ N(0, 1000²)``, ``y_i ~ N(a, 100²)`` (4 observations, as data), ``b ~ N(-2, 0.01²)``:
    the posterior is Gaussian and known, and 5000 times wider in ``a`` than in ``b``."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y_data", Y_OBS)
        a = pm.Normal("a", 0.0, 1000.0)
        pm.Normal("b", -2.0, 0.01)
        pm.Normal("y", a, 100.0, observed=y)
    var = 1.0 / (1.0 / 1000.0**2 + len(Y_OBS) / 100.0**2)
    return model, {"a": (var * Y_OBS.sum() / 100.0**2, np.sqrt(var)), "b": (-2.0, 0.01)}


def test_warm_metric_is_used_and_the_draws_are_the_target():
    """With the posterior's own metric handed over (and only the step size adapted) NUTS takes a
    few leapfrog steps per draw where the identity would need thousands (a 5000:1 scale ratio);
    the draws have the closed-form posterior's moments."""
    from bayesmmm.config.experiment import SamplerConfig
    from bayesmmm.inference.sampling import sample
    from bayesmmm.inference.warm import WarmStart

    model, truth = _conjugate_model()
    sd = np.array([truth["a"][1], truth["b"][1]])
    sampler = SamplerConfig(backend="numpyro", chains=2, draws=500, tune=1000, seed=3, progressbar=False)
    warm = WarmStart(
        points=[[np.array(200.0), np.array(-2.0)], [np.array(260.0), np.array(-2.01)]],
        inverse_mass_matrix=np.diag(np.square(sd)),
        step_size=0.5,
        tune=150,
    )
    idata, timings = sample(model, sampler, warm=warm)
    assert timings["warm_metric"] == 1 and timings["tune"] == 150
    stats = idata["sample_stats"]
    assert float(stats["n_steps"].mean()) < 8
    assert float(stats["diverging"].mean()) <= 0.01  # a rate, not an exact count
    step = stats["step_size"].to_numpy()
    assert np.all(step == step[:, :1])  # fixed after the warm-up
    post = idata["posterior"]
    for name, (mean, s) in truth.items():
        draws = post[name].to_numpy().ravel()
        assert abs(draws.mean() - mean) < 0.2 * s  # MC error of 1000 draws: ~0.03-0.05 sd
        assert draws.std() == pytest.approx(s, rel=0.15)


def test_warm_refresh_uses_the_metric_and_converges(tmp_path, example_run, mmm_example_frame):
    csv = tmp_path / "full.csv"
    mmm_example_frame.to_csv(csv, index=False)
    out = tmp_path / "warm"
    args = ["-q", "refresh", str(example_run), "--data", str(csv), "-o", str(out), "--sampler", "numpyro"]
    res = CliRunner().invoke(app, [*args, "--draws", "300", "--tune", "400"])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "refresh.json").read_text())
    warm = info["warm_metric"]
    assert warm["used"] is True and warm["metric"] == "dense" and warm["tune"] == 100 == info["tune"]
    assert warm["step_size"] > 0 and warm["chains"] == 2
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["timings"]["warm_metric"] == 1 and meta["timings"]["tune"] == 100
    conv = info["convergence"]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert conv["max_rhat"] == diag["max_rhat"] and conv["max_rhat"] < 1.02
    assert conv["min_ess_bulk"] > 150  # of 600 draws
    assert conv["divergences"] <= 6  # <= 1% of draws
    changes = pd.read_csv(out / CHANGES_FILE)
    assert (changes["roas_new_mean"] >= changes["roas_old_hdi_low"]).all()
    assert (changes["roas_new_mean"] <= changes["roas_old_hdi_high"]).all()
    # --warm-tune sets the warm-up; --no-warm-metric the cold start on every backend
    res = CliRunner().invoke(
        app, [*args[:-2], "--no-warm-metric", "--draws", "100", "--tune", "150", "-o", str(tmp_path / "c")]
    )
    assert res.exit_code == 0, res.output
    cold = json.loads((tmp_path / "c" / "refresh.json").read_text())
    assert cold["warm_metric"] == {"requested": False, "used": False} and cold["tune"] == 150


def test_nutpie_refresh_says_it_took_no_warm_metric(tmp_path, example_run, mmm_example_frame):
    csv = tmp_path / "full.csv"
    mmm_example_frame.to_csv(csv, index=False)
    out = tmp_path / "r"
    res = CliRunner().invoke(
        app,
        ["-q", "refresh", str(example_run), "--data", str(csv), "-o", str(out), "--draws", "100", "--warm-tune", "50"],
    )
    assert res.exit_code == 0, res.output
    info = json.loads((out / "refresh.json").read_text())
    assert (
        info["warm_metric"]["used"] is False and "nutpie backend takes no warm metric" in info["warm_metric"]["reason"]
    )
    assert info["tune"] == 400  # the full warm-up of the first run's config


def _example_frame(mmm: MMM) -> pd.DataFrame:
    """The fitted model's own training table (its configured columns)."""
    return pd.DataFrame(
        {
            "date_week": mmm.data.dates,
            "y": mmm.data.target,
            **{c: mmm.data.media[:, i] for i, c in enumerate(mmm.channels)},
            **{c: mmm.data.controls[:, i] for i, c in enumerate(mmm.controls)},
        }
    )


def test_a_share_prior_is_refitted_over_the_new_window(four_channel_fit):
    """Over the first fit's own periods the windowed share is the posterior's share, draw by draw; over
    a longer table it is the same draws' contribution over that table ÷ its target total."""
    from bayesmmm.model.posterior_priors import window_quantity

    run, _truth = four_channel_fit
    mmm = run.model
    assert mmm.model_config.media_prior.type == "share"
    own = window_quantity(mmm, mmm.data, "share")
    arr = mmm.idata["posterior"]["contribution_share"].to_numpy()
    np.testing.assert_allclose(own, arr.reshape(-1, arr.shape[-1]), rtol=1e-9)
    assert window_quantity(mmm, mmm.data, "mroas") is None  # not a window total: the draws as they are
    short = frame_to_data(
        pd.DataFrame(
            {
                mmm.data_config.date_column: mmm.data.dates[:80],
                mmm.data_config.target_column: mmm.data.target[:80],
                **{c: mmm.data.media[:80, i] for i, c in enumerate(mmm.channels)},
                **{c: mmm.data.controls[:80, i] for i, c in enumerate(mmm.controls)},
            }
        ),
        mmm.data_config,
    )
    windowed = window_quantity(mmm, short, "share")
    media = mmm.posterior_components()["media"].isel(date=slice(0, 80)).sum("date")
    expected = media.stack(s=("chain", "draw")).transpose("s", "channel").to_numpy() / short.target.sum()
    np.testing.assert_allclose(windowed, expected, rtol=1e-9)  # adstock is causal: the first 80 weeks alike
    fitted = posterior_priors(mmm, short)
    prior = fitted.model_config.media_prior.channels[mmm.channels[0]]
    assert prior.params["mu"] == pytest.approx(np.log(windowed[:, 0]).mean(), rel=1e-10)
