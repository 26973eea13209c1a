"""Organic media, treatments and categorical events (bayesmmm.data.roles, issue 25 item 4).

The mean's role components are checked against NumPy references on arbitrary parameter draws
(no MCMC); one small real fit recovers known effects of data simulated here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmmm.config.experiment import ConfigError, DataConfig
from bayesmmm.data.loading import DataError, frame_to_data
from bayesmmm.data.roles import (
    RoleEncoding,
    RoleError,
    encode_events,
    event_levels,
    parse_settings,
    set_columns,
)
from bayesmmm.model.mmm import MMM

N = 120


def _frame(seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-01-04", periods=n, freq="7D")
    events = rng.choice(["na", "sale", "holiday"], n, p=[0.7, 0.2, 0.1]).astype(object)
    events[3] = None  # missing: the level "na"
    events[5] = ""
    return pd.DataFrame(
        {
            "date": dates,
            "tv": rng.gamma(2.0, 50.0, n),
            "newsletter": rng.gamma(2.0, 10.0, n) * (rng.random(n) > 0.2),
            "price": 1.0 + 0.05 * rng.standard_normal(n),
            "promo": rng.integers(0, 3, n).astype(float),
            "events": events,
            "ctl": rng.standard_normal(n),
            "sales": 100 + rng.standard_normal(n),
        }
    )


CONFIG = {
    "channel_columns": ["tv"],
    "control_columns": ["ctl"],
    "organic_columns": ["newsletter"],
    "treatment_columns": ["price", "promo"],
    "treatment_baseline": {"price": 1.0, "promo": "min"},
    "event_columns": ["events"],
}


def _draws(mmm: MMM, n: int = 7, seed: int = 1) -> dict[str, np.ndarray]:
    """Arbitrary draws of every free variable, in their priors' supports."""
    rng = np.random.default_rng(seed)
    shapes = {d: len(v) for d, v in mmm.coords().items() if d != "date"}
    out = {}
    for name, dims in mmm.variable_dims().items():
        shape = (n, *(shapes[d] for d in dims))
        if "alpha" in name:
            out[name] = rng.uniform(0.2, 0.8, shape)
        elif name.startswith(("beta", "saturation", "sigma", "contribution_share")):
            out[name] = rng.uniform(0.2, 2.0, shape)
        else:
            out[name] = rng.normal(0.0, 0.5, shape)
    return out


# --------------------------------------------------------------------- encoding
def test_event_reference_is_the_most_frequent_level_and_missing_is_na():
    values = ["sale", "na", None, "", "holiday", "na", "sale", float("nan")]
    reference, levels = event_levels("events", values)
    assert reference == "na"  # na (2) + None + "" + NaN = 5 rows
    assert levels == ("holiday", "sale")
    dummies = encode_events("events", values, reference, levels)
    expected = np.array([[0, 1], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=float)
    np.testing.assert_array_equal(dummies, expected)
    with pytest.raises(RoleError, match=r"'black_friday'.*known levels"):
        encode_events("events", ["black_friday"], reference, levels)
    with pytest.raises(RoleError, match="one level only"):
        event_levels("events", ["na", "na", None])
    assert event_levels("e", ["b", "a", "b", "a"]) == ("a", ("b",))  # ties: first in sorted order


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("min", lambda x: x.min()), ("mean", lambda x: x.mean()), (1.02, lambda x: 1.02)],
)
def test_treatment_baselines(rule, expected):
    frame = _frame()
    config = DataConfig.model_validate({**CONFIG, "treatment_baseline": rule})
    data = frame_to_data(frame, config)
    for name in ("price", "promo"):
        assert data.encoding.baselines[name] == pytest.approx(expected(frame[name].to_numpy()))


