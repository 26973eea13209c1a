"""Functional-form selection: criteria against independent references, and ranking with real MCMC."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from typer.testing import CliRunner

from bayesmmm import ExperimentConfig
from bayesmmm.cli.main import app
from bayesmmm.evaluation.criteria import bic, crps, holdout_scores, loo, n_parameters, waic
from bayesmmm.workflows.selection import COMPARISON_COLUMNS, candidate_configs, loo_ties, run_selection, ties_warning
from bayesmmm.workflows.simulate import ScenarioConfig, write_simulation


def fake_tree(seed: int = 0) -> xr.DataTree:
    """A fixed 'posterior' with a normal-model log-likelihood (2 chains × 300 draws × 40 obs)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=40)
    mu = rng.normal(0, 0.15, size=(2, 300, 1))
    sigma = np.exp(rng.normal(0, 0.1, size=(2, 300, 1)))
    ll = stats.norm.logpdf(y, mu, sigma)
    post = xr.Dataset({"mu": (("chain", "draw"), mu[..., 0]), "sigma": (("chain", "draw"), sigma[..., 0])})
    return xr.DataTree.from_dict(
        {
            "posterior": post,
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "date"), ll)}),
            "observed_data": xr.Dataset({"y": ("date", y)}),
        }
    )


def test_waic_matches_a_plain_loop():
    tree = fake_tree()
    ll = tree["log_likelihood"]["y"].to_numpy().reshape(600, 40)
    elpd = 0.0
    p_total = 0.0
    for i in range(40):
        col = [float(v) for v in ll[:, i]]
        m = max(col)
        lppd = m + math.log(sum(math.exp(v - m) for v in col) / len(col))
        mean = sum(col) / len(col)
        p = sum((v - mean) ** 2 for v in col) / (len(col) - 1)
        elpd += lppd - p
        p_total += p
    ours = waic(tree)
    assert ours["elpd_waic"] == pytest.approx(elpd, rel=1e-10)
    assert ours["p_waic"] == pytest.approx(p_total, rel=1e-10)
    assert ours["waic"] == pytest.approx(-2 * elpd, rel=1e-10)


def test_loo_is_arviz_loo_and_close_to_waic():
    import arviz as az

    tree = fake_tree(1)
    ours = loo(tree)
    ref = az.loo(tree)
    assert float(ours.elpd) == pytest.approx(float(ref.elpd), rel=1e-12)
    assert float(ours.se) == pytest.approx(float(ref.se), rel=1e-12)
    # with well-behaved importance weights (all k small) WAIC and LOO agree closely
    assert float(np.max(ours.pareto_k)) < 0.5
    assert -0.5 * waic(tree)["waic"] == pytest.approx(float(ours.elpd), abs=0.5)


def test_bic_by_hand():
    tree = fake_tree(2)
    ll = tree["log_likelihood"]["y"].to_numpy().reshape(600, 40)
    assert n_parameters(tree) == 2
    assert bic(tree) == pytest.approx(-2 * ll.sum(axis=1).max() + 2 * np.log(40))


def test_criteria_of_a_geo_models_log_likelihood_count_every_date_and_geo():
    """A geo model's log-likelihood is (chain, draw, date, geo): WAIC and BIC treat its date × geo
    cells as the observations (before: the draws' rows were mixed with the dates)."""
    flat = fake_tree(4)
    ll = flat["log_likelihood"]["y"].to_numpy()  # (2, 300, 40)
    geo = xr.DataTree.from_dict(
        {
            "posterior": flat["posterior"].to_dataset(),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "date", "geo"), ll.reshape(2, 300, 20, 2))}),
        }
    )
    assert waic(geo) == pytest.approx(waic(flat), rel=1e-12)
    assert bic(geo) == pytest.approx(bic(flat), rel=1e-12)
    assert float(loo(geo).elpd) == pytest.approx(float(loo(flat).elpd), rel=1e-10)


