"""Write the refactor reference values (run once, on the code BEFORE a refactor).

Produces, in this folder:
- ``national.nc`` / ``geo.nc``: small fitted models saved by that code (the loader must keep reading them);
- ``reference.json``: from the same code, for fixed seeds: posterior means of every free variable of a
  fresh fit, and, for the saved models, contributions, ROAS, log-likelihood, forecasts (mean and noisy),
  marginal ROAS, response curves and an optimized allocation.

``tests/test_reference.py`` checks the current code reproduces every number. Generated at commit
e1dcdfd (before the model-core refactor of issue 15) with ``python tests/reference/make_reference.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

NATIONAL = {
    "data": {"target_column": "sales", "channel_columns": ["search", "social", "tv"], "control_columns": ["price"]},
    "model": {
        "adstock": {"name": "geometric", "l_max": 6},
        "saturation": "logistic",
        "trend": "piecewise",
        "n_changepoints": 3,
        "yearly_seasonality": 2,
        "likelihood": "student_t",
        # the model these numbers are of: the coefficient prior, the default before media_prior existed
        # (a saved model without media_prior loads as this one; a new config says so explicitly)
        "media_prior": {"type": "coefficient"},
    },
}
GEO = {
    "data": {"target_column": "sales", "channel_columns": ["search", "social", "tv"], "geo_column": "geo"},
    "model": {
        "adstock": {"name": "geometric", "l_max": 6},
        "saturation": "logistic",
        "trend": "linear",
        "yearly_seasonality": 1,
        # the geo options the reference was made with (the defaults before issue 25's pooled saturation)
        "geo": {
            "adstock": "pooled",
            "saturation": "shared",
            "param_sigma": 0.3,
            "param_pooling": "noncentered",
            "param_spread": "learned",
        },
    },
}
SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 60, "tune": 60, "seed": 3, "progressbar": False}


def national_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    dates = pd.date_range("2023-01-02", periods=n, freq="W-MON")
    spend = rng.gamma(2.0, 1.0, size=(n, 3)) * np.array([100.0, 60.0, 200.0])
    spend[rng.random((n, 3)) < 0.2] = 0.0
    price = 10 + rng.normal(0, 1, n)
    effect = (spend / spend.mean(0)) @ np.array([30.0, 20.0, 25.0])
    sales = 500 + 0.5 * np.arange(n) + 20 * np.sin(2 * np.pi * np.arange(n) / 52) + effect - 3 * price
    sales += rng.normal(0, 8, n)
    frame = pd.DataFrame(spend, columns=["search", "social", "tv"])
    frame.insert(0, "date", dates.strftime("%Y-%m-%d"))
    frame["price"] = price
    frame["sales"] = sales
    return frame


def geo_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n, geos = 60, ["north", "south", "west"]
    dates = pd.date_range("2023-01-02", periods=n, freq="W-MON")
    rows = []
    for g, geo in enumerate(geos):
        size = 1.0 + 0.5 * g
        spend = rng.gamma(2.0, 1.0, size=(n, 3)) * np.array([100.0, 60.0, 200.0]) * size
        effect = (spend / spend.mean(0)) @ np.array([30.0, 20.0, 25.0]) * size
        sales = size * (400 + 10 * np.sin(2 * np.pi * np.arange(n) / 52)) + effect + rng.normal(0, 8, n)
        for t in range(n):
            rows.append([dates[t].strftime("%Y-%m-%d"), geo, *spend[t], sales[t]])
    return pd.DataFrame(rows, columns=["date", "geo", "search", "social", "tv", "sales"])


def future(frame: pd.DataFrame, weeks: int, geo: bool = False) -> pd.DataFrame:
    last = pd.Timestamp(frame["date"].iloc[-1])
    dates = pd.date_range(last + pd.Timedelta(days=7), periods=weeks, freq="W-MON").strftime("%Y-%m-%d")
    rng = np.random.default_rng(9)
    geos = sorted(frame["geo"].unique()) if geo else [None]
    rows = []
    for d in dates:
        for g in geos:
            row = {"date": d, "search": 120.0, "social": 50.0, "tv": 0.0 if rng.random() < 0.5 else 300.0}
            if geo:
                row["geo"] = g
            else:
                row["price"] = 10.0
            rows.append(row)
    return pd.DataFrame(rows)


#: roas_table's columns when the reference was stored (columns added later, e.g. the medians, are extra)
ROAS_REFERENCE_COLUMNS = [
    "spend",
    "contribution_mean",
    "contribution_hdi_low",
    "contribution_hdi_high",
    "roas_mean",
    "roas_hdi_low",
    "roas_hdi_high",
    "share_mean",
    "share_hdi_low",
    "share_hdi_high",
    "spend_share",
]


def outputs(mmm, frame: pd.DataFrame, geo: bool) -> dict:
    from bayesmmm import contributions_table, marginal_roas, optimize_budget, response_curves, roas_table

    new = future(frame, 5, geo)
    pred = mmm.predict(new, noise=True, seed=4)
    comps = mmm.posterior_components()
    out = {
        "components_mean": {k: comps[k].mean(("chain", "draw")).to_numpy().tolist() for k in comps.data_vars},
        "roas": roas_table(mmm)[ROAS_REFERENCE_COLUMNS].to_numpy().tolist(),
        "contributions": contributions_table(mmm).select_dtypes("number").to_numpy().tolist(),
        "log_likelihood_sum": float(mmm.idata["log_likelihood"]["y"].sum()),
        "predict_mu": pred["mu"].mean(("chain", "draw")).to_numpy().tolist(),
        "predict_y": pred["y"].mean(("chain", "draw")).to_numpy().tolist(),
        "predict_media": pred["media"].mean(("chain", "draw")).to_numpy().tolist(),
    }
    if not geo:
        out["mroas"] = marginal_roas(mmm).mean(("chain", "draw")).to_numpy().tolist()
        curves = response_curves(mmm, multipliers=np.array([0.0, 0.5, 1.0, 1.5]))
        out["response_curves"] = curves.select_dtypes("number").to_numpy().tolist()
        res = optimize_budget(
            mmm, float(frame[["search", "social", "tv"]].to_numpy().sum() / len(frame) * 8), 8, max_change=0.5, seed=0
        )
        out["optimized"] = res.allocation.select_dtypes("number").to_numpy().tolist()
    return out


def logp_points(mmm, frame: pd.DataFrame, n: int = 3) -> dict:
    """The sampling graph's log-density and gradient at ``n`` fixed points of the unconstrained space.

    Deterministic (no sampler involved): the strict check that a refactor leaves the model's density as
    it was. The points are the initial point shifted by fixed pseudo-random offsets (seed 11).
    """
    model = mmm.build_model(frame)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    start = model.initial_point()
    rng = np.random.default_rng(11)
    points, values, grads = [], [], []
    for i in range(n):
        shift = {k: 0.3 * rng.standard_normal(np.shape(v)) if i else 0.0 for k, v in start.items()}
        point = {k: np.asarray(v, float) + shift[k] for k, v in start.items()}
        points.append({k: np.asarray(v).tolist() for k, v in point.items()})
        values.append(float(logp(point)))
        grads.append(np.asarray(dlogp(point), float).tolist())
    return {"points": points, "logp": values, "dlogp": grads}


def write_logp_reference() -> None:
    """``logp.json``: :func:`logp_points` of the national and geo reference models. Generated at commit
    3dcccee, before the ModelSpec / Predictive refactor of issue 24, with
    ``python tests/reference/make_reference.py --logp``."""
    from bayesmmm import MMM

    ref = {}
    for name, spec, frame in (("national", NATIONAL, national_frame()), ("geo", GEO, geo_frame())):
        ref[name] = logp_points(MMM(spec["data"], spec["model"]), frame)
    (HERE / "logp.json").write_text(json.dumps(ref, indent=1))


def main() -> None:
    import sys

    if "--logp" in sys.argv:
        write_logp_reference()
        return
    from bayesmmm import MMM

    ref: dict = {}
    for name, spec, frame in (("national", NATIONAL, national_frame()), ("geo", GEO, geo_frame())):
        mmm = MMM(spec["data"], spec["model"])
        mmm.fit(frame, SAMPLER)
        post = mmm.idata["posterior"]
        ref[f"{name}_fit_means"] = {k: post[k].mean(("chain", "draw")).to_numpy().tolist() for k in post.data_vars}
        mmm.save(HERE / f"{name}.nc")
        loaded = MMM.load(HERE / f"{name}.nc")
        ref[f"{name}_outputs"] = outputs(loaded, frame, name == "geo")
    (HERE / "reference.json").write_text(json.dumps(ref, indent=1))


if __name__ == "__main__":
    main()