def test_roles_config_errors():
    with pytest.raises(ValueError, match="more than one role"):
        DataConfig.model_validate({"channel_columns": ["tv"], "organic_columns": ["tv"]})
    with pytest.raises(ValueError, match="not in treatment_columns"):
        DataConfig.model_validate({**CONFIG, "treatment_baseline": {"nope": "min"}})
    with pytest.raises(ValueError):
        DataConfig.model_validate({**CONFIG, "treatment_baseline": "median"})
    frame = _frame()
    frame.loc[4, "newsletter"] = -1.0
    with pytest.raises(DataError, match="organic column 'newsletter' has a negative value"):
        frame_to_data(frame, DataConfig.model_validate(CONFIG))
    with pytest.raises(DataError, match=r"organic column.*'newsleter'"):
        frame_to_data(_frame(), DataConfig.model_validate({**CONFIG, "organic_columns": ["newsleter"]}))


def test_encoding_round_trips_json():
    enc = RoleEncoding(baselines={"price": 0.95}, events={"events": ("na", ("holiday", "sale"))})
    assert RoleEncoding.from_json(enc.to_json()) == enc
    assert RoleEncoding.from_json(None) == RoleEncoding()


# ------------------------------------------------------------- mean components
@pytest.fixture(scope="module")
def bound() -> tuple[MMM, pd.DataFrame]:
    frame = _frame()
    mmm = MMM(CONFIG, {"adstock": {"name": "geometric", "l_max": 6}, "saturation": "logistic"})
    mmm.build_model(frame)
    return mmm, frame


def _geometric_logistic(x: np.ndarray, alpha: float, lam: float, l_max: int) -> np.ndarray:
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    carried = np.array([sum(w[lag] * x[t - lag] for lag in range(l_max) if t - lag >= 0) for t in range(len(x))])
    return np.tanh(lam * carried / 2.0)


def test_role_components_match_numpy(bound):
    mmm, frame = bound
    spec = mmm.spec
    draws = _draws(mmm)
    comps = mmm.evaluate(*spec.history_inputs(), draws=draws)
    s_y = spec.scales.target
    # organic: its own adstock and saturation, parameters suffixed _organic, scaled like media
    x = frame["newsletter"].to_numpy() / spec.scales.organic[0]
    for k in range(len(draws["beta_organic"])):
        ref = (
            _geometric_logistic(x, draws["adstock_alpha_organic"][k, 0], draws["saturation_lam_organic"][k, 0], 6)
            * draws["beta_organic"][k, 0]
        )
        np.testing.assert_allclose(comps["organic"][k, :, 0], ref * s_y, rtol=1e-10)
    # treatments: gamma · (x − baseline) / max|x − baseline|, in target units
    for j, (name, base) in enumerate((("price", 1.0), ("promo", frame["promo"].min()))):
        xj = frame[name].to_numpy()
        scale = np.abs(xj - base).max()
        ref = draws["gamma_treatment"][:, j : j + 1] * (xj - base)[None] / scale * s_y
        np.testing.assert_allclose(comps["treatments"][..., j], ref, rtol=1e-10)
    # events: one effect per non-reference level, named column[level]
    assert spec.events == ("events[holiday]", "events[sale]")
    text = frame["events"].fillna("na").replace("", "na").to_numpy()
    for j, level in enumerate(("holiday", "sale")):
        ref = draws["gamma_event"][:, j : j + 1] * (text == level)[None] * s_y
        np.testing.assert_allclose(comps["events"][..., j], ref, rtol=1e-10)
    # the mean adds them up
    total = sum(comps[k] if comps[k].ndim == 2 else comps[k].sum(-1) for k in comps)
    mu = mmm.predictive.predict_draws(*spec.history_inputs(), include_history=False, draws=draws)["mu"]
    np.testing.assert_allclose(mu, total, rtol=1e-10)


def test_organic_is_not_a_channel(bound):
    mmm = bound[0]
    spec = mmm.spec
    assert spec.channels == ("tv",)
    assert spec.coords()["organic"] == ["newsletter"]
    dims = spec.variable_dims
    assert dims["beta_organic"] == ("organic",) and dims["adstock_alpha_organic"] == ("organic",)
    assert dims["beta"] == ("channel",) and "adstock_alpha" in dims
    assert spec.scales.media == (pytest.approx(spec.data.media[spec.data.media[:, 0] > 0, 0].mean()),)
    # the optimizer's and ROAS's engine sees the channels only
    totals = mmm.media_totals([1.0], _draws(mmm))
    assert totals.shape[-1] == 1


