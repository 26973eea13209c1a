"""Load test of ``bayesmmm serve``.

``--mode mixed`` (the default): the server serves a registry (the run registered as v1,
v2 and v3); ``--clients`` threads (32) send 90% ``POST /predict`` (``--weeks`` future
weeks) and 10% ``POST /optimize`` (13 weeks), each waiting an exponential think time of
mean ``--think`` seconds between requests (honouring ``Retry-After`` on a 429), for
``--duration`` seconds: once with a keep-alive connection per client, once with a new
TCP connection per request (``Connection: close``). A prober opens a new connection to
``GET /health`` every 0.1 s, like an orchestrator. In the middle of each run the next
version is promoted (``bayesmmm promote --force`` in a subprocess, as an operator would)
and the server reloads it by itself. Reported per run: p50/p95/p99 of /predict,
/optimize and /health, answers by class (2xx, 429, other 4xx, 5xx), failed requests
(no answer), throughput, and when the promoted version started serving. Goals (issue
18): /health p99 < 100 ms, /predict p99 < 250 ms with and without keep-alive, 0 5xx, 0
failed requests across the promote.

``--mode predict``: the earlier closed-loop test, ``--clients`` keep-alive clients sending
``--requests`` forecasts as fast as they are answered (p99 < 500 ms at 16 clients).

    python benchmarks/load_service.py --run runs/demo/run [--mode mixed --clients 32 --duration 40]

Without ``--run`` it first fits the PyMC-Marketing example (bundled data set) with
``--chains`` × ``--draws`` into a temporary folder. Loopback only (127.0.0.1); every run
is bounded in time. Writes ``load_service.json`` and ``load_service.md`` to ``--out``.

Clients that open a connection per request: ``httpx.post(...)`` builds a new client, and
with it a TLS context (~30 ms of CPU, even for http://), per call; on the server's own
cores that alone caps the rate. The no-keep-alive run reuses one client per thread
with keep-alive off, so each request still opens (and the server accepts) a new TCP
connection, without that client-side cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "configs" / "pymc_marketing_example.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_example(out: Path, chains: int, draws: int) -> Path:
    cmd = [sys.executable, "-c", "from bayesmmm.cli.main import app; app()", "fit", str(EXAMPLE_CONFIG), "-o", str(out)]
    cmd += ["--chains", str(chains), "--draws", str(draws), "--tune", str(draws)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return out


def payload(run: Path, weeks: int) -> dict:
    """``weeks`` future weeks after the training data, repeating the last weeks' spend and controls."""
    from bayesmmm.model.mmm import MMM

    mmm = MMM.load(run / "posterior.nc")
    data = mmm.data
    rows = []
    for i in range(weeks):
        src = data.n_dates - weeks + i
        row = {"date": str((data.dates[-1] + pd.Timedelta(days=7 * (i + 1))).date())}
        row.update({ch: float(v) for ch, v in zip(mmm.channels, data.media[src], strict=True)})
        row.update({c: float(v) for c, v in zip(mmm.controls, data.controls[src], strict=True)})
        rows.append(row)
    return {"new_media_spend": rows, "hdi_prob": 0.9}


CLI = [sys.executable, "-c", "from bayesmmm.cli.main import app; app()"]


def start_server(
    run: Path, port: int, log_path: Path, token: str | None, extra: list[str] | None = None
) -> subprocess.Popen:
    env = {**os.environ, "BAYESMMM_API_TOKEN": token or ""}
    cmd = [*CLI, "serve", str(run), "--port", str(port), "--log-level", "warning", *(extra or [])]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"), env=env, cwd=ROOT)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server did not become healthy within {timeout:.0f} s")


def run_load(url: str, body: dict, clients: int, requests: int, headers: dict) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    start_gate = threading.Barrier(clients)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
            start_gate.wait()
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t = time.perf_counter()
                try:
                    r = http.post("/predict", json=body)
                    ok = r.status_code == 200 and len(r.json()["sales_pred_mean"]) == len(body["new_media_spend"])
                    err = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    err = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t
                with lock:
                    latencies.append(elapsed)
                    if err:
                        errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "mean_ms": round(float(ms.mean()), 1),
    }


