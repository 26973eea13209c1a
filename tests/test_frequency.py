"""Any regular frequency: daily, weekly, monthly (calendar months) and fixed steps of days.

Inference and validation of the grid, filling missing periods, the next dates, the check that
new dates continue the data, day-of-week seasonality against a NumPy reference, the
linear-time geometric adstock against the convolution, and small real fits on daily and on
monthly data (Robyn's weekly data summed to calendar months).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesmmm import MMM
from bayesmmm.components.adstock import GeometricAdstock, convolve
from bayesmmm.components.base import numpy_mode
from bayesmmm.components.features import day_of_week_features
from bayesmmm.config.experiment import ConfigError, DataConfig, ModelConfig, resolve_weekly_seasonality
from bayesmmm.data.frequency import (
    FrequencyError,
    check_grid,
    few_periods_warning,
    full_grid,
    infer_frequency,
    next_dates,
    normalize_frequency,
    period_name,
    periods_between,
    periods_per_year,
)
from bayesmmm.data.loading import DataError, frame_to_data

SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 200, "tune": 300, "seed": 3, "progressbar": False}


def frame(dates: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(dates)
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "sales": 100 + rng.normal(0, 5, n),
            "tv": rng.uniform(0, 50, n),
            "search": rng.uniform(5, 30, n),
        }
    )


CFG = DataConfig(channel_columns=["tv", "search"])


# ------------------------------------------------------------------ the grid
@pytest.mark.parametrize(
    ("freq", "expected"),
    [("D", "daily"), ("7D", "weekly"), ("W-MON", "weekly"), ("MS", "monthly"), ("ME", "monthly"), ("14D", "14D")],
)
def test_frequency_is_inferred(freq, expected):
    dates = pd.date_range("2023-01-02", periods=40, freq=freq)
    assert infer_frequency(dates) == expected
    data = frame_to_data(frame(dates), CFG)
    assert data.frequency == expected and data.n_dates == 40
    # a few missing periods do not change the answer (the regular step stays the most common)
    assert infer_frequency(dates.delete([5, 17])) == expected


def test_frequency_names():
    assert normalize_frequency("Daily") == "daily" and normalize_frequency("1d") == "daily"
    assert normalize_frequency("7D") == "weekly" and normalize_frequency("14d") == "14D"
    with pytest.raises(FrequencyError, match="use auto, daily, weekly, monthly, or a fixed step of days"):
        normalize_frequency("fortnightly")
    with pytest.raises(ValueError, match="unknown frequency 'hourly'"):
        DataConfig(channel_columns=["tv"], frequency="hourly")
    assert DataConfig(channel_columns=["tv"], frequency="14d").frequency == "14D"
    assert [period_name(f) for f in ("daily", "weekly", "monthly", "14D")] == ["day", "week", "month", "14-day period"]
    assert periods_per_year("monthly") == 12 and periods_per_year("daily") == 365.25
    assert periods_per_year("weekly") == pytest.approx(52.18, abs=0.01)


def test_irregular_dates_are_refused_naming_the_step_and_the_fix():
    dates = pd.date_range("2024-01-01", periods=30, freq="D")
    bad = dates.union([pd.Timestamp("2024-03-15")])
    # a step of whole days after daily dates: missing days (the repair is named), not irregular dates
    with pytest.raises(
        DataError, match=r"consecutive days: a gap of 45 days .*\(44 missing day\(s\) in all\).*fill_zero"
    ):
        frame_to_data(frame(bad), CFG)
    weekly = pd.date_range("2024-01-01", periods=20, freq="7D")
    odd = weekly.delete(8).insert(8, weekly[8] + pd.Timedelta(days=3))
    with pytest.raises(DataError) as info:
        frame_to_data(frame(odd), CFG)
    msg = str(info.value)
    assert "dates must be weekly: a step of 10 days between 2024-02-19 and 2024-02-29" in msg
    assert "aggregate the data to one row per week" in msg and "\n" not in msg
    # monthly dates must be month starts or month ends, consistently
    months = pd.date_range("2022-01-01", periods=24, freq="MS")
    mixed = months.delete(5).insert(5, pd.Timestamp("2022-06-15"))
    with pytest.raises(DataError, match=r"2022-06-15 is neither"):
        frame_to_data(frame(mixed), CFG.model_copy(update={"frequency": "monthly"}))
    # a stated frequency the dates do not have
    with pytest.raises(DataError, match=r"dates must be monthly.*set data.frequency: daily \(or auto\)"):
        frame_to_data(frame(dates), CFG.model_copy(update={"frequency": "monthly"}))
    with pytest.raises(DataError, match=r"dates must be daily: a step of 7 days.*the dates look weekly"):
        frame_to_data(frame(weekly), CFG.model_copy(update={"frequency": "daily"}))
    timed = frame(pd.date_range("2024-01-01", periods=10, freq="D"))
    timed["date"] = pd.date_range("2024-01-01 06:00", periods=10, freq="D").strftime("%Y-%m-%d %H:%M")
    with pytest.raises(DataError, match="has a time of day"):
        frame_to_data(timed, CFG)


@pytest.mark.parametrize(("freq", "name"), [("D", "day"), ("MS", "month"), ("ME", "month"), ("14D", "14-day period")])
def test_missing_periods_are_filled(freq, name):
    dates = pd.date_range("2023-01-01" if freq != "ME" else "2023-01-31", periods=30, freq=freq)
    f = frame(dates).drop(index=[7, 8]).reset_index(drop=True)
    with pytest.raises(DataError, match=rf"dates must be consecutive {name}s: .*\(2 missing {name}\(s\) in all\)"):
        frame_to_data(f, CFG)
    with pytest.warns(UserWarning, match=rf"inserted 2 missing {name}\(s\) with zero spend"):
        data = frame_to_data(f, CFG.model_copy(update={"missing_weeks": "fill_zero"}))
    assert data.dates.equals(pd.DatetimeIndex(dates)) and data.n_dates == 30
    np.testing.assert_array_equal(data.media[7:9], 0.0)
    sales = frame(dates)["sales"].to_numpy()
    np.testing.assert_allclose(data.target[7:9], np.interp([7, 8], [6, 9], sales[[6, 9]]))


def test_next_dates_follow_the_calendar():
    assert list(next_dates(pd.Timestamp("2024-01-31"), "monthly", 3).strftime("%m-%d")) == ["02-29", "03-31", "04-30"]
    assert list(next_dates(pd.Timestamp("2024-01-01"), "monthly", 2).strftime("%m-%d")) == ["02-01", "03-01"]
    assert next_dates(pd.Timestamp("2024-02-28"), "daily", 2)[1] == pd.Timestamp("2024-03-01")
    assert next_dates(pd.Timestamp("2024-01-01"), "14D", 1)[0] == pd.Timestamp("2024-01-15")
    grid = full_grid(pd.Timestamp("2023-11-30"), pd.Timestamp("2024-03-31"), "monthly")
    assert list(grid.strftime("%Y-%m-%d")) == ["2023-11-30", "2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31"]
    assert periods_between(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-28"), "daily") == 28
    assert periods_between(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01"), "monthly") == 3
    freq, missing = check_grid(pd.date_range("2024-01-01", periods=5, freq="MS"), "auto")
    assert freq == "monthly" and len(missing) == 0


@pytest.mark.parametrize(
    ("freq", "good", "bad", "words"),
    [
        ("D", "2023-04-11", "2023-04-12", "the daily grid"),
        ("7D", "2023-07-16", "2023-07-17", "the weekly grid"),
        ("ME", "2025-05-31", "2025-06-01", "the monthly grid"),
        ("14D", "2024-01-28", "2024-01-21", "the 14-day grid"),
    ],
)
def test_check_continues_per_frequency(freq, good, bad, words):
    start = "2023-01-31" if freq == "ME" else "2023-01-01"
    dates = pd.date_range(start, periods=100 if freq == "D" else 28, freq=freq)
    mmm = MMM({"channel_columns": ["tv", "search"]}, {"yearly_seasonality": 0})
    mmm.build_model(frame(dates))
    assert mmm.data.frequency == infer_frequency(dates)
    nxt = next_dates(dates[-1], mmm.data.frequency, 1)[0]
    assert nxt == pd.Timestamp(good)
    mmm.check_continues(pd.DatetimeIndex([good]))
    with pytest.raises(DataError, match=rf"new dates must continue {words}: .* \(the next \w[\w-]* ?\w* is {good}\)"):
        mmm.check_continues(pd.DatetimeIndex([bad]))
    with pytest.raises(DataError, match=rf"give only the {period_name(mmm.data.frequency, plural=True)} after it"):
        mmm.check_continues(pd.DatetimeIndex([dates[-1]]))


# ------------------------------------------------------------- seasonality
def test_day_of_week_features_match_a_numpy_reference():
    dates = pd.date_range("2024-03-01", periods=30, freq="D")
    got = day_of_week_features(dates, 3)
    # 1970-01-01 was a Thursday: days since then, mod 7, is (weekday - 3) mod 7 (Monday = 0)
    phase = (dates.day_of_week.to_numpy() - 3) % 7
    for k in range(1, 4):
        np.testing.assert_allclose(got[:, 2 * k - 2], np.sin(2 * np.pi * k * phase / 7), atol=1e-9)
        np.testing.assert_allclose(got[:, 2 * k - 1], np.cos(2 * np.pi * k * phase / 7), atol=1e-9)
    # order 3 spans every zero-mean weekday pattern: a weekday dummy minus its mean is a combination
    design = np.column_stack([np.ones(7), day_of_week_features(dates[:7], 3)])
    monday = (dates[:7].day_of_week == 0).astype(float)
    coef, *_ = np.linalg.lstsq(design, monday, rcond=None)
    np.testing.assert_allclose(design @ coef, monday, atol=1e-9)


def test_weekly_seasonality_follows_the_data():
    daily = frame(pd.date_range("2024-01-01", periods=90, freq="D"))
    mmm = MMM({"channel_columns": ["tv", "search"]}, {"yearly_seasonality": 1})
    mmm.build_model(daily)
    assert mmm.model_config.weekly_seasonality == 3
    names = ["sin_1", "cos_1"] + [f"dow_{k}_{i}" for i in (1, 2, 3) for k in ("sin", "cos")]
    assert mmm.seasonality.feature_names() == names
    assert mmm.variable_dims()["gamma_fourier"] == ("fourier_mode",)
    np.testing.assert_allclose(mmm.spec.training_design()["fourier"][:, 2:], day_of_week_features(mmm.data.dates, 3))
    off = MMM({"channel_columns": ["tv", "search"]}, {"weekly_seasonality": 0})
    off.build_model(daily)
    assert off.seasonality.feature_names() == ["sin_1", "cos_1", "sin_2", "cos_2"]
    weekly = frame(pd.date_range("2024-01-01", periods=60, freq="7D"))
    plain = MMM({"channel_columns": ["tv", "search"]})
    plain.build_model(weekly)
    assert plain.model_config.weekly_seasonality == 0 and plain.seasonality.feature_names()[-1] == "cos_2"
    with pytest.raises(ConfigError, match=r"weekly_seasonality: 2 models the day of the week.*these data are weekly"):
        MMM({"channel_columns": ["tv", "search"]}, {"weekly_seasonality": 2}).build_model(weekly)
    with pytest.raises(ValueError, match="less than or equal to 3"):
        ModelConfig(weekly_seasonality=4)
    assert resolve_weekly_seasonality(ModelConfig(), "monthly").weekly_seasonality == 0


def test_geo_pooling_covers_day_of_week_terms():
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    panel = pd.concat([frame(dates, seed=s).assign(geo=g) for s, g in enumerate(("north", "south"))])
    mmm = MMM(
        {"channel_columns": ["tv", "search"], "geo_column": "geo"},
        {"yearly_seasonality": 0, "geo": {"seasonality": "pooled"}},
    )
    mmm.build_model(panel)
    assert mmm.data.frequency == "daily"
    assert mmm.geo_variables()["seasonality_geo_z"][0] == ("geo", "fourier_mode")
    assert mmm.coords()["fourier_mode"][0] == "dow_sin_1" and len(mmm.coords()["fourier_mode"]) == 6


# ----------------------------------------------------------------- adstock
@pytest.mark.parametrize("l_max", [16, 30])
@pytest.mark.parametrize("normalize", [True, False])
def test_geometric_recursion_equals_the_convolution(l_max, normalize):
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, (200, 3)) * (rng.random((200, 3)) < 0.7)
    alpha = np.array([0.05, 0.6, 0.97])
    ad = GeometricAdstock(l_max=l_max, normalize=normalize)
    got = ad.evaluate(x, alpha=alpha)
    w = alpha[None, :] ** np.arange(l_max)[:, None]
    w = w / w.sum(axis=0) if normalize else w
    ref = np.stack([np.convolve(x[:, c], w[:, c])[: len(x)] for c in range(3)], axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # and its gradient in alpha equals the convolution's
    a = pt.vector("a")
    rec = pt.sum(pt.tanh(ad.apply(x, alpha=a)))
    conv = pt.sum(pt.tanh(convolve(x, ad.weights(alpha=a))))
    mode = numpy_mode()
    g_rec = pytensor.function([a], pytensor.grad(rec, a), mode=mode)(alpha)
    g_conv = pytensor.function([a], pytensor.grad(conv, a), mode=mode)(alpha)
    np.testing.assert_allclose(g_rec, g_conv, rtol=1e-9, atol=1e-9)


def test_geometric_recursion_on_a_geo_layout():
    rng = np.random.default_rng(2)
    x = rng.random((80, 2, 3))
    alpha = rng.uniform(0.2, 0.9, (2, 3))
    got = GeometricAdstock(l_max=20).evaluate(x, alpha=alpha)
    w = alpha[None] ** np.arange(20)[:, None, None]
    w = w / w.sum(axis=0)
    for g in range(2):
        for c in range(3):
            np.testing.assert_allclose(got[:, g, c], np.convolve(x[:, g, c], w[:, g, c])[:80], rtol=1e-12)


# ---------------------------------------------------------------- warnings
def test_few_periods_warning():
    assert few_periods_warning(1095, "daily", 60, 28, 2) is None
    msg = few_periods_warning(46, "monthly", 29, 2, 2)
    assert msg.startswith("few months identify this model: 46 months for 29 mean parameters (1.6 per parameter")
    msg = few_periods_warning(30, "monthly", 8, 12, 2)
    assert "carry-over over 12 months (l_max) is more than a quarter of the data" in msg
    assert "yearly seasonality (order 2) from 2.5 years" not in msg
    assert "from 1.2 years" in few_periods_warning(14, "monthly", 3, 1, 2)


# ------------------------------------------------------------- real fits
def daily_frame(days: int, seed: int = 5) -> pd.DataFrame:
    """Daily data with a weekday pattern and two channels with geometric carry-over (14 days)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    spend = rng.gamma(3.0, 10.0, (days, 2)) * (rng.random((days, 2)) < 0.8)
    w = 0.6 ** np.arange(14)
    ad = np.stack([np.convolve(spend[:, c], w / w.sum())[:days] for c in range(2)], axis=1)
    sales = 200 + np.array([10, 0, -5, 0, 15, 40, 30])[dates.day_of_week] + 1.5 * ad[:, 0] + 0.8 * ad[:, 1]
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "sales": sales + rng.normal(0, 4, days),
            "tv": spend[:, 0],
            "search": spend[:, 1],
        }
    )


