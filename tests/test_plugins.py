"""A researcher's plugin works in every command: simulate, fit, predict, optimize, report, serve,
select on Dask, sweep on Dask, refit from the run folder; and through an installed entry point.

The plugin file lives outside the package (a temporary folder) and registers a new adstock,
``w_l = (l + 1)^θ · α^l``, and a new saturation, ``1 − exp(−x / λ)``. Commands that load a run
run in fresh processes, where nothing but the model file says which plugin it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PLUGIN = '''\
import pytensor.tensor as pt

from bayesmmm import ADSTOCKS, SATURATIONS, Adstock, Prior, Saturation


def power_geometric_weights(lags, alpha, theta):
    """w_l = (l + 1)^theta * alpha^l: a geometric decay whose peak moves with theta."""
    return (lags + 1.0) ** theta * alpha**lags


@ADSTOCKS.register("power_geometric")
class PowerGeometricAdstock(Adstock):
    function = staticmethod(power_geometric_weights)
    default_priors = {
        "alpha": Prior(dist="Beta", alpha=2, beta=3),
        "theta": Prior(dist="HalfNormal", sigma=1.0),
    }


def exponential_saturation(x, lam):
    """1 - exp(-x / lam)."""
    return 1.0 - pt.exp(-x / lam)


@SATURATIONS.register("exponential")
class ExponentialSaturation(Saturation):
    function = staticmethod(exponential_saturation)
    default_priors = {"lam": Prior(dist="Gamma", alpha=3, beta=3)}
'''

SCENARIO = """\
name: plugin_scenario
plugins: [{plugin}]
seed: 7
start_date: 2023-01-02
n_weeks: 70
base: 400
trend: {{kind: linear, total: 30}}
seasonality: {{amplitude: 20, peak_day_of_year: 200, harmonics: [1.0]}}
channels:
  search:
    spend: {{shape: 2.0, scale: 800}}
    adstock: {{name: power_geometric, l_max: 6, params: {{alpha: 0.4, theta: 0.5}}}}
    saturation: {{name: exponential, params: {{lam: 1.2}}}}
    beta: 80
  tv:
    spend: {{shape: 4.0, scale: 1500}}
    adstock: {{name: geometric, l_max: 6, params: {{alpha: 0.5}}}}
    saturation: {{name: exponential, params: {{lam: 0.8}}}}
    beta: 60
noise: {{dist: normal, sigma: 10}}
"""

SAMPLER = "{backend: numpyro, chains: 2, draws: 150, tune: 200, seed: 3, progressbar: false}"
# the select + sweep plumbing test checks only that every candidate and grid point runs and is recorded
PLUMBING_SAMPLER = "{backend: numpyro, chains: 2, draws: 60, tune: 60, seed: 3, progressbar: false}"

EXPERIMENT = """\
name: plugin_fit
plugins: [{plugin}]
data: {{path: data/data.csv, channel_columns: [search, tv]}}
model: {{adstock: {{name: power_geometric, l_max: 6}}, saturation: exponential, yearly_seasonality: 1}}
sampler: {sampler}
diagnostics: {{on_fail: warn}}
"""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``bayesmmm ARGS`` in a fresh process (nothing registered but what the command loads)."""
    code = "import sys; from bayesmmm.cli import app; sys.exit(app())"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, f"bayesmmm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def plugin_project(tmp_path_factory):
    """A user's project: plugin file, simulated data with the plugin's curves, a fitted run."""
    root = tmp_path_factory.mktemp("plugin_project")
    (root / "lib").mkdir()
    (root / "lib" / "my_curves.py").write_text(PLUGIN)
    (root / "scenario.yaml").write_text(SCENARIO.format(plugin="lib/my_curves.py"))
    (root / "experiment.yaml").write_text(EXPERIMENT.format(plugin="lib/my_curves.py", sampler=SAMPLER))
    cli("simulate", "scenario.yaml", "-o", "data", cwd=root)
    cli("fit", "experiment.yaml", "-o", "run", cwd=root)
    return root


def test_simulate_and_fit_with_the_plugins_curves(plugin_project):
    truth = json.loads((plugin_project / "data" / "truth.json").read_text())
    assert set(truth["channels"]) == {"search", "tv"}
    summary = pd.read_csv(plugin_project / "run" / "summary.csv", index_col=0)
    assert any(i.startswith("adstock_theta[") for i in summary.index)
    assert any(i.startswith("saturation_lam[") for i in summary.index)
    roas = pd.read_csv(plugin_project / "run" / "roas.csv")
    assert (roas["contribution_mean"] > 0).all()


