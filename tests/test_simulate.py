"""The simulator: deterministic, and its truth agrees with an independent NumPy computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesmmm import ConfigError, load_scenario, simulate
from bayesmmm.workflows.simulate import ScenarioConfig, builtin_scenario, write_simulation


def numpy_geometric_hill(spend, alpha, l_max, kappa, slope):
    x = spend / spend[spend > 0].mean()
    w = alpha ** np.arange(l_max)
    w = w / w.sum()
    ad = np.array([sum(w[j] * x[t - j] for j in range(l_max) if t - j >= 0) for t in range(len(x))])
    return ad**slope / (ad**slope + kappa**slope)


@pytest.mark.parametrize("name", ["four_channel", "intermittent"])
def test_truth_matches_numpy_reference(name):
    scenario = load_scenario(builtin_scenario(name))
    frame, truth = simulate(scenario)
    assert len(frame) == scenario.n_weeks
    for ch, spec in scenario.channels.items():
        t = truth["channels"][ch]
        ref = spec.beta * numpy_geometric_hill(
            frame[ch].to_numpy(),
            spec.adstock.params["alpha"],
            8,
            spec.saturation.params["kappa"],
            spec.saturation.params["slope"],
        )
        np.testing.assert_allclose(t["weekly_contribution"], ref, rtol=1e-6, atol=1e-6)
        assert t["roas"] == pytest.approx(ref.sum() / frame[ch].sum(), rel=1e-6)
    assert sum(c["share"] for c in truth["channels"].values()) == pytest.approx(1.0)
    assert 0.05 < truth["media_share_of_target"] < 0.5


def test_four_channel_scenario_as_specified():
    scenario = load_scenario(builtin_scenario("four_channel"))
    frame, _ = simulate(scenario)
    assert frame["date"].iloc[0] == "2024-01-01" and len(frame) == 104
    assert frame["prime_day"].sum() == 1 and frame["mothers_day"].sum() == 1
    assert frame.loc[frame["prime_day"] == 1, "date"].item().startswith("2024-11")
    assert frame.loc[frame["mothers_day"] == 1, "date"].item().startswith("2025-05")


def test_intermittent_has_off_weeks():
    frame, _ = simulate(load_scenario(builtin_scenario("intermittent")))
    for ch in ["tiktok", "facebook", "google_ads"]:
        assert (frame[ch] == 0).mean() > 0.05


def test_deterministic_and_written(tmp_path):
    scenario = load_scenario(builtin_scenario("four_channel"))
    a, ta = simulate(scenario)
    b, tb = simulate(scenario)
    assert a.equals(b) and ta == tb
    data_path, truth_path = write_simulation(scenario, tmp_path / "sim")
    assert json.loads(truth_path.read_text())["channels"].keys() == ta["channels"].keys()
    assert data_path.read_text().startswith("date,sales,")


def test_any_registered_transform_per_channel():
    raw = load_scenario(builtin_scenario("four_channel")).model_dump(mode="json")
    raw["channels"]["tv"]["adstock"] = {"name": "weibull_pdf", "l_max": 10, "params": {"scale": 3, "shape": 2}}
    raw["channels"]["search"]["saturation"] = {"name": "logistic", "params": {"lam": 2.0}}
    frame, truth = simulate(ScenarioConfig.model_validate(raw))
    assert truth["channels"]["tv"]["adstock"]["name"] == "weibull_pdf"
    assert np.isfinite(frame["sales"]).all()


def test_bad_scenario_params(tmp_path):
    raw = load_scenario(builtin_scenario("four_channel")).model_dump(mode="json")
    raw["channels"]["tv"]["saturation"] = {"name": "hill", "params": {"kappa": 1.0}}
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="missing \\['slope'\\]"):
        load_scenario(path)
    with pytest.raises(ConfigError, match="built-ins"):
        builtin_scenario("nope")
