"""The HTTP service, driven through FastAPI's test client (and once through real uvicorn) with a fitted model."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import HOLDOUT_WEEKS, SMALL_SAMPLER

with warnings.catch_warnings():  # starlette nudges towards httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bayesmmm.serving.factory import create_app
from bayesmmm.serving.logs import JsonFormatter
from bayesmmm.serving.schemas import MAX_ROWS
from bayesmmm.serving.service import ModelService

LOCAL = "http://localhost"  # the service answers only to localhost names by default (Host header check)


@pytest.fixture(scope="module")
def service(example_run):
    return ModelService.from_target(example_run)


@pytest.fixture(scope="module")
def client(service):
    app = create_app(service, token="")
    yield TestClient(app, base_url=LOCAL)
    app.state.runtime.shutdown()  # the optimizer process /optimize started


def rows(service, n=3, start=0):
    """``n`` consecutive future weeks (from week ``start`` after the training data), spend > 0."""
    data = service.mmm.data
    out = []
    for i in range(start, start + n):
        row = {"date": str((data.dates[-1] + pd.Timedelta(days=7 * (i + 1))).date())}
        row.update({ch: float(v) for ch, v in zip(service.mmm.channels, data.media[-1 - i % 5], strict=True)})
        row.update({c: 0.0 for c in service.mmm.controls})
        out.append(row)
    return out


def test_health(client, service):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_version": service.model_version}
    assert service.model_version.startswith("run:run@")


def test_predict_matches_the_cli_forecast(client, service, mmm_example_frame):
    from bayesmmm.evaluation.summaries import forecast_table

    body = {"new_media_spend": rows(service, 4), "hdi_prob": 0.9, "contributions": True, "seed": 3}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["sales_pred_mean"]) == len(out["sales_pred_hdi_low"]) == len(out["sales_pred_hdi_high"]) == 4
    assert out["dates"] == [row["date"] for row in body["new_media_spend"]]
    lo, mean, hi = (np.array(out[k]) for k in ("sales_pred_hdi_low", "sales_pred_mean", "sales_pred_hdi_high"))
    assert (lo < mean).all() and (mean < hi).all()
    assert set(out["contributions"]) == {"x1", "x2"} and len(out["contributions"]["x1"]) == 4
    # the same numbers as `bayesmmm predict` (forecast_table) on the same draws, seed and rows
    frame = pd.DataFrame(body["new_media_spend"]).rename(columns={"date": "date_week"})
    table = forecast_table(service.forecaster.predictive, frame, 0.9, True, 3)
    np.testing.assert_allclose(mean, table["sales_pred_mean"], rtol=1e-12)
    np.testing.assert_allclose(lo, table["sales_pred_hdi_low_90"], rtol=1e-12)
    np.testing.assert_allclose(hi, table["sales_pred_hdi_high_90"], rtol=1e-12)
    np.testing.assert_allclose(out["contributions"]["x2"], table["x2_contribution_mean"], rtol=1e-12)
    # a narrower probability gives a narrower interval; the default seed is deterministic
    narrow = client.post("/predict", json={"new_media_spend": body["new_media_spend"], "hdi_prob": 0.5}).json()
    assert (np.array(narrow["sales_pred_hdi_high"]) - narrow["sales_pred_hdi_low"] < hi - lo).all()
    again = client.post("/predict", json={"new_media_spend": body["new_media_spend"], "hdi_prob": 0.5}).json()
    assert again == narrow
    assert "contributions" not in narrow


def test_forecast_matches_the_held_out_weeks(client, service, mmm_example_frame):
    """Forecasting the real held-out weeks: the 90% interval covers most of them."""
    held = mmm_example_frame.iloc[-HOLDOUT_WEEKS:]
    body = [
        {"date": d, "x1": x1, "x2": x2, "event_1": e1, "event_2": e2}
        for d, x1, x2, e1, e2 in held[["date_week", "x1", "x2", "event_1", "event_2"]].itertuples(index=False)
    ]
    out = client.post("/predict", json={"new_media_spend": body}).json()
    y = held["y"].to_numpy()
    covered = (np.array(out["sales_pred_hdi_low"]) <= y) & (y <= np.array(out["sales_pred_hdi_high"]))
    assert covered.mean() >= 0.7


def test_carryover_history_is_exact(service):
    """MMM.predict uses only the adstock's carry-over weeks of history: same result as the whole history."""
    mmm = service.mmm
    new = pd.DataFrame(rows(service, 5)).rename(columns={"date": "date_week"})
    short = mmm.predict(new)["mu"].to_numpy().reshape(-1, 5)
    h = mmm.data
    dates = h.dates.append(pd.DatetimeIndex(new["date_week"]))
    comps = mmm.evaluate(
        dates,
        np.vstack([h.media, new[["x1", "x2"]].to_numpy()]),
        np.vstack([h.controls, new[["event_1", "event_2"]].to_numpy()]),
    )
    full = sum(comps[k] if comps[k].ndim == 2 else comps[k].sum(-1) for k in comps)[:, -5:]
    np.testing.assert_allclose(short, full, rtol=1e-12)
    assert mmm.carryover_weeks == mmm.adstock.l_max - 1


