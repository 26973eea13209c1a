"""``model.center_day_of_week``: the day-of-week coefficients absorb the media's mean weekday profile.

An exact reparameterization: with ``γ_w,raw = γ_w − c(θ)`` (``c`` the least-squares day-of-week
coefficients of the summed paid and organic contributions over the training rows, computed here with
NumPy's ``lstsq``) the centered model's components equal the uncentered model's, on the training rows
and on a forecast; the compiled predictive (packed centering per draw) agrees with the graph; the
refresh's window map keeps the first periods' mean; models saved before the option load without it.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmmm import MMM
from bayesmmm.model.mean import mean_components, total
from bayesmmm.model.sequential import old_window_values
from tests.conftest import compiled_components

SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 150, "tune": 200, "seed": 3, "progressbar": False}
MODEL = {"adstock": {"name": "geometric", "l_max": 7}, "saturation": "logistic", "yearly_seasonality": 1}


def daily_frame(days: int, seed: int = 5, geo: str | None = None) -> pd.DataFrame:
    """Daily data whose newsletter goes out on Tuesdays and Thursdays and whose search is weekday-paced."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    dow = dates.day_of_week.to_numpy()
    tv = rng.gamma(3.0, 10.0, days) * (rng.random(days) < 0.7)
    search = rng.gamma(5.0, 4.0, days) * np.where(dow < 5, 1.0, 0.4)
    sends = np.where(np.isin(dow, [1, 3]), rng.uniform(800, 1000, days), 0.0)
    w = 0.5 ** np.arange(7)
    carried = np.convolve(sends, w)[:days]
    sales = 200 + np.array([10, 0, -5, 0, 15, 40, 30])[dow] + 1.2 * tv + 0.8 * search + 0.02 * carried
    out = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "sales": sales + rng.normal(0, 4, days),
            "tv": tv,
            "search": search,
            "newsletter": sends,
        }
    )
    return out.assign(geo=geo) if geo else out


def data_config(geo: bool = False) -> dict:
    cfg = {"channel_columns": ["tv", "search"], "organic_columns": ["newsletter"], "target_column": "sales"}
    return {**cfg, "geo_column": "geo"} if geo else cfg


def prior_points(mmm: MMM, frame: pd.DataFrame, n: int) -> list[dict[str, np.ndarray]]:
    import pymc as pm

    model = mmm.build_model(frame)
    names = list(mmm.require_spec().variable_dims)
    with model:
        prior = pm.sample_prior_predictive(draws=n, random_seed=2, var_names=names)
    post = prior["prior"]
    return [{k: post[k].to_numpy()[0, i] for k in names} for i in range(n)]


def numpy_profile(mmm: MMM, comps: dict[str, np.ndarray]) -> np.ndarray:
    """The reference ``c``: lstsq of the summed media and organic contributions on the training day-of-week
    features (the mean over geos of each geo's coefficients for a panel)."""
    spec = mmm.require_spec()
    features = spec.training_design()["fourier"][:, spec.seasonality.day_of_week_columns()]
    totals = comps["media"].sum(axis=-1) + comps["organic"].sum(axis=-1)
    coef = np.linalg.lstsq(features, totals, rcond=None)[0]
    return coef.mean(axis=-1) if totals.ndim == 2 else coef


@pytest.mark.parametrize("geo", [False, True])
def test_centering_on_the_weekdays_is_a_reparameterization(geo):
    if geo:
        frame = pd.concat([daily_frame(84, seed=s, geo=g) for s, g in enumerate(("north", "south"))])
        model = {**MODEL, "geo": {"seasonality": "pooled"}}
    else:
        frame, model = daily_frame(84), MODEL
    centered = MMM(data_config(geo), model)
    raw = MMM(data_config(geo), {**model, "center_day_of_week": False})
    points = prior_points(centered, frame, 3)
    raw.build_model(frame)
    assert centered.model_config.center_day_of_week and not raw.model_config.center_day_of_week
    spec = centered.require_spec()
    columns = spec.seasonality.day_of_week_columns()
    assert spec.seasonality.feature_names()[columns][0] == "dow_sin_1" and columns.stop - columns.start == 6
    training = spec.training_design()
    dates, media, controls = spec.history_inputs()
    # a forecast: four weeks after the training rows, with other spend (centred on the TRAINING media)
    future = pd.date_range(dates.unique()[-1] + pd.Timedelta(days=1), periods=28, freq="D")
    rng = np.random.default_rng(0)
    n_future = (28, *media.shape[1:-1])
    f_media = rng.uniform(0, 40, (*n_future, media.shape[-1]))
    f_controls = controls[:28]
    forecast = spec.design(future, f_media, f_controls)
    fit_c, fit_r = (compiled_components(m, points[0], training) for m in (centered, raw))
    fc_c, fc_r = (compiled_components(m, points[0], forecast, training["media"]) for m in (centered, raw))
    for params in points:
        c = fit_c(params)
        profile = numpy_profile(centered, c)
        assert np.abs(profile).max() > 1e-4  # the media do have a weekday profile to absorb
        mapped = dict(params)
        gamma = np.array(params["gamma_fourier"], dtype=float)
        gamma[..., columns] -= profile
        mapped["gamma_fourier"] = gamma
        r = fit_r(mapped)
        for key in c:
            np.testing.assert_allclose(c[key], r[key], rtol=1e-10, atol=1e-10, err_msg=key)
        cf, rf = fc_c(params), fc_r(mapped)
        for key in cf:
            np.testing.assert_allclose(cf[key], rf[key], rtol=1e-10, atol=1e-10, err_msg=key)
        # and it is not the identity: the uncentered model given the same γ has another seasonality
        assert not np.allclose(fit_r(params)["seasonality"], c["seasonality"])


