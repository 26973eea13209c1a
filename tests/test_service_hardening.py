"""The service under attack and under load (issue 18): each finding's test.

Escaping and security headers, /health while model work runs, bounded concurrency (429 +
Retry-After), caps and timeouts, bounded caches, strict JSON, request ids on 500s, startup
errors for bad options, trusted hosts, Prometheus labels, the bearer scheme in the OpenAPI
spec and /docs without a CDN. A real fitted model throughout (tests/conftest.py); the
optimizer is replaced by a sleeping stub only where a test is about waiting, not numbers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import warnings
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():  # starlette nudges towards httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bayesmmm.serving.factory import create_app
from bayesmmm.serving.service import ModelService

LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def service(example_run):
    return ModelService.from_target(example_run)


@pytest.fixture(scope="module")
def client(service):
    app = create_app(service, token="")
    yield TestClient(app, base_url=LOCAL)
    app.state.runtime.shutdown()


def rows(service, n=3):
    data = service.mmm.data
    out = []
    for i in range(n):
        row = {"date": str((data.dates[-1] + pd.Timedelta(days=7 * (i + 1))).date())}
        row.update({ch: float(v) for ch, v in zip(service.mmm.channels, data.media[-1 - i % 5], strict=True)})
        row.update({c: 0.0 for c in service.mmm.controls})
        out.append(row)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app):
    """``app`` under uvicorn on a real loopback socket; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def slow_optimizer(seconds: float):
    """A stand-in for optimize_budget that only takes time (these tests are about waiting, not numbers)."""

    def optimize_budget(mmm, budget, weeks, **kwargs):
        time.sleep(seconds)
        alloc = pd.DataFrame({"channel": list(mmm.channels), "optimized_spend": [1.0] * len(mmm.channels)})
        return SimpleNamespace(allocation=alloc, summary={"weeks": weeks})

    return optimize_budget


# ------------------------------------------------------------------ XSS, headers
def test_security_headers_on_every_answer(client, service):
    for r in (
        client.get("/"),
        client.get("/health"),
        client.post("/predict", json={"new_media_spend": []}),
        client.get("/nope"),
    ):
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'self'" in script_src and "unsafe" not in script_src
    assert "<script>" not in page.text and " on" not in page.text.split("<body", 1)[1].split(">", 1)[0]


def test_dashboard_script_builds_rows_as_text(client):
    page = client.get("/")
    assert 'src="static/dashboard.js"' in page.text
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text and "textContent" in js.text
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/../service.py").status_code == 404


