"""A transform defined in the user's own module is usable from YAML by name."""

from __future__ import annotations

import textwrap

import pandas as pd
from typer.testing import CliRunner

from bayesmmm import ADSTOCKS, SATURATIONS
from bayesmmm.cli.main import app
from bayesmmm.workflows.simulate import builtin_scenario
from tests.conftest import EXAMPLE_TRANSFORMS


def test_example_transforms_join_the_registries():
    assert "delayed_geometric" in ADSTOCKS.names() and "power" in SATURATIONS.names()


def test_fit_with_plugin_transforms_from_yaml(tmp_path):
    runner = CliRunner()
    sim = runner.invoke(app, ["simulate", str(builtin_scenario("intermittent")), "-o", str(tmp_path / "data")])
    assert sim.exit_code == 0, sim.output
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        textwrap.dedent(
            f"""\
            plugins: [{EXAMPLE_TRANSFORMS}]
            data: {{path: data/data.csv, channel_columns: [tiktok, facebook, google_ads], control_columns: [promo]}}
            model: {{adstock: {{name: delayed_geometric, l_max: 6}}, saturation: power, trend: linear}}
            sampler: {{chains: 2, draws: 150, tune: 250, seed: 2}}
            """
        )
    )
    result = runner.invoke(app, ["fit", str(exp), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "run" / "summary.csv", index_col=0)
    assert any(i.startswith("adstock_theta[") for i in summary.index)
    assert any(i.startswith("saturation_exponent[") for i in summary.index)
    roas = pd.read_csv(tmp_path / "run" / "roas.csv")
    assert (roas["contribution_mean"] > 0).all()