# ------------------------------------------------------------------- a real fit
def _simulate(seed: int = 3, n: int = 156) -> tuple[pd.DataFrame, dict]:
    """Weekly data with known effects: tv (paid), newsletter (organic, geometric + logistic), a price
    treatment (baseline 1.0) and a categorical event."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-06", periods=n, freq="7D")
    tv = rng.gamma(3.0, 30.0, n)
    news = rng.gamma(2.0, 20.0, n) * (rng.random(n) > 0.3)
    price = 1.0 + 0.08 * rng.standard_normal(n)
    events = rng.choice(["na", "sale", "launch"], n, p=[0.75, 0.15, 0.10])

    def geo_log(x, alpha, lam, l_max=8):
        w = alpha ** np.arange(l_max)
        w = w / w.sum()
        carried = np.convolve(x, w)[: len(x)]
        return np.tanh(lam * carried / 2.0)

    truth = {"price_per_unit": -400.0, "sale": 60.0, "launch": -40.0}
    tv_c = 150.0 * geo_log(tv / tv.mean(), 0.4, 1.0)
    news_c = 80.0 * geo_log(news / news[news > 0].mean(), 0.5, 1.2)
    price_c = truth["price_per_unit"] * (price - 1.0)
    event_c = np.where(events == "sale", truth["sale"], 0.0) + np.where(events == "launch", truth["launch"], 0.0)
    y = 1000.0 + tv_c + news_c + price_c + event_c + rng.normal(0.0, 10.0, n)
    truth["newsletter_total"] = float(news_c.sum())
    truth["price_total"] = float(price_c.sum())
    frame = pd.DataFrame({"date": dates, "tv": tv, "newsletter": news, "price": price, "events": events, "sales": y})
    return frame, truth


@pytest.fixture(scope="module")
def roles_fit():
    frame, truth = _simulate()
    mmm = MMM(
        {
            "channel_columns": ["tv"],
            "organic_columns": ["newsletter"],
            "treatment_columns": ["price"],
            "treatment_baseline": 1.0,
            "event_columns": ["events"],
        },
        {"yearly_seasonality": 0, "trend": "none"},
    )
    mmm.fit(frame, backend="nutpie", chains=2, draws=300, tune=400, seed=5, progressbar=False)
    return mmm, frame, truth


def test_fit_recovers_organic_treatment_and_event_effects(roles_fit):
    from bayesmmm.evaluation.summaries import contributions_table, roas_table, roles_table

    mmm, frame, truth = roles_fit
    roles = roles_table(mmm).set_index("name")
    assert list(roles.index) == ["newsletter", "price", "events[launch]", "events[sale]"]
    assert list(roles["role"]) == ["organic", "treatment", "event", "event"]
    n_sale = int((frame["events"] == "sale").sum())
    n_launch = int((frame["events"] == "launch").sum())
    sale, launch = roles.loc["events[sale]"], roles.loc["events[launch]"]
    # each level's total against the reference (na): within 25% of the truth and 3.5 posterior sd of it
    # (the noise of the few weeks of a level moves its estimate: launch's 17 weeks, measured -781 ± 45
    # against -680, 2.2 sd)
    for row, total in ((sale, truth["sale"] * n_sale), (launch, truth["launch"] * n_launch)):
        sd = (row["contribution_hdi_high"] - row["contribution_hdi_low"]) / 3.29
        assert abs(row["contribution_mean"] - total) < 3.5 * sd
        assert row["contribution_mean"] == pytest.approx(total, rel=0.25)
    assert sale["reference"] == "na"
    price = roles.loc["price"]
    assert price["baseline"] == 1.0
    assert price["contribution_hdi_low"] <= truth["price_total"] <= price["contribution_hdi_high"]
    gamma = mmm.idata["posterior"]["gamma_treatment"].mean().item()
    per_unit = gamma * mmm.scales.target / mmm.scales.treatments[0]
    assert per_unit == pytest.approx(truth["price_per_unit"], rel=0.25)
    news = roles.loc["newsletter"]
    assert news["contribution_mean"] == pytest.approx(truth["newsletter_total"], rel=0.3)
    # organic media are never part of ROAS
    assert list(roas_table(mmm)["channel"]) == ["tv"]
    kinds = contributions_table(mmm).groupby("component")["kind"].first()
    assert kinds["newsletter"] == "organic" and kinds["price"] == "treatment" and kinds["events[sale]"] == "event"
    diverging = mmm.idata["sample_stats"]["diverging"]
    assert float(diverging.mean()) <= 0.01  # a rate, not an exact count: counts vary across machines


def test_what_if_changes_the_forecast_by_the_treatment_effect(roles_fit):
    mmm, frame, _truth = roles_fit
    future = frame.drop(columns="sales").iloc[-4:].copy()
    future["date"] = frame["date"].iloc[-1] + pd.to_timedelta(7 * np.arange(1, 5), unit="D")
    at = {v: set_columns(future, parse_settings([f"price={v}"]), mmm.data_config) for v in ("1.0", "1.05")}
    mu = {v: mmm.predict(f)["mu"] for v, f in at.items()}
    gamma = mmm.idata["posterior"]["gamma_treatment"].sel(treatment="price")
    expected = gamma * 0.05 / mmm.scales.treatments[0] * mmm.scales.target  # per draw, every week
    diff = mu["1.05"] - mu["1.0"]
    np.testing.assert_allclose(diff.to_numpy(), np.broadcast_to(expected.to_numpy()[..., None], diff.shape), rtol=1e-8)
    pred = mmm.predict(at["1.05"])
    np.testing.assert_allclose(
        pred["treatments"].sel(treatment="price").to_numpy(),
        np.broadcast_to((gamma * 0.05 / mmm.scales.treatments[0] * mmm.scales.target).to_numpy()[..., None],
                        diff.shape),
        rtol=1e-8,
    )  # fmt: skip
    # an unknown event level, or a channel in --set, are clear errors
    bad = future.copy()
    bad["events"] = "black_friday"
    with pytest.raises(DataError, match=r"'black_friday'.*known levels"):
        mmm.predict(bad)
    with pytest.raises(RoleError, match="cannot set 'tv'"):
        set_columns(future, {"tv": 1.0}, mmm.data_config)
    with pytest.raises(RoleError, match="COLUMN=VALUE"):
        parse_settings(["price"])


def test_save_load_keeps_roles(roles_fit, tmp_path):
    mmm, frame, _truth = roles_fit
    path = mmm.save(tmp_path / "posterior.nc")
    loaded = MMM.load(path)
    assert loaded.spec.events == mmm.spec.events
    assert loaded.data.encoding == mmm.data.encoding
    for key in ("organic", "treatments", "media"):
        np.testing.assert_array_equal(getattr(loaded.scales, key), getattr(mmm.scales, key))
    future = frame.drop(columns="sales").iloc[-3:].copy()
    future["date"] = frame["date"].iloc[-1] + pd.to_timedelta(7 * np.arange(1, 4), unit="D")
    np.testing.assert_allclose(loaded.predict(future)["mu"], mmm.predict(future)["mu"], rtol=1e-12)


def test_organic_curves_and_identifiability(roles_fit):
    from bayesmmm.decisions.response import organic_response_curves
    from bayesmmm.evaluation.identifiability import identifiability
    from bayesmmm.evaluation.summaries import roles_table

    mmm = roles_fit[0]
    curves = organic_response_curves(mmm, max_draws=200)
    at_one = curves[curves["multiplier"] == 1.0].iloc[0]
    roles = roles_table(mmm).set_index("name")
    # the curve at multiplier 1 is the reported contribution (a subsample of draws: within MC error)
    assert at_one["response_mean"] == pytest.approx(roles.loc["newsletter", "contribution_mean"], rel=0.05)
    assert curves.loc[curves["multiplier"] == 0.0, "response_mean"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    assert curves["response_mean"].is_monotonic_increasing
    ident = identifiability(mmm, n_prior=300)
    entry = ident["organic"]["newsletter"]
    assert "newsletter" not in ident["channels"]
    assert entry["contribution_posterior_sd"] < entry["contribution_prior_sd"]
    assert isinstance(ident["organic_prior_driven"], list)
    # the extrapolated contribution of the organic medium, with the channels'
    assert 0.0 <= entry["extrapolated_share"] <= 1.0 and isinstance(entry["extrapolated"], bool)
    assert ident["organic_extrapolated"] == (["newsletter"] if entry["extrapolated"] else [])
    assert ident["channels"]["tv"]["extrapolated_share"] is not None


@pytest.mark.parametrize("name", ["national", "geo"])
def test_old_models_load_without_roles(name):
    """Models saved before roles existed (tests/reference) load with empty roles and predict."""
    from pathlib import Path

    mmm = MMM.load(Path(__file__).parent / "reference" / f"{name}.nc")
    assert mmm.spec.organic == () and mmm.spec.events == () and mmm.spec.treatments == ()
    assert mmm.data.organic.shape == (mmm.data.n_dates, 0)
    assert mmm.scales.organic == () and mmm.scales.treatments == ()
    comps = mmm.posterior_components()
    assert "organic_media" not in comps and "treatments" not in comps
    np.testing.assert_allclose(comps["mu"].to_numpy(), mmm.predictive.posterior_components()["mu"].to_numpy())


def test_config_error_for_set_of_unknown_column():
    with pytest.raises(RoleError, match="cannot set"):
        set_columns(_frame(), {"nope": 1}, DataConfig.model_validate(CONFIG))
    assert issubclass(RoleError, ValueError) and not issubclass(RoleError, ConfigError)


@pytest.mark.slow  # ~90 s on two shared cores: the whole run (fit, LOO, identifiability) of 208 weeks
def test_robyn_config_fits_with_organic_newsletter_and_events(tmp_path):
    """configs/robyn_simulated.yaml: newsletter organic, events categorical; a short fit writes roles.csv."""
    from pathlib import Path

    from bayesmmm import load_experiment, run_experiment

    path = Path(__file__).resolve().parents[1] / "configs" / "robyn_simulated.yaml"
    overrides = {"sampler.draws": 100, "sampler.tune": 150, "sampler.chains": 2, "sampler.progressbar": False}
    overrides["output.figures"] = False
    config = load_experiment(path, overrides)
    assert config.data.organic_columns == ["newsletter"] and config.data.event_columns == ["events"]
    run_experiment(config, tmp_path / "run")
    roles = pd.read_csv(tmp_path / "run" / "roles.csv")
    assert list(roles["role"]) == ["organic", "event", "event"]
    assert list(roles["name"]) == ["newsletter", "events[event1]", "events[event2]"]
    assert (roles["reference"].dropna() == "na").all()
    roas = pd.read_csv(tmp_path / "run" / "roas.csv")
    assert "newsletter" not in set(roas["channel"])
    assert np.isfinite(roles[["contribution_mean", "contribution_hdi_low", "contribution_hdi_high"]]).all().all()
    import json

    diag = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    assert "newsletter" in diag["identifiability"]["organic"]


def test_geo_panel_roles_scale_per_geo_and_share_parameters():
    """A geo panel: organic scaled per geo like media, one baseline and one set of levels over the panel,
    organic parameters shared by the geos; national components are the sums of the geos'."""
    parts = []
    for g, geo in enumerate(("north", "south")):
        part = _frame(seed=10 + g)
        part["newsletter"] *= 1 + 2 * g
        part["geo"] = geo
        parts.append(part)
    panel = pd.concat(parts, ignore_index=True)
    mmm = MMM({**CONFIG, "geo_column": "geo"}, {"adstock": {"name": "geometric", "l_max": 4}})
    mmm.build_model(panel)
    spec = mmm.spec
    assert spec.variable_dims["beta_organic"] == ("organic",)
    organic_scales = np.asarray(spec.scales.organic)  # (geo, organic)
    for g, part in enumerate(parts):
        x = part["newsletter"].to_numpy()
        assert organic_scales[g, 0] == pytest.approx(x[x > 0].mean())
    assert spec.data.encoding.baselines["promo"] == panel["promo"].min()
    draws = _draws(mmm, n=3)
    per_geo = mmm.evaluate(*spec.history_inputs(), draws=draws)
    assert per_geo["organic"].shape == (3, N, 2, 1) and per_geo["events"].shape == (3, N, 2, 2)
    s_y = np.asarray(spec.scales.target)
    for g, part in enumerate(parts):  # treatments: gamma · (x − baseline) / s in each geo's own target units
        base = spec.data.encoding.baselines["price"]
        ref = draws["gamma_treatment"][:, :1] * (part["price"].to_numpy() - base)[None] / spec.scales.treatments[0]
        np.testing.assert_allclose(per_geo["treatments"][:, :, g, 0], ref * s_y[g], rtol=1e-10)