def test_dashboard_template_escapes_model_text(service):
    from bayesmmm.serving.dashboard import render_dashboard

    evil = "<img src=x onerror=alert(1)>"
    roas = service.roas().copy()
    roas["channel"] = [evil, "x2"]
    html = render_dashboard(service.mmm, f"v1{evil}", roas, service.metrics, service.figures, {"passed": True})
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# ------------------------------------------------- /health while model work runs
def test_health_never_waits_on_optimize_and_overflow_is_429(service, monkeypatch):
    import httpx

    from bayesmmm.serving.pools import ServeLimits

    monkeypatch.setattr("bayesmmm.decisions.optimizer.optimize_budget", slow_optimizer(1.0))
    # optimizer threads in this process (a stub cannot be patched into an optimizer process)
    app = create_app(service, token="", limits=ServeLimits(optimize_processes=False))
    body = {"budget": 5.0, "weeks": 4, "max_draws": 100}
    statuses: list[int] = []
    retry_after: list[str] = []
    with (
        running(app) as url,
        httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)) as http,
        httpx.Client(base_url=url, timeout=30) as probe,
    ):
        probe.get("/health")

        def call() -> None:
            r = http.post("/optimize", json=body)
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after.append(r.headers.get("retry-after", ""))

        threads = [threading.Thread(target=call) for _ in range(44)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 1.0  # all sent: the overflow answered (old code: all parked on threads)
        while len(statuses) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        worst = 0.0
        for _ in range(5):
            t0 = time.perf_counter()
            assert probe.get("/health").status_code == 200
            worst = max(worst, time.perf_counter() - t0)
        for t in threads:
            t.join()
    # old code: ~3 s here (four 1 s optimizations ahead of it for a thread); 1 s leaves room for a busy box
    # (0.55 s was measured once at 0.5 s optimizations with two fits running beside the suite)
    assert worst < 1.0, f"/health took {worst:.2f} s while /optimize calls were queued"
    assert statuses.count(429) >= 30 and set(statuses) <= {200, 429}, statuses
    assert all(v.isdigit() and int(v) >= 1 for v in retry_after)


def test_per_request_timeout(service, monkeypatch):
    from bayesmmm.serving.pools import ServeLimits

    monkeypatch.setattr("bayesmmm.decisions.optimizer.optimize_budget", slow_optimizer(1.0))
    limits = ServeLimits(request_timeout_s=0.2, optimize_processes=False)
    c = TestClient(create_app(service, token="", limits=limits), base_url=LOCAL)
    r = c.post("/optimize", json={"budget": 5.0, "weeks": 4, "max_draws": 100})
    assert r.status_code == 504 and "0.2 s" in r.json()["message"] and len(r.headers["x-request-id"]) == 16


def test_work_caps_size_horizon_draws(service):
    from bayesmmm.serving.pools import ServeLimits

    n = service.forecaster.n_draws
    c = TestClient(create_app(service, token="", limits=ServeLimits(max_predict_cells=5 * n)), base_url=LOCAL)
    assert c.post("/predict", json={"new_media_spend": rows(service, 5)}).status_code == 200
    r = c.post("/predict", json={"new_media_spend": rows(service, 6)})
    assert r.status_code == 422 and "weeks × draws" in r.json()["message"], r.text
    # ten years of weeks on every draw: refused at once, not 20 s of CPU
    t0 = time.perf_counter()
    r = c.post("/optimize", json={"budget": 5.0, "weeks": 520, "max_draws": 4000})
    assert r.status_code == 422 and "weeks × max_draws" in r.json()["message"], r.text
    assert time.perf_counter() - t0 < 2


def test_optimizer_process_gives_the_same_plan(service):
    """/optimize in the optimizer process: the same plan as in this process, and its errors as 422s."""
    import httpx

    from bayesmmm.serving.schemas import OptimizeRequest

    body = {"budget": 5.0, "weeks": 8, "max_draws": 200, "max_change": 0.5}
    expected = service.optimize(OptimizeRequest(**body))
    app = create_app(service, token="")
    assert app.state.runtime.optimize.processes
    with contextlib.ExitStack() as stack:
        stack.callback(app.state.runtime.shutdown)  # the optimizer process this test starts
        url = stack.enter_context(running(app))
        http = stack.enter_context(httpx.Client(base_url=url, timeout=120))
        r = http.post("/optimize", json=body)  # spawns the process, loads the model there
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(json.dumps(expected))
        bad = http.post("/optimize", json={**body, "fixed": ["tv"]})
        assert bad.status_code == 422 and "unknown channel" in bad.json()["message"]
        infeasible = http.post("/optimize", json={"weeks": 8})  # the optimizer's own error, from the process
        assert infeasible.status_code == 422 and "budget" in infeasible.json()["message"], infeasible.text


def test_table_cache_is_bounded(service):
    c = TestClient(create_app(service, token=""), base_url=LOCAL)
    for i in range(1, 30):
        assert c.get("/roas", params={"hdi_prob": i / 31}).status_code == 200
    assert len(service._roas) <= 9
    assert c.get("/roas").json()["hdi_prob"] == service.hdi_prob  # the start-up table stays


# ------------------------------------------------------------------------ edges
def test_overflowing_spend_and_budget_are_422(client, service):
    body = rows(service, 2)
    body[1]["x1"] = 1.7e308
    r = client.post("/predict", json={"new_media_spend": body})
    assert r.status_code == 422 and "new_media_spend[1].x1" in r.json()["message"], r.text
    body = rows(service, 1)
    body[0]["event_1"] = -1e308
    r = client.post("/predict", json={"new_media_spend": body})
    assert r.status_code == 422 and "event_1" in r.json()["message"], r.text
    r = client.post("/optimize", json={"budget": 1e308, "weeks": 4, "max_draws": 100})
    assert r.status_code == 422 and "budget" in r.json()["message"], r.text


def test_json_is_strict(client, service):
    body = {"new_media_spend": rows(service, 1)}
    r = client.post("/predict", json={**body, "contributions": "yes"})
    assert r.status_code == 422 and "contributions" in r.json()["message"]
    raw = '{"new_media_spend": ' + json.dumps(body["new_media_spend"]) + ', "hdi_prob": 0.5, "hdi_prob": 0.9}'
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "duplicate key 'hdi_prob'" in r.json()["message"], r.text
    row = json.dumps(body["new_media_spend"][0])
    raw = '{"new_media_spend": [' + row.replace('"x1":', '"x1": 1.0, "x1":') + "]}"
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "duplicate key 'x1'" in r.json()["message"], r.text
    r = client.post("/predict", content='{"new_media_spend": NaN}', headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_internal_errors_are_500_with_request_id_and_no_raw_message(service, monkeypatch):
    c = TestClient(create_app(service, token=""), base_url=LOCAL, raise_server_exceptions=False)

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together: /srv/secret/path")

    monkeypatch.setattr(service.forecaster, "forecast", broken)
    r = c.post("/predict", json={"new_media_spend": rows(service, 1)})
    assert r.status_code == 500, r.text
    assert "secret" not in r.text and "broadcast" not in r.text
    rid = r.headers["x-request-id"]
    assert len(rid) == 16 and rid in r.json()["message"]
    monkeypatch.setattr(service.forecaster, "forecast", lambda *a, **k: 1 / 0)
    r = c.post("/predict", json={"new_media_spend": rows(service, 1)})
    assert r.status_code == 500 and len(r.headers["x-request-id"]) == 16
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--max-body-bytes", "-5"], {}, "--max-body-bytes"),
        (["--max-body-bytes", "0"], {}, "--max-body-bytes"),
        ([], {"BAYESMMM_API_TOKEN": "   "}, "BAYESMMM_API_TOKEN"),
        ([], {"BAYESMMM_API_TOKEN": "pässwört-123"}, "BAYESMMM_API_TOKEN"),
        ([], {"BAYESMMM_API_TOKEN": " padded "}, "BAYESMMM_API_TOKEN"),
        (["--allowed-host", "bad host/"], {}, "--allowed-host"),
    ],
)
def test_bad_startup_options_exit_non_zero(example_run, monkeypatch, args, env, expected):
    import uvicorn

    from bayesmmm.cli.main import app

    started: list[bool] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(True))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = CliRunner().invoke(app, ["serve", str(example_run), "--no-dashboard", *args])
    assert out.exit_code == 2 and expected in out.output, out.output
    assert not started


