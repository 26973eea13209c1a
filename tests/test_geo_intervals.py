"""Per-geo intervals on a panel that is not ours (issue 25 item 5): the independent generator of
``benchmarks/external_geo.py`` (Hill curve on spend per head, unnormalized adstock, geos of
different spend intensity), its truth as the reference. Real MCMC, fixed seeds; slow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bayesmmm.evaluation.summaries import roas_geo_table
from bayesmmm.model.mmm import MMM

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("external_geo", ROOT / "benchmarks" / "external_geo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_hill_geo_model_covers_per_geo_roas_of_an_external_panel():
    """Always-on spend never goes near zero, so a channel's contribution (its response minus the
    response at zero spend) is an extrapolation of the curve below the observed spend. The
    one-parameter logistic fixes that extrapolation with its curvature over the observed range:
    on this clean panel (4 geos, 2 channels, 2% noise, Hill shape 1) the logistic geo model (with
    ``geo.saturation: pooled``) covered 3 of 8 per-geo ROAS with its 90% intervals, all misses
    underestimates (measured 2026-12-07). The two-parameter Hill
    leaves the extrapolation uncertain and its intervals cover the truth (8 of 8 measured; the
    margin allows two misses)."""
    frame, truth = _generator().external_geo_panel(
        4,
        2,
        80,
        0,
        intensity_sd_log=0.8,
        effect_sd_log=0.15,
        size_sd_log=0.4,
        param_sd_log=0.0,
        noise_level=0.02,
        noise_geo_sd_log=0.0,
        hill_shape=(1.0, 1.0),
        lags=4,
    )
    channels = list(truth["channels"])
    mmm = MMM(
        {"channel_columns": channels, "target_column": "sales", "geo_column": "geo"},
        {"adstock": {"name": "geometric", "l_max": 4}, "saturation": "hill", "yearly_seasonality": 1},
    )
    mmm.fit(frame, {"backend": "numpyro", "chains": 2, "draws": 300, "tune": 300, "seed": 3, "progressbar": False})
    geo = roas_geo_table(mmm, 0.9)
    true = np.array([truth["geos"][g]["channels"][c]["roas"] for g, c in zip(geo["geo"], geo["channel"], strict=True)])
    inside = (geo["roas_hdi_low"].to_numpy() <= true) & (true <= geo["roas_hdi_high"].to_numpy())
    assert len(inside) == 8
    assert inside.sum() >= 6, geo.assign(true=true)
    assert float(mmm.idata["sample_stats"]["diverging"].mean()) <= 0.01
