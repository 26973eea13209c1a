"""Property-based tests (hypothesis): transforms, the CSV loader and the YAML loader."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bayesmmm import ADSTOCKS, SATURATIONS, ConfigError, DataConfig, DataError, ExperimentConfig
from bayesmmm.config.experiment import DiagnosticsConfig, ModelConfig, SamplerConfig, format_validation_error
from bayesmmm.data.loading import frame_to_data

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


# ------------------------------------------------------------------ raw files and repair options
@FAST
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_read_csv_any_bytes_loads_or_names_the_problem(content, tmp_path_factory):
    from bayesmmm.data.loading import read_csv

    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(content)
    try:
        frame = read_csv(path)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    try:
        frame_to_data(frame, CFG)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)


@FAST
@given(
    steps=st.lists(st.sampled_from([7, 7, 7, 14, 21, 1, 0, 8]), min_size=1, max_size=15),
    spends=st.lists(st.floats(-100, 1e4, allow_nan=False), min_size=16, max_size=16),
    columns=st.sets(st.sampled_from(["date", "sales", "tv", "search", "promo", "extra"]), min_size=1),
    negative_spend=st.sampled_from(["error", "clip"]),
    missing_weeks=st.sampled_from(["error", "fill_zero"]),
    require_target=st.booleans(),
)
def test_repair_options_give_a_weekly_grid_or_an_error(
    steps, spends, columns, negative_spend, missing_weeks, require_target
):
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.cumsum([0, *steps]), unit="D")
    n = len(dates)
    full = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "sales": np.linspace(10, 20, n),
            "tv": spends[:n],
            "search": spends[::-1][:n],
            "promo": np.arange(n) % 2,
            "extra": 1.0,
        }
    )
    cfg = CFG.model_copy(
        update={"negative_spend": negative_spend, "missing_weeks": missing_weeks, "frequency": "weekly"}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            data = frame_to_data(full[sorted(columns)], cfg, require_target=require_target)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert (np.diff(data.dates.values).astype("timedelta64[D]").astype(int) == 7).all()
    assert np.isfinite(data.media).all() and (data.media >= 0).all()
    assert data.media.shape == (data.n_dates, 2) and data.controls.shape == (data.n_dates, 1)
    if require_target:
        assert np.isfinite(data.target).all() and len(data.target) == data.n_dates
    assert data.n_dates == (data.dates[-1] - data.dates[0]).days // 7 + 1


# ------------------------------------------------------------------ YAML: nested sections and raw text
def _section(model) -> st.SearchStrategy:
    """Dicts with a section's real keys (and near misses) and arbitrary values."""
    names = [*model.model_fields, *(k[:-1] for k in model.model_fields if len(k) > 3)]
    return st.dictionaries(st.sampled_from(names), yaml_value, max_size=4)


@FAST
@given(
    sampler=_section(SamplerConfig),
    model=_section(ModelConfig),
    data=_section(DataConfig),
    diagnostics=_section(DiagnosticsConfig),
)
def test_yaml_sections_fuzzed_validate_or_explain(sampler, model, data, diagnostics, tmp_path_factory):
    from bayesmmm import load_experiment

    data.setdefault("channel_columns", ["a"])
    raw = {"data": data, "model": model, "sampler": sampler, "diagnostics": diagnostics}
    path = tmp_path_factory.mktemp("y") / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        config = load_experiment(path)
    except ConfigError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    assert ExperimentConfig.model_validate(config.to_dict()) == config


@FAST
@given(text=st.text(max_size=200))
def test_yaml_any_text_validates_or_explains(text, tmp_path_factory):
    from bayesmmm import load_experiment

    path = tmp_path_factory.mktemp("y") / "exp.yaml"
    path.write_text(text)
    try:
        load_experiment(path)
    except ConfigError as exc:
        assert str(exc).strip()


@FAST
@given(
    key=st.lists(
        st.sampled_from(["sampler", "model", "data", "draws", "adstock", "name", "x", "0"]), min_size=1, max_size=3
    ).map(".".join),
    value=yaml_value,
)
def test_command_line_overrides_validate_or_explain(key, value, tmp_path_factory):
    from bayesmmm import load_experiment

    path = tmp_path_factory.mktemp("y") / "exp.yaml"
    path.write_text("data: {channel_columns: [a]}\nmodel: {adstock: geometric}\n")
    try:
        load_experiment(path, {key: value})
    except ConfigError as exc:
        assert str(exc).strip()


@settings(FAST, max_examples=15)
@given(
    x=spend,
    a=st.floats(0.01, 0.99),
    l_max=st.integers(1, 10),
    normalize=st.booleans(),
    name=st.sampled_from(ADSTOCKS.names()),
)
def test_adstock_zero_in_zero_out_and_nonnegative(x, a, l_max, normalize, name):
    adstock = ADSTOCKS.get(name)(l_max=l_max, normalize=normalize)
    params = {p: np.full(2, a if i == 0 else 1.5) for i, p in enumerate(adstock.param_names)}
    np.testing.assert_array_equal(adstock.evaluate(np.zeros_like(x), **params), 0.0)
    out = adstock.evaluate(x, **params)
    assert np.all(np.isfinite(out)) and np.all(out >= -1e-12)
