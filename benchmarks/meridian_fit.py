"""Fit one of Meridian's own data sets with Google Meridian and print per-channel ROI (runs in Meridian's env).

Run by ``benchmarks/meridian_side_by_side.py`` in the virtualenv of ``nox -s bench_meridian``; does not import
bayesmmm. Reads a JSON spec on stdin:

``data_path``, ``geo`` (true for a geo panel), ``channels`` (name -> {spend, exposure}, {spend} or
{spend, reach, frequency}), ``organic``, ``treatments``, ``controls`` (column lists), ``time_column``,
``kpi_column``, ``revenue_per_kpi_column`` (None: ``kpi_type`` ``revenue``), ``kpi_type``,
``population_column``, ``geo_column``, ``n_chains``, ``n_adapt``, ``n_burnin``, ``n_keep``, ``seed``,
``hdi_prob``, optionally ``model_spec`` (keyword arguments of ``ModelSpec``) and ``n_prior``;

prints one line ``BAYESMMM_BENCH_RESULT {json}``. The model is Meridian's default ``ModelSpec()``
(ROI priors ``LogNormal(0.2, 0.9)`` on every paid channel, geometric adstock with ``max_lag`` 8,
Hill saturation, its default knots, organic media and non-media treatments with its default
contribution priors, the treatments' baseline their minimum); the KPI is ``non_revenue``
valued by ``revenue_per_kpi`` (or ``revenue`` itself), so ROI is incremental revenue per unit of spend.
``Analyzer.roi()`` gives the ROI draws (the change in expected revenue when one channel's
spend is set to zero, over its total spend, all geos and weeks); reported per channel: mean,
median, the equal-tailed interval (Meridian's own ``ci_lo`` / ``ci_hi``) and the HDI at
``hdi_prob``. A channel with reach and frequency is one of Meridian's R&F channels (``reach``,
``frequency``, ``rf_spend``: Hill on frequency times reach, carried over); a channel with spend only is
media whose impressions are its spend. With R&F channels also ``Analyzer.optimal_freq()``'s optimal
frequency (a point; it needs ``n_prior`` prior draws, 500 by default) and the ROI there. Also: MCMC
diagnostics (max R-hat, min bulk ESS over the sampled parameters; divergences) and the phases' wall times.
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
    frame, media, rf = split_channels(frame, spec["channels"])
    coords = load.CoordToColumns(
        time=spec["time_column"],
        geo=spec.get("geo_column") or "geo",
        kpi=spec["kpi_column"],
        revenue_per_kpi=spec.get("revenue_per_kpi_column"),
        population=spec.get("population_column") or "population",
        controls=spec["controls"] or None,
        media=[c["exposure"] for c in media.values()] or None,
        media_spend=[c["spend"] for c in media.values()] or None,
        reach=[c["reach"] for c in rf.values()] or None,
        frequency=[c["frequency"] for c in rf.values()] or None,
        rf_spend=[c["spend"] for c in rf.values()] or None,
        organic_media=spec["organic"] or None,
        non_media_treatments=spec["treatments"] or None,
    )
    mappings = {
        "media_to_channel": {c["exposure"]: name for name, c in media.items()},
        "media_spend_to_channel": {c["spend"]: name for name, c in media.items()},
        "reach_to_channel": {c["reach"]: name for name, c in rf.items()},
        "frequency_to_channel": {c["frequency"]: name for name, c in rf.items()},
        "rf_spend_to_channel": {c["spend"]: name for name, c in rf.items()},
    }
    data = load.DataFrameDataLoader(
        df=frame,
        coord_to_columns=coords,
        kpi_type=spec.get("kpi_type", "non_revenue"),
        **{k: v for k, v in mappings.items() if v},
    ).load()
    mmm = model.Meridian(input_data=data, model_spec=model_spec.ModelSpec(**(spec.get("model_spec") or {})))
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
    # Analyzer.roi()'s last axis: the media channels, then the R&F channels
    names = [str(c) for c in _coord(mmm.input_data.media_channel)] + [str(c) for c in _coord(mmm.input_data.rf_channel)]
    spends = np.concatenate(
        [
            np.asarray(x).reshape(-1, np.asarray(x).shape[-1]).sum(axis=0)
            for x in (mmm.input_data.media_spend, mmm.input_data.rf_spend)
            if x is not None
        ]
    )
    draws = roi.reshape(-1, roi.shape[-1])
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    hdi = az.hdi(roi, hdi_prob=prob)  # (channel, 2), chains and draws pooled
    table = [
        {
            "channel": str(name),
            "spend": float(spends[i]),
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
    t_freq = time.perf_counter()
    if rf:  # optimal_freq()'s summary metrics need the prior too (its guides sample 500 prior draws)
        mmm.sample_prior(spec.get("n_prior", 500), seed=spec["seed"])
    frequency = optimal_frequency(mmm, analyzer, prob) if rf else None
    result = {
        "meridian_version": meridian_version.__version__,
        "optimal_frequency": frequency,
        "optimal_frequency_s": round(time.perf_counter() - t_freq, 3),
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


def _coord(values) -> list:
    """A coordinate's values (an empty list where the input has no such channels)."""
    return [] if values is None else list(values.values)


def split_channels(frame, channels: dict) -> tuple:
    """``(frame, media, rf)``: the channels given as reach + frequency + spend (Meridian's R&F channels) and the
    others (media with spend). A channel with spend only is its own media: its spend column is copied to a
    ``<spend>__media`` column, its impressions for Meridian (the same column twice confuses the loader)."""
    frame = frame.copy()
    media, rf = {}, {}
    for name, c in channels.items():
        if c.get("reach") is not None:
            rf[name] = c
        elif c.get("exposure") is not None:
            media[name] = c
        else:
            frame[f"{c['spend']}__media"] = frame[c["spend"]]
            media[name] = {"spend": c["spend"], "exposure": f"{c['spend']}__media"}
    return frame, media, rf


def optimal_frequency(mmm, analyzer, prob: float) -> list[dict]:
    """Per R&F channel: ``Analyzer.optimal_freq()``'s optimal frequency (the grid point, 1 to the largest frequency
    in steps of 0.1, with the largest posterior mean ROI at the historical impressions) and the ROI there."""
    import numpy as np

    found = analyzer.Analyzer(model_context=mmm.model_context, inference_data=mmm.inference_data).optimal_freq(
        confidence_level=prob
    )
    post = mmm.inference_data.posterior
    out = []
    for channel in found.rf_channel.values:
        curve = {  # the frequency curve's posterior (Hill: half saturation ec_rf, slope slope_rf)
            f"{v}_{stat}": float(getattr(post[v].sel(rf_channel=channel), stat)())
            for v in ("ec_rf", "slope_rf")
            for stat in ("mean", "std")
        }
        roi = found.optimized_roi.sel(rf_channel=channel)
        grid = found.roi.sel(rf_channel=channel)
        out.append(
            {
                "channel": str(channel),
                "optimal_frequency": round(float(found.optimal_frequency.sel(rf_channel=channel)), 4),
                **curve,
                "roi_at_optimal_mean": float(roi.sel(metric="mean")),
                "roi_at_optimal_ci_low": float(roi.sel(metric="ci_lo")),
                "roi_at_optimal_ci_high": float(roi.sel(metric="ci_hi")),
                "frequency_grid": [round(float(f), 4) for f in found.frequency.values],
                "roi_mean_on_grid": [round(float(v), 5) for v in np.asarray(grid.sel(metric="mean"))],
            }
        )
    return out


if __name__ == "__main__":
    main()
