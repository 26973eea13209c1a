"""The model on a real small fit: layout, log-likelihood, components, save/load/predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from bayesmmm import MMM, ModelFileError, roas_table
from bayesmmm.data.loading import DataError
from bayesmmm.evaluation.summaries import ROAS_COLUMNS, contributions_table, diagnostics, fit_metrics


def test_datatree_layout(fitted_example):
    tree = fitted_example.idata
    assert isinstance(tree, xr.DataTree)
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood", "constant_data"):
        assert group in tree.children, group
    post = tree["posterior"]
    assert post["beta"].dims == ("chain", "draw", "channel")
    assert list(post["channel"].values) == ["x1", "x2"]
    assert post["gamma_fourier"].dims[-1] == "fourier_mode"
    assert tree["log_likelihood"]["y"].dims == ("chain", "draw", "date")
    # lean sampling graph: no per-date deterministics in the posterior
    assert all("date" not in post[v].dims for v in post.data_vars)


def test_log_likelihood_matches_pymc(fitted_example):
    """Our NumPy log-likelihood (original units) equals PyMC's on the scaled model minus log(scale)."""
    mmm = fitted_example
    model = mmm.build_model()
    sub = mmm.idata["posterior"].to_dataset().isel(draw=slice(0, 20))
    tree = xr.DataTree.from_dict({"posterior": sub})
    ref = pm.compute_log_likelihood(tree, model=model, extend_inferencedata=False, progressbar=False)
    ref_y = ref["y"].to_numpy() - np.log(mmm.scales.target)
    ours = mmm.idata["log_likelihood"]["y"].isel(draw=slice(0, 20)).to_numpy()
    np.testing.assert_allclose(ours, ref_y, rtol=1e-8, atol=1e-8)


def test_components_add_up_and_match_numpy(fitted_example):
    mmm = fitted_example
    comps = mmm.posterior_components()
    total = (
        comps["intercept"]
        + comps["trend"]
        + comps["seasonality"]
        + comps["controls"].sum("control")
        + comps["media"].sum("channel")
    )
    np.testing.assert_allclose(total, comps["mu"])
    # independent NumPy computation of one draw's media contribution
    post = mmm.idata["posterior"].isel(chain=1, draw=7)
    x = mmm.data.media / np.array([c[c > 0].mean() for c in mmm.data.media.T])
    alpha = post["adstock_alpha"].to_numpy()
    lam = post["saturation_lam"].to_numpy()
    beta = post["beta"].to_numpy()
    w = alpha[None, :] ** np.arange(8)[:, None]
    w = w / w.sum(0)
    ad = np.zeros_like(x)
    for t in range(len(x)):
        for lag in range(8):
            if t - lag >= 0:
                ad[t] += w[lag] * x[t - lag]
    ref = beta * (1 - np.exp(-lam * ad)) / (1 + np.exp(-lam * ad)) * mmm.scales.target
    np.testing.assert_allclose(comps["media"].isel(chain=1, draw=7).to_numpy(), ref, rtol=1e-9)


