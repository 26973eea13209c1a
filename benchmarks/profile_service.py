"""Where one request's time goes in ``bayesmmm serve``: the server or the connection handling.

Serves ``--run`` (uvicorn in a subprocess, once with h11 and once with httptools when it is
installed) and sends ``--requests`` sequential requests from one client built on
``http.client`` (no TLS context: ~0.1 ms per connection), to ``GET /health`` and ``POST
/predict`` (13 weeks), with one keep-alive connection and with a new connection per
request (``Connection: close``). Reports, per request: wall time, the server process's CPU
time (from /proc) and the client's. Then the client-side cost of ``httpx.Client()`` (what
``httpx.post()`` builds per call) and a cProfile of one forecast. Loopback only, bounded.

    python benchmarks/profile_service.py --run runs/demo/run [--requests 300]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd


def _serve(run: str, port: int, http_impl: str) -> None:
    import uvicorn

    from bayesmmm.serving.app import ServingApp

    app = ServingApp.from_target(run, dashboard=False, token="", watch_interval=0)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, log_level="warning", http=http_impl
    )


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().split(")")[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _body(run: Path, weeks: int = 13) -> bytes:
    from bayesmmm.model.mmm import MMM

    mmm = MMM.load(run / "posterior.nc")
    d, rows = mmm.data, []
    for i in range(weeks):
        r = {"date": str((d.dates[-1] + pd.Timedelta(days=7 * (i + 1))).date())}
        r.update({ch: float(v) for ch, v in zip(mmm.channels, d.media[i - weeks], strict=True)})
        r.update({c: float(v) for c, v in zip(mmm.controls, d.controls[i - weeks], strict=True)})
        rows.append(r)
    return json.dumps({"new_media_spend": rows}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    body = _body(args.run)
    impls = ["h11"]
    try:
        import httptools  # noqa: F401

        impls.append("httptools")
    except ImportError:
        pass
    print("| server | endpoint | connection | wall ms/req | server CPU ms/req | client CPU ms/req |")
    print("|---|---|---|---|---|---|")
    for impl in impls:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code = f"from benchmarks.profile_service import _serve; _serve({str(args.run)!r}, {port}, {impl!r})"
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1])
        try:
            for _ in range(900):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/health")
                    c.getresponse().read()
                    c.close()
                    break
                except OSError:
                    time.sleep(0.2)
            for path, payload in (("/health", None), ("/predict", body)):
                for keep in (True, False):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    c0, t0, p0 = _cpu(proc.pid), time.perf_counter(), time.process_time()
                    for _ in range(args.requests):
                        headers = {"Content-Type": "application/json"} if payload else {}
                        if not keep:
                            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                            headers["Connection"] = "close"
                        conn.request("POST" if payload else "GET", path, body=payload, headers=headers)
                        r = conn.getresponse()
                        r.read()
                        assert r.status == 200, r.status
                        if not keep:
                            conn.close()
                    n = args.requests
                    wall, srv, cli = time.perf_counter() - t0, _cpu(proc.pid) - c0, time.process_time() - p0
                    print(
                        f"| {impl} | {path} | {'keep-alive' if keep else 'new per request'} | {wall / n * 1e3:.2f} "
                        f"| {srv / n * 1e3:.2f} | {cli / n * 1e3:.2f} |",
                        flush=True,
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    t = time.process_time()
    for _ in range(20):
        httpx.Client().close()
    print(f"\nclient side: httpx.Client() {(time.process_time() - t) / 20 * 1e3:.1f} ms CPU", end="")
    t = time.process_time()
    for _ in range(20):
        ssl.create_default_context()
    print(f" (ssl.create_default_context() {(time.process_time() - t) / 20 * 1e3:.1f} ms)")

    from bayesmmm.serving.app import ModelService

    svc = ModelService.from_target(args.run, dashboard=False)
    req = svc.predict_model.model_validate_json(body)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        svc.predict(req)
    prof.disable()
    print("\none forecast (20 runs), by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(6)


if __name__ == "__main__":
    main()
