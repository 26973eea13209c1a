"""Fit one data set with PyMC-Marketing's MMM, optionally ``time_varying_media`` (runs in the peer env).

Reads a JSON spec on stdin (data_path, date_column, target_column, channels, saturation
``hill`` | ``logistic``, l_max, time_varying_media (bool), chains, draws, tune, seed,
target_accept, nuts_sampler, contributions_path); writes every posterior draw (chains
stacked) of ``channel_contribution × target_scale`` (the channels' weekly contributions in
the target's original units, shape (sample, date, channel)) and, with
``time_varying_media``, the posterior mean of ``media_temporal_latent_multiplier`` to the
``.npz`` file ``contributions_path``; prints one line ``BAYESMMM_BENCH_RESULT {json}``
(wall time of ``fit``, max R-hat over the free variables, divergences, min bulk ESS).

Model: geometric adstock (``l_max``), the chosen saturation, yearly seasonality 2 and a
linear trend as a control column ``t`` from 0 to 1 (bayesmmm's ``trend: linear``), as in
``benchmarks/peer_fit.py``; ``time_varying_media=True`` is PyMC-Marketing's own default: one
HSGP multiplier over time (``media_tvp_config``) shared by every channel. Priors are
PyMC-Marketing's defaults. Does not import bayesmmm.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    spec = json.loads(sys.stdin.read())
    import arviz as az
    import numpy as np
    import pandas as pd
    from pymc_marketing.mmm import MMM, GeometricAdstock, HillSaturation, LogisticSaturation

    saturation = {"hill": HillSaturation, "logistic": LogisticSaturation}[spec["saturation"]]()
    frame = pd.read_csv(spec["data_path"], parse_dates=[spec["date_column"]])
    frame["t"] = np.linspace(0.0, 1.0, len(frame))
    X = frame[[spec["date_column"], *spec["channels"], "t"]]
    y = frame[spec["target_column"]]
    mmm = MMM(
        date_column=spec["date_column"],
        target_column=spec["target_column"],
        channel_columns=spec["channels"],
        control_columns=["t"],
        adstock=GeometricAdstock(l_max=spec["l_max"]),
        saturation=saturation,
        yearly_seasonality=2,
        time_varying_media=bool(spec["time_varying_media"]),
    )
    start = time.perf_counter()
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
    free = [rv.name for rv in mmm.model.free_RVs]
    post = idata["posterior"].to_dataset()
    rhat = az.rhat(post[free])
    ess = az.ess(post[free], method="bulk")
    scale = float(np.asarray(idata["constant_data"]["target_scale"]).squeeze())
    contribution = (post["channel_contribution"] * scale).stack(sample=("chain", "draw"))
    contribution = contribution.transpose("sample", "date", "channel").sel(channel=spec["channels"])
    arrays = {"contribution": np.asarray(contribution, dtype=float)}
    if "media_temporal_latent_multiplier" in post:
        multiplier = post["media_temporal_latent_multiplier"].mean(("chain", "draw"))
        arrays["multiplier_mean"] = np.asarray(multiplier, dtype=float).reshape(-1)
    np.savez_compressed(spec["contributions_path"], **arrays)
    result = {
        "wall_s": round(wall, 3),
        "max_rhat": round(float(max(float(rhat[v].max()) for v in rhat.data_vars)), 4),
        "min_ess_bulk": round(float(min(float(ess[v].min()) for v in ess.data_vars)), 1),
        "divergences": int(np.asarray(idata["sample_stats"]["diverging"]).sum()),
        "n_free": len(free),
        "target_scale": scale,
        # the units check: the mean week's media total and intercept, original units
        "media_weekly_mean": round(float(arrays["contribution"].sum(axis=2).mean()), 3),
        "intercept_mean": round(float(post["intercept_contribution"].mean()) * scale, 3),
        "target_weekly_mean": round(float(y.mean()), 3),
    }
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