def test_roas_table_and_metrics(fitted_example):
    table = roas_table(fitted_example, 0.9)
    assert list(table.columns[: len(ROAS_COLUMNS)]) == ROAS_COLUMNS
    assert (table["roas_hdi_low"] <= table["roas_mean"]).all() and (table["roas_mean"] <= table["roas_hdi_high"]).all()
    np.testing.assert_allclose(table["roas_mean"] * table["spend"], table["contribution_mean"], rtol=1e-9)
    assert table["share_mean"].sum() == pytest.approx(1.0)
    # medians: a plain NumPy median of contribution / spend over every draw
    media = fitted_example.posterior_components()["media"].sum("date").transpose("chain", "draw", "channel")
    draws = media.to_numpy().reshape(-1, len(table))
    np.testing.assert_allclose(table["roas_median"], np.median(draws / table["spend"].to_numpy(), axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["contribution_median"], np.median(draws, axis=0), rtol=1e-12)
    shares = draws / draws.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(table["share_median"], np.median(shares, axis=0), rtol=1e-12)
    metrics = fit_metrics(fitted_example)
    assert metrics["r2"] > 0.9 and metrics["mape"] < 0.1
    long = contributions_table(fitted_example)
    assert set(long["kind"]) == {"media", "control", "baseline", "total"}
    d = diagnostics(fitted_example.idata)
    assert d["max_rhat"] < 1.05 and d["divergences"] >= 0 and isinstance(d["passed"], bool)


def future_rows(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    new = frame.iloc[:n].copy()
    last = pd.Timestamp(frame["date_week"].iloc[-1])
    new["date_week"] = pd.date_range(last + pd.Timedelta(days=7), periods=n, freq="7D").strftime("%Y-%m-%d")
    return new.drop(columns=["y"])


def test_save_load_predict_identical(fitted_example, mmm_example_frame, tmp_path):
    path = fitted_example.save(tmp_path / "model.nc")
    loaded = MMM.load(path)
    new = future_rows(mmm_example_frame, 12)
    a = fitted_example.predict(new, noise=True, seed=3)
    b = loaded.predict(new, noise=True, seed=3)
    for var in ("mu", "media", "y"):
        np.testing.assert_array_equal(a[var].to_numpy(), b[var].to_numpy())
    assert roas_table(loaded).equals(roas_table(fitted_example))
    assert loaded.model_config == fitted_example.model_config


def test_predict_carries_adstock_over(fitted_example, mmm_example_frame):
    new = future_rows(mmm_example_frame, 4)
    for ch in ("x1", "x2"):
        new[ch] = 0.0
    pred = fitted_example.predict(new)
    media = pred["media"].mean(("chain", "draw"))
    # zero new spend: media effect decays from the last training weeks' carry-over, but is not zero at first
    assert (media.isel(date=0) > 0).all()
    assert (media.isel(date=-1) <= media.isel(date=0)).all()
    # predicting the training weeks themselves (no history) reproduces the fitted mean
    train = mmm_example_frame.drop(columns=["y"])
    same = fitted_example.predict(train, include_history=False)
    np.testing.assert_allclose(same["mu"], fitted_example.posterior_components()["mu"])


def test_predict_rejects_bad_dates(fitted_example, mmm_example_frame):
    new = future_rows(mmm_example_frame, 3)
    new["date_week"] = pd.to_datetime(new["date_week"]) + pd.Timedelta(days=14)
    with pytest.raises(DataError, match="continue the weekly grid"):
        fitted_example.predict(new)
    with pytest.raises(DataError, match="not after the training data"):
        fitted_example.predict(mmm_example_frame.drop(columns=["y"]))
    # a date beyond pandas' nanosecond range (found by the service fuzz test: it was a 500)
    far = new.iloc[:1].assign(date_week="2376-12-14")
    with pytest.raises(DataError, match="out of range"):
        fitted_example.predict(far)


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file at all")
    with pytest.raises(ModelFileError, match="not a readable NetCDF"):
        MMM.load(bad)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"a": ("x", np.arange(3))}).to_netcdf(foreign)
    with pytest.raises(ModelFileError, match="not a bayesmmm model"):
        MMM.load(foreign)
    with pytest.raises(ModelFileError, match="does not exist"):
        MMM.load(tmp_path / "none.nc")


def test_unfitted_model_errors():
    mmm = MMM({"channel_columns": ["a"]})
    with pytest.raises(RuntimeError, match="fit"):
        mmm.posterior_components()


def test_fit_refuses_unknown_sampler_keywords(mmm_example_frame):
    """A typo (``random_seed`` for ``seed``) is an error naming the valid settings, not silently ignored."""
    from bayesmmm.config.experiment import ConfigError

    mmm = MMM({"date_column": "date_week", "target_column": "y", "channel_columns": ["x1", "x2"]})
    with pytest.raises(ConfigError, match=r"unknown sampler setting\(s\) random_seed; valid: .*seed"):
        mmm.fit(mmm_example_frame, random_seed=7)
    assert mmm.idata is None


def test_student_t_piecewise_log_likelihood_matches_pymc(tmp_path):
    """Other structure (Student-t, piecewise trend, no controls, no seasonality) on prior draws."""
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

    frame, _ = simulate(load_scenario(builtin_scenario("intermittent")))
    mmm = MMM(
        {"channel_columns": ["tiktok", "facebook", "google_ads"]},
        {
            "likelihood": "student_t",
            "trend": "piecewise",
            "n_changepoints": 3,
            "yearly_seasonality": 0,
            "adstock": "weibull_pdf",
            "saturation": "hill",
            "media_prior": {"type": "coefficient"},  # beta free: the free RVs' draws make a whole posterior
        },
    )
    model = mmm.build_model(frame)
    free = [v.name for v in model.free_RVs]
    draws = pm.draw([model[n] for n in free], draws=30, random_seed=1)
    posterior = xr.Dataset(
        {
            n: (("chain", "draw", *model.named_vars_to_dims.get(n, ())), d[None])
            for n, d in zip(free, draws, strict=True)
        },
        coords={k: list(v) for k, v in model.coords.items() if k != "date"},
    )
    mmm.idata = xr.DataTree.from_dict({"posterior": posterior})
    ours = mmm.log_likelihood().to_numpy()
    ref = pm.compute_log_likelihood(mmm.idata, model=model, extend_inferencedata=False, progressbar=False)
    np.testing.assert_allclose(ours, ref["y"].to_numpy() - np.log(mmm.scales.target), rtol=1e-8, atol=1e-8)


def test_pymc_backend_gives_the_same_layout(mmm_example_frame):
    mmm = MMM(
        {"date_column": "date_week", "target_column": "y", "channel_columns": ["x1", "x2"]},
        {"yearly_seasonality": 0, "trend": "none"},
    )
    tree = mmm.fit(mmm_example_frame, backend="pymc", chains=2, draws=60, tune=60, seed=2, progressbar=False)
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(tree.children)
    assert tree["posterior"].sizes["chain"] == 2 and tree["posterior"].sizes["draw"] == 60
    assert "diverging" in tree["sample_stats"]


