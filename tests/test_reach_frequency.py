"""Reach & frequency channels (issue 27, part 2): data, Meridian's form in the one mean, the optimal
frequency, the optimizer, save/load and the simulator.

Every number is checked against an independent computation: a NumPy loop for the curves, the
closed form and SciPy for the optimal frequency of a known Hill curve, the simulator's truth for a
fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pydantic import ValidationError

from bayesmmm import MMM
from bayesmmm.config.experiment import DataConfig
from bayesmmm.data.loading import DataError, frame_to_data
from bayesmmm.data.reach import hill, optimal_frequency_hill, recent_frequency
from bayesmmm.model.scales import Scales

N = 104
L_MAX = 4
CHANNELS = {
    "search": {"spend": "search_spend"},
    "youtube": {"spend": "yt_spend", "reach": "yt_reach", "frequency": "yt_frequency"},
}
DATA = {"target_column": "sales", "channels": CHANNELS}
MODEL = {
    "adstock": {"name": "geometric", "l_max": L_MAX},
    "saturation": "logistic",
    "yearly_seasonality": 1,
    "trend": "none",
    "media_prior": {"type": "roas"},
}
SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 300, "seed": 3, "progressbar": False}
TRUE = {"alpha": (0.3, 0.5), "lam": 1.5, "slope": 3.0, "ec": 2.0, "beta": (120.0, 200.0)}


def adstock_loop(x: np.ndarray, alpha: float) -> np.ndarray:
    """Normalized geometric adstock over ``L_MAX`` lags, a plain loop over dates and lags."""
    w = alpha ** np.arange(L_MAX)
    w = w / w.sum()
    out = np.zeros_like(x, dtype=float)
    for t in range(len(x)):
        for lag in range(L_MAX):
            if t - lag >= 0:
                out[t] += w[lag] * x[t - lag]
    return out


def rf_frame(seed: int = 0, n: int = N) -> tuple[pd.DataFrame, dict[str, float]]:
    """Weekly sales from a spend channel (logistic) and a reach & frequency channel (Meridian's form,
    Hill slope 3 and half saturation at frequency 2: optimal frequency 2·2^(1/3) ≈ 2.52), written
    independently of bayesmmm's simulator."""
    rng = np.random.default_rng(seed)
    search = rng.gamma(4.0, 25.0, n)
    yt_spend = rng.gamma(4.0, 30.0, n)
    impressions = yt_spend / (0.002 * np.exp(0.05 * rng.standard_normal(n)))
    frequency = 1.0 + 2.0 * np.exp(0.5 * rng.standard_normal(n))
    reach = impressions / frequency
    s_search, s_imp = search.mean(), impressions.mean()
    c_search = TRUE["beta"][0] * np.tanh(TRUE["lam"] * adstock_loop(search / s_search, TRUE["alpha"][0]) / 2)
    rf_in = reach / s_imp * hill(frequency, TRUE["slope"], TRUE["ec"])
    c_yt = TRUE["beta"][1] * adstock_loop(rf_in, TRUE["alpha"][1])
    dates = pd.date_range("2023-01-02", periods=n, freq="W-MON")
    sales = 1000.0 + 40 * np.sin(2 * np.pi * np.arange(n) / 52) + c_search + c_yt + rng.normal(0, 15, n)
    frame = pd.DataFrame(
        {
            "date": dates,
            "sales": sales,
            "search_spend": search,
            "yt_spend": yt_spend,
            "yt_reach": reach,
            "yt_frequency": frequency,
        }
    )
    truth = {"roas_youtube": c_yt.sum() / yt_spend.sum(), "roas_search": c_search.sum() / search.sum()}
    return frame, truth