def test_bad_token_refused_by_create_app(service):
    for token in ("  ", "tökén", "a b", "x\n"):
        with pytest.raises(ValueError, match="token"):
            create_app(service, token=token)


def test_trusted_hosts(service):
    app = create_app(service, token="")
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert TestClient(app, base_url=f"http://{host}").get("/health").status_code == 200, host
    for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io"):
        r = TestClient(app, base_url=f"http://{host}").get("/roas")
        assert r.status_code == 400 and "Host" in r.json()["message"], host
        assert len(r.headers["x-request-id"]) == 16
    configured = create_app(service, token="", allowed_hosts=["mmm.example.com"])
    assert TestClient(configured, base_url="http://mmm.example.com").get("/health").status_code == 200
    assert TestClient(configured, base_url=LOCAL).get("/roas").status_code == 400
    # /health answers any Host: a probe may name the pod's address; it tells nothing but the version
    assert TestClient(configured, base_url="http://10.1.2.3:8000").get("/health").status_code == 200


# ----------------------------------------------------- metrics, auth scheme, docs
def test_metrics_labels_are_bounded(service):
    c = TestClient(create_app(service, token=""), base_url=LOCAL)
    c.request("FOOBAR", "/health")
    c.get("/no/such/path/zq-unbounded")  # letters: digits could appear in a sample's value or timestamp
    c.get("/health")
    text = c.get("/metrics").text
    assert "FOOBAR" not in text and "zq-unbounded" not in text
    assert 'method="other"' in text and 'route="unmatched"' in text
    assert 'bayesmmm_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text


def test_openapi_declares_the_bearer_scheme(service):
    c = TestClient(create_app(service, token="s3cret"), base_url=LOCAL)
    schema = c.get("/openapi.json")
    assert schema.status_code == 200  # public, so that /docs can load and authorize
    spec = schema.json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
    assert {"HTTPBearer": []} in spec["paths"]["/predict"]["post"]["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_docs_load_nothing_from_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text and "<script>" not in page.text
    for asset in ("docs/swagger-ui-bundle.js", "docs/swagger-ui.css", "static/docs.js"):
        assert f'"{asset}"' in page.text, asset
        assert client.get(f"/{asset}").status_code == 200, asset


def test_optimizer_process_exits_with_the_server(tmp_path):
    """A server killed outright (no shutdown, no atexit) leaves no optimizer process behind."""
    import os
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from bayesmmm.serving.pools import WorkPool\n"
        "pool = WorkPool('optimize', 1, 0, 30.0, processes=True)\n"
        "print(pool.executor.submit(os.getpid).result(timeout=120), flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True)
    worker = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, 9)
    pytest.fail(f"the optimizer process {worker} outlived the server")