def test_the_model_file_records_the_plugin(plugin_project):
    from xarray import open_datatree

    with open_datatree(plugin_project / "run" / "posterior.nc", engine="netcdf4") as tree:
        records = json.loads(tree.attrs["bayesmmm_plugins"])
    (record,) = records
    plugin = plugin_project / "lib" / "my_curves.py"
    assert record["kind"] == "file" and record["spec"] == str(plugin.resolve())
    assert record["sha256"] == __import__("hashlib").sha256(plugin.read_bytes()).hexdigest()
    assert record["registers"] == {"adstock": ["power_geometric"], "saturation": ["exponential"]}


def test_predict_optimize_report_in_fresh_processes(plugin_project, tmp_path):
    root = plugin_project
    data = pd.read_csv(root / "data" / "data.csv")
    last = pd.Timestamp(data["date"].iloc[-1])
    future = pd.DataFrame(
        {
            "date": pd.date_range(last + pd.Timedelta(days=7), periods=4, freq="7D").strftime("%Y-%m-%d"),
            "search": 900.0,
            "tv": 1500.0,
        }
    )
    future.to_csv(tmp_path / "future.csv", index=False)
    cli(
        "predict",
        str(root / "run"),
        "--data",
        str(tmp_path / "future.csv"),
        "-o",
        str(tmp_path / "pred.csv"),
        cwd=tmp_path,
    )
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 4 and np.isfinite(pred["sales_pred_mean"]).all()
    opt = cli("optimize", str(root / "run"), "--budget", "20000", "--weeks", "8", "-o", "opt", cwd=tmp_path)
    assert "search" in opt.stdout and "tv" in opt.stdout
    allocation = pd.read_csv(tmp_path / "opt" / "allocation.csv")
    assert allocation["optimized_spend"].sum() == pytest.approx(20000, rel=1e-6)
    cli("report", str(root / "run"), cwd=tmp_path)
    assert (root / "run" / "report.html").stat().st_size > 10_000


