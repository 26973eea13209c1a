"""Load test of ``bayesmmm serve``: latency of POST /predict under concurrent clients.

Starts the server (uvicorn, in a subprocess) on a fitted run, then ``--clients``
threads, each with its own keep-alive HTTP connection, send ``--requests`` forecasts
in all (``--weeks`` future weeks each) as fast as they get answers. Reports p50, p95,
p99 and max latency, throughput and errors (any non-200 answer or failed request), and
writes ``load_service.json`` and ``load_service.md`` to ``--out``. Goal (the seed
design's SLA): p99 < 500 ms at 16 clients.

    python benchmarks/load_service.py --run runs/demo/run [--clients 16 --requests 2000]

Without ``--run`` it first fits the PyMC-Marketing example (bundled data set) with
``--chains`` × ``--draws`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def start_server(run: Path, port: int, log_path: Path, token: str | None) -> subprocess.Popen:
    env = {**os.environ, "BAYESMMM_API_TOKEN": token or ""}
    cmd = [sys.executable, "-c", "from bayesmmm.cli.main import app; app()", "serve", str(run), "--port", str(port)]
    cmd += ["--log-level", "warning"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder to serve (default: fit the example first)")
    parser.add_argument("--clients", type=int, nargs="+", default=[16], help="concurrent clients (one run each)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--weeks", type=int, default=13, help="future weeks per request")
    parser.add_argument("--chains", type=int, default=4, help="chains of the example fit (without --run)")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain of the example fit")
    parser.add_argument("--token", default="bench-token", help="bearer token the server requires ('' for none)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "load_service", help="output folder")
    args = parser.parse_args()

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
