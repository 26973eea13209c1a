"""The extrapolated-contribution check (:mod:`bayesmmm.evaluation.extrapolation`).

References are independent: the share written as a plain NumPy loop over draws, geos and channels
(normalized geometric adstock, logistic and Hill curves in NumPy) on fixed parameter draws, and one
small real fit with a fixed seed (2 chains × 200 draws).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmmm import MMM
from bayesmmm.config.experiment import ConfigError, DiagnosticsConfig, ExperimentConfig, load_experiment
from bayesmmm.evaluation.extrapolation import (
    DEFAULT_SHARE,
    LOW_PERCENTILE,
    extrapolation,
    extrapolation_advice,
    share_draws,
    share_from_totals,
)
from bayesmmm.evaluation.identifiability import prior_draws
from bayesmmm.workflows.simulate import ScenarioConfig, simulate

L_MAX = 6
CHANNELS = ["steady", "flighted"]
N_WEEKS = 80


# ------------------------------------------------------------------ NumPy references
def np_adstock(x: np.ndarray, alpha: float, l_max: int = L_MAX) -> np.ndarray:
    """Normalized geometric adstock along axis 0, zero before the first week."""
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    out = np.zeros(len(x))
    for lag in range(l_max):
        out[lag:] += w[lag] * x[: len(x) - lag]
    return out


def np_saturation(name: str, x: np.ndarray, params: dict[str, float]) -> np.ndarray:
    if name == "logistic":
        return (1 - np.exp(-params["lam"] * x)) / (1 + np.exp(-params["lam"] * x))
    positive = x > 0
    safe = np.where(positive, x, 1.0)
    return np.where(
        positive, safe ** params["slope"] / (safe ** params["slope"] + params["kappa"] ** params["slope"]), 0.0
    )


def reference_share(mmm: MMM, draws: dict[str, np.ndarray], block: str = "media") -> np.ndarray:
    """Σ_g β_g s_y,g Σ_t [f(min(a_t, a_lo)) − f(0)] / Σ_g β_g s_y,g Σ_t [f(a_t) − f(0)], one loop per draw,
    geo and column; a_t the adstocked scaled media (or organic activity), a_lo its 5th percentile over the
    weeks."""
    spec = mmm.require_spec()
    data = spec.data
    adstock, sat, beta = spec.transforms(block)
    raw = data.geo_media if block == "media" else data.geo_organic  # (date, geo, column)
    if not mmm.is_geo:
        raw = (data.media if block == "media" else data.organic)[:, None, :]
    scale_x = np.asarray(spec.scales.media if block == "media" else spec.scales.organic).reshape(-1, raw.shape[2])
    scale_y = np.asarray(spec.scales.target).reshape(-1)
    n, geos, columns = len(draws["beta"]), raw.shape[1], raw.shape[2]
    if mmm.is_geo and block == "media":
        per_geo = mmm.geo_media_parameters(draws)  # (sample, geo, channel)
    else:  # national, or the organic media's shared parameters
        per_geo = {
            k: np.broadcast_to(np.asarray(v)[:, None, :], (n, geos, np.shape(v)[1]))
            for k, v in draws.items()
            if np.ndim(v) == 2
        }
    out = np.empty((n, columns))
    for d in range(n):
        for c in range(columns):
            num = den = 0.0
            for g in range(geos):
                alpha = per_geo[adstock.variable_names["alpha"]][d, g, c]
                a = np_adstock(raw[:, g, c] / scale_x[g % len(scale_x), c], alpha)
                a_lo = np.percentile(a, LOW_PERCENTILE)
                params = {p: per_geo[v][d, g, c] for p, v in sat.variable_names.items()}
                f0 = np_saturation(sat.name, np.zeros(1), params)[0]
                weight = per_geo[beta][d, g, c] * scale_y[g % len(scale_y)]
                num += weight * (np_saturation(sat.name, np.minimum(a, a_lo), params) - f0).sum()
                den += weight * (np_saturation(sat.name, a, params) - f0).sum()
            out[d, c] = num / den
    return out


# -------------------------------------------------------------------- data
def _spend(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An always-on series at 0.6–1.5× its level and a flighted one (zeros between 3-week bursts)."""
    steady = 100.0 * rng.uniform(0.6, 1.5, n)
    flighted = np.where((np.arange(n) // 3) % 4 == 0, 300.0 * rng.uniform(0.5, 1.5, n), 0.0)
    return steady, flighted


def _frame(geos: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=N_WEEKS, freq="W-MON")
    frames = []
    for g in range(max(geos, 1)):
        steady, flighted = _spend(rng, N_WEEKS)
        part = pd.DataFrame(
            {
                "date": dates,
                "steady": steady * (1 + g),
                "flighted": flighted,
                "newsletter": np.where(
                    rng.uniform(size=N_WEEKS) < 0.3, 0.0, 50.0 * (1 + g) * rng.uniform(0.5, 1.5, N_WEEKS)
                ),
                "sales": 500 + rng.normal(0, 10, N_WEEKS),
            }
        )
        if geos:
            part.insert(1, "geo", f"g{g}")
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def _model(saturation: str, geos: int = 0, organic: bool = False) -> MMM:
    data = {"channel_columns": CHANNELS, "target_column": "sales"}
    if organic:
        data["organic_columns"] = ["newsletter"]
    model = {"adstock": {"name": "geometric", "l_max": L_MAX}, "saturation": saturation, "yearly_seasonality": 0}
    if geos:
        data["geo_column"] = "geo"
        model["geo"] = {"adstock": "pooled", "saturation": "pooled"}
    mmm = MMM(data, model)
    mmm.build_model(_frame(geos))
    return mmm


# ----------------------------------------------------------------- the share
@pytest.mark.parametrize("saturation", ["logistic", "hill"])
@pytest.mark.parametrize("geos", [0, 2])
def test_share_matches_a_numpy_loop_on_fixed_draws(saturation, geos):
    mmm = _model(saturation, geos)
    draws = prior_draws(mmm, n=12, seed=5)
    if geos:  # the pooled transforms really differ across geos
        assert (
            "adstock_alpha_geo_z" in draws
            and f"{mmm.saturation.variable_names['slope' if saturation == 'hill' else 'lam']}_geo_z" in draws
        )
    got = share_draws(mmm, draws=draws)
    assert got.shape == (12, 2)
    np.testing.assert_allclose(got, reference_share(mmm, draws), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("geos", [0, 2])
def test_organic_share_matches_a_numpy_loop(geos):
    mmm = _model("hill", geos, organic=True)
    draws = prior_draws(mmm, n=8, seed=2)
    got = share_draws(mmm, "organic", draws=draws)
    assert got.shape == (8, 1)
    np.testing.assert_allclose(got, reference_share(mmm, draws, "organic"), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(share_draws(mmm, draws=draws), reference_share(mmm, draws), rtol=1e-8, atol=1e-10)


def test_flighted_channel_has_almost_nothing_below_its_data_and_always_on_most():
    """Under a logistic curve at lam 1.5: the flighted channel's input reaches ~0 between bursts (share < 0.1),
    the always-on one's never falls below ~0.6× its mean (share > 0.4)."""
    mmm = _model("logistic")
    draws = prior_draws(mmm, n=20, seed=1)
    draws = {**draws, "saturation_lam": np.full_like(draws["saturation_lam"], 1.5)}
    share = share_draws(mmm, draws=draws)
    assert (share[:, 1] < 0.1).all(), share[:, 1]
    assert (share[:, 0] > 0.4).all(), share[:, 0]


def test_share_from_totals_weights_geos_by_their_scale():
    full = np.array([[[10.0], [4.0]]])  # (sample, geo, channel)
    low = np.array([[[5.0], [1.0]]])
    zero = np.zeros_like(full)
    np.testing.assert_allclose(share_from_totals(full, low, zero, np.array([1.0, 3.0])), [[(5 + 3) / (10 + 12)]])
    np.testing.assert_allclose(share_from_totals(full[:, 0], low[:, 0], zero[:, 0]), [[0.5]])
    assert np.isnan(share_from_totals(zero[:, 0], zero[:, 0], zero[:, 0])).all()  # no contribution: undefined


def test_advice_names_the_remedies():
    one = extrapolation_advice("tv", 0.62, "logistic", 1)
    assert "62%" in one and "one-parameter" in one and "model.saturation: hill" in one and "calibration" in one
    assert "selection: {saturation: [logistic, michaelis_menten]}" in one and "bayesmmm select" in one
    mm = extrapolation_advice("tv", 0.62, "michaelis_menten", 1)
    assert "[michaelis_menten, logistic]" in mm
    two = extrapolation_advice("tv", 0.62, "hill", 2)
    assert "one-parameter" not in two and "calibration.lift_tests" in two
    organic_one = extrapolation_advice("newsletter", 0.59, "logistic", 1, organic=True)
    assert "model.organic.saturation: hill" in organic_one
    organic_two = extrapolation_advice("newsletter", 0.59, "hill", 2, organic=True)  # already two parameters
    assert ": hill`" not in organic_two and "paused" in organic_two


# ----------------------------------------------------------------- config
def test_config_key_round_trips_and_rejects_shares_outside_0_1(tmp_path):
    config = ExperimentConfig(data={"channel_columns": CHANNELS}, diagnostics={"extrapolated_share": 0.35})
    assert config.diagnostics.extrapolated_share == 0.35
    assert ExperimentConfig.from_yaml(config.to_yaml()) == config
    assert DiagnosticsConfig().extrapolated_share == DEFAULT_SHARE
    path = tmp_path / "experiment.yaml"
    for bad in (-0.1, 1.5):
        path.write_text(f"data: {{channel_columns: [a]}}\ndiagnostics: {{extrapolated_share: {bad}}}\n")
        with pytest.raises(ConfigError, match="extrapolated_share"):
            load_experiment(path)
    with pytest.raises(ValueError, match=r"share in \[0, 1\]"):
        extrapolation(_model("logistic"), threshold=1.5)


# ------------------------------------------------------------------ a real fit
SCENARIO = {
    "name": "always_on_and_flighted",
    "seed": 4,
    "start_date": "2024-01-01",
    "n_weeks": 100,
    "base": 500,
    "channels": {
        "steady": {
            "spend": {"shape": 20, "scale": 50},
            "adstock": {"name": "geometric", "l_max": L_MAX, "params": {"alpha": 0.3}},
            "saturation": {"name": "logistic", "params": {"lam": 1.5}},
            "beta": 80,
        },
        "flighted": {
            "spend": {"shape": 4, "scale": 300, "flighting": {"mean_on_weeks": 3, "mean_off_weeks": 5}},
            "adstock": {"name": "geometric", "l_max": L_MAX, "params": {"alpha": 0.3}},
            "saturation": {"name": "logistic", "params": {"lam": 1.0}},
            "beta": 80,
        },
    },
    "noise": {"sigma": 10},
}


@pytest.fixture(scope="module")
def fitted() -> MMM:
    frame, _truth = simulate(ScenarioConfig.model_validate(SCENARIO))
    mmm = MMM(
        {"channel_columns": CHANNELS, "target_column": "sales"},
        {"adstock": {"name": "geometric", "l_max": L_MAX}, "saturation": "logistic", "yearly_seasonality": 0},
    )
    mmm.fit(frame, {"backend": "nutpie", "chains": 2, "draws": 200, "tune": 300, "seed": 3, "progressbar": False})
    return mmm


def test_real_fit_flags_the_always_on_channel_not_the_flighted(fitted):
    result = extrapolation(fitted)
    steady, flighted = result["channels"]["steady"], result["channels"]["flighted"]
    assert steady["extrapolated"] and steady["extrapolated_share"] > 0.5, steady
    assert not flighted["extrapolated"] and flighted["extrapolated_share"] < 0.2, flighted
    assert "model.saturation: hill" in steady["extrapolation_advice"]
    assert "extrapolation_advice" not in flighted
    lo, hi = steady["extrapolated_share_hdi"]
    assert 0 <= lo <= steady["extrapolated_share"] <= hi <= 1
    assert result["organic"] == {}
