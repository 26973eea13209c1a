"""Fit one data set with PyMC-Marketing's MMM and print measurements (runs in the peer env).

Reads a JSON spec on stdin (data_path, date_column, target_column, channels, controls,
chains, draws, tune, seed, target_accept, nuts_sampler; optional ``lift_tests``, the path
of a steady-state lift-test CSV with columns channel, x, delta_x, delta_y, sigma in
original units, and ``contributions``); prints one line ``BAYESMMM_BENCH_RESULT {json}``.
Model: geometric adstock (l_max 8), logistic saturation, yearly seasonality 2, the
controls, and a linear trend as a control column ``t`` running from 0 to 1 (bayesmmm's
``trend: linear``). With ``lift_tests`` the model is built, then calibrated with
``MMM.add_lift_test_measurements`` (which scales x, delta_x, delta_y and sigma to the
model's units itself), then fitted. With ``contributions`` the result also holds
``contribution_draws``: per channel, every posterior draw (chains stacked) of its total
contribution over the training weeks in the target's original units
(``channel_contribution`` × ``target_scale``). Does not import bayesmmm.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    spec = json.loads(sys.stdin.read())
    import arviz as az
    import numpy as np
    import pandas as pd
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    frame = pd.read_csv(spec["data_path"], parse_dates=[spec["date_column"]])
    frame["t"] = np.linspace(0.0, 1.0, len(frame))
    controls = [*spec["controls"], "t"]
    X = frame[[spec["date_column"], *spec["channels"], *controls]]
    y = frame[spec["target_column"]]
    start = time.perf_counter()
    mmm = MMM(
        date_column=spec["date_column"],
        target_column=spec["target_column"],
        channel_columns=spec["channels"],
        control_columns=controls,
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        yearly_seasonality=2,
    )
    if spec.get("lift_tests"):
        mmm.build_model(X, y)  # add_lift_test_measurements needs the built model
        mmm.add_lift_test_measurements(pd.read_csv(spec["lift_tests"]))
    idata = mmm.fit(
        X,
        y,
        chains=spec["chains"],
        draws=spec["draws"],
        tune=spec["tune"],
        target_accept=spec["target_accept"],
        random_seed=spec["seed"],
        nuts_sampler=spec["nuts_sampler"],
        progressbar=False,
    )
    wall = time.perf_counter() - start
    measured_at = time.perf_counter()  # what follows is the benchmark's measurement, not the user's fit
    free = [rv.name for rv in mmm.model.free_RVs]
    post = idata["posterior"].to_dataset()[free]
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    stats = idata["sample_stats"]
    grads = int(np.asarray(stats["n_steps"]).sum()) if "n_steps" in stats else 0
    min_ess = float(min(float(ess[v].min()) for v in ess.data_vars))
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    result = {
        "wall_s": round(wall, 3),
        "compile_s": None,
        "sample_s": None,
        "min_ess_bulk": round(min_ess, 1),
        "ess_per_s": round(min_ess / wall, 3),
        "ess_per_1k_grad": round(1000 * min_ess / grads, 3) if grads else None,
        "grad_evals": grads,
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "max_rhat": round(float(max(float(rhat[v].max()) for v in rhat.data_vars)), 4),
        "peak_mem_mb": round(peak_kb / 1024, 1),
        "measure_s": round(time.perf_counter() - measured_at, 3),
    }
    if spec.get("contributions"):
        post = idata["posterior"].to_dataset()
        scale = float(np.asarray(idata["constant_data"]["target_scale"]).squeeze())
        total = (post["channel_contribution"] * scale).sum("date")
        result["contribution_draws"] = {
            str(ch): np.asarray(total.sel(channel=ch)).reshape(-1).round(4).tolist() for ch in total["channel"].values
        }
        result["lift_tests"] = bool(spec.get("lift_tests"))
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