# ------------------------------------------------------------------ config and data
@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ({"spend": "s", "reach": "r"}, "needs both columns: reach is set, frequency is not"),
        ({"spend": "s", "frequency": "f"}, "needs both columns: frequency is set, reach is not"),
        ({"spend": "s", "reach": "r", "frequency": "f", "exposure": "e"}, "give exposure or reach & frequency"),
        ({"spend": "s", "reach": "s", "frequency": "f"}, "three different columns"),
        ({"spend": "s", "exposure": "e", "plan_frequency": 2.0}, "plan_frequency is for reach & frequency"),
        ({"spend": "s", "reach": "r", "frequency": "f", "plan_frequency": 0.5}, "greater than or equal to 1"),
    ],
)
def test_bad_reach_frequency_configs_name_the_fix(channel, message):
    with pytest.raises(ValidationError, match=message):
        DataConfig(channels={"yt": channel})


def test_reach_and_frequency_columns_are_roles_of_their_own():
    with pytest.raises(ValidationError, match="more than one role"):
        DataConfig(channels={"a": {"spend": "a"}, "yt": {"spend": "s", "reach": "a", "frequency": "f"}})
    cfg = DataConfig(**DATA)
    assert cfg.rf_channels == ["youtube"] and cfg.has_exposure
    assert DataConfig.model_validate_json(cfg.model_dump_json()) == cfg  # round trip


def test_loading_makes_impressions_the_exposure_and_keeps_the_frequency():
    frame, _ = rf_frame()
    frame.loc[5, ["yt_spend", "yt_reach", "yt_frequency"]] = [0.0, 0.0, np.nan]  # nobody reached: any frequency
    data = frame_to_data(frame, DataConfig(**DATA))
    np.testing.assert_allclose(
        data.media[:, 1], np.where(frame["yt_reach"] > 0, frame.yt_reach * frame.yt_frequency, 0)
    )
    np.testing.assert_allclose(data.media[:, 0], frame["search_spend"])
    np.testing.assert_allclose(data.spend[:, 1], frame["yt_spend"])
    assert data.rf_frequency[5, 1] == 1.0 and (data.rf_frequency[:, 0] == 1.0).all()
    np.testing.assert_allclose(np.delete(data.rf_frequency[:, 1], 5), np.delete(frame["yt_frequency"].to_numpy(), 5))
    recent = frame.iloc[-13:]
    expected = (recent.yt_reach * recent.yt_frequency).sum() / recent.yt_reach.sum()
    assert recent_frequency(data.media, data.rf_frequency, data.dates)[1] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"yt_reach": -1.0}, r"reach column 'yt_reach' of channel 'youtube' is negative \(-1\) at row 5"),
        ({"yt_frequency": 0.5}, r"frequency column 'yt_frequency' .* at row 5, where reach is .* must be >= 1"),
        ({"yt_frequency": np.nan}, r"frequency column 'yt_frequency' of channel 'youtube' is empty at row 5"),
        ({"yt_reach": np.nan}, r"reach column 'yt_reach' .* missing or non-numeric"),
    ],
)
def test_data_errors_name_the_column_the_row_and_the_fix(change, message):
    frame, _ = rf_frame()
    for col, value in change.items():
        frame.loc[3, col] = value
    with pytest.raises(DataError, match=message):
        frame_to_data(frame, DataConfig(**DATA))
    with pytest.raises(DataError, match=r"column\(s\) \['yt_frequency'\] not in the data"):
        frame_to_data(rf_frame()[0].drop(columns="yt_frequency"), DataConfig(**DATA))
    dark = rf_frame()[0].assign(yt_reach=0.0)
    with pytest.raises(DataError, match=r"'youtube' has spend \('yt_spend'\) but its reach column 'yt_reach' is zero"):
        frame_to_data(dark, DataConfig(**DATA))


def test_geo_panels_read_reach_and_frequency_per_geo():
    a, _ = rf_frame(1, 60)
    b, _ = rf_frame(2, 60)
    panel = pd.concat([a.assign(geo="a"), b.assign(geo="b")], ignore_index=True)
    data = frame_to_data(panel, DataConfig(**DATA, geo_column="geo"))
    assert data.geo_rf_frequency.shape == (60, 2, 2)
    reach = a.yt_reach.to_numpy() + b.yt_reach.to_numpy()
    imp = a.yt_reach * a.yt_frequency + b.yt_reach * b.yt_frequency
    np.testing.assert_allclose(data.rf_frequency[:, 1], imp / reach)  # national: impressions ÷ reach