def test_jax_translation_has_the_role_variables(bound):
    """The JAX backends' translation is built from the model graph: its log-density (role blocks as data)
    equals PyMC's at the initial point."""
    pytest.importorskip("jax")
    from bayesmmm.inference.jax.translate import jax_model

    mmm = bound[0]
    model = mmm.build_model()
    jm = jax_model(model, seed=0)
    assert {"organic_data", "treatments_data", "events_data"} <= set(jm.data_names)
    assert {"beta_organic", "gamma_treatment", "gamma_event", "adstock_alpha_organic"} <= set(jm.var_names)
    point = model.initial_point(0)
    position = [np.asarray(point[name]) for name in jm.value_names]
    expected = float(model.compile_logp()(point))
    assert float(jm.logp(position, jm.data_values)) == pytest.approx(expected, rel=1e-9)


def test_service_rows_carry_roles_and_set_is_a_what_if(roles_fit):
    from bayesmmm.serving.service import ModelService, ServiceInputError

    mmm, frame, _truth = roles_fit
    service = ModelService(mmm, "v1", dashboard=False, max_draws=None)
    last = frame["date"].iloc[-1]
    rows = [
        {
            "date": str((last + pd.Timedelta(days=7 * (i + 1))).date()),
            "tv": float(frame["tv"].iloc[i]),
            "newsletter": float(frame["newsletter"].iloc[i]),
            "price": 1.0,
            "events": "sale" if i == 0 else "na",
        }
        for i in range(3)
    ]
    base = service.predict({"new_media_spend": rows, "seed": 1})
    what_if = service.predict({"new_media_spend": rows, "seed": 1, "set": {"price": 1.05}})
    gamma = mmm.idata["posterior"]["gamma_treatment"].mean().item()
    effect = gamma * 0.05 / mmm.scales.treatments[0] * mmm.scales.target
    diff = np.asarray(what_if["sales_pred_mean"]) - np.asarray(base["sales_pred_mean"])
    np.testing.assert_allclose(diff, effect, rtol=1e-8)  # same seed: the noise cancels
    direct = mmm.predict(
        set_columns(
            pd.DataFrame(rows).assign(date=lambda d: pd.to_datetime(d["date"])), {"price": 1.05}, mmm.data_config
        )
    )
    np.testing.assert_allclose(np.asarray(what_if["sales_pred_mean"]), direct["mu"].mean(("chain", "draw")), rtol=0.05)
    with pytest.raises(ServiceInputError, match="known levels"):
        service.predict({"new_media_spend": [{**rows[0], "events": "black_friday"}]})
    with pytest.raises(ServiceInputError, match="cannot set 'tv'"):
        service.predict({"new_media_spend": rows, "set": {"tv": 1.0}})
