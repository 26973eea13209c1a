"""Model registry: versioned folders, metadata, listing, path safety, comparison and promotion."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from bayesmmm.cli.main import app
from bayesmmm.serving.model_registry import (
    MODEL_FILE,
    ModelRegistry,
    PromotionRefused,
    RegistryError,
    compare_versions,
    resolve_model,
)
from tests.conftest import HOLDOUT_WEEKS

runner = CliRunner()


@pytest.fixture
def registry(tmp_path, example_run):
    reg = ModelRegistry(tmp_path / "registry")
    reg.register(example_run, "example")
    return reg


def test_register_writes_a_versioned_folder_with_metadata(registry, example_run):
    v1 = registry.get("example")
    assert v1.label == "example/v1" and v1.path == (registry.root / "example" / "v1").resolve()
    for name in ("posterior.nc", "config.yaml", "diagnostics.json", "roas.csv", MODEL_FILE):
        assert (v1.path / name).is_file(), name
    meta = json.loads((v1.path / MODEL_FILE).read_text())
    run_meta = json.loads((example_run / "metadata.json").read_text())
    assert meta["name"] == "example" and meta["version"] == "v1" and meta["created_at"]
    assert meta["data_sha256"] == run_meta["data_sha256"] and len(meta["posterior_sha256"]) == 64
    assert meta["config"]["model"]["saturation"]["name"] == "logistic"
    assert {"pymc", "pytensor", "arviz", "bayesmmm"} <= set(meta["versions"]["training"])
    assert {"r2", "mape", "nrmse"} <= set(meta["fit_metrics"]) and "elpd" in meta["loo"]
    assert {"max_rhat", "min_ess_bulk", "divergences", "passed"} <= set(meta["diagnostics"])
    assert meta["channels"] == ["x1", "x2"] and meta["source_run"] == str(example_run.resolve())
    assert not [p for p in (registry.root / "example").iterdir() if p.name.startswith(".")]  # no leftovers


def test_versions_current_latest_and_pinned(registry, example_run):
    v2 = registry.register(example_run, "example", promote=False)
    assert v2.version == 2
    assert registry.get("example").version == 1  # current: v2 is only a candidate
    assert registry.get("example", "latest").version == 2
    assert registry.get("example", "v2").version == registry.get("example", 2).version == 2
    with pytest.raises(RegistryError, match="no version v7"):
        registry.get("example", "v7")
    with pytest.raises(RegistryError, match="invalid version"):
        registry.get("example", "../v1")
    with pytest.raises(RegistryError, match="no model named 'other'"):
        registry.get("other")
    table = registry.table()
    assert list(table["version"]) == ["v1", "v2"] and list(table["current"]) == [True, False]
    # an incomplete version folder (no model.json) is invisible
    (registry.root / "example" / "v3").mkdir()
    assert registry.get("example", "latest").version == 2
    assert registry.register(example_run, "example").version == 4  # never reuses a number


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc", "..", ".", "", "v3", "x" * 65, "a b", "-rf", "é"])
def test_names_cannot_escape_the_registry(registry, example_run, name):
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register(example_run, name)
    with pytest.raises(RegistryError):
        registry.get(name)


def test_symlinked_model_outside_the_registry_is_refused(registry, tmp_path):
    outside = tmp_path / "outside"
    (outside / "v1").mkdir(parents=True)
    (outside / "v1" / MODEL_FILE).write_text("{}")
    (registry.root / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RegistryError, match="outside the registry"):
        registry.get("sneaky")
    assert "sneaky" not in list(registry.table()["name"])


def test_register_refuses_unfinished_runs(registry, tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "posterior.nc").write_bytes(b"")
    with pytest.raises(RegistryError, match="not a finished run folder"):
        registry.register(tmp_path / "half", "example")
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register(tmp_path / "nope", "example")


def test_resolve_model(registry, example_run):
    path, label, entry = resolve_model(registry.root)  # one model: no name needed
    assert label == "example/v1" and entry is not None and path == entry.posterior
    assert resolve_model(registry.root / "example")[1] == "example/v1"  # a model's folder
    assert resolve_model(registry.root / "example" / "v1")[1] == "example/v1"  # a version folder
    assert resolve_model(example_run)[1].startswith("run:run@")
    with pytest.raises(RegistryError, match="invalid model name"):
        resolve_model(registry.root, "../example")


def test_compare_and_promote(registry, example_run, mmm_example_frame):
    registry.register(example_run, "example", promote=False)
    holdout = mmm_example_frame.iloc[-HOLDOUT_WEEKS:]
    cmp = compare_versions(registry.get("example"), registry.get("example", "v2"), holdout=holdout)
    assert cmp["same_data"] and cmp["elpd_diff"] == pytest.approx(0.0) and cmp["promote"] and not cmp["reasons"]
    for side in ("current", "candidate"):
        assert cmp[side]["holdout_weeks"] == HOLDOUT_WEEKS
        assert cmp[side]["holdout_rmse"] > 0 and 0 <= cmp[side]["holdout_coverage"] <= 1
    assert registry.promote("example", "v2")["promote"]
    assert registry.get("example").version == 2
    history = json.loads((registry.root / "example" / "current.json").read_text())["history"]
    assert [h["version"] for h in history] == ["v1", "v2"] and history[-1]["reason"] == "compared"

    # a candidate whose diagnostics failed is refused unless forced
    v3 = registry.register(example_run, "example", promote=False)
    meta = json.loads((v3.path / MODEL_FILE).read_text())
    meta["diagnostics"]["passed"] = False
    (v3.path / MODEL_FILE).write_text(json.dumps(meta))
    with pytest.raises(PromotionRefused, match="diagnostics failed") as info:
        registry.promote("example", "v3")
    assert not info.value.comparison["promote"]
    assert registry.get("example").version == 2
    registry.promote("example", "v3", force=True)
    assert registry.get("example").version == 3


def test_cli_register_models_compare_promote(tmp_path, example_run, mmm_example_frame):
    reg = tmp_path / "reg"
    out = runner.invoke(app, ["register", str(example_run), "--name", "sales", "--registry", str(reg)])
    assert out.exit_code == 0 and "sales/v1 registered and promoted" in out.output, out.output
    out = runner.invoke(app, ["register", str(example_run), "--name", "sales", "--registry", str(reg), "--candidate"])
    assert out.exit_code == 0 and "sales/v2 registered as a candidate" in out.output
    listing = runner.invoke(app, ["models", "--registry", str(reg)])
    assert listing.exit_code == 0
    lines = [line.split() for line in listing.output.strip().splitlines()]
    assert lines[1][:3] == ["sales", "v1", "*"] and lines[2][:2] == ["sales", "v2"] and "*" not in lines[2]
    as_json = json.loads(runner.invoke(app, ["models", "--registry", str(reg), "--json"]).output)
    assert [r["version"] for r in as_json] == ["v1", "v2"]

    holdout = tmp_path / "holdout.csv"
    mmm_example_frame.iloc[-HOLDOUT_WEEKS:].to_csv(holdout, index=False)
    cmp = runner.invoke(app, ["compare-models", "sales", "v2", "--registry", str(reg), "--holdout", str(holdout)])
    assert cmp.exit_code == 0 and "holdout_rmse" in cmp.output and "can be promoted" in cmp.output, cmp.output
    promoted = runner.invoke(app, ["promote", "sales", "v2", "--registry", str(reg)])
    assert promoted.exit_code == 0 and "sales/v2 is now current" in promoted.output

    bad = runner.invoke(app, ["register", str(example_run), "--name", "../x", "--registry", str(reg)])
    assert bad.exit_code == 2 and "invalid model name" in bad.output
    bad = runner.invoke(app, ["promote", "sales", "v9", "--registry", str(reg)])
    assert bad.exit_code == 2 and "no version v9" in bad.output
    assert not (tmp_path / "x").exists()


def test_cli_promote_refused_exits_3(tmp_path, example_run):
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(example_run, "sales")
    v2 = reg.register(example_run, "sales", promote=False)
    meta = json.loads((v2.path / MODEL_FILE).read_text())
    meta["diagnostics"]["passed"] = False
    (v2.path / MODEL_FILE).write_text(json.dumps(meta))
    refused = runner.invoke(app, ["promote", "sales", "v2", "--registry", str(reg.root)])
    assert refused.exit_code == 3 and "refused" in refused.output
    forced = runner.invoke(app, ["promote", "sales", "v2", "--registry", str(reg.root), "--force"])
    assert forced.exit_code == 0


def test_serving_from_the_registry(registry, example_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    registry.register(example_run, "example", promote=False)
    current = ModelService.from_target(registry.root, dashboard=False)
    assert current.model_version == "example/v1"
    pinned = ModelService.from_target(registry.root, name="example", version="latest", dashboard=False)
    c = TestClient(create_app(pinned, token=""), base_url="http://localhost")
    assert c.get("/health").json() == {"status": "ok", "model_version": "example/v2"}
    versions = c.get("/models").json()
    assert versions["serving"] == "example/v2" and [v["version"] for v in versions["versions"]] == ["v1", "v2"]
    cmp = c.get("/models/compare", params={"candidate": "v2"}).json()
    assert cmp["promote"] and cmp["candidate"]["version"] == "example/v2"
    r = c.get("/models/compare", params={"candidate": "../../etc"})
    assert r.status_code == 422 and "invalid version" in r.json()["message"]
    with pytest.raises(RegistryError, match="invalid model name"):
        ModelService.from_target(registry.root, name="../registry", dashboard=False)


# ------------------------------------------------------- issue 18: registry safety
def test_folders_and_files_follow_the_umask(tmp_path, example_run):
    import os
    import stat

    old = os.umask(0o022)
    try:
        v1 = ModelRegistry(tmp_path / "reg").register(example_run, "example")
    finally:
        os.umask(old)
    for path in (v1.path, v1.path.parent, v1.path.parent.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    for f in v1.path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_links_out_are_refused_at_every_level(registry, example_run, tmp_path):
    import shutil

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy2(example_run / "posterior.nc", outside / "posterior.nc")
    v2 = registry.register(example_run, "example")
    (v2.path / "posterior.nc").unlink()
    (v2.path / "posterior.nc").symlink_to(outside / "posterior.nc")
    with pytest.raises(RegistryError, match="outside the registry"):
        registry.get("example", "v2")
    with pytest.raises(RegistryError, match="outside the registry"):
        resolve_model(registry.root, "example", "v2")
    # the link-out version is left out of the listing; v1 stays usable
    assert list(registry.table()["version"]) == ["v1"]
    assert registry.get("example", "v1").version == 1
    # model.json linked out is refused too
    v3 = registry.register(example_run, "example", promote=False)
    (outside / MODEL_FILE).write_text((v3.path / MODEL_FILE).read_text())
    (v3.path / MODEL_FILE).unlink()
    (v3.path / MODEL_FILE).symlink_to(outside / MODEL_FILE)
    with pytest.raises(RegistryError, match="outside the registry"):
        registry.get("example", "v3")


def test_one_bad_version_does_not_hide_the_good_ones(registry, example_run):
    v2 = registry.register(example_run, "example", promote=False)
    (v2.path / MODEL_FILE).write_text("{not json")
    assert list(registry.table()["version"]) == ["v1"]
    assert registry.names() == ["example"] and registry.get("example").version == 1
    with pytest.raises(RegistryError, match="v2"):
        registry.get("example", "v2")
    listing = runner.invoke(app, ["models", "--registry", str(registry.root)])
    assert listing.exit_code == 0 and "example" in listing.output, listing.output


def test_current_json_updates_are_serialized(registry, monkeypatch):
    import threading
    import time

    import bayesmmm.serving.model_registry as reg_module

    real = reg_module._read_json

    def slow_read(path):  # widens the read-modify-write window of current.json
        out = real(path)
        time.sleep(0.02)
        return out

    monkeypatch.setattr(reg_module, "_read_json", slow_read)
    threads = [threading.Thread(target=registry._set_current, args=("example", 1, f"t{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = json.loads((registry.root / "example" / "current.json").read_text())["history"]
    assert len(history) == 9, [h["reason"] for h in history]  # registered + 8, none lost


def test_models_endpoint_hides_absolute_paths(registry, example_run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    svc = ModelService.from_target(registry.root, dashboard=False)
    c = TestClient(create_app(svc, token=""), base_url="http://localhost")
    text = c.get("/models").text
    assert str(tmp_path) not in text and str(example_run.resolve()) not in text
    assert "source_run" not in text


def test_models_compare_is_cached(registry, example_run, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import bayesmmm.serving.model_registry as reg_module
    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    calls = []
    real = reg_module.compare_versions

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reg_module, "compare_versions", counting)
    registry.register(example_run, "example", promote=False)
    svc = ModelService.from_target(registry.root, dashboard=False)
    c = TestClient(create_app(svc, token=""), base_url="http://localhost")
    first = c.get("/models/compare", params={"candidate": "v2"})
    second = c.get("/models/compare", params={"candidate": "v2"})
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert len(calls) == 1


def test_service_reloads_on_promote_without_dropping_requests(registry, example_run):
    import threading
    import time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bayesmmm.serving.reload import ServingApp

    serving = ServingApp.from_target(registry.root, dashboard=False, token="", watch_interval=0.2)
    c = TestClient(serving, base_url="http://localhost")
    assert c.get("/health").json()["model_version"] == "example/v1"
    registry.register(example_run, "example", promote=False)
    stop = threading.Event()
    statuses: list[int] = []
    body = {"budget": 5.0, "weeks": 4, "max_draws": 50}

    def traffic():
        while not stop.is_set():
            statuses.append(c.get("/roas").status_code)
            statuses.append(c.post("/optimize", json=body).status_code)

    serving.start_watching()
    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        registry.promote("example", "v2", force=True)
        deadline = time.monotonic() + 120
        while c.get("/health").json()["model_version"] != "example/v2":
            assert time.monotonic() < deadline, "the promoted version was not picked up"
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join()
        serving.close()
    assert statuses and set(statuses) == {200}, statuses
    assert c.get("/models").json()["serving"] == "example/v2"


def test_sighup_reloads(registry, example_run):
    import os
    import signal
    import time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bayesmmm.serving.reload import ServingApp

    serving = ServingApp.from_target(registry.root, dashboard=False, token="", watch_interval=3600)
    c = TestClient(serving, base_url="http://localhost")
    registry.register(example_run, "example")  # promoted, but the watcher is slow: SIGHUP picks it up
    previous = serving.install_sighup()
    serving.start_watching()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 120
        while c.get("/health").json()["model_version"] != "example/v2":
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.1)
    finally:
        serving.close()
        signal.signal(signal.SIGHUP, previous)