# ------------------------------------------------------------------ the mean
def bound(frame: pd.DataFrame, model: dict | None = None) -> MMM:
    mmm = MMM(DATA, model or MODEL)
    data = frame_to_data(frame, mmm.data_config)
    mmm.bind(data, Scales.from_data(data, "sales"))
    return mmm


def test_the_mean_is_meridians_form_against_a_numpy_loop():
    import pytensor.tensor as pt

    from bayesmmm.model.mean import media_contributions

    frame, _ = rf_frame()
    mmm = bound(frame)
    spec = mmm.require_spec()
    design = spec.training_design()
    params = {
        "beta": pt.constant([0.3, 0.7]),
        "adstock_alpha": pt.constant([0.3, 0.6]),
        "saturation_lam": pt.constant([1.2, 9.9]),  # youtube's saturation is unused
        "rf_slope": pt.constant([2.2]),
        "rf_ec": pt.constant([1.7]),
    }
    out = media_contributions(spec, design["media"], params, frequency=design["frequency"]).eval()
    s = np.asarray(mmm.scales.media)
    search = 0.3 * np.tanh(1.2 * adstock_loop(frame.search_spend.to_numpy() / s[0], 0.3) / 2)
    reach = frame.yt_reach.to_numpy() / s[1]  # impressions' scale
    youtube = 0.7 * adstock_loop(reach * hill(frame.yt_frequency.to_numpy(), 2.2, 1.7), 0.6)
    np.testing.assert_allclose(out[:, 0], search, rtol=1e-10)
    np.testing.assert_allclose(out[:, 1], youtube, rtol=1e-10)
    # the design carries the frequency in the non-paid block: any rows, any path
    _dates, _media, covariates = spec.history_inputs()
    assert covariates.shape[-1] == 1 and np.allclose(covariates[:, 0], frame.yt_frequency)
    assert spec.variable_dims["rf_slope"] == ("rf_channel",) and spec.coords()["rf_channel"] == ["youtube"]


# ------------------------------------------------------------------ optimal frequency (known curves)
def known_posterior(mmm: MMM, slopes: np.ndarray, ecs: np.ndarray) -> None:
    """A posterior of fixed values with the given (draw,) Hill slopes and half points: 1 chain."""
    spec = mmm.require_spec()
    coords = spec.coords()
    n = len(slopes)
    values = {"rf_slope": slopes[:, None], "rf_ec": ecs[:, None]}
    ds = {}
    for name, dims in spec.variable_dims.items():
        shape = tuple(len(coords[d]) for d in dims)
        value = values.get(name, np.full((n, *shape), 0.5))
        ds[name] = (("chain", "draw", *dims), np.asarray(value, dtype=float).reshape(1, n, *shape))
    mmm.idata = {"posterior": xr.Dataset(ds, coords={d: coords[d] for d in ("channel", "rf_channel")})}