def test_crps_against_pairwise_and_normal_closed_form():
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(200, 3))
    obs = np.array([0.0, 1.0, -2.0])
    pairwise = np.abs(samples - obs).mean(0) - 0.5 * np.abs(samples[:, None, :] - samples[None, :, :]).mean((0, 1))
    np.testing.assert_allclose(crps(samples, obs), pairwise, rtol=1e-12)
    big = rng.normal(size=(200_000, 3))
    z = obs
    closed = z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi)
    np.testing.assert_allclose(crps(big, obs), closed, atol=5e-3)
    scores = holdout_scores(big, obs)
    assert scores["holdout_coverage"] == pytest.approx(2 / 3)  # -2 lies outside the 90% interval


def test_candidates_are_the_grid():
    config = ExperimentConfig.model_validate(
        {
            "data": {"channel_columns": ["a"]},
            "model": {
                "adstock": {
                    "name": "geometric",
                    "l_max": 6,
                    "priors": {"alpha": {"dist": "Beta", "alpha": 2, "beta": 2}},
                }
            },
            "selection": {
                "adstock": ["geometric", "weibull_cdf"],
                "saturation": ["logistic", "hill"],
                "l_max": [4, 8],
                "criterion": "loo",
            },
        }
    )
    cands = dict(candidate_configs(config))
    assert len(cands) == 8
    geo = cands["geometric+hill+l_max=4"]
    assert geo.adstock.l_max == 4 and geo.adstock.priors["alpha"].params == {"alpha": 2.0, "beta": 2.0}
    assert cands["weibull_cdf+logistic+l_max=8"].adstock.priors == {}


def test_selection_block_validates():
    from bayesmmm import ConfigError, load_experiment

    ExperimentConfig.model_validate(
        {
            "data": {"channel_columns": ["a"]},
            "selection": {
                "adstock": ["geometric", "weibull_cdf"],
                "saturation": ["logistic", "hill"],
                "criterion": "loo",
            },
        }
    )
    with pytest.raises(Exception, match="Valid adstock names"):
        ExperimentConfig.model_validate({"data": {"channel_columns": ["a"]}, "selection": {"adstock": ["geo"]}})
    assert ConfigError and load_experiment  # imported API


def weibull_hill_scenario() -> ScenarioConfig:
    """Delayed (Weibull-CDF) carry-over and S-shaped Hill curves: forms geometric/logistic cannot mimic."""
    channel = lambda scale, beta, kappa: {  # noqa: E731
        "spend": {"shape": 3, "scale": scale},
        "adstock": {"name": "weibull_cdf", "l_max": 8, "params": {"scale": 3.0, "shape": 2.5}},
        "saturation": {"name": "hill", "params": {"kappa": kappa, "slope": 3.0}},
        "beta": beta,
    }
    return ScenarioConfig.model_validate(
        {
            "name": "weibull_hill",
            "seed": 4,
            "start_date": "2022-01-03",
            "n_weeks": 156,
            "base": 400,
            "trend": {"kind": "linear", "total": 40},
            "seasonality": {"amplitude": 30, "harmonics": [1.0]},
            "channels": {"a": channel(1000, 200, 1.0), "b": channel(1500, 150, 1.2)},
            "noise": {"dist": "normal", "sigma": 5},
        }
    )


def test_true_forms_rank_first_or_within_2se(tmp_path):
    data_path, _ = write_simulation(weibull_hill_scenario(), tmp_path / "data")
    config = ExperimentConfig.model_validate(
        {
            "name": "sel",
            "data": {"path": str(data_path), "channel_columns": ["a", "b"]},
            "model": {"yearly_seasonality": 1, "trend": "linear"},
            "sampler": {"chains": 2, "draws": 300, "tune": 400, "seed": 1},
            "selection": {
                "adstock": ["geometric", "weibull_cdf"],
                "saturation": ["logistic", "hill"],
                "holdout_weeks": 0,
            },
        }
    )
    table = run_selection(config, tmp_path / "sel")
    assert (table["status"] == "ok").all(), table.get("error")
    best = table.iloc[0]
    true = table.set_index("candidate").loc["weibull_cdf+hill"]
    assert true["rank"] == 1 or (best["elpd"] - true["elpd"]) <= 2 * true["dse"], table[COMPARISON_COLUMNS]
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert list(table.columns[1 : len(COMPARISON_COLUMNS) + 1]) == COMPARISON_COLUMNS