def test_compiled_model_reused_across_data_of_the_same_structure(mmm_example_frame):
    """A refit on other data reuses the compiled model and samples exactly what a fresh compile does."""
    from bayesmmm.inference import nutpie_backend
    from tests.conftest import MMM_EXAMPLE_DATA

    config = {"trend": "none", "yearly_seasonality": 1}
    part = mmm_example_frame.iloc[:150]
    # nutpie over numba swaps new data into the compiled graph, whatever its length (the JAX backends,
    # nutpie's default path included, compile per shape: 150 weeks are a new program for them)
    kwargs = {"backend": "nutpie_numba", "chains": 2, "draws": 80, "tune": 80, "seed": 9, "progressbar": False}
    nutpie_backend._COMPILED.clear()
    fresh = MMM(MMM_EXAMPLE_DATA, config)
    fresh.fit(part, **kwargs)  # compiles this structure (once: the fits below reuse it)
    assert fresh.timings["compile_reused"] == 0
    other = MMM(MMM_EXAMPLE_DATA, config)
    other.fit(mmm_example_frame, **kwargs)  # other data, another length: swapped into the same program
    assert other.timings["compile_reused"] == 1
    reused = MMM(MMM_EXAMPLE_DATA, config)
    reused.fit(part, **kwargs)  # back to the first data, after the swap
    assert reused.timings["compile_reused"] == 1
    for var in ("beta", "adstock_alpha", "sigma"):
        np.testing.assert_array_equal(reused.idata["posterior"][var], fresh.idata["posterior"][var])


# ------------------------------------------------------------- centered media
def test_centered_media_is_a_reparameterization(fitted_example, mmm_example_frame):
    """Centered and raw models give identical components once the intercepts are mapped."""
    from tests.conftest import MMM_EXAMPLE_DATA, compiled_components

    structure = {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"}
    centered = MMM(MMM_EXAMPLE_DATA, {**structure, "center_media": True})
    raw = MMM(MMM_EXAMPLE_DATA, {**structure, "center_media": False})
    for m in (centered, raw):
        m._set_data(mmm_example_frame)
    draws = fitted_example.posterior_draws(max_draws=3, seed=0)
    design = centered.design(*centered.history_inputs())
    first = {k: v[0] for k, v in draws.items()}
    graph_c, graph_r = compiled_components(centered, first, design), compiled_components(raw, first, design)
    for i in range(3):
        params = {k: v[i] for k, v in draws.items()}
        c = graph_c(params)
        mean_media = c["media"].mean(axis=0).sum()
        r = graph_r({**params, "intercept": params["intercept"] - mean_media})
        for key in ("intercept", "trend", "seasonality", "controls", "media"):
            np.testing.assert_allclose(c[key], r[key], rtol=1e-12, atol=1e-12)


def test_counterfactuals_keep_the_training_intercept(fitted_example):
    """Centering uses the TRAINING media: zero or doubled spend moves media, never the intercept."""
    mmm = fitted_example
    dates, media, controls = mmm.history_inputs()
    draws = mmm.posterior_draws(max_draws=50)
    base = mmm.evaluate(dates, media, controls, draws)
    for factor in (0.0, 2.0):
        other = mmm.evaluate(dates, media * factor, controls, draws)
        np.testing.assert_allclose(other["intercept"], base["intercept"], rtol=1e-12)
    assert not np.allclose(mmm.evaluate(dates, media * 0.0, controls, draws)["media"], base["media"])


def test_evaluate_a_subset_of_components_matches_the_full_mean(fitted_example):
    """``components=`` compiles only what it needs and gives the same numbers; names are checked."""
    mmm = fitted_example
    dates, media, controls = mmm.history_inputs()
    draws = mmm.posterior_draws(max_draws=50)
    full = mmm.evaluate(dates, media * 1.3, controls, draws)
    for subset in (("media",), ("trend", "intercept")):
        part = mmm.evaluate(dates, media * 1.3, controls, draws, components=subset)
        assert list(part) == list(subset)
        for key in subset:
            np.testing.assert_array_equal(part[key], full[key])
    with pytest.raises(ValueError, match="valid: intercept, trend"):
        mmm.evaluate(dates, media, controls, draws, components=("baseline",))
    # the posterior's draws are read once and kept (read-only): the centering is computed once
    assert mmm.posterior_draws() is mmm.posterior_draws()
    assert not mmm.posterior_draws()["beta"].flags.writeable


def test_models_saved_before_centering_load_uncentered(fitted_example, tmp_path):
    """A posterior.nc whose model config predates ``center_media`` keeps its raw intercept."""
    import json

    path = fitted_example.save(tmp_path / "posterior.nc")
    tree = xr.open_datatree(path, engine="netcdf4").load()
    config = json.loads(tree.attrs["bayesmmm_model_config"])
    config.pop("center_media")
    tree.attrs["bayesmmm_model_config"] = json.dumps(config)
    tree.to_netcdf(tmp_path / "old.nc", engine="netcdf4")
    assert MMM.load(tmp_path / "old.nc").model_config.center_media is False
    assert MMM.load(path).model_config.center_media is True