def test_the_optimal_frequency_is_the_closed_form_and_scipys_on_known_hill_curves():
    from scipy.optimize import minimize_scalar

    from bayesmmm.decisions.reach import rf_roas_grid, rf_table

    frame, _ = rf_frame()
    mmm = bound(frame)
    slopes, ecs = np.array([3.0, 2.0, 1.5, 0.8, 2.5]), np.array([2.0, 1.5, 3.0, 2.0, 1.2])
    known_posterior(mmm, slopes, ecs)
    freqs, roas = rf_roas_grid(mmm)
    assert freqs[0] == 1.0 and freqs[-1] == pytest.approx(np.round(frame.yt_frequency.max(), 1), abs=0.1)
    top = freqs[-1]
    closed = np.minimum(optimal_frequency_hill(slopes, ecs), top)
    per_draw = freqs[np.argmax(roas[:, :, 0], axis=0)]
    np.testing.assert_allclose(per_draw, closed, atol=0.05 + 1e-9)  # the grid's step is 0.1
    for j in range(len(slopes)):  # SciPy on the ROAS itself, ∝ hill(f)/f at fixed impressions
        s_j, k_j = slopes[j], ecs[j]
        res = minimize_scalar(lambda f, s=s_j, k=k_j: -hill(f, s, k) / f, bounds=(1.0, top), method="bounded")
        assert per_draw[j] == pytest.approx(res.x, abs=0.051)
    # ROAS ∝ hill(f)/f: the grid's ROAS curve is that shape, scaled by the draw's constant
    ratio = roas[:, 0, 0] / (hill(freqs, slopes[0], ecs[0]) / freqs)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    table = rf_table(mmm, hdi_prob=0.9)
    mean_best = freqs[np.argmax(roas[:, :, 0].mean(axis=1))]  # Meridian: the argmax of the MEAN ROAS
    assert table.loc[0, "optimal_frequency"] == pytest.approx(mean_best)
    assert table.loc[0, "optimal_frequency_hdi_low"] <= mean_best <= table.loc[0, "optimal_frequency_hdi_high"]
    assert table.loc[0, "plan_frequency"] == pytest.approx(mean_best)
    assert table.loc[0, "recent_frequency"] == pytest.approx(
        recent_frequency(mmm.data.media, mmm.data.rf_frequency, mmm.data.dates)[1]
    )


def test_the_response_surface_is_linear_in_reach_at_fixed_frequency():
    from bayesmmm.decisions.reach import rf_surface

    frame, _ = rf_frame()
    mmm = bound(frame)
    known_posterior(mmm, np.array([2.0, 3.0]), np.array([2.0, 2.0]))
    surface = rf_surface(mmm, reach_multipliers=(0.5, 1.0, 2.0), frequencies=(1.0, 2.5))
    assert len(surface) == 6
    at = surface.set_index(["reach_multiplier", "frequency"])
    np.testing.assert_allclose(at.loc[(2.0, 2.5), "contribution"], 4 * at.loc[(0.5, 2.5), "contribution"], rtol=1e-9)
    reach = frame.yt_reach.sum()
    assert at.loc[(1.0, 2.5), "impressions"] == pytest.approx(reach * 2.5)
    np.testing.assert_allclose(at["roas"], at["contribution"] / at["spend"])


def test_a_roas_prior_is_revenue_per_unit_of_spend_for_reach_frequency_channels():
    """``media_prior: roas`` maps the quantity to ``beta`` through the training reach and frequency: the
    channel's ROAS computed from that beta, by a NumPy loop, is the quantity."""
    from bayesmmm.model.media_prior import posterior_coefficients

    frame, _ = rf_frame()
    mmm = bound(frame)  # MODEL has media_prior: roas
    known_posterior(mmm, np.array([2.5, 1.2]), np.array([2.0, 3.0]))
    post = dict(mmm.idata["posterior"].data_vars)
    post["roas"] = xr.DataArray(np.array([[[1.5, 0.8], [0.4, 2.0]]]), dims=("chain", "draw", "channel"))
    beta = posterior_coefficients(mmm.require_spec(), post)[0]  # (draw, channel)
    s = np.asarray(mmm.scales.media)
    for d, (k, e) in enumerate([(2.5, 2.0), (1.2, 3.0)]):
        x = frame.yt_reach.to_numpy() / s[1] * hill(frame.yt_frequency.to_numpy(), k, e)
        contribution = beta[d, 1] * adstock_loop(x, 0.5) * mmm.scales.target
        assert contribution.sum() / frame.yt_spend.sum() == pytest.approx(float(post["roas"][0, d, 1]), rel=1e-9)


# ------------------------------------------------------------------ a fit
@pytest.fixture(scope="module")
def fitted():
    frame, truth = rf_frame()
    mmm = MMM(DATA, MODEL)
    mmm.fit(frame, SAMPLER)
    return mmm, frame, truth


