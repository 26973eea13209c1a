"""Property-based tests (hypothesis): transforms, the CSV loader and the YAML loader."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bayesmmm import ADSTOCKS, SATURATIONS, ConfigError, DataConfig, DataError, ExperimentConfig
from bayesmmm.config import format_validation_error
from bayesmmm.data import frame_to_data

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
spend = arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=st.floats(0, 1e3))
positive = st.floats(0.05, 5.0)


@FAST
@given(x=spend, a=positive, b=positive, name=st.sampled_from(SATURATIONS.names()))
def test_saturation_monotone_bounded_zero(x, a, b, name):
    sat = SATURATIONS.get(name)()
    params = {p: np.array([a, b]) for p in sat.param_names}
    grid = np.sort(np.concatenate([x, np.zeros((1, 2))]), axis=0)
    y = sat.evaluate(grid, **params)
    assert np.all(np.isfinite(y))
    assert np.all(y >= 0) and np.all(y <= 1 + 1e-12)
    assert np.all(np.diff(y, axis=0) >= -1e-12)
    np.testing.assert_array_equal(y[0], 0.0)


@FAST
@given(
    x=spend,
    a=st.floats(0.01, 0.99),
    b=st.floats(0.2, 4.0),
    l_max=st.integers(1, 10),
    name=st.sampled_from(ADSTOCKS.names()),
)
def test_normalized_adstock_conserves_mass(x, a, b, l_max, name):
    adstock = ADSTOCKS.get(name)(l_max=l_max)
    params = {p: np.array([a, b][:1] * 2) if i == 0 else np.array([b, b]) for i, p in enumerate(adstock.param_names)}
    padded = np.vstack([x, np.zeros((l_max, 2))])  # room for the carry-over to land
    out = adstock.evaluate(padded, **params)
    np.testing.assert_allclose(out.sum(axis=0), padded.sum(axis=0), rtol=1e-9, atol=1e-9)
    assert np.all(out >= -1e-12)
    np.testing.assert_array_equal(adstock.evaluate(np.zeros_like(padded), **params), 0.0)


CFG = DataConfig(channel_columns=["tv", "search"], control_columns=["promo"])
cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.text(max_size=4), st.none())


@FAST
@given(
    n=st.integers(1, 12),
    corrupt=st.lists(
        st.tuples(st.integers(0, 11), st.sampled_from(["date", "sales", "tv", "search", "promo"]), cell), max_size=4
    ),
    drop=st.sampled_from([None, "tv", "promo", "date"]),
)
def test_csv_loader_either_loads_or_names_the_problem(n, corrupt, drop):
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
            "sales": np.arange(n, dtype=float) + 10,
            "tv": np.ones(n),
            "search": np.ones(n),
            "promo": np.zeros(n),
        }
    ).astype(object)
    for row, col, value in corrupt:
        if row < n:
            frame.loc[row, col] = value
    if drop:
        frame = frame.drop(columns=[drop])
    text = frame.to_csv(index=False)
    parsed = pd.read_csv(io.StringIO(text))
    try:
        data = frame_to_data(parsed, CFG)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert np.isfinite(data.media).all() and (data.media >= 0).all()
    assert np.isfinite(data.target).all() and data.dates.is_monotonic_increasing


yaml_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(["data", "model", "sampler", "diagnostics", "output", "selection", "plugins", "name", "dat"])


@FAST
@given(raw=st.dictionaries(keys, yaml_value, max_size=4))
def test_yaml_loader_either_validates_or_explains(raw, tmp_path_factory):
    raw.setdefault("data", {"channel_columns": ["a"]})
    raw.pop("plugins", None)  # importing arbitrary modules is not a property to fuzz
    path = tmp_path_factory.mktemp("y") / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    from bayesmmm import load_experiment

    try:
        config = load_experiment(path)
    except ConfigError as exc:
        assert str(exc).strip()
        return
    assert ExperimentConfig.model_validate(config.to_dict()) == config


def test_format_validation_error_is_one_line_per_problem():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate({"data": {"channel_columns": "tv"}, "samplr": 1})
    lines = format_validation_error(info.value, "x.yaml").splitlines()
    assert len(lines) == 2 and all(line.startswith("x.yaml: ") for line in lines)
