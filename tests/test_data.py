"""Data validation: each bad input gets a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmmm import DataConfig, DataError
from bayesmmm.data import frame_to_data, read_csv

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
    return f


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "'search' (did you mean 'serch'?) not found"),
        ("nan", "'tv' has a missing or infinite value at row 5"),
        ("text", "non-numeric value 'n/a'"),
        ("negative", "negative spend"),
        ("duplicate", "appears more than once"),
        ("gap", "a gap of 14 days"),
        ("daily", "non-weekly step"),
        ("baddate", "unparseable value 'yesterday'"),
        ("inf", "'sales' has a missing or infinite value"),
    ],
)
def test_bad_data_is_named(kind, expected):
    with pytest.raises(DataError) as info:
        frame_to_data(broken(kind), CFG)
    assert expected in str(info.value)


def test_too_few_rows():
    with pytest.raises(DataError, match="at least 30"):
        frame_to_data(good_frame(10), CFG, min_rows=30)


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
        ("sales", 5.0, "the target is constant"),
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
