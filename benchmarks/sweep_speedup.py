"""Speed-up of an 8-run sweep on a 2-worker Dask LocalCluster vs 1 worker (sequential).

Both modes start from empty PyTensor caches (each in its own process and compile dir),
side by side in one invocation:

    python benchmarks/sweep_speedup.py [--draws 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """\
base: base.yaml
grid:
  model.adstock.name: [geometric, weibull_cdf]
  model.saturation.name: [logistic, hill]
  sampler.seed: [1, 2]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    bayesmmm = str(Path(sys.executable).with_name("bayesmmm"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [bayesmmm, "simulate", "intermittent", "-o", str(root / "data")], check=True, capture_output=True
        )
        (root / "base.yaml").write_text(
            "data: {path: data/data.csv, channel_columns: [tiktok, facebook, google_ads], control_columns: [promo]}\n"
            f"sampler: {{chains: {args.chains}, draws: {args.draws}, tune: {args.draws}}}\n"
        )
        (root / "sweep.yaml").write_text(SWEEP)
        times = {}
        for workers in (1, 2):
            env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={root / f'cache{workers}'}"}
            start = time.perf_counter()
            subprocess.run(
                [
                    bayesmmm,
                    "sweep",
                    str(root / "sweep.yaml"),
                    "-o",
                    str(root / f"out{workers}"),
                    "--workers",
                    str(workers),
                ],
                check=False,
                capture_output=True,
                env=env,
            )
            times[workers] = time.perf_counter() - start
            print(f"{workers} worker(s): {times[workers]:.1f} s", flush=True)
        print(
            f"\n| workers | wall s | speed-up |\n|---|---|---|\n| 1 | {times[1]:.1f} | 1.00 |\n"
            f"| 2 | {times[2]:.1f} | {times[1] / times[2]:.2f} |"
        )


if __name__ == "__main__":
    main()
