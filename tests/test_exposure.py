"""Exposure and spend, conversions and their value (issue 25, items 2 and 3).

Curves act on exposure, ROAS and the optimizer on spend; with a revenue per KPI, contributions are
valued period by period. Every number is checked against a NumPy computation of its own.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayesmmm import MMM
from bayesmmm.config.experiment import DataConfig
from bayesmmm.data.exposure import cost_per_unit, recent_mask, recent_revenue_per_kpi
from bayesmmm.data.loading import DataError, frame_to_data

N = 130
L_MAX = 4
CHANNELS = {
    "search": {"spend": "search_spend", "exposure": "search_clicks"},
    "social": {"spend": "social_spend", "exposure": "social_impressions"},
    "tv": {"spend": "tv_spend"},
}
DATA = {
    "target_column": "conversions",
    "channels": CHANNELS,
    "control_columns": ["price"],
    "revenue_per_kpi_column": "revenue_per_conversion",
}
MODEL = {
    "adstock": {"name": "geometric", "l_max": L_MAX},
    "saturation": "logistic",
    "yearly_seasonality": 1,
    "trend": "none",
    "media_prior": {"type": "coefficient"},
}
SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 300, "seed": 5, "progressbar": False}


def geometric_logistic(x: np.ndarray, alpha: np.ndarray, lam: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """NumPy reference: normalized geometric adstock (``L_MAX`` lags) then ``beta tanh(lam x / 2)``;
    ``x`` (date, channel), parameters (sample, channel) → (sample, date, channel)."""
    lags = np.arange(L_MAX)
    w = alpha[:, None, :] ** lags[None, :, None]  # (sample, lag, channel)
    w = w / w.sum(axis=1, keepdims=True)
    out = np.zeros((len(alpha), *x.shape))
    for lag in range(L_MAX):
        shifted = np.zeros_like(x)
        shifted[lag:] = x[: len(x) - lag]
        out += w[:, lag][:, None, :] * shifted[None]
    return beta[:, None, :] * np.tanh(lam[:, None, :] * out / 2.0)


def exposure_frame(seed: int = 0, n: int = N) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Weekly conversions driven by the EXPOSURE of search and social (whose cost per unit drifts: search's
    triples, social's halves) and by tv's spend; conversions are valued by a varying revenue per conversion."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    search_spend = 1000 * rng.gamma(8.0, 1 / 8.0, n)
    social_spend = 600 * rng.gamma(4.0, 1 / 4.0, n)
    social_spend[rng.random(n) < 0.15] = 0.0
    tv_spend = np.where((t // 8) % 2 == 0, 2000 * rng.gamma(6.0, 1 / 6.0, n), 0.0)
    search_cpu = np.linspace(0.5, 1.5, n) * rng.lognormal(0, 0.05, n)
    social_cpu = np.linspace(8.0, 4.0, n) * rng.lognormal(0, 0.05, n)
    clicks = search_spend / search_cpu
    impressions = social_spend / social_cpu
    media = np.column_stack([clicks, impressions, tv_spend])
    scale = np.array([m[m > 0].mean() for m in media.T])
    truth = {"alpha": np.array([0.3, 0.5, 0.6]), "lam": np.array([1.0, 1.5, 0.8]), "beta": np.array([60, 40, 50.0])}
    contrib = geometric_logistic(media / scale, truth["alpha"][None], truth["lam"][None], truth["beta"][None])[0]
    price = 10 + rng.normal(0, 1, n)
    conversions = 400 + 15 * np.sin(2 * np.pi * t / 52) - 4 * (price - 10) + contrib.sum(axis=1)
    conversions += rng.normal(0, 6, n)
    rpk = 20 + 6 * np.sin(2 * np.pi * t / 26) + rng.normal(0, 0.5, n)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2023-01-02", periods=n, freq="W-MON"),
            "search_spend": search_spend,
            "search_clicks": clicks,
            "social_spend": social_spend,
            "social_impressions": impressions,
            "tv_spend": tv_spend,
            "price": price,
            "conversions": conversions,
            "revenue_per_conversion": rpk,
        }
    )
    return frame, {**truth, "contribution": contrib, "revenue_per_kpi": rpk}


# ------------------------------------------------------------------ config
def test_the_long_form_names_channels_and_round_trips():
    cfg = DataConfig.model_validate(DATA)
    assert cfg.channel_names == ["search", "social", "tv"]
    assert cfg.spend_columns == ["search_spend", "social_spend", "tv_spend"]
    assert cfg.media_columns == ["search_clicks", "social_impressions", "tv_spend"]
    assert cfg.has_exposure
    assert DataConfig.from_yaml(cfg.to_yaml()) == cfg
    short = DataConfig.model_validate({"channel_columns": ["a", "b"]})
    assert short.channel_names == short.spend_columns == short.media_columns == ["a", "b"]
    assert not short.has_exposure
    assert DataConfig.model_validate({"channels": {"tv": "tv_spend"}}).channels["tv"].spend == "tv_spend"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"channel_columns": ["a"], "channels": {"a": {"spend": "a"}}}, "both are set"),
        ({"target_column": "y"}, "neither is set"),
        ({"channels": {"a": {"spend": "a", "cost_per_unit": 2.0}}}, "spend-only channel"),
        ({"channels": {"a": {"spend": "a", "exposure": "a"}}}, "same column"),
        ({"channels": {"a": {"spend": "a", "exposure": "b", "cost_per_unit": -1}}}, "greater than 0"),
        ({"channels": {"a": {"spend": "x", "exposure": "imps"}, "b": {"spend": "imps"}}}, "more than one role"),
        ({"channels": {"a": {"spend": "x"}}, "revenue_per_kpi_column": "x"}, "more than one role"),
        ({"channels": {"a": {"spend": "x", "impressions": "i"}}}, "impressions"),
    ],
)
def test_bad_channel_configs(data, message):
    with pytest.raises(ValueError, match=message):
        DataConfig.model_validate(data)


# -------------------------------------------------------------------- data
def test_loading_reads_exposure_spend_and_revenue():
    frame, _ = exposure_frame()
    data = frame_to_data(frame, DataConfig.model_validate(DATA))
    assert data.channels == ("search", "social", "tv")
    np.testing.assert_array_equal(data.media[:, 0], frame["search_clicks"])  # curves act on the exposure
    np.testing.assert_array_equal(data.media[:, 2], frame["tv_spend"])  # spend-only: on the spend
    np.testing.assert_array_equal(data.channel_spend, frame[["search_spend", "social_spend", "tv_spend"]])
    np.testing.assert_array_equal(data.revenue_per_kpi, frame["revenue_per_conversion"])
    short = frame_to_data(
        frame, DataConfig.model_validate({"target_column": "conversions", "channel_columns": ["tv_spend"]})
    )
    assert short.spend is None and short.revenue_per_kpi is None and not short.has_revenue
    assert short.channel_spend is short.media  # the fallback: spend is what the curves act on


def test_data_errors_name_the_column_and_the_fix():
    frame, _ = exposure_frame()
    cfg = DataConfig.model_validate(DATA)
    with pytest.raises(DataError, match=r"'search_clicks' \(did you mean 'search_click'\?\)"):
        frame_to_data(frame.rename(columns={"search_clicks": "search_click"}), cfg)
    with pytest.raises(DataError, match=r"channel spend column\(s\) 'social_spend'"):
        frame_to_data(frame.drop(columns="social_spend"), cfg)
    with pytest.raises(DataError, match="revenue_per_kpi column"):
        frame_to_data(frame.drop(columns="revenue_per_conversion"), cfg)
    bad = frame.copy()
    bad.loc[5, "search_clicks"] = -3.0
    with pytest.raises(DataError, match=r"'search_clicks' has negative exposure -3 at row 7"):
        frame_to_data(bad, cfg)
    bad = frame.copy()
    bad.loc[5, "revenue_per_conversion"] = -1.0
    with pytest.raises(DataError, match="revenue_per_kpi column 'revenue_per_conversion' has a negative value"):
        frame_to_data(bad, cfg)
    with pytest.raises(DataError, match=r"'social' has spend .* zero in every period"):
        frame_to_data(frame.assign(social_impressions=0.0), cfg)
    blind = frame.copy()
    blind.loc[[3, 9], "search_clicks"] = 0.0
    with pytest.warns(UserWarning, match=r"'search' has spend but zero exposure in 2 period\(s\)"):
        frame_to_data(blind, cfg)
    bonus = frame.copy()
    bonus.loc[4, "social_spend"] = 0.0  # exposure without spend (bonus impressions) is fine
    frame_to_data(bonus, cfg)
    # new rows for a forecast need the exposure, not the spend nor the revenue per KPI
    new = frame_to_data(frame.drop(columns=["search_spend", "revenue_per_conversion"]), cfg, require_target=False)
    assert new.spend is None and new.revenue_per_kpi is None


def test_geo_panels_read_per_geo_exposure_spend_and_revenue():
    frame, _ = exposure_frame()
    other, _ = exposure_frame(seed=1)
    panel = pd.concat([frame.assign(geo="a"), other.assign(geo="b")], ignore_index=True)
    data = frame_to_data(panel, DataConfig.model_validate({**DATA, "geo_column": "geo"}))
    assert data.geo_spend.shape == data.geo_media.shape == (N, 2, 3)
    np.testing.assert_array_equal(data.geo_media[:, 1, 1], other["social_impressions"])
    np.testing.assert_array_equal(data.geo_spend[:, 0, 0], frame["search_spend"])
    np.testing.assert_allclose(data.spend, data.geo_spend.sum(axis=1))
    np.testing.assert_array_equal(data.geo_revenue_per_kpi[:, 1], other["revenue_per_conversion"])
    y, r = data.geo_target, data.geo_revenue_per_kpi
    np.testing.assert_allclose(data.revenue_per_kpi, (y * r).sum(axis=1) / y.sum(axis=1))
    bad = panel.copy()
    bad.loc[N + 10, "social_impressions"] = -1.0
    with pytest.raises(DataError, match=r"geo 'b': .*negative exposure"):
        frame_to_data(bad, DataConfig.model_validate({**DATA, "geo_column": "geo"}))


# ------------------------------------------------------------ pure helpers
def test_cost_per_unit_is_the_recent_average_or_the_stated_price():
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=40, freq="W-MON")
    spend = rng.gamma(2.0, 100.0, size=(40, 3))
    exposure = spend / np.linspace(1.0, 3.0, 40)[:, None]
    exposure[:, 2] = spend[:, 2]  # spend-only
    spend[-13:, 1] = exposure[-13:, 1] = 0.0  # dark in the last quarter: the whole history's average
    got = cost_per_unit(spend, exposure, dates)
    assert recent_mask(dates).sum() == 13  # a quarter-year of weeks
    np.testing.assert_allclose(got[0], spend[-13:, 0].sum() / exposure[-13:, 0].sum())
    np.testing.assert_allclose(got[1], spend[:, 1].sum() / exposure[:, 1].sum())
    np.testing.assert_allclose(got[2], 1.0)
    np.testing.assert_allclose(cost_per_unit(spend, exposure, dates, [2.5, None, None]), [2.5, got[1], 1.0])
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    assert recent_mask(days).sum() == 91
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    assert recent_mask(months).sum() == 3
    # the future value of a KPI unit: revenue over KPI of the recent window
    y, r = rng.gamma(5.0, 10.0, 40), rng.uniform(10, 30, 40)
    np.testing.assert_allclose(recent_revenue_per_kpi(r, y, dates), (y[-13:] * r[-13:]).sum() / y[-13:].sum())


# -------------------------------------------------- business-unit priors
@pytest.mark.parametrize("kind", ["roas", "mroas"])
def test_roas_priors_are_revenue_per_unit_of_spend_with_curves_on_exposure(kind):
    """A roas / mroas prior's draw IS the model's ROAS in revenue per unit of spend (exactly), with the
    curves acting on the exposure: checked by a NumPy evaluation of the curve."""
    from bayesmmm.evaluation.identifiability import prior_draws

    frame, _ = exposure_frame()
    prior = {"dist": "LogNormal", "mu": 0.0, "sigma": 0.5}
    mmm = MMM(DATA, {**MODEL, "media_prior": {"type": kind, "default": prior}})
    mmm.build_model(frame)
    draws = prior_draws(mmm, n=200, seed=4)
    x = mmm.data.media / np.asarray(mmm.scales.media)
    curve = geometric_logistic(x, draws["adstock_alpha"], draws["saturation_lam"], draws["beta"])
    rpk = frame["revenue_per_conversion"].to_numpy()[None, :, None]
    spend = frame[["search_spend", "social_spend", "tv_spend"]].to_numpy().sum(axis=0)
    if kind == "roas":
        value = (curve * rpk).sum(axis=1) * mmm.scales.target / spend
    else:
        up = geometric_logistic(x * 1.01, draws["adstock_alpha"], draws["saturation_lam"], draws["beta"])
        value = ((up - curve) * rpk).sum(axis=1) * mmm.scales.target / (0.01 * spend)
    np.testing.assert_allclose(value, draws[kind], rtol=1e-8)


# -------------------------------------------------------------- lift tests
def test_lift_tests_in_spend_become_exposure_at_the_window_cost_per_unit():
    from bayesmmm.model.calibration import check_lift_tests, lift_design

    frame, _ = exposure_frame()
    mmm = MMM(DATA, MODEL)
    mmm.build_model(frame)
    tests = check_lift_tests(
        pd.DataFrame(
            {
                "channel": ["search", "search", "tv"],
                "x": [1000.0, 1000.0, 2000.0],
                "delta_x": [-500.0, -1000.0, -2000.0],
                "delta_y": [10.0, 20.0, 30.0],
                "sigma": [2.0, 2.0, 3.0],
                "start": [frame["date"][60], None, None],
                "end": [frame["date"][67], None, None],
            }
        )
    )
    d = lift_design(mmm.require_spec(), tests)
    s = np.asarray(mmm.scales.media)
    window = slice(60, 68)
    cpu = frame["search_spend"][window].sum() / frame["search_clicks"][window].sum()
    recent = frame["search_spend"][-13:].sum() / frame["search_clicks"][-13:].sum()
    offset = int(np.flatnonzero(d.weights[:, 0])[0])  # the design keeps only the rows the lift needs
    np.testing.assert_allclose(d.base[offset, 0], 1000.0 / (cpu * s[0]))
    np.testing.assert_allclose(d.treat[offset, 0], 500.0 / (cpu * s[0]))
    np.testing.assert_allclose(d.base[0, 1], 1000.0 / (recent * s[0]))  # steady state: the recent price
    np.testing.assert_allclose(d.base[0, 2], 2000.0 / s[2])  # spend-only: unchanged
    np.testing.assert_allclose(d.delta_y, [10.0, 20.0, 30.0] / np.asarray(mmm.scales.target))  # KPI units


# ------------------------------------------------------------------- a fit
@pytest.fixture(scope="module")
def fitted():
    frame, truth = exposure_frame()
    mmm = MMM(DATA, MODEL)
    mmm.fit(frame, SAMPLER)
    return mmm, frame, truth


def reference_contributions(mmm: MMM, frame: pd.DataFrame) -> np.ndarray:
    """(sample, date, channel) contributions of every posterior draw, NumPy, on the EXPOSURE."""
    draws = mmm.posterior_draws()
    x = frame[["search_clicks", "social_impressions", "tv_spend"]].to_numpy() / np.asarray(mmm.scales.media)
    curve = geometric_logistic(x, draws["adstock_alpha"], draws["saturation_lam"], draws["beta"])
    return curve * mmm.scales.target


def test_a_fit_on_exposure_reports_roas_per_unit_of_spend_in_revenue(fitted):
    from bayesmmm import roas_table

    mmm, frame, truth = fitted
    ref = reference_contributions(mmm, frame)
    comps = mmm.posterior_components()
    np.testing.assert_allclose(comps["media"].to_numpy().reshape(ref.shape), ref, rtol=1e-6, atol=1e-9)
    spend = frame[["search_spend", "social_spend", "tv_spend"]].to_numpy().sum(axis=0)
    rpk = frame["revenue_per_conversion"].to_numpy()
    kpi = ref.sum(axis=1)
    revenue = (ref * rpk[None, :, None]).sum(axis=1)  # each week's contribution × its revenue per KPI
    table = roas_table(mmm)
    np.testing.assert_allclose(table["spend"], spend)
    np.testing.assert_allclose(table["contribution_mean"], kpi.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["revenue_mean"], revenue.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["roas_mean"], (revenue / spend).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["roas_median"], np.median(revenue / spend, axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["cost_per_kpi_mean"], (spend / kpi).mean(axis=0), rtol=1e-6)
    assert set(table["roas_unit"]) == {"revenue per unit of spend"} and table.attrs["roas_unit"].startswith("revenue")
    # fitted on exposure whose price drifts, the contributions are recovered (known truth, loose margin)
    true_kpi = truth["contribution"].sum(axis=0)
    lo, hi = table["contribution_hdi_low"].to_numpy(), table["contribution_hdi_high"].to_numpy()
    width = hi - lo
    assert np.all((true_kpi > lo - width) & (true_kpi < hi + width)), (true_kpi, lo, hi)
    np.testing.assert_allclose(table["contribution_mean"], true_kpi, rtol=0.3)
    # without a revenue per KPI the same posterior's ROAS is KPI per unit of spend, and says so
    kpi_model = MMM({k: v for k, v in DATA.items() if k != "revenue_per_kpi_column"}, MODEL)
    kpi_model.bind(dataclasses.replace(mmm.data, revenue_per_kpi=None), mmm.scales)
    kpi_model.idata = mmm.idata
    plain = roas_table(kpi_model)
    np.testing.assert_allclose(plain["roas_mean"], (kpi / spend).mean(axis=0), rtol=1e-6)
    assert "revenue_mean" not in plain and set(plain["roas_unit"]) == {"KPI per unit of spend"}


def test_marginal_roas_and_response_curves_are_in_spend(fitted):
    from bayesmmm import marginal_roas, response_curves

    mmm, frame, _ = fitted
    draws = mmm.posterior_draws()
    x = frame[["search_clicks", "social_impressions", "tv_spend"]].to_numpy() / np.asarray(mmm.scales.media)
    rpk = frame["revenue_per_conversion"].to_numpy()[None, :, None]
    spend = frame[["search_spend", "social_spend", "tv_spend"]].to_numpy().sum(axis=0)

    def valued(m: float) -> np.ndarray:
        curve = geometric_logistic(x * m, draws["adstock_alpha"], draws["saturation_lam"], draws["beta"])
        return (curve * rpk).sum(axis=1) * mmm.scales.target

    expected = (valued(1.01) - valued(0.99)) / (0.02 * spend)
    got = marginal_roas(mmm).to_numpy().reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    curves = response_curves(mmm, multipliers=[0.5, 1.0], max_draws=None)
    one = curves[curves["multiplier"] == 1.0].set_index("channel")
    np.testing.assert_allclose(one.loc[list(mmm.channels), "spend"], spend)
    np.testing.assert_allclose(one.loc[["search"], "exposure"], frame["search_clicks"].sum())
    np.testing.assert_allclose(one.loc[list(mmm.channels), "revenue_mean"], valued(1.0).mean(axis=0), rtol=1e-6)


def flight_reference(mmm: MMM, totals: np.ndarray, weeks: int, cpu: np.ndarray, rpk: float) -> np.ndarray:
    """NumPy flight response: spend ``totals`` paced flat over ``weeks``, as exposure at ``cpu``, counted
    until the carry-over decays, valued at ``rpk``: (sample, channel)."""
    draws = mmm.posterior_draws()
    horizon = weeks + L_MAX - 1
    x = np.zeros((horizon, len(totals)))
    x[:weeks] = totals / weeks / cpu / np.asarray(mmm.scales.media)
    curve = geometric_logistic(x, draws["adstock_alpha"], draws["saturation_lam"], draws["beta"])
    return curve.sum(axis=1) * mmm.scales.target * rpk


def test_the_optimizer_buys_exposure_at_the_recent_or_the_stated_cost_per_unit(fitted):
    from bayesmmm import optimize_budget
    from bayesmmm.decisions.response import FlightResponse

    mmm, frame, _ = fitted
    recent = frame.iloc[-13:]
    cpu = np.array(
        [
            recent["search_spend"].sum() / recent["search_clicks"].sum(),
            recent["social_spend"].sum() / recent["social_impressions"].sum(),
            1.0,
        ]
    )
    y, r = recent["conversions"].to_numpy(), recent["revenue_per_conversion"].to_numpy()
    rpk = float((y * r).sum() / y.sum())
    engine = FlightResponse(mmm, 8, max_draws=None)
    np.testing.assert_allclose(engine.cost_per_unit, cpu)
    np.testing.assert_allclose(engine.revenue_per_kpi, rpk)
    totals = np.array([8000.0, 4000.0, 10000.0])
    response, grad = engine.per_channel(totals)
    np.testing.assert_allclose(response, flight_reference(mmm, totals, 8, cpu, rpk), rtol=1e-6)
    step = 1e-3 * totals
    numeric = (
        flight_reference(mmm, totals + step, 8, cpu, rpk) - flight_reference(mmm, totals - step, 8, cpu, rpk)
    ) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4)  # per unit of SPEND
    result = optimize_budget(mmm, float(totals.sum()), 8, max_draws=200)
    s = result.summary
    assert s["response_unit"] == "revenue" and s["roas_unit"] == "revenue per unit of spend"
    assert s["revenue_per_kpi"] == pytest.approx(rpk)
    assert s["cost_per_unit"]["search"] == pytest.approx(cpu[0])
    mix = frame[["search_spend", "social_spend", "tv_spend"]].to_numpy().mean(axis=0)
    np.testing.assert_allclose(result.allocation["current_spend"], mix / mix.sum() * totals.sum())
    # a stated cost per unit replaces the recent average
    stated = {**CHANNELS, "search": {**CHANNELS["search"], "cost_per_unit": 2.0}}
    priced = MMM({**DATA, "channels": stated}, MODEL)
    priced.bind(mmm.data, mmm.scales)
    priced.idata = mmm.idata
    engine = FlightResponse(priced, 8, max_draws=None)
    np.testing.assert_allclose(engine.cost_per_unit, [2.0, cpu[1], 1.0])
    response, _ = engine.per_channel(totals)
    np.testing.assert_allclose(response, flight_reference(mmm, totals, 8, np.array([2.0, cpu[1], 1.0]), rpk), rtol=1e-6)


def test_save_load_and_predict_with_exposure(fitted, tmp_path):
    from bayesmmm import roas_table

    mmm, frame, _ = fitted
    loaded = MMM.load(mmm.save(tmp_path / "posterior.nc"))
    np.testing.assert_array_equal(loaded.data.spend, mmm.data.spend)
    np.testing.assert_array_equal(loaded.data.media, mmm.data.media)
    np.testing.assert_array_equal(loaded.data.revenue_per_kpi, mmm.data.revenue_per_kpi)
    pd.testing.assert_frame_equal(roas_table(loaded), roas_table(mmm))
    future, _ = exposure_frame(seed=9, n=6)
    future["date"] = pd.date_range(frame["date"].iloc[-1] + pd.Timedelta(days=7), periods=6, freq="7D")
    future = future.drop(columns=["conversions", "revenue_per_conversion", "search_spend", "social_spend"])
    pred = loaded.predict(future)  # exposure (and spend-only channels' spend) are what a forecast needs
    np.testing.assert_allclose(pred["mu"].mean(("chain", "draw")), mmm.predict(future)["mu"].mean(("chain", "draw")))
    with pytest.raises(DataError, match=r"'search_clicks' not found"):
        loaded.predict(future.drop(columns="search_clicks"))


def test_a_geo_panel_values_each_geo_at_its_own_revenue_per_kpi_and_price():
    """A short geo fit: per-geo ROAS in revenue (each geo's weeks × its revenue per KPI) per unit of its
    spend, national ROAS the sums over geos, and the flight response buys each geo's exposure at that
    geo's recent cost per unit."""
    from bayesmmm import roas_table
    from bayesmmm.decisions.response import FlightResponse
    from bayesmmm.evaluation.summaries import roas_geo_table

    frames = [exposure_frame(seed=s)[0].assign(geo=g) for s, g in ((0, "north"), (1, "south"))]
    panel = pd.concat(frames, ignore_index=True)
    model = {k: v for k, v in MODEL.items() if k != "media_prior"}
    mmm = MMM({**DATA, "geo_column": "geo"}, model)
    mmm.fit(panel, {**SAMPLER, "draws": 100, "tune": 150})
    dates, media, controls = mmm.history_inputs()
    per = mmm.evaluate(dates, media, controls, components=("media",))["media"]  # (sample, date, geo, channel)
    rpk = np.stack([f["revenue_per_conversion"].to_numpy() for f in frames], axis=1)  # (date, geo)
    spend = np.stack([f[["search_spend", "social_spend", "tv_spend"]].to_numpy() for f in frames], axis=1)
    revenue = (per * rpk[None, :, :, None]).sum(axis=1)  # (sample, geo, channel)
    geo_table = roas_geo_table(mmm).set_index(["geo", "channel"])
    for g, geo in enumerate(("north", "south")):
        for c, ch in enumerate(mmm.channels):
            expected = (revenue[:, g, c] / spend[:, g, c].sum()).mean()
            assert geo_table.loc[(geo, ch), "roas_mean"] == pytest.approx(expected, rel=1e-6)
    national = roas_table(mmm)
    np.testing.assert_allclose(
        national["roas_mean"], (revenue.sum(axis=1) / spend.sum(axis=(0, 1))).mean(axis=0), rtol=1e-6
    )
    engine = FlightResponse(mmm, 4, max_draws=None)
    recent = [f.iloc[-13:] for f in frames]
    cpu = np.array([[r["search_spend"].sum() / r["search_clicks"].sum() for r in recent]]).T
    np.testing.assert_allclose(engine.cost_per_unit[:, 0], cpu[:, 0])
    np.testing.assert_allclose(engine.cost_per_unit[:, 2], 1.0)
    y = [r["conversions"].to_numpy() for r in recent]
    v = [r["revenue_per_conversion"].to_numpy() for r in recent]
    np.testing.assert_allclose(engine.revenue_per_kpi, [(a * b).sum() / a.sum() for a, b in zip(y, v, strict=True)])


def test_the_service_takes_exposure_rows_and_says_the_roas_unit(fitted):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    mmm, frame, _ = fitted
    service = ModelService(mmm, "exposure-test", dashboard=False)
    app = create_app(service, token="")
    client = TestClient(app, base_url="http://localhost")
    try:
        last = frame.iloc[-1]
        row = {"date": str((last["date"] + pd.Timedelta(days=7)).date()), "price": 10.0}
        row.update({c: float(last[c]) for c in ("search_clicks", "social_impressions", "tv_spend")})
        r = client.post("/predict", json={"new_media_spend": [row], "contributions": True})
        assert r.status_code == 200, r.text
        expected = mmm.predict(pd.DataFrame([row]))["mu"].mean(("chain", "draw")).to_numpy()
        assert r.json()["sales_pred_mean"][0] == pytest.approx(float(expected[0]), rel=0.05)
        r = client.post("/predict", json={"new_media_spend": [{**row, "search": 1.0}]})
        assert r.status_code == 422 and "search_clicks" in r.text  # keyed by the exposure column
        roas = client.get("/roas").json()
        assert roas["roas_unit"] == "revenue per unit of spend"
        assert {rec["roas_unit"] for rec in roas["channels"]} == {"revenue per unit of spend"}
    finally:
        app.state.runtime.shutdown()