def test_a_changed_or_missing_plugin_is_one_clear_line(plugin_project, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(plugin_project / "run", run)
    plugin = plugin_project / "lib" / "my_curves.py"
    original = plugin.read_text()
    try:
        plugin.write_text(original + "\n# edited\n")
        args = ("predict", str(run), "--data", str(plugin_project / "data" / "data.csv"), "-o", "p.csv")
        out = cli(*args, cwd=tmp_path, check=False)
        assert out.returncode == 2
        assert "changed since the model was fitted" in out.stderr and str(plugin.resolve()) in out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
        plugin.unlink()
        args = ("predict", str(run), "--data", str(plugin_project / "data" / "data.csv"), "-o", "p.csv")
        out = cli(*args, cwd=tmp_path, check=False)
        assert out.returncode == 2 and "which is missing" in out.stderr and "power_geometric" in out.stderr
    finally:
        plugin.write_text(original)


def test_loading_without_importing_code_says_how_to_serve(plugin_project):
    code = textwrap.dedent(
        f"""
        from bayesmmm import MMM
        from bayesmmm.components import PluginError, load_plugins
        try:
            MMM.load({str(plugin_project / "run")!r}, import_plugins=False)
        except PluginError as exc:
            print("refused:", exc)
        load_plugins([{str(plugin_project / "lib" / "my_curves.py")!r}])
        mmm = MMM.load({str(plugin_project / "run")!r}, import_plugins=False)
        print("loaded:", mmm.adstock.name, mmm.saturation.name)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert "refused:" in out.stdout and "--plugin" in out.stdout
    assert "loaded: power_geometric exponential" in out.stdout


def test_refit_from_the_run_folders_config(plugin_project, tmp_path):
    config = plugin_project / "run" / "config.yaml"
    text = config.read_text()
    assert str((plugin_project / "lib" / "my_curves.py").resolve()) in text
    cli("fit", str(config), "-o", str(tmp_path / "refit"), cwd=tmp_path)
    a = pd.read_csv(plugin_project / "run" / "roas.csv")
    b = pd.read_csv(tmp_path / "refit" / "roas.csv")
    np.testing.assert_allclose(a["roas_mean"], b["roas_mean"], rtol=1e-6)  # same data, config and seed


def test_select_with_two_jobs_and_a_sweep_on_two_dask_workers(plugin_project, tmp_path):
    root = plugin_project
    exp = tmp_path / "select.yaml"
    exp.write_text(
        EXPERIMENT.format(plugin=root / "lib" / "my_curves.py", sampler=PLUMBING_SAMPLER).replace(
            "data/data.csv", str(root / "data" / "data.csv")
        )
        + "selection: {adstock: [power_geometric, geometric], saturation: [exponential], holdout_weeks: 0}\n"
    )
    cli("select", str(exp), "-o", str(tmp_path / "sel"), "--jobs", "2", cwd=tmp_path)
    table = pd.read_csv(tmp_path / "sel" / "comparison.csv")
    assert sorted(table["adstock"]) == ["geometric", "power_geometric"]
    assert (table["status"] == "ok").all(), table.get("error")

    (tmp_path / "sweep.yaml").write_text(
        f"base: {exp.name}\ngrid:\n  model.adstock.name: [power_geometric, geometric]\n"
    )
    cli("sweep", str(tmp_path / "sweep.yaml"), "-o", str(tmp_path / "swept"), "--workers", "2", cwd=tmp_path)
    results = pd.read_csv(tmp_path / "swept" / "results.csv")
    assert len(results) == 2 and (results["status"] == "ok").all(), results.get("error")


def test_an_installed_packages_entry_point_registers_transforms_everywhere(plugin_project, tmp_path):
    """A package installed the way pip installs one (module + dist-info with entry_points.txt)."""
    site = tmp_path / "site"
    (site / "acme_curves").mkdir(parents=True)
    (site / "acme_curves" / "__init__.py").write_text(
        PLUGIN.replace('"power_geometric"', '"acme_power_geometric"').replace('"exponential"', '"acme_exponential"')
    )
    dist = site / "acme_curves-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-curves\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bayesmmm.transforms]\nacme = acme_curves\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        EXPERIMENT.format(plugin="x", sampler=SAMPLER)
        .replace("plugins: [x]\n", "")
        .replace("power_geometric", "acme_power_geometric")
        .replace("saturation: exponential", "saturation: acme_exponential")
        .replace("data/data.csv", str(plugin_project / "data" / "data.csv"))
    )
    cli("fit", str(exp), "-o", str(tmp_path / "run"), cwd=tmp_path, env=env)
    cli("report", str(tmp_path / "run"), cwd=tmp_path, env=env)
    opt = cli(
        "optimize", str(tmp_path / "run"), "--budget", "20000", "--weeks", "4", "-o", "opt", cwd=tmp_path, env=env
    )
    assert "search" in opt.stdout
    without = cli("report", str(tmp_path / "run"), cwd=tmp_path, check=False)
    assert without.returncode == 2 and "acme" in without.stderr and "install" in without.stderr


def test_a_component_defined_in_a_script_is_recorded_and_named_on_load(plugin_project, tmp_path):
    """Classes registered by the running script (``__main__``) cannot be re-imported: the model
    records them as such, and loading it elsewhere says to register them first."""
    script = tmp_path / "notebook.py"
    script.write_text(
        PLUGIN.replace('"power_geometric"', '"nb_power_geometric"').replace('"exponential"', '"nb_exponential"')
        + textwrap.dedent(
            """
            import json
            from bayesmmm import MMM
            mmm = MMM({"channel_columns": ["search", "tv"]},
                      {"adstock": {"name": "nb_power_geometric", "l_max": 4}, "saturation": "nb_exponential"})
            print(json.dumps([r.to_dict() for r in mmm.plugins]))
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=300)
    (record,) = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["kind"] == "script" and record["registers"] == {
        "adstock": ["nb_power_geometric"],
        "saturation": ["nb_exponential"],
    }
    from bayesmmm.components import PluginError, ensure_plugins

    with pytest.raises(PluginError, match="defined in a script or notebook"):
        ensure_plugins([record])


def test_serve_predict_with_the_plugin_given_on_the_command_line(plugin_project, tmp_path):
    """`bayesmmm serve RUN --plugin FILE` answers /predict; without --plugin it refuses to start and
    says how (the service never imports code from a model folder on its own)."""
    import socket
    import time

    import httpx

    run, plugin = plugin_project / "run", plugin_project / "lib" / "my_curves.py"
    refused = cli("serve", str(run), "--no-dashboard", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--plugin" in refused.stderr and "power_geometric" in refused.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from bayesmmm.cli import app; sys.exit(app())"
    args = ["serve", str(run), "--plugin", str(plugin), "--port", str(port), "--no-dashboard", "--log-level", "warning"]
    env = {**os.environ, "BAYESMMM_API_TOKEN": ""}
    server = subprocess.Popen([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.5)
        last = pd.Timestamp(pd.read_csv(plugin_project / "data" / "data.csv")["date"].iloc[-1])
        rows = [
            {"date": str((last + pd.Timedelta(days=7 * (i + 1))).date()), "search": 900.0, "tv": 1500.0}
            for i in range(3)
        ]
        answer = httpx.post(f"{url}/predict", json={"new_media_spend": rows}, headers={"Host": "localhost"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["sales_pred_mean"]) == 3 and all(np.isfinite(answer.json()["sales_pred_mean"]))
    finally:
        server.terminate()
        server.wait(timeout=60)