def test_daily_fit_predicts_the_next_days(tmp_path):
    data = daily_frame(130)
    train, test = data.iloc[:120], data.iloc[120:]
    mmm = MMM(
        {"channel_columns": ["tv", "search"]},
        {"adstock": {"name": "geometric", "l_max": 21}, "yearly_seasonality": 0, "saturation": "logistic"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mmm.fit(train, **SAMPLER)
    assert mmm.data.frequency == "daily" and mmm.model_config.weekly_seasonality == 3
    pred = mmm.predict(test)
    assert list(pd.DatetimeIndex(pred["date"].values)) == list(pd.to_datetime(test["date"]))
    mean = pred["mu"].mean(("chain", "draw")).to_numpy()
    # the weekday pattern is forecast: the error is a fraction of the pattern's size (55)
    truth = test["sales"].to_numpy()
    assert np.sqrt(np.mean((mean - truth) ** 2)) < 15, np.sqrt(np.mean((mean - truth) ** 2))
    # saved with its frequency; predicts the same after loading
    path = mmm.save(tmp_path / "posterior.nc")
    loaded = MMM.load(path)
    assert loaded.data.frequency == "daily" and loaded.model_config.weekly_seasonality == 3
    np.testing.assert_allclose(loaded.predict(test)["mu"].to_numpy(), pred["mu"].to_numpy())
    with pytest.raises(DataError, match=r"new dates must continue the daily grid"):
        loaded.check_continues(pd.DatetimeIndex(["2024-05-02"]))


def test_old_model_files_load_as_weekly():
    from pathlib import Path

    ref = Path(__file__).parent / "reference" / "national.nc"
    mmm = MMM.load(ref)
    assert mmm.data.frequency == "weekly" and mmm.model_config.weekly_seasonality == 0


def robyn_monthly() -> pd.DataFrame:
    from bayesmmm.datasets import dataset_path

    weekly = pd.read_csv(dataset_path("robyn_simulated"))
    weekly["DATE"] = pd.to_datetime(weekly["DATE"])
    cols = ["revenue", "tv_S", "ooh_S", "print_S", "facebook_S", "search_S", "competitor_sales_B", "newsletter"]
    monthly = weekly.groupby(weekly["DATE"].dt.to_period("M"))[cols].sum()
    monthly = monthly.iloc[1:-1]  # drop the partial first and last months
    monthly.index = monthly.index.to_timestamp()  # month starts
    return monthly.rename_axis("DATE").reset_index()


def test_monthly_robyn_data_fits_warns_and_forecasts():
    months = robyn_monthly()
    assert len(months) == 47 and infer_frequency(pd.DatetimeIndex(months["DATE"])) == "monthly"
    train, test = months.iloc[:44], months.iloc[44:]
    mmm = MMM(
        {
            "date_column": "DATE",
            "target_column": "revenue",
            "channel_columns": ["tv_S", "ooh_S", "print_S", "facebook_S", "search_S"],
            "control_columns": ["competitor_sales_B", "newsletter"],
        },
        {"adstock": {"name": "geometric", "l_max": 2}, "saturation": "hill", "yearly_seasonality": 2},
    )
    with pytest.warns(UserWarning, match=r"few months identify this model: 44 months for \d+ mean parameters"):
        mmm.fit(train, **SAMPLER)
    assert mmm.data.frequency == "monthly" and mmm.model_config.weekly_seasonality == 0
    pred = mmm.predict(test)
    assert list(pd.DatetimeIndex(pred["date"].values).strftime("%Y-%m-%d")) == [
        "2019-08-01",
        "2019-09-01",
        "2019-10-01",
    ]
    mean = pred["mu"].mean(("chain", "draw")).to_numpy()
    truth = test["revenue"].to_numpy()
    assert np.all(np.abs(mean / truth - 1) < 0.3), mean / truth
    from bayesmmm.evaluation.summaries import roas_table

    assert np.isfinite(roas_table(mmm)["roas_mean"]).all()
    with pytest.raises(DataError, match=r"monthly grid: .*the next month is 2019-08-01"):
        mmm.check_continues(pd.DatetimeIndex(["2019-08-08"]))


def test_convolution_graphs_builds_the_convolution_with_the_same_numbers():
    """Batched NumPy evaluation builds the convolution (a scan steps through dates in Python);
    the sampling graph keeps the recursion; both give the same adstock."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.scan.op import Scan

    from bayesmmm.components.adstock import ADSTOCKS, convolution_graphs

    adstock = ADSTOCKS.get("geometric")(l_max=30)
    x = np.random.default_rng(3).gamma(2.0, size=(90, 2))
    alpha = np.array([0.4, 0.85])

    def build():
        out = adstock.apply(pt.as_tensor_variable(x), alpha=pt.as_tensor_variable(alpha))
        fn = pytensor.function([], out)
        return fn, any(isinstance(node.op, Scan) for node in fn.maker.fgraph.toposort())

    recursive, has_scan = build()
    with convolution_graphs():
        convolved, conv_has_scan = build()
    assert has_scan and not conv_has_scan
    np.testing.assert_allclose(recursive(), convolved(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", ["national", "geo"])
def test_batched_numpy_recursion_equals_a_loop_over_draws(layout):
    """Inside ``convolution_graphs`` the geometric adstock is one batched NumPy op (no scan, no
    Blockwise loop over draws) and ``vectorize_graph`` keeps it one node; every draw equals
    ``np.convolve`` with that draw's normalized weights."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph
    from pytensor.scan.op import Scan
    from pytensor.tensor.blockwise import Blockwise

    from bayesmmm.components.adstock import ADSTOCKS, convolution_graphs
    from bayesmmm.components.recursion import GeometricRecursion

    rng = np.random.default_rng(4)
    l_max, draws = 21, 7
    shape = (120, 3) if layout == "national" else (120, 2, 3)
    x = rng.gamma(2.0, size=shape) * (rng.random(shape) < 0.6)
    alphas = rng.uniform(0.05, 0.97, (draws, 3))
    a = pt.vector("a")
    with convolution_graphs():
        out = ADSTOCKS.get("geometric")(l_max=l_max).apply(pt.as_tensor_variable(x), alpha=a)
    a_draws = pt.matrix("a_draws")
    fn = pytensor.function([a_draws], vectorize_graph(out, {a: a_draws}), mode=numpy_mode())
    ops = [node.op for node in fn.maker.fgraph.toposort()]
    assert any(isinstance(op, GeometricRecursion) for op in ops)
    assert not any(isinstance(op, Scan | Blockwise) for op in ops)
    got = fn(alphas)
    assert got.shape == (draws, *shape)
    flat = x.reshape(len(x), -1)
    for d in range(draws):
        w = alphas[d][None] ** np.arange(l_max)[:, None]
        w = w / w.sum(axis=0)
        cols = np.broadcast_to(w.reshape(l_max, *[1] * (len(shape) - 2), 3), (l_max, *shape[1:])).reshape(l_max, -1)
        ref = np.stack([np.convolve(flat[:, j], cols[:, j])[: len(x)] for j in range(flat.shape[1])], axis=1)
        np.testing.assert_allclose(got[d].reshape(len(x), -1), ref, rtol=1e-11, atol=1e-12)


def test_batched_recursion_with_batched_data_and_parameters():
    """Both inputs batched (a what-if design per draw): the same as one call per draw."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.recursion import geometric_recursion_numpy

    rng = np.random.default_rng(5)
    x, a = pt.matrix("x"), pt.vector("a")
    out = geometric_recursion_numpy(x, a, l_max=16)
    xs, alphas = rng.random((4, 60, 2)), rng.uniform(0.1, 0.9, (4, 2))
    xb, ab = pt.tensor3("xb"), pt.matrix("ab")
    batched = pytensor.function([xb, ab], vectorize_graph(out, {x: xb, a: ab}), mode=numpy_mode())(xs, alphas)
    single = pytensor.function([x, a], out, mode=numpy_mode())
    for d in range(4):
        np.testing.assert_allclose(batched[d], single(xs[d], alphas[d]), rtol=1e-13)
    with pytest.raises(ValueError, match="more than x"):
        geometric_recursion_numpy(pt.vector("v"), a, l_max=16)