def markdown(result: dict) -> str:
    head = "| clients | requests | errors | p50 ms | p95 ms | p99 ms | max ms | req/s | p99 < 500 ms |"
    lines = [head, "|---" * 9 + "|"]
    for r in result["runs"]:
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['errors']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
            f"| {r['max_ms']} | {r['throughput_rps']} | {'yes' if r['p99_ms'] < 500 else 'NO'} |"
        )
    s = result["setup"]
    lines.append(
        f"\n{s['weeks']} weeks per request; model {s['model_version']} ({s['draws']} posterior draws); "
        f"server start-up {s['startup_s']} s; {s['cpus']} CPUs, Python {s['python']}."
    )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ mixed traffic
def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.array(values) * 1000, q)), 1) if values else None


def run_mixed(
    url: str,
    bodies: dict[str, dict],
    *,
    clients: int,
    duration: float,
    think: float,
    keep_alive: bool,
    headers: dict,
    promote: list[str] | None,
    seed: int = 0,
    optimize_share: float = 0.1,
) -> dict:
    """``clients`` threads of 90% /predict, 10% /optimize for ``duration`` s; a /health prober; a promote midway."""
    lock = threading.Lock()
    lat: dict[str, list[float]] = {"predict": [], "optimize": [], "health": []}
    classes = {"2xx": 0, "429": 0, "4xx": 0, "5xx": 0, "failed": 0}
    examples: list[str] = []
    versions: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    deadline = t0 + duration
    stop = threading.Event()

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        hdrs = dict(headers) if keep_alive else {**headers, "Connection": "close"}
        limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, timeout=60, headers=hdrs, limits=limits) as http:
            time.sleep(rng.uniform(0, think))  # spread the starts
            while time.perf_counter() < deadline:
                kind = "optimize" if rng.random() < optimize_share else "predict"
                t = time.perf_counter()
                try:
                    r = http.post(f"/{kind}", json=bodies[kind])
                    status, err = r.status_code, None
                    if status == 200 and kind == "predict":
                        ok = len(r.json()["sales_pred_mean"]) == len(bodies["predict"]["new_media_spend"])
                        err = None if ok else "wrong length"
                except httpx.HTTPError as exc:
                    status, err = None, f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t
                with lock:
                    if status is None:
                        classes["failed"] += 1
                    elif status == 429:
                        classes["429"] += 1
                    else:
                        key = f"{status // 100}xx"
                        classes[key if key in classes else "5xx"] += 1
                        if status == 200:
                            lat[kind].append(elapsed)
                    if (err or (status or 0) >= 500) and len(examples) < 5:
                        examples.append(err or f"HTTP {status}: {r.text[:200]}")
                pause = rng.expovariate(1 / think) if think > 0 else 0.0
                if status == 429:
                    pause = float(r.headers.get("retry-after", "1"))
                time.sleep(max(0.0, min(pause, deadline - time.perf_counter())))

    def prober() -> None:  # like an orchestrator: a new connection each time
        with httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    r = http.get("/health", headers={"Connection": "close"})
                    elapsed = time.perf_counter() - t
                    with lock:
                        lat["health"].append(elapsed)
                        version = r.json()["model_version"]
                        if not versions or versions[-1][1] != version:
                            versions.append((round(time.perf_counter() - t0, 2), version))
                except httpx.HTTPError as exc:
                    with lock:
                        classes["failed"] += 1
                        examples.append(f"/health {type(exc).__name__}: {exc}")
                stop.wait(0.1)

    promoted_at = None

    def promoter() -> None:
        nonlocal promoted_at
        time.sleep(duration / 4)  # the CLI's start-up and comparison, then the reload, take a while on busy cores
        promoted_at = round(time.perf_counter() - t0, 2)
        subprocess.run(promote, check=True, capture_output=True, cwd=ROOT)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=prober))
    if promote:
        threads.append(threading.Thread(target=promoter))
    for t in threads:
        t.start()
    for t in threads[:clients]:
        t.join()
    stop.set()
    for t in threads[clients:]:
        t.join()
    wall = time.perf_counter() - t0
    answered = sum(v for k, v in classes.items() if k != "failed")
    return {
        "keep_alive": keep_alive,
        "clients": clients,
        "think_s": think,
        "duration_s": round(wall, 1),
        "requests": answered + classes["failed"],
        **classes,
        "throughput_rps": round(answered / wall, 1),
        "predict_n": len(lat["predict"]),
        "predict_p50_ms": _pct(lat["predict"], 50),
        "predict_p95_ms": _pct(lat["predict"], 95),
        "predict_p99_ms": _pct(lat["predict"], 99),
        "optimize_n": len(lat["optimize"]),
        "optimize_p50_ms": _pct(lat["optimize"], 50),
        "optimize_p99_ms": _pct(lat["optimize"], 99),
        "health_n": len(lat["health"]),
        "health_p50_ms": _pct(lat["health"], 50),
        "health_p99_ms": _pct(lat["health"], 99),
        "health_max_ms": _pct(lat["health"], 100),
        "promoted_at_s": promoted_at,
        "versions_seen": versions,
        "error_examples": examples,
    }