def test_off_without_day_of_week_terms():
    """Weekly data, ``weekly_seasonality: 0`` or ``center_media: false``: nothing to center on."""
    from bayesmmm.model.mean import day_of_week_projection

    frame = daily_frame(84)
    for model in ({**MODEL, "weekly_seasonality": 0}, {**MODEL, "center_media": False}):
        mmm = MMM(data_config(), model)
        mmm.build_model(frame)
        assert day_of_week_projection(mmm.require_spec()) is None
    weekly = daily_frame(210).iloc[1::7].reset_index(drop=True)  # Tuesdays: a newsletter every week
    mmm = MMM(data_config(), MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mmm.build_model(weekly)
    assert day_of_week_projection(mmm.require_spec()) is None


def test_the_refresh_window_map_keeps_the_first_periods_mean():
    """``γ_old = γ_new − c_new + c_old`` (and the intercept's map): the first fit's variables give, over its
    own periods, the refreshed model's mean; also from a first fit saved before the option (off)."""
    frame = daily_frame(112)
    n_old = 84
    for old_model in (MODEL, {**MODEL, "center_day_of_week": False}):
        old = MMM(data_config(), old_model)
        old.build_model(frame.iloc[:n_old].reset_index(drop=True))
        new = MMM(data_config(), MODEL)
        new.fixed_scales = old.scales
        model = new.build_model(frame)
        params = {rv.name: rv for rv in model.free_RVs}
        params.update({n: model[n] for n in ("beta", "contribution_share") if n in model})
        mapped = old_window_values(old.require_spec(), new.require_spec(), params)
        assert {"intercept", "gamma_fourier"} <= set(mapped)
        old_params = {**params, **{k: mapped[k] for k in ("intercept", "gamma_fourier")}}
        if "media_prior_z" in mapped:
            old_params["media_prior_z"] = mapped["media_prior_z"]
        mu_old = total(mean_components(old.require_spec(), old_params, old.require_spec().training_design()))
        mu_new = total(mean_components(new.require_spec(), params, new.require_spec().training_design()))[:n_old]
        outs = model.replace_rvs_by_values([mu_old, mu_new])
        fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=False, on_unused_input="ignore")
        for seed in (0, 1):
            point = model.initial_point(random_seed=seed)
            point = {k: v + np.random.default_rng(seed).normal(0, 0.3, np.shape(v)) for k, v in point.items()}
            a, b = fn(*(point[v.name] for v in model.value_vars))
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fitted_predictive_matches_the_graph_and_old_files_load_uncentered(tmp_path):
    """A real (small) fit: ``evaluate`` (compiled, the centering packed per draw) equals the graph of the
    same draws on the training rows and on a forecast; saving keeps the option, and a file written
    before it existed loads with it off."""
    frame = daily_frame(126)
    train = frame.iloc[:112].reset_index(drop=True)
    mmm = MMM(data_config(), MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mmm.fit(train, **SAMPLER)
    spec = mmm.require_spec()
    draws = mmm.posterior_draws(max_draws=2, seed=1)
    dates, media, controls = spec.history_inputs()
    assert mmm.predictive.centering(draws).shape == (2, 1 + 6)  # the intercept's shift, then 6 dow terms
    future = pd.DatetimeIndex(pd.to_datetime(frame["date"].iloc[112:]))
    f_media = media[:14] * 1.7
    f_controls = controls[:14]
    for d, m, x in ((dates, media, controls), (future, f_media, f_controls)):
        got = mmm.evaluate(d, m, x, draws)
        design = spec.design(d, m, x)
        scale = float(spec.scales.target)
        graph = compiled_components(mmm, {k: v[0] for k, v in draws.items()}, design, spec.training_design()["media"])
        for i in range(2):
            ref = graph({k: v[i] for k, v in draws.items()})
            for key in ("intercept", "seasonality", "media", "organic"):
                np.testing.assert_allclose(got[key][i], ref[key] * scale, rtol=1e-8, atol=1e-8, err_msg=key)
    path = mmm.save(tmp_path / "posterior.nc")
    assert MMM.load(path).model_config.center_day_of_week is True
    tree = xr.open_datatree(path, engine="netcdf4").load()
    config = json.loads(tree.attrs["bayesmmm_model_config"])
    config.pop("center_day_of_week")
    tree.attrs["bayesmmm_model_config"] = json.dumps(config)
    tree.to_netcdf(tmp_path / "old.nc", engine="netcdf4")
    assert MMM.load(tmp_path / "old.nc").model_config.center_day_of_week is False
