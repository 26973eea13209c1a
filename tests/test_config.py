"""Configuration: the contract YAML, round trips, clear errors, plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bayesmmm import ConfigError, ExperimentConfig, ModelConfig, Prior, load_experiment
from bayesmmm.config.experiment import set_dotted

ROOT = Path(__file__).resolve().parents[1]

CONTRACT_YAML = """\
data: {path: data/data.csv, date_column: date, target_column: sales,
       channel_columns: [tiktok, facebook, google, tv, ooh], control_columns: [promo]}
model: {adstock: {name: geometric, l_max: 8}, saturation: {name: logistic}, yearly_seasonality: 2, trend: linear}
sampler: {backend: nutpie, chains: 4, draws: 1000, tune: 1000, seed: 1}
"""


def test_contract_yaml_accepted_as_written(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(CONTRACT_YAML)
    config = load_experiment(path)
    assert config.data.path == (tmp_path / "data" / "data.csv").resolve()
    assert config.data.channel_columns == ["tiktok", "facebook", "google", "tv", "ooh"]
    assert config.model.adstock.name == "geometric" and config.model.adstock.l_max == 8
    assert config.sampler.backend == "nutpie" and config.sampler.seed == 1


def test_round_trip_yaml_and_dict():
    config = ExperimentConfig.from_yaml(CONTRACT_YAML)
    assert ExperimentConfig.from_yaml(config.to_yaml()) == config
    assert ExperimentConfig.model_validate(config.to_dict()) == config


def test_every_shipped_config_validates():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if "channels" in raw:  # a scenario
            from bayesmmm import load_scenario

            load_scenario(path)
        else:
            load_experiment(path)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("data: {channel_columns: [a], targt_column: y}", "did you mean 'target_column'"),
        ("data: {channel_columns: [a]}\nsamplr: {draws: 10}", "did you mean 'sampler'"),
        ("data: {channel_columns: [a]}\nmodel: {adstock: {name: geometrik}}", "Valid adstock names:"),
        ("data: {channel_columns: [a]}\nmodel: {saturation: {name: hil}}", "Valid saturation names"),
        ("data: {channel_columns: [a]}\nsampler: {chains: 0}", "sampler.chains"),
        ("data: {channel_columns: [a]}\nsampler: {backend: stan}", "sampler.backend"),
        ("data: {channel_columns: [a]}\nsampler: {draws: 0}", "sampler.draws: input should be greater than or equal"),
        ("data: {channel_columns: [a]}\nsampler: {draws: many}", "sampler.draws: input should be a valid integer"),
        ("data: {channel_columns: [a]}\nsampler: {target_accept: 1.5}", "sampler.target_accept"),
        ("data: {channel_columns: [a]}\nsampler: {tune: -1}", "sampler.tune"),
        ("data: {channel_columns: [a]}\nsampler: {cores: 0}", "sampler.cores"),
        ("data: {channel_columns: [a]}\nsampler: {chains: 1, draws: 20}", "too few"),
        ("data: {channel_columns: [a]}\nsampler: {backend: nutpie, device: gpu}", "needs a backend that runs on a GPU"),
        ("data: {channel_columns: [a], negative_spend: drop}", "data.negative_spend"),
        ("data: {channel_columns: [a], missing_weeks: fill}", "'error' or 'fill_zero'"),
        ("data: {channel_columns: [a]}\nmodel: {priors: {betta: {dist: HalfNormal, sigma: 1}}}", "did you mean 'beta'"),
        ("data: {channel_columns: [a]}\nmodel: {priors: {beta: {dist: HalfNormal, sigam: 1}}}", "did you mean 'sigma'"),
        ("data: {channel_columns: [a]}\nmodel: {priors: {beta: {dist: HalfNormel, sigma: 1}}}", "HalfNormal"),
        ("data: {channel_columns: [a, a]}", "more than one role"),
        ("data: {channel_columns: []}", "channel_columns"),
        ("- just a list", "mapping"),
        ("data: [unclosed", "not valid YAML"),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path, snippet, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(snippet)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert expected.lower() in str(info.value).lower()


def test_misspelt_required_key_is_one_line(tmp_path):
    """An unknown key whose nearest valid key is the missing required one is one problem, not two."""
    path = tmp_path / "bad.yaml"
    path.write_text("data: {chanel_columns: [a]}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value).count("\n") == 0
    assert "did you mean 'channel_columns'" in str(info.value)
    path.write_text("daat: {channel_columns: [a]}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value).count("\n") == 0 and "did you mean 'data'" in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment("nope/none.yaml")


def test_prior_overrides_and_defaults():
    model = ModelConfig.model_validate(
        {
            "priors": {"beta": {"dist": "HalfNormal", "sigma": 0.3}},
            "adstock": {"name": "geometric", "priors": {"alpha": {"dist": "Beta", "alpha": 2, "beta": 2}}},
        }
    )
    priors = model.resolved_priors()
    assert priors["beta"] == Prior(dist="HalfNormal", sigma=0.3)
    assert priors["sigma"].dist == "HalfNormal"
    adstock = model.adstock.build()
    assert adstock.priors["alpha"].params == {"alpha": 2.0, "beta": 2.0}


def test_unknown_model_prior_lists_every_valid_name_component_priors_included():
    """The error names the components' own priors (HSGP, spline, Student-t) too, which are valid keys."""
    with pytest.raises(ValueError, match="unknown model prior 'trend_gp_amplitud'") as info:
        ModelConfig.model_validate({"trend": "hsgp", "priors": {"trend_gp_amplitud": {"dist": "HalfNormal"}}})
    message = str(info.value)
    assert "Did you mean 'trend_gp_amplitude'?" in message
    valid = message.split("Valid: ")[1].split(". ")[0].split(", ")
    for name in ("intercept", "beta", "nu", "trend_gp_amplitude", "trend_gp_lengthscale", "trend_spline_sigma"):
        assert name in valid, (name, message)
    model = ModelConfig.model_validate({"trend": "hsgp", "priors": {"trend_gp_amplitude": {"dist": "HalfNormal"}}})
    assert model.priors["trend_gp_amplitude"].dist == "HalfNormal"


def test_shorthand_transform_names_and_overrides():
    raw = {"data": {"channel_columns": ["a"]}, "model": {"adstock": "weibull_pdf", "saturation": "hill"}}
    set_dotted(raw, "model.adstock.l_max", 4)
    config = ExperimentConfig.model_validate(raw)
    assert config.model.adstock.name == "weibull_pdf" and config.model.adstock.l_max == 4


def test_plugin_transform_usable_by_name(tmp_path):
    path = tmp_path / "exp.yaml"
    example = (ROOT / "examples" / "custom_transform.py").resolve()
    path.write_text(
        textwrap.dedent(
            f"""\
            plugins: [{example}]
            data: {{channel_columns: [a]}}
            model: {{adstock: {{name: delayed_geometric}}, saturation: {{name: power}}}}
            """
        )
    )
    config = load_experiment(path)
    assert config.model.saturation.build().param_names == ("exponent",)


def test_missing_plugin(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("plugins: [nothere.py]\ndata: {channel_columns: [a]}\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(path)