def markdown_mixed(result: dict) -> str:
    head = (
        "| connections | clients | s | requests | 2xx | 429 | 5xx | failed | req/s | /predict p50 / p95 / p99 ms "
        "| /optimize p50 / p99 ms | /health p50 / p99 / max ms | promote → serving |"
    )
    lines = [head, "|---" * 13 + "|"]
    for r in result["runs"]:
        switch = "—"
        if r["promoted_at_s"] is not None and len(r["versions_seen"]) > 1:
            t, v = r["versions_seen"][-1]
            switch = f"{r['promoted_at_s']} s → {v} at {t} s"
        lines.append(
            f"| {'keep-alive' if r['keep_alive'] else 'new per request'} | {r['clients']} | {r['duration_s']} "
            f"| {r['requests']} | {r['2xx']} | {r['429']} | {r['5xx']} | {r['failed']} | {r['throughput_rps']} "
            f"| {r['predict_p50_ms']} / {r['predict_p95_ms']} / {r['predict_p99_ms']} "
            f"| {r['optimize_p50_ms']} / {r['optimize_p99_ms']} "
            f"| {r['health_p50_ms']} / {r['health_p99_ms']} / {r['health_max_ms']} | {switch} |"
        )
    s = result["setup"]
    lines.append(
        f"\n90% /predict ({s['weeks']} weeks), 10% /optimize (13 weeks, 1000 draws), think time exp(mean "
        f"{s['think_s']} s); model {s['model_version']} ({s['draws']} posterior draws, forecasts on 1000); "
        f"{s['cpus']} CPUs (load average {s['loadavg_before']} before the runs), Python {s['python']}."
    )
    return "\n".join(lines) + "\n"