def test_a_fit_recovers_the_reach_frequency_channels_roas(fitted):
    from bayesmmm import roas_table
    from bayesmmm.decisions.reach import rf_table

    mmm, frame, truth = fitted
    draws = mmm.posterior_draws()
    s = np.asarray(mmm.scales.media)
    reach = frame.yt_reach.to_numpy() / s[1]
    ref = np.stack(
        [
            b * adstock_loop(reach * hill(frame.yt_frequency.to_numpy(), k, e), a) * mmm.scales.target
            for b, a, k, e in zip(
                draws["beta"][:, 1],
                draws["adstock_alpha"][:, 1],
                draws["rf_slope"][:, 0],
                draws["rf_ec"][:, 0],
                strict=True,
            )
        ]
    )
    media = mmm.posterior_components()["media"].sel(channel="youtube").to_numpy().reshape(ref.shape)
    np.testing.assert_allclose(media, ref, rtol=1e-6)  # the one mean, in decomposition
    table = roas_table(mmm).set_index("channel")
    est = table.loc["youtube", "roas_mean"]
    assert est == pytest.approx(truth["roas_youtube"], rel=0.35)
    rf = rf_table(mmm).iloc[0]
    assert rf["roas"] == pytest.approx(est, rel=0.02)  # the same ROAS, at the historical frequency
    assert 1.0 <= rf["optimal_frequency_hdi_low"] <= rf["optimal_frequency"] <= rf["optimal_frequency_hdi_high"]
    truth_f = float(optimal_frequency_hill(TRUE["slope"], TRUE["ec"]))
    assert abs(rf["optimal_frequency"] - truth_f) < 1.5


def test_save_load_and_predict_with_reach_and_frequency(fitted, tmp_path):
    from bayesmmm.decisions.reach import rf_table

    mmm, frame, _ = fitted
    loaded = MMM.load(mmm.save(tmp_path / "posterior.nc"))
    np.testing.assert_array_equal(loaded.data.rf_frequency, mmm.data.rf_frequency)
    pd.testing.assert_frame_equal(rf_table(loaded), rf_table(mmm))
    future, _ = rf_frame(seed=8, n=6)
    future["date"] = pd.date_range(frame["date"].iloc[-1] + pd.Timedelta(days=7), periods=6, freq="7D")
    future = future.drop(columns=["sales"])
    pred = loaded.predict(future)
    np.testing.assert_allclose(pred["mu"].mean(("chain", "draw")), mmm.predict(future)["mu"].mean(("chain", "draw")))
    more = future.assign(yt_frequency=future.yt_frequency * 2, yt_reach=future.yt_reach / 2)  # same impressions
    shifted = loaded.predict(more)["media"].sel(channel="youtube").mean(("chain", "draw"))
    assert not np.allclose(shifted, pred["media"].sel(channel="youtube").mean(("chain", "draw")))
    with pytest.raises(DataError, match=r"\['yt_frequency'\] not in the data"):
        loaded.predict(future.drop(columns="yt_frequency"))