def test_select_and_compare_commands(tmp_path):
    runner = CliRunner()
    data_path, _ = write_simulation(weibull_hill_scenario(), tmp_path / "data")
    (tmp_path / "exp.yaml").write_text(
        f"""name: s
data: {{path: {data_path}, channel_columns: [a, b]}}
model: {{yearly_seasonality: 1}}
sampler: {{chains: 2, draws: 100, tune: 200, seed: 1}}
selection: {{saturation: [logistic, hill], holdout_weeks: 8, criterion: holdout}}
"""
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["select", str(tmp_path / "exp.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "comparison.csv")
    assert (table["status"] == "ok").all(), table.get("error")
    assert set(COMPARISON_COLUMNS) <= set(table.columns)
    assert table["holdout_crps"].notna().all() and table["holdout_rmse"].gt(0).all()
    assert table["rank"].tolist() == sorted(table["rank"])
    assert table.iloc[0]["holdout_crps"] == table["holdout_crps"].min()
    best = json.loads((out / "best.json").read_text())
    assert (out / "comparison.png").exists() and (tmp_path / best["run_dir"]).exists()
    loo_sorted = table.sort_values("elpd", ascending=False)
    tie = -loo_sorted["elpd_diff"].iloc[1] <= 2 * loo_sorted["dse"].iloc[1]
    assert ("tied_by_loo" in best) == tie == ("LOO does not separate" in result.output), result.output
    assert (out / "roas_stacked.csv").exists() == ((table["weight"] >= 0.01).sum() >= 2)
    if (out / "roas_stacked.csv").exists():
        stacked = pd.read_csv(out / "roas_stacked.csv")
        assert list(stacked["channel"]) == ["a", "b"] and (stacked["roas_hdi_low"] <= stacked["roas_hdi_high"]).all()
    runs = sorted((out / "runs").iterdir())
    result = runner.invoke(app, ["compare", *map(str, runs), "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    again = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index("candidate")
    first = table.set_index("run_dir")
    for run in runs:  # compare reproduces the criteria computed during select
        assert again.loc[run.name, "elpd"] == pytest.approx(first.loc[str(run), "elpd"], rel=1e-9)
    missing = runner.invoke(app, ["select", str(tmp_path / "exp.yaml").replace("exp", "nope")])
    assert missing.exit_code == 2


def test_loo_ties_name_the_candidates_within_2se_and_their_roas_spread(tmp_path):
    def run(name, roas):
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame({"channel": ["a", "b"], "roas_mean": roas}).to_csv(folder / "roas.csv", index=False)
        return str(folder)

    table = pd.DataFrame(
        {
            "candidate": ["best", "close", "far", "failed"],
            "status": ["ok", "ok", "ok", "failed"],
            "elpd": [-100.0, -101.0, -130.0, np.nan],
            "elpd_diff": [0.0, -1.0, -30.0, np.nan],
            "dse": [0.0, 2.5, 6.0, np.nan],
            "weight": [0.6, 0.4, 0.0, np.nan],
            "run_dir": [run("best", [2.0, 1.0]), run("close", [2.2, 0.7]), run("far", [9.0, 9.0]), ""],
        }
    )
    ties = loo_ties(table)
    assert ties["candidates"] == ["best", "close"]  # far: 30 > 2 x 6; failed: no ELPD
    assert ties["channel"] == "b" and ties["max_relative_spread"] == pytest.approx(0.3)  # |0.7 - 1.0| / 1.0
    assert ties["weight"] == {"best": 0.6, "close": 0.4}
    text = ties_warning(ties)
    assert "best and close" in text and "30%" in text and "-1.0 ± 2.5" in text and "0.60 / 0.40" in text
    separated = table.assign(dse=[0.0, 0.4, 6.0, np.nan])  # 1.0 > 2 x 0.4
    assert loo_ties(separated) is None
    assert loo_ties(table.iloc[:1]) is None
    missing = table.assign(run_dir=[str(tmp_path / "gone"), *table["run_dir"][1:]])  # no roas.csv: skipped
    assert loo_ties(missing) is None