def main_mixed(args: argparse.Namespace, run: Path, tmp: Path) -> dict:
    from bayesmmm.model.mmm import MMM
    from bayesmmm.serving.model_registry import ModelRegistry

    registry = ModelRegistry(tmp / "registry")
    for i in range(3):
        registry.register(run, "example", promote=i == 0)  # v1 current; v2, v3 candidates
    mmm = MMM.load(run / "posterior.nc")
    weekly = float(mmm.data.media.sum(axis=1).mean())
    bodies = {"predict": payload(run, args.weeks), "optimize": {"budget": round(weekly * 13, 4), "weeks": 13}}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = ["--model", "example", "--watch-interval", "1"]
    proc = start_server(registry.root, port, tmp / "server.log", args.token or None, extra)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    loadavg = round(os.getloadavg()[0], 2)
    try:
        startup = wait_healthy(url, proc)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:  # warm-up
            for _ in range(20):
                http.post("/predict", json=bodies["predict"])
            http.post("/optimize", json=bodies["optimize"])
        runs = []
        for n, keep_alive in enumerate((True, False)):
            promote = [*CLI, "promote", "example", f"v{n + 2}", "--force", "--registry", str(registry.root)]
            promote = promote if args.promote else None
            r = run_mixed(
                url, bodies, clients=args.clients[0], duration=args.duration, think=args.think,
                keep_alive=keep_alive, headers=headers, promote=promote, seed=n,
            )  # fmt: skip
            print(json.dumps(r), flush=True)
            runs.append(r)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    post = mmm.idata["posterior"]
    return {
        "setup": {
            "mode": "mixed",
            "run": str(run if args.run else "example fit"),
            "model_version": "example/v1..v3 (the same run registered three times)",
            "draws": int(post.sizes["chain"] * post.sizes["draw"]),
            "weeks": args.weeks,
            "think_s": args.think,
            "promote_midway": args.promote,
            "startup_s": round(startup, 1),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg,
            "python": platform.python_version(),
        },
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder to serve (default: fit the example first)")
    parser.add_argument("--mode", choices=["mixed", "predict"], default="mixed", help="mixed traffic or /predict only")
    parser.add_argument("--clients", type=int, nargs="+", default=None, help="concurrent clients (32 mixed, 16)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per mixed run (bounded)")
    parser.add_argument("--think", type=float, default=2.0, help="mean think time of a mixed-traffic client (s)")
    parser.add_argument(
        "--promote", action=argparse.BooleanOptionalAction, default=True, help="promote + reload midway (mixed)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--weeks", type=int, default=13, help="future weeks per request")
    parser.add_argument("--chains", type=int, default=4, help="chains of the example fit (without --run)")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain of the example fit")
    parser.add_argument("--token", default="bench-token", help="bearer token the server requires ('' for none)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "load_service", help="output folder")
    args = parser.parse_args()
    args.clients = args.clients or ([32] if args.mode == "mixed" else [16])

    if args.mode == "mixed":
        with tempfile.TemporaryDirectory(prefix="bayesmmm-load-") as tmp:
            tmp = Path(tmp)
            run = args.run or fit_example(tmp / "run", args.chains, args.draws)
            result = main_mixed(args, run, tmp)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "load_service.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "load_service.md").write_text(markdown_mixed(result))
        print(markdown_mixed(result))
        return

    with tempfile.TemporaryDirectory(prefix="bayesmmm-load-") as tmp:
        tmp = Path(tmp)
        run = args.run or fit_example(tmp / "run", args.chains, args.draws)
        body = payload(run, args.weeks)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(run, port, tmp / "server.log", args.token or None)
        try:
            startup = wait_healthy(url, proc)
            headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
            model_version = httpx.get(f"{url}/health").json()["model_version"]
            run_load(url, body, 2, 50, headers)  # warm-up: connections, caches
            runs = []
            for clients in args.clients:
                r = run_load(url, body, clients, args.requests, headers)
                print(json.dumps(r), flush=True)
                runs.append(r)
            metrics = httpx.get(f"{url}/metrics", headers=headers).text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        served = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("bayesmmm_http_requests_total") and 'route="/predict"' in line
        )
    from bayesmmm.model.mmm import MMM

    mmm = MMM.load(run / "posterior.nc")
    post = mmm.idata["posterior"]
    result = {
        "setup": {
            "run": str(run if args.run else "example fit"),
            "model_version": model_version,
            "draws": int(post.sizes["chain"] * post.sizes["draw"]),
            "weeks": args.weeks,
            "startup_s": round(startup, 1),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server_counted_predict_requests": int(served),
        },
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load_service.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "load_service.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