def test_the_optimizer_buys_reach_at_the_plan_frequency(fitted):
    from bayesmmm import optimize_budget
    from bayesmmm.decisions.reach import plan_frequencies
    from bayesmmm.decisions.response import FlightResponse

    mmm, frame, _ = fitted
    weeks = 8
    engine = FlightResponse(mmm, weeks, max_draws=None)
    plan = plan_frequencies(mmm)
    np.testing.assert_allclose(engine.frequency, plan)
    recent = frame.iloc[-13:]
    cpi = recent.yt_spend.sum() / (recent.yt_reach * recent.yt_frequency).sum()
    assert engine.cost_per_unit[1] == pytest.approx(cpi)
    totals = np.array([800.0, 1200.0])
    response, grad = engine.per_channel(totals)
    draws = mmm.posterior_draws()
    horizon = weeks + L_MAX - 1
    reach = np.zeros(horizon)
    reach[:weeks] = totals[1] / weeks / cpi / plan[1] / np.asarray(mmm.scales.media)[1]
    ref = np.array(
        [
            b * adstock_loop(reach * hill(plan[1], k, e), a).sum() * mmm.scales.target
            for b, a, k, e in zip(
                draws["beta"][:, 1],
                draws["adstock_alpha"][:, 1],
                draws["rf_slope"][:, 0],
                draws["rf_ec"][:, 0],
                strict=True,
            )
        ]
    )
    np.testing.assert_allclose(response[:, 1], ref, rtol=1e-6)
    np.testing.assert_allclose(grad[:, 1], ref / totals[1], rtol=1e-6)  # linear in spend at fixed frequency
    # a stated plan frequency replaces the optimal one
    stated = {**CHANNELS, "youtube": {**CHANNELS["youtube"], "plan_frequency": 4.0}}
    other = MMM({**DATA, "channels": stated}, MODEL)
    other.bind(mmm.data, mmm.scales)
    other.idata = mmm.idata
    engine4 = FlightResponse(other, weeks, max_draws=None)
    assert engine4.frequency[1] == 4.0
    ratio = engine4.per_channel(totals)[0][:, 1] / response[:, 1]
    expected = (hill(4.0, draws["rf_slope"][:, 0], draws["rf_ec"][:, 0]) / 4.0) / (
        hill(plan[1], draws["rf_slope"][:, 0], draws["rf_ec"][:, 0]) / plan[1]
    )
    np.testing.assert_allclose(ratio, expected, rtol=1e-6)
    result = optimize_budget(mmm, float(totals.sum()), weeks, max_draws=200)
    assert result.allocation["optimized_spend"].sum() == pytest.approx(totals.sum(), rel=1e-6)


# ------------------------------------------------------------------ simulator
def test_the_simulator_writes_reach_frequency_channels_with_their_truth(tmp_path):
    import yaml

    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, write_simulation

    scenario = load_scenario(builtin_scenario("reach_frequency"))
    data_path, truth_path = write_simulation(scenario, tmp_path)
    frame = pd.read_csv(data_path)
    import json

    truth = json.loads(truth_path.read_text())["channels"]["youtube"]
    assert truth["optimal_frequency"] == pytest.approx(2.0 * 1.5 ** (1 / 2.5))
    experiment = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert experiment["data"]["channels"]["youtube"] == {
        "spend": "youtube_spend",
        "reach": "youtube_reach",
        "frequency": "youtube_frequency",
    }
    data = frame_to_data(frame, DataConfig(**{k: v for k, v in experiment["data"].items() if k != "path"}))
    contribution = np.asarray(truth["weekly_contribution"])
    s = truth["exposure_scale"]
    ref = 250.0 * adstock_loop_geometric(frame.youtube_reach / s * hill(frame.youtube_frequency, 2.5, 2.0), 0.4, 8)
    np.testing.assert_allclose(contribution, ref, rtol=1e-5, atol=1e-6)
    assert truth["roas"] == pytest.approx(contribution.sum() / frame.youtube_spend.sum())
    assert data.rf_frequency.shape == (104, 3)


def adstock_loop_geometric(x, alpha: float, l_max: int) -> np.ndarray:
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    x = np.asarray(x, dtype=float)
    return np.array([sum(w[lag] * x[t - lag] for lag in range(l_max) if t - lag >= 0) for t in range(len(x))])


# ------------------------------------------------------------------ backends and geo
def test_the_jax_translation_has_the_same_log_density():
    pytest.importorskip("jax")
    from bayesmmm.inference.jax.translate import jax_model

    frame, _ = rf_frame()
    model = MMM(DATA, MODEL).build_model(frame)
    jm = jax_model(model, seed=1)
    point = model.initial_point(random_seed=1)
    logp = float(jm.logp([np.asarray(point[n]) for n in jm.value_names], [np.asarray(v) for v in jm.data_values]))
    assert logp == pytest.approx(float(model.compile_logp()(point)), abs=1e-9)


