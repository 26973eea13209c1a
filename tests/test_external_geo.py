"""The independent geo-panel generator of the geo coverage study (benchmarks/external_geo.py), checked
against NumPy references (no fits): its truth adds up and its adstock is the unnormalized geometric one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("external_geo", ROOT / "benchmarks" / "external_geo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_panel_shape_truth_and_determinism():
    gen = _generator()
    frame, truth = gen.external_geo_panel(5, 3, 60, seed=4)
    assert len(frame) == 5 * 60 and list(frame.columns) == [
        "date",
        "geo",
        "sales",
        "search",
        "social",
        "tv",
        "population",
    ]
    again, _ = gen.external_geo_panel(5, 3, 60, seed=4)
    np.testing.assert_array_equal(frame["sales"], again["sales"])
    for ch, nat in truth["channels"].items():
        per_geo = [g["channels"][ch] for g in truth["geos"].values()]
        np.testing.assert_allclose(nat["contribution"], sum(p["contribution"] for p in per_geo), rtol=1e-12)
        np.testing.assert_allclose(nat["spend"], frame[ch].sum(), rtol=1e-12)
        for geo, p in zip(truth["geos"], per_geo, strict=True):
            np.testing.assert_allclose(p["spend"], frame.loc[frame["geo"] == geo, ch].sum(), rtol=1e-12)
            assert 0 < p["mean_saturation"] < 1 and p["contribution"] > 0
    pops = [g["population"] for g in truth["geos"].values()]
    assert max(pops) / min(pops) > 3  # very different geo sizes
    assert 0.15 < truth["media_share"] < 0.45


def test_unnormalized_geometric_adstock_matches_a_loop():
    gen = _generator()
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 1.0, (30, 2, 3))
    alpha = rng.uniform(0.1, 0.8, (2, 3))
    out = gen.geometric_adstock(x, alpha, 8, normalized=False)
    ref = np.zeros_like(x)
    for t in range(30):
        for lag in range(min(8, t + 1)):
            ref[t] += alpha**lag * x[t - lag]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # weights sum to (1 - alpha^8) / (1 - alpha), about 1 / (1 - alpha); normalized divides by it
    np.testing.assert_allclose(gen.geometric_adstock(x, alpha, 8, normalized=True) * (1 - alpha**8) / (1 - alpha), out)