def test_draws_are_thinned_for_serving(example_run):
    svc = ModelService.from_target(example_run, dashboard=False, max_draws=100)
    assert svc.forecaster.n_draws == 100
    assert svc.mmm.idata["posterior"].sizes["draw"] == SMALL_SAMPLER["draws"]  # tables keep every draw
    out = svc.predict({"new_media_spend": rows(svc, 2)})
    assert len(out["sales_pred_mean"]) == 2


def test_the_draw_cap_counts_the_draws_the_service_evaluates(example_run, monkeypatch):
    """``max_draws`` caps the draws actually evaluated, by forecasts and by the dashboard's response
    curves, not only the count the service reports (its weeks × draws limits are computed from it).
    A spy on the predictive core records how many draws each evaluation receives."""
    import inspect

    from bayesmmm.model.predictive import Predictive

    seen: dict[str, list[int]] = {"evaluate": [], "media_totals": []}

    def spy(name):
        original = getattr(Predictive, name)
        signature = inspect.signature(original)

        def wrapped(self, *args, **kwargs):
            draws = signature.bind(self, *args, **kwargs).arguments.get("draws")
            used = self.posterior_draws() if draws is None else draws
            seen[name].append(len(next(iter(used.values()))))
            return original(self, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(Predictive, "evaluate", spy("evaluate"))
    monkeypatch.setattr(Predictive, "media_totals", spy("media_totals"))
    svc = ModelService.from_target(example_run, dashboard=True, max_draws=100)
    n_posterior = svc.mmm.predictive.n_draws
    assert n_posterior > 100 and svc.forecaster.n_draws <= 100
    assert seen["media_totals"] and max(seen["media_totals"]) <= 100  # the dashboard's response curves
    seen["evaluate"].clear()
    svc.predict({"new_media_spend": rows(svc, 3)})
    assert seen["evaluate"] == [svc.forecaster.n_draws]


def _message(r, status=422):
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


CONTINUE = "new_media_spend[0].date: new dates must continue the weekly grid"
PAST = "new_media_spend[0].date: new dates start on"


def last_training_week(service):
    return str(service.mmm.data.dates[-1].date())


BAD_PAYLOADS = [
    # (description, mutate(body) -> body, text expected in the message)
    ("missing channel", lambda b, s: {"new_media_spend": [{k: v for k, v in b[0].items() if k != "x2"}]}, "x2"),
    ("negative spend", lambda b, s: {"new_media_spend": [{**b[0], "x1": -1.0}]}, "cannot be negative"),
    ("bad date", lambda b, s: {"new_media_spend": [{**b[0], "date": "2021-13-45"}]}, "new_media_spend[0].date"),
    ("date not a string", lambda b, s: {"new_media_spend": [{**b[0], "date": 20210906}]}, "ISO date"),
    ("date word", lambda b, s: {"new_media_spend": [{**b[0], "date": "next monday"}]}, "new_media_spend[0].date"),
    # the dates must continue the training data: the model's own check (MMM.check_continues), naming the field
    ("wrong first week", lambda b, s: {"new_media_spend": [{**b[0], "date": "2030-01-07"}]}, CONTINUE),
    ("first week in the past", lambda b, s: {"new_media_spend": [{**b[0], "date": last_training_week(s)}]}, PAST),
    ("gap between weeks", lambda b, s: {"new_media_spend": [b[0], {**b[1], "date": b[2]["date"]}]}, "consecutive"),
    ("weeks out of order", lambda b, s: {"new_media_spend": [b[1], b[0]]}, CONTINUE),
    ("hdi_prob 0", lambda b, s: {"new_media_spend": b, "hdi_prob": 0}, "hdi_prob"),
    ("hdi_prob 1", lambda b, s: {"new_media_spend": b, "hdi_prob": 1}, "hdi_prob"),
    ("hdi_prob 1.5", lambda b, s: {"new_media_spend": b, "hdi_prob": 1.5}, "hdi_prob"),
    ("hdi_prob negative", lambda b, s: {"new_media_spend": b, "hdi_prob": -0.1}, "hdi_prob"),
    ("hdi_prob a string", lambda b, s: {"new_media_spend": b, "hdi_prob": "high"}, "hdi_prob"),
    ("spend a string", lambda b, s: {"new_media_spend": [{**b[0], "x1": "lots"}]}, "new_media_spend[0].x1"),
    ("spend a numeric string", lambda b, s: {"new_media_spend": [{**b[0], "x1": "12"}]}, "new_media_spend[0].x1"),
    ("spend a boolean", lambda b, s: {"new_media_spend": [{**b[0], "x1": True}]}, "new_media_spend[0].x1"),
    ("spend null", lambda b, s: {"new_media_spend": [{**b[0], "x1": None}]}, "new_media_spend[0].x1"),
    ("control a string", lambda b, s: {"new_media_spend": [{**b[0], "event_1": "yes"}]}, "event_1"),
    ("rows not a list", lambda b, s: {"new_media_spend": b[0]}, "new_media_spend"),
    ("row not an object", lambda b, s: {"new_media_spend": [5]}, "new_media_spend[0]"),
    ("body a list", lambda b, s: b, "JSON object"),
    ("no rows", lambda b, s: {"new_media_spend": []}, "at least 1"),
    ("too many rows", lambda b, s: {"new_media_spend": [b[0]] * (MAX_ROWS + 1)}, f"1 to {MAX_ROWS}"),
    ("rows missing", lambda b, s: {"hdi_prob": 0.9}, "new_media_spend"),
    ("unknown column", lambda b, s: {"new_media_spend": [{**b[0], "tv": 1.0}]}, "this model's columns"),
    ("unknown field", lambda b, s: {"new_media_spend": b, "horizon": 4}, "horizon"),
    ("contributions not a bool", lambda b, s: {"new_media_spend": b, "contributions": "maybe"}, "contributions"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), BAD_PAYLOADS, ids=[c[0] for c in BAD_PAYLOADS])
def test_bad_predict_payloads(client, service, case, mutate, expected):
    body = mutate(rows(service, 3), service)
    message = _message(client.post("/predict", json=body))
    assert expected in message, message


def test_bad_bodies(client, service):
    assert "empty" in _message(client.post("/predict", content=b""))
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in _message(client.post("/predict", content=b'{"new_media_spend": [', headers=headers))
    big = json.dumps({"new_media_spend": rows(service, 1), "pad": "x" * 300_000}).encode()
    assert "too large" in _message(client.post("/predict", content=big, headers=headers), 413)

    def chunks():  # no Content-Length: the limit is enforced on the bytes actually received
        for _ in range(40):
            yield b" " * 10_000

    assert "too large" in _message(client.post("/predict", content=chunks(), headers=headers), 413)
    assert "Content-Length" in _message(
        client.post("/predict", content=b"{}", headers={**headers, "content-length": "abc"}), 400
    )


def test_optimize(client):
    r = client.post("/optimize", json={"budget": 5.0, "weeks": 8, "max_draws": 100, "max_change": 0.5})
    assert r.status_code == 200, r.text
    out = r.json()
    alloc = pd.DataFrame(out["allocation"])
    assert set(alloc["channel"]) == {"x1", "x2"}
    assert alloc["optimized_spend"].sum() == pytest.approx(5.0, rel=1e-6)
    assert out["summary"]["weeks"] == 8 and "uplift_vs_current" in out["summary"]
    for body, expected in [
        ({"budget": -5.0, "weeks": 8}, "budget"),
        ({"budget": 5.0, "weeks": 0}, "weeks"),
        ({"budget": 5.0}, "weeks"),
        ({"budget": 5.0, "weeks": 8, "objective": "best"}, "objective"),
        ({"budget": 5.0, "weeks": 8, "fixed": ["tv"]}, "unknown channel"),
        ({"budget": 5.0, "weeks": 8, "bounds": {"x1": [3, 1]}}, "bounds.x1"),
        ({"budget": 5.0, "weeks": 8, "hdi_prob": 2}, "hdi_prob"),
        ({"budget": 5.0, "weeks": 8, "speed": "fast"}, "speed"),
        ({"weeks": 8}, "budget"),  # the optimizer's own check (OptimizationError)
    ]:
        assert expected in _message(client.post("/optimize", json=body)), body


def test_roas_and_contributions(client, example_run):
    roas = client.get("/roas").json()
    saved = pd.read_csv(example_run / "roas.csv")
    got = pd.DataFrame(roas["channels"])
    assert roas["hdi_prob"] == 0.9 and list(got["channel"]) == ["x1", "x2"]
    np.testing.assert_allclose(got["roas_mean"], saved["roas_mean"], rtol=1e-9)
    assert client.get("/roas", params={"hdi_prob": 0.5}).json()["hdi_prob"] == 0.5
    assert "hdi_prob" in _message(client.get("/roas", params={"hdi_prob": 1.5}))
    assert "hdi_prob" in _message(client.get("/roas", params={"hdi_prob": "x"}))

    contrib = client.get("/contributions").json()
    assert {"x1", "x2", "event_1", "intercept", "trend", "mu"} <= set(contrib["totals"])
    assert len(contrib["rows"]) == len(pd.read_csv(example_run / "contributions.csv"))
    one = client.get("/contributions", params={"component": "x1"}).json()
    assert {r["component"] for r in one["rows"]} == {"x1"}
    assert "choose one of" in _message(client.get("/contributions", params={"component": "tv"}))


def test_dashboard_and_docs(client, service):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert service.model_version in html and "Return on ad spend" in html
    assert html.count("data:image/png;base64,") == 3, [k for k in service.figures if k.endswith("_error")]
    assert 'id="opt-form"' in html and "<td>x1</td>" in html
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    row = schema["components"]["schemas"]["SpendRow"]
    assert set(row["required"]) == {"date", "x1", "x2", "event_1", "event_2"}
    assert row["properties"]["x1"]["minimum"] == 0 and row["additionalProperties"] is False
    assert {"/predict", "/optimize", "/roas", "/contributions", "/health", "/metrics"} <= set(schema["paths"])


def test_metrics(service):
    app = create_app(service, token="")
    c = TestClient(app, base_url=LOCAL)
    c.get("/health")
    c.post("/predict", json={"new_media_spend": rows(service, 1)})
    c.post("/predict", json={"new_media_spend": []})
    text = c.get("/metrics").text
    # prometheus_client's text format (values as floats)
    assert f'bayesmmm_model_info{{model_version="{service.model_version}"}} 1.0' in text
    assert 'bayesmmm_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'bayesmmm_http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'bayesmmm_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/predict"} 2.0' in text
    assert 'bayesmmm_http_request_duration_seconds_count{method="GET",route="/health"} 1.0' in text
    assert 'bayesmmm_work_pending{pool="predict"} 0.0' in text
    assert "# TYPE bayesmmm_http_request_duration_seconds histogram" in text
    buckets = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("bayesmmm_http_request_duration_seconds_bucket{")
        and line.split("}")[0].endswith('method="POST",route="/predict"')
    ]
    assert buckets == sorted(buckets)  # cumulative


