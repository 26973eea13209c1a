"""Compile and sampling time of adstock formulations under nutpie's numba backend.

Each formulation runs in a fresh process with its own, empty PyTensor cache (cold) and
then again with that cache (warm), side by side in one invocation:

    python benchmarks/compile_adstock.py [--formulations shift stack einsum] [--out results.csv]

The model is the four-channel geometric-adstock + logistic MMM core on 104 weeks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
import numpy as np, pymc as pm, pytensor.tensor as pt
from bayesmmm.components import ADSTOCKS, convolve
T, C, L = 104, 4, 8
rng = np.random.default_rng(0)
X = rng.gamma(2, 1, size=(T, C))
y = rng.normal(1, 0.1, size=T)
form = sys.argv[1]
geometric = ADSTOCKS.get("geometric")(l_max=L)

def adstock(x, alpha):
    w = geometric.weights(alpha=alpha)
    if form == "shift":            # what bayesmmm uses
        return convolve(x, w)
    xpad = pt.concatenate([pt.zeros((L - 1, C)), x], axis=0)
    stack = pt.stack([xpad[L - 1 - l : L - 1 - l + T] for l in range(L)])
    if form == "stack":
        return (stack * w[:, None, :]).sum(0)
    return pt.einsum("ltc,lc->tc", stack, w)

with pm.Model() as m:
    alpha = pm.Beta("alpha", 1, 3, shape=C)
    lam = pm.Gamma("lam", 3, 1, shape=C)
    beta = pm.HalfNormal("beta", 1, shape=C)
    b0 = pm.Normal("b0", 0, 1)
    sigma = pm.HalfNormal("sigma", 1)
    a = adstock(pt.as_tensor(X), alpha)
    mu = b0 + (pt.tanh(lam * a / 2) * beta).sum(-1)
    pm.Normal("y", mu, sigma, observed=y)
import nutpie
t0 = time.perf_counter()
compiled = nutpie.compile_pymc_model(m)
t1 = time.perf_counter()
nutpie.sample(compiled, draws=500, tune=500, chains=2, cores=2, progress_bar=False, seed=1)
t2 = time.perf_counter()
print(json.dumps({"compile_s": t1 - t0, "sample_s": t2 - t1}))
"""


def run(form: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={cache}"}
    out = subprocess.run([sys.executable, "-c", CHILD, form], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulations", nargs="+", default=["shift", "stack", "einsum"])
    parser.add_argument("--out", default=None, help="CSV path")
    args = parser.parse_args()
    rows = []
    for form in args.formulations:
        with tempfile.TemporaryDirectory() as cache:
            for state in ("cold", "warm"):
                start = time.perf_counter()
                res = run(form, cache)
                rows.append({"formulation": form, "cache": state, **res, "wall_s": time.perf_counter() - start})
                print(
                    f"{form:8s} {state}: compile {res['compile_s']:.1f} s, sample {res['sample_s']:.2f} s", flush=True
                )
    base = {r["cache"]: r["compile_s"] for r in rows if r["formulation"] == args.formulations[0]}
    print("\n| formulation | cache | compile s | sample s | compile ratio vs first |\n|---|---|---|---|---|")
    for r in rows:
        ratio = r["compile_s"] / base[r["cache"]]
        print(f"| {r['formulation']} | {r['cache']} | {r['compile_s']:.1f} | {r['sample_s']:.2f} | {ratio:.2f} |")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
