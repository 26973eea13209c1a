"""Data validation: each bad input gets a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmmm import DataConfig, DataError
from bayesmmm.data.loading import frame_to_data, read_csv

CFG = DataConfig(channel_columns=["tv", "search"], control_columns=["promo"])


def good_frame(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
            "sales": rng.normal(100, 5, n),
            "tv": rng.gamma(2, 100, n),
            "search": rng.gamma(2, 50, n),
            "promo": rng.binomial(1, 0.2, n),
        }
    )


def test_good_frame_sorted():
    frame = good_frame().iloc[::-1]
    data = frame_to_data(frame, CFG)
    assert data.dates.is_monotonic_increasing
    assert data.media.shape == (20, 2) and data.controls.shape == (20, 1)
    np.testing.assert_allclose(data.target, good_frame()["sales"].to_numpy())


def broken(kind: str) -> pd.DataFrame:
    f = good_frame()
    if kind == "missing":
        f = f.rename(columns={"search": "serch"})
    elif kind == "nan":
        f.loc[3, "tv"] = np.nan
    elif kind == "text":
        f["tv"] = f["tv"].astype(object)
        f.loc[2, "tv"] = "n/a"
    elif kind == "negative":
        f.loc[5, "search"] = -1.0
    elif kind == "duplicate":
        f.loc[4, "date"] = f.loc[3, "date"]
    elif kind == "gap":
        f = f.drop(index=7)
    elif kind == "daily":
        f["date"] = pd.date_range("2024-01-01", periods=len(f), freq="D").strftime("%Y-%m-%d")
    elif kind == "baddate":
        f.loc[1, "date"] = "yesterday"
    elif kind == "inf":
        f.loc[1, "sales"] = np.inf
    elif kind == "monthly":
        f["date"] = pd.date_range("2024-01-01", periods=len(f), freq="MS").strftime("%Y-%m-%d")
    elif kind == "four_weekly":
        f["date"] = pd.date_range("2024-01-01", periods=len(f), freq="28D").strftime("%Y-%m-%d")
    return f


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "'search' (did you mean 'serch'?) not found"),
        ("nan", "'tv' has a missing value at row 5 of the file (date 2024-01-22)"),
        ("text", "non-numeric value 'n/a'"),
        ("negative", "negative spend -1 at row 7 (date 2024-02-05)"),
        ("duplicate", "2024-01-22 appears more than once (rows 5, 6)"),
        ("gap", "a gap of 14 days between 2024-02-12 and 2024-02-26 (1 missing week(s) in all)"),
        ("daily", "dates must be weekly: a step of 1 days"),
        ("baddate", "unparseable value 'yesterday'"),
        ("inf", "'sales' has an infinite value at row 3"),
        ("monthly", "a step of 31 days"),
        ("four_weekly", "a step of 28 days between 2024-01-01 and 2024-01-29 (median step 28 days)"),
    ],
)
def test_bad_data_is_named(kind, expected):
    # data.frequency: auto reads daily, monthly and four-weekly dates as such; stated weekly, they are refused
    cfg = CFG.model_copy(update={"frequency": "weekly"}) if kind in ("daily", "monthly", "four_weekly") else CFG
    with pytest.raises(DataError) as info:
        frame_to_data(broken(kind), cfg)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_rows_are_file_lines_even_when_unsorted():
    frame = good_frame().iloc[::-1].reset_index(drop=True)  # file row 2 holds the last week
    frame.loc[0, "tv"] = np.nan
    with pytest.raises(DataError, match=r"missing value at row 2 of the file \(date 2024-05-13\)"):
        frame_to_data(frame, CFG)


def test_negative_spend_clip_option():
    frame = broken("negative")
    with pytest.raises(DataError, match=r"set data\.negative_spend: clip"):
        frame_to_data(frame, CFG)
    with pytest.warns(UserWarning, match="set 1 negative spend value"):
        data = frame_to_data(frame, CFG.model_copy(update={"negative_spend": "clip"}))
    assert data.media[5, 1] == 0.0 and (data.media >= 0).all()


def test_missing_weeks_fill_zero_option():
    frame = good_frame().drop(index=[7, 8])
    with pytest.raises(DataError, match=r"set data\.missing_weeks: fill_zero"):
        frame_to_data(frame, CFG)
    with pytest.warns(UserWarning, match=r"inserted 2 missing week\(s\) with zero spend \(2024-02-19, 2024-02-26\)"):
        data = frame_to_data(frame, CFG.model_copy(update={"missing_weeks": "fill_zero"}))
    assert data.n_dates == 20 and (pd.Series(data.dates).diff().dropna() == pd.Timedelta(days=7)).all()
    np.testing.assert_array_equal(data.media[7:9], 0.0)
    np.testing.assert_array_equal(data.controls[7:9], 0.0)
    sales = good_frame()["sales"].to_numpy()
    np.testing.assert_allclose(data.target[7:9], np.interp([7, 8], [6, 9], sales[[6, 9]]))
    # a step that is not a whole number of weeks is never filled
    with pytest.raises(DataError, match="dates must be weekly"):
        frame_to_data(broken("daily"), CFG.model_copy(update={"missing_weeks": "fill_zero", "frequency": "weekly"}))


def test_repair_options_round_trip_and_reject_unknown_values():
    cfg = CFG.model_copy(update={"negative_spend": "clip", "missing_weeks": "fill_zero"})
    assert DataConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(ValueError, match="'error' or 'clip'"):
        DataConfig(channel_columns=["tv"], negative_spend="drop")


def test_too_few_rows():
    with pytest.raises(DataError, match=r"at least 30 .*supply more weeks, or simplify the model"):
        frame_to_data(good_frame(10), CFG, min_rows=30)
    with pytest.raises(DataError, match="no rows"):
        frame_to_data(good_frame().iloc[:0], CFG)


def test_read_csv_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_csv(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_csv(empty)
    header = tmp_path / "header.csv"
    header.write_text("date,sales\n")
    with pytest.raises(DataError, match="no rows"):
        read_csv(header)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("sales", 5.0, "the target column 'sales' is constant"),
        ("sales", 0.0, "the target column 'sales' is zero in every week"),
        ("promo", 1.0, "control 'promo' does not vary"),
        ("promo", 0.0, "control 'promo' does not vary"),
        ("tv", 0.0, "channel 'tv' has zero spend in every week"),
    ],
)
def test_degenerate_columns_fail_before_compiling(column, value, expected):
    from bayesmmm import MMM

    frame = good_frame(30)
    frame[column] = value
    mmm = MMM(CFG, {"yearly_seasonality": 0})
    with pytest.raises(DataError, match=expected):
        mmm.build_model(frame)