def test_a_geo_panel_fits_and_reports_the_optimal_frequency():
    from bayesmmm import roas_table
    from bayesmmm.decisions.reach import rf_table
    from bayesmmm.decisions.response import FlightResponse

    a, _ = rf_frame(1, 80)
    b, _ = rf_frame(2, 80)
    panel = pd.concat([a.assign(geo="a"), b.assign(geo="b")], ignore_index=True)
    mmm = MMM({**DATA, "geo_column": "geo"}, {**MODEL, "media_prior": {"type": "coefficient"}})
    mmm.fit(panel, {**SAMPLER, "draws": 100, "tune": 150})
    draws = mmm.posterior_draws()
    per_geo = mmm.geo_media_parameters(draws)
    comps = mmm.posterior_components()
    s = np.asarray(mmm.scales.media)  # (geo, channel)
    target = np.asarray(mmm.scales.target)
    ref = np.zeros((len(draws["rf_slope"]), 80))
    for g, frame in enumerate((a, b)):
        reach = frame.yt_reach.to_numpy() / s[g, 1]
        for i in range(len(ref)):
            x = reach * hill(frame.yt_frequency.to_numpy(), draws["rf_slope"][i, 0], draws["rf_ec"][i, 0])
            ref[i] += per_geo["beta"][i, g, 1] * adstock_loop(x, per_geo["adstock_alpha"][i, g, 1]) * target[g]
    media = comps["media"].sel(channel="youtube").to_numpy().reshape(ref.shape)
    np.testing.assert_allclose(media, ref, rtol=1e-6)  # national = the sum of the geos' own curves
    table = rf_table(mmm)
    roas = roas_table(mmm).set_index("channel").loc["youtube", "roas_mean"]
    assert table.loc[0, "roas"] == pytest.approx(roas, rel=0.02)
    engine = FlightResponse(mmm, 4, max_draws=50)
    response, _ = engine.per_channel(np.array([400.0, 400.0]))
    assert np.isfinite(response).all() and (response >= 0).all()


def test_the_service_takes_reach_and_frequency_rows(fitted):
    from bayesmmm.serving.schemas import example_row, row_keys
    from bayesmmm.serving.service import ModelService

    mmm, frame, _ = fitted
    service = ModelService(mmm, "v1")
    assert row_keys(mmm) == ["search_spend", "yt_reach", "yt_frequency"]
    row = example_row(mmm)
    assert row["yt_frequency"] == pytest.approx(frame.yt_frequency.iloc[-1], abs=1e-3)
    future, _ = rf_frame(seed=8, n=3)
    future["date"] = pd.date_range(frame["date"].iloc[-1] + pd.Timedelta(days=7), periods=3, freq="7D")
    rows = [
        {"date": f"{d:%Y-%m-%d}", "search_spend": s, "yt_reach": r, "yt_frequency": f}
        for d, s, r, f in zip(future.date, future.search_spend, future.yt_reach, future.yt_frequency, strict=True)
    ]
    out = service.predict({"new_media_spend": rows, "hdi_prob": 0.9, "contributions": True})
    pred = mmm.predict(future.drop(columns="sales"))
    youtube = pred["media"].sel(channel="youtube").mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(out["contributions"]["youtube"], youtube, rtol=1e-6)  # the same curve
    expected = pred["mu"].mean(("chain", "draw")).to_numpy()  # the service's forecast has observation noise
    np.testing.assert_allclose(out["sales_pred_mean"], expected, rtol=0.01)


def test_the_response_surface_plot_is_saved_for_the_report(tmp_path):
    """``plot_rf_surface`` returns the PNG it wrote (the report embeds every figure by its path)."""
    from bayesmmm.reporting.plots import plot_rf_surface

    grid = [(m, f) for m in (0.5, 1.0, 1.5) for f in (1.0, 2.0, 3.0)]
    surface = pd.DataFrame(
        {"channel": "yt", "reach_multiplier": [m for m, _ in grid], "frequency": [f for _, f in grid]}
    ).assign(contribution=lambda d: d["reach_multiplier"] * hill(d["frequency"].to_numpy(), 2.5, 2.0))
    path = plot_rf_surface(surface, pd.DataFrame({"channel": ["yt"], "optimal_frequency": [2.3]}), tmp_path / "s.png")
    assert path is not None and path.exists() and path.stat().st_size > 0