def test_bearer_token(service):
    c = TestClient(create_app(service, token="s3cret-token"), base_url=LOCAL)
    assert c.get("/health").status_code == 200
    body = {"new_media_spend": rows(service, 1)}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        r = c.post("/predict", json=body, headers=headers)
        assert r.status_code == 401 and "bearer token" in r.json()["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    for path in ("/", "/metrics", "/roas", "/contributions", "/nope"):
        assert c.get(path).status_code == 401, path
    # the docs page, its assets and the spec stay open, so that /docs can load and "Authorize"
    for path in ("/docs", "/openapi.json", "/static/dashboard.js", "/docs/swagger-ui.css"):
        assert c.get(path).status_code == 200, path
    ok = {"Authorization": "Bearer s3cret-token"}
    assert c.post("/predict", json=body, headers=ok).status_code == 200
    assert c.get("/metrics", headers=ok).status_code == 200


def test_token_from_environment(service, monkeypatch):
    monkeypatch.setenv("BAYESMMM_API_TOKEN", "from-env")
    c = TestClient(create_app(service), base_url=LOCAL)
    assert c.get("/roas").status_code == 401
    assert c.get("/roas", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_json_logs(client, caplog):
    with caplog.at_level(logging.INFO, logger="bayesmmm.access"):
        client.get("/health")
    record = next(r for r in caplog.records if r.name == "bayesmmm.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["status"] == 200 and line["route"] == "/health"
    assert line["method"] == "GET" and line["duration_ms"] >= 0 and len(line["request_id"]) == 16
    assert line["level"] == "info" and line["ts"].endswith("+00:00")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_server(service):
    """The app under uvicorn on a real socket: concurrent forecasts, request ids, size limit."""
    import httpx
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, token=""), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        body = {"new_media_spend": rows(service, 13)}
        results: list[int] = []

        def worker() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                for _ in range(5):
                    r = http.post("/predict", json=body)
                    results.append(r.status_code if len(r.json()["sales_pred_mean"]) == 13 else -1)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 40
        r = httpx.get(f"{url}/health")
        assert r.json()["status"] == "ok" and len(r.headers["x-request-id"]) == 16
        r = httpx.post(f"{url}/predict", content=b"x" * 300_000, headers={"content-type": "application/json"})
        assert r.status_code == 413
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_serve_command_input_errors(example_run, tmp_path):
    from bayesmmm.cli.main import app

    runner = CliRunner()
    bad = runner.invoke(app, ["serve", str(example_run), "--hdi-prob", "1.5"])
    assert bad.exit_code == 2 and "--hdi-prob" in bad.output
    missing = runner.invoke(app, ["serve", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_heavy_backends_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys, bayesmmm, bayesmmm.cli.main; "
        "print(any(m.split('.')[0] in ('fastapi', 'uvicorn') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
