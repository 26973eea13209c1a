"""Fit one of Meridian's own data sets with Google Meridian and print per-channel ROI (runs in Meridian's env).

Run by ``benchmarks/meridian_side_by_side.py`` in the virtualenv of ``nox -s bench_meridian``; does not import
bayesmmm. Reads a JSON spec on stdin:

``data_path``, ``geo`` (true for a geo panel), ``channels`` (name -> {spend, exposure}),
``organic``, ``treatments``, ``controls`` (column lists), ``time_column``, ``kpi_column``,
``revenue_per_kpi_column``, ``population_column``, ``geo_column``, ``n_chains``, ``n_adapt``,
``n_burnin``, ``n_keep``, ``seed``, ``hdi_prob``;

prints one line ``BAYESMMM_BENCH_RESULT {json}``. The model is Meridian's default ``ModelSpec()``
(ROI priors ``LogNormal(0.2, 0.9)`` on every paid channel, geometric adstock with ``max_lag`` 8,
Hill saturation, its default knots, organic media and non-media treatments with its default
contribution priors, the treatments' baseline their minimum); the KPI is ``non_revenue``
valued by ``revenue_per_kpi``, so ROI is incremental revenue per unit of spend.
``Analyzer.roi()`` gives the ROI draws (the change in expected revenue when one channel's
spend is set to zero, over its total spend, all geos and weeks); reported per channel: mean,
median, the equal-tailed interval (Meridian's own ``ci_lo`` / ``ci_hi``) and the HDI at
``hdi_prob``. Also: MCMC diagnostics (max R-hat, min bulk ESS over the sampled parameters;
divergences) and the phases' wall times.
"""

from __future__ import annotations

import json
import resource
import sys
import time

T_START = time.perf_counter()


def main() -> None:
    spec = json.loads(sys.stdin.read())
    import arviz as az
    import numpy as np
    import pandas as pd
    from meridian import version as meridian_version
    from meridian.analysis import analyzer
    from meridian.data import load
    from meridian.model import model
    from meridian.model import spec as model_spec

    t_import = time.perf_counter()
    frame = pd.read_csv(spec["data_path"])
    frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]  # geo_all_channels' row index
    channels = spec["channels"]
    coords = load.CoordToColumns(
        time=spec["time_column"],
        geo=spec.get("geo_column") or "geo",
        kpi=spec["kpi_column"],
        revenue_per_kpi=spec["revenue_per_kpi_column"],
        population=spec.get("population_column") or "population",
        controls=spec["controls"],
        media=[c["exposure"] for c in channels.values()],
        media_spend=[c["spend"] for c in channels.values()],
        organic_media=spec["organic"] or None,
        non_media_treatments=spec["treatments"] or None,
    )
    data = load.DataFrameDataLoader(
        df=frame,
        coord_to_columns=coords,
        kpi_type="non_revenue",
        media_to_channel={c["exposure"]: name for name, c in channels.items()},
        media_spend_to_channel={c["spend"]: name for name, c in channels.items()},
    ).load()
    mmm = model.Meridian(input_data=data, model_spec=model_spec.ModelSpec())
    t_build = time.perf_counter()
    mmm.sample_posterior(
        n_chains=spec["n_chains"],
        n_adapt=spec["n_adapt"],
        n_burnin=spec["n_burnin"],
        n_keep=spec["n_keep"],
        seed=spec["seed"],
    )
    t_sample = time.perf_counter()
    roi = np.asarray(
        analyzer.Analyzer(model_context=mmm.model_context, inference_data=mmm.inference_data).roi()
    )  # (chains, draws, channel)
    t_roi = time.perf_counter()

    prob = spec["hdi_prob"]
    names = list(np.asarray(mmm.input_data.media_channel.values))
    draws = roi.reshape(-1, roi.shape[-1])
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    hdi = az.hdi(roi, hdi_prob=prob)  # (channel, 2), chains and draws pooled
    table = [
        {
            "channel": str(name),
            "spend": float(np.asarray(mmm.input_data.media_spend).reshape(-1, len(names)).sum(axis=0)[i]),
            "roi_mean": float(draws[:, i].mean()),
            "roi_median": float(np.median(draws[:, i])),
            "roi_ci_low": float(np.quantile(draws[:, i], lo_q)),
            "roi_ci_high": float(np.quantile(draws[:, i], hi_q)),
            "roi_hdi_low": float(hdi[i, 0]),
            "roi_hdi_high": float(hdi[i, 1]),
        }
        for i, name in enumerate(names)
    ]
    post = mmm.inference_data.posterior
    ess = az.ess(post, method="bulk")  # every posterior variable (sampled ones and those derived from them)
    rhat = az.rhat(post)
    finite = [float(np.nanmin(ess[v].values)) for v in ess.data_vars if np.isfinite(ess[v].values).any()]
    rhats = [float(np.nanmax(rhat[v].values)) for v in rhat.data_vars if np.isfinite(rhat[v].values).any()]
    worst = max(
        (v for v in rhat.data_vars if np.isfinite(rhat[v].values).any()),
        key=lambda v: float(np.nanmax(rhat[v].values)),
        default=None,
    )
    roi_rhat = az.rhat(az.convert_to_dataset({"roi": roi}))["roi"].values  # the reported quantity itself
    stats = mmm.inference_data.sample_stats
    divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else None
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    result = {
        "meridian_version": meridian_version.__version__,
        "n_geos": len(mmm.input_data.geo),
        "n_times": len(mmm.input_data.time),
        "import_s": round(t_import - T_START, 3),
        "build_s": round(t_build - t_import, 3),
        "sample_s": round(t_sample - t_build, 3),
        "roi_s": round(t_roi - t_sample, 3),
        "in_process_s": round(t_roi - T_START, 3),
        "max_rhat": round(max(rhats), 4) if rhats else None,  # None: no variable moved (a stuck sampler)
        "max_rhat_variable": worst,
        "min_ess_bulk": round(min(finite), 1) if finite else None,
        "roi_max_rhat": round(float(np.nanmax(roi_rhat)), 4) if np.isfinite(roi_rhat).all() else None,
        "divergences": divergences,
        "peak_mem_mb": round(peak_kb / 1024, 1),
        "roi": table,
    }
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
