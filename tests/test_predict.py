"""`bayesmmm predict`: forecasts of future weeks from a saved run."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from tests.test_model import future_rows


def test_predict_command(fitted_example, mmm_example_frame, tmp_path):
    run = tmp_path / "run"
    fitted_example.save(run / "posterior.nc")
    (run / "metadata.json").write_text("{}")  # written last by `bayesmmm fit`: the run finished
    future_rows(mmm_example_frame, 6).to_csv(tmp_path / "new.csv", index=False)
    runner = CliRunner()
    args = ["predict", str(run), "--data", str(tmp_path / "new.csv"), "-o", str(tmp_path / "out.csv")]
    result = runner.invoke(app, [*args, "--contributions"])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:4]) == ["date", "sales_pred_mean", "sales_pred_hdi_low_90", "sales_pred_hdi_high_90"]
    assert {"x1_contribution_mean", "x2_contribution_mean"} <= set(out.columns)
    assert len(out) == 6 and (out["sales_pred_hdi_low_90"] < out["sales_pred_mean"]).all()
    assert (out["sales_pred_mean"] < out["sales_pred_hdi_high_90"]).all()
    # the predictive mean tracks the mean function; the interval includes observation noise
    mu = fitted_example.predict(pd.read_csv(tmp_path / "new.csv"))["mu"].mean(("chain", "draw")).to_numpy()
    sigma = float(fitted_example.idata["posterior"]["sigma"].mean()) * fitted_example.scales.target
    np.testing.assert_allclose(out["sales_pred_mean"], mu, atol=0.2 * sigma)
    assert ((out["sales_pred_hdi_high_90"] - out["sales_pred_hdi_low_90"]) > 2 * sigma).all()

    narrow = runner.invoke(app, [*args, "--hdi-prob", "0.8"])
    assert narrow.exit_code == 0
    assert "sales_pred_hdi_low_80" in pd.read_csv(tmp_path / "out.csv").columns

    bad = runner.invoke(app, [*args, "--hdi-prob", "1.5"])
    assert bad.exit_code == 2 and "--hdi-prob" in bad.output
    pd.read_csv(tmp_path / "new.csv").drop(columns=["x2"]).to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(app, ["predict", str(run), "--data", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "b.csv")])
    assert bad.exit_code == 2 and "'x2'" in bad.output and not (tmp_path / "b.csv").exists()
