"""From a fitted model to reported numbers: contributions, ROAS, fit measures, diagnostics.

Every function takes a fitted :class:`~bayesmmm.model.mmm.MMM` (or its DataTree) and
returns plain pandas/xarray objects in original units; intervals are highest-density
intervals (HDI) over the posterior draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm import stats
from bayesmmm.config.experiment import DiagnosticsConfig
from bayesmmm.evaluation.divergences import divergence_locations
from bayesmmm.model.mean import total
from bayesmmm.model.predictive import DATASET_NAMES
from bayesmmm.model.value import roas_unit

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM
    from bayesmmm.model.predictive import Predictive
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "ROAS_COLUMNS",
    "ROAS_GEO_COLUMNS",
    "contributions_table",
    "diagnostics",
    "fit_metrics",
    "forecast_table",
    "geo_contributions_table",
    "hdi",
    "hdi_bounds",
    "parameter_summary",
    "roas_geo_table",
    "roas_table",
    "role_kinds",
    "roles_table",
]

ROAS_COLUMNS = [
    "channel",
    "spend",
    "contribution_mean",
    "contribution_hdi_low",
    "contribution_hdi_high",
    "roas_mean",
    "roas_hdi_low",
    "roas_hdi_high",
    "share_mean",
]


ROAS_GEO_COLUMNS = [
    "geo",
    "channel",
    "spend",
    "contribution_mean",
    "contribution_hdi_low",
    "contribution_hdi_high",
    "roas_mean",
    "roas_hdi_low",
    "roas_hdi_high",
]


def hdi(da: xr.DataArray, prob: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Lower and upper HDI bounds over ``(chain, draw)``, as DataArrays over the other dims.

    :func:`bayesmmm.stats.hdi_bounds` (ArviZ's ``nearest`` method, vectorized) on the
    pooled draws.
    """
    template = da.isel(chain=0, draw=0, drop=True)
    values = da.transpose(*template.dims, "chain", "draw").to_numpy()
    lo, hi = stats.hdi_bounds(values.reshape(*values.shape[:-2], -1), prob, axis=-1)
    return template.copy(data=lo), template.copy(data=hi)


def hdi_bounds(values: np.ndarray, prob: float) -> tuple[float, float]:
    """HDI of a 1-D array of draws (:func:`bayesmmm.stats.hdi_bounds`), as two floats."""
    lo, hi = stats.hdi_bounds(np.asarray(values, dtype=float), prob)
    return float(lo), float(hi)


def _mean(da: xr.DataArray) -> xr.DataArray:
    return da.mean(("chain", "draw"))


def _median(da: xr.DataArray) -> xr.DataArray:
    return da.median(("chain", "draw"))


def roas_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Per channel: total spend, contribution, ROAS (= value of the contribution / spend), cost per
    KPI and share.

    ``spend`` is money (the spend column, also for channels whose curves act on an exposure
    column); ``contribution`` is in the target's units (KPI). With ``data.revenue_per_kpi_column``
    the contribution's value is ``revenue`` (each period's contribution × its revenue per KPI,
    per geo for a panel) and ROAS is revenue per unit of spend; without it ROAS is KPI per unit
    of spend. ``roas_unit`` says which (also in ``table.attrs``). ``cost_per_kpi`` is spend ÷
    contribution (per draw: mean, HDI, median). ``share`` is the channel's fraction of the total
    media contribution; ``spend_share`` its fraction of total spend. Totals are over the
    training weeks. Posterior means (which add up across channels), HDIs, and, last, the
    posterior medians ``contribution_median``, ``roas_median`` and ``share_median``: ROAS
    posteriors are right-skewed where the data say little (a log-normal-like prior), and there
    the mean sits well above the median (see ``benchmarks/README.md``, "Point estimates").
    """
    comps = mmm.posterior_components() if components is None else components
    contribution = comps["media"].sum("date")
    coords = {"channel": list(mmm.channels)}
    spend = xr.DataArray(mmm.data.channel_spend.sum(axis=0), dims="channel", coords=coords)
    revenue = comps["media_value"].sum("date") if "media_value" in comps else None
    roas = (contribution if revenue is None else revenue) / spend
    cost = spend / contribution
    share = contribution / contribution.sum("channel")
    c_lo, c_hi = hdi(contribution, hdi_prob)
    r_lo, r_hi = hdi(roas, hdi_prob)
    s_lo, s_hi = hdi(share, hdi_prob)
    k_lo, k_hi = hdi(cost, hdi_prob)
    extra: dict[str, Any] = {}
    if revenue is not None:
        v_lo, v_hi = hdi(revenue, hdi_prob)
        extra = {
            "revenue_mean": _mean(revenue).to_numpy(),
            "revenue_hdi_low": v_lo.to_numpy(),
            "revenue_hdi_high": v_hi.to_numpy(),
        }
    table = pd.DataFrame(
        {
            "channel": list(mmm.channels),
            "spend": spend.to_numpy(),
            "contribution_mean": _mean(contribution).to_numpy(),
            "contribution_hdi_low": c_lo.to_numpy(),
            "contribution_hdi_high": c_hi.to_numpy(),
            "roas_mean": _mean(roas).to_numpy(),
            "roas_hdi_low": r_lo.to_numpy(),
            "roas_hdi_high": r_hi.to_numpy(),
            "share_mean": _mean(share).to_numpy(),
            "share_hdi_low": s_lo.to_numpy(),
            "share_hdi_high": s_hi.to_numpy(),
            "spend_share": (spend / spend.sum()).to_numpy(),
            "contribution_median": _median(contribution).to_numpy(),
            "roas_median": _median(roas).to_numpy(),
            "share_median": _median(share).to_numpy(),
            "cost_per_kpi_mean": _mean(cost).to_numpy(),
            "cost_per_kpi_hdi_low": k_lo.to_numpy(),
            "cost_per_kpi_hdi_high": k_hi.to_numpy(),
            "cost_per_kpi_median": _median(cost).to_numpy(),
            **extra,
            "roas_unit": roas_unit(mmm.data),
        }
    )
    table.attrs["hdi_prob"] = hdi_prob
    table.attrs["roas_unit"] = roas_unit(mmm.data)
    return table


def roas_geo_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Per geo and channel of a geo model: spend, contribution and ROAS with HDIs (training weeks).

    Columns :data:`ROAS_GEO_COLUMNS` and ``roas_unit`` (as :func:`roas_table`: revenue or KPI per
    unit of spend; with a revenue per KPI ROAS uses the geo's own revenue per KPI); ROAS is NaN
    where a geo never spent on a channel. The national :func:`roas_table` is the same
    contributions summed over geos.
    """
    if not mmm.is_geo:
        raise ValueError("roas_geo_table needs a geo model (data.geo_column set); use roas_table")
    comps = mmm.posterior_components() if components is None else components
    contribution = comps["media_geo"]  # (chain, draw, geo, channel)
    spend = xr.DataArray(
        mmm.data.geo_channel_spend.sum(axis=0),
        dims=("geo", "channel"),
        coords={"geo": list(mmm.geos), "channel": list(mmm.channels)},
    )
    value = comps.get("media_geo_value", contribution)
    roas = value / spend.where(spend > 0)
    c_lo, c_hi = hdi(contribution, hdi_prob)
    r_lo, r_hi = hdi(roas.fillna(0.0), hdi_prob)
    missing = (spend <= 0).to_numpy()

    def flat(da: xr.DataArray, mask: bool = False) -> np.ndarray:
        arr = da.transpose("geo", "channel").to_numpy().astype(float)
        return np.where(missing, np.nan, arr).ravel() if mask else arr.ravel()

    n_geos, n_ch = len(mmm.geos), len(mmm.channels)
    table = pd.DataFrame(
        {
            "geo": np.repeat(list(mmm.geos), n_ch),
            "channel": np.tile(list(mmm.channels), n_geos),
            "spend": flat(spend),
            "contribution_mean": flat(_mean(contribution)),
            "contribution_hdi_low": flat(c_lo),
            "contribution_hdi_high": flat(c_hi),
            "roas_mean": flat(_mean(roas.fillna(0.0)), True),
            "roas_hdi_low": flat(r_lo, True),
            "roas_hdi_high": flat(r_hi, True),
            "roas_unit": roas_unit(mmm.data),
        }
    )
    table.attrs["hdi_prob"] = hdi_prob
    table.attrs["roas_unit"] = roas_unit(mmm.data)
    return table


def geo_contributions_table(mmm: MMM, batch_size: int = 500) -> pd.DataFrame:
    """Posterior-mean weekly contributions of a geo model by geo: ``date, geo, component, kind, mean``.

    Components as in :func:`contributions_table` (channels, controls, baseline parts and
    ``mu``). Only means: they are accumulated over batches of draws, so memory does not
    grow with the number of draws (weekly HDIs per geo would need every draw of every
    cell; the per-geo totals with HDIs are in :func:`roas_geo_table`).
    """
    if not mmm.is_geo:
        raise ValueError("geo_contributions_table needs a geo model (data.geo_column set)")

    def batch_sum(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v.sum(axis=0, keepdims=True) for k, v in batch.items()}

    sums = mmm.evaluate(*mmm.history_inputs(), batch_size=batch_size, reduce=batch_sum)
    n = int(mmm.idata["posterior"].sizes["chain"] * mmm.idata["posterior"].sizes["draw"])
    means = {k: v.sum(axis=0) / n for k, v in sums.items()}  # (date, geo[, ·])
    pieces: list[tuple[str, str, np.ndarray]] = []
    for i, ch in enumerate(mmm.channels):
        pieces.append((ch, "media", means["media"][..., i]))
    for i, ctl in enumerate(mmm.controls):
        pieces.append((ctl, "control", means["controls"][..., i]))
    spec = mmm.require_spec()
    for component, kind, names in role_kinds(spec):
        for i, name in enumerate(names):
            pieces.append((name, kind, means[component][..., i]))
    for name in ("intercept", "trend", "seasonality"):
        pieces.append((name, "baseline", means[name]))
    pieces.append(("mu", "total", total(means)))
    dates = pd.DatetimeIndex(mmm.data.dates).strftime("%Y-%m-%d")
    n_dates, n_geos = len(dates), len(mmm.geos)
    frames = [
        pd.DataFrame(
            {
                "date": np.repeat(dates, n_geos),
                "geo": np.tile(list(mmm.geos), n_dates),
                "component": name,
                "kind": kind,
                "mean": values.ravel(),
            }
        )
        for name, kind, values in pieces
    ]
    return pd.concat(frames, ignore_index=True)


def contributions_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Long table of weekly contributions: ``date, component, kind, mean, hdi_low, hdi_high``.

    Components: each channel (``kind=media``), each control (``kind=control``), each organic
    medium (``kind=organic``), each treatment (``kind=treatment``: against its baseline), each
    event level (``kind=event``, named ``column[level]``: against the reference level) and the
    baseline parts ``intercept``, ``trend``, ``seasonality`` (``kind=baseline``), plus the
    fitted mean ``mu`` (``kind=total``). For a geo model these are national (sums over
    geos); see :func:`geo_contributions_table` for the split by geo.
    """
    comps = mmm.posterior_components() if components is None else components
    pieces: list[tuple[str, str, xr.DataArray]] = []
    for ch in mmm.channels:
        pieces.append((ch, "media", comps["media"].sel(channel=ch, drop=True)))
    for ctl in mmm.controls:
        pieces.append((ctl, "control", comps["controls"].sel(control=ctl, drop=True)))
    for component, kind, names in role_kinds(mmm.require_spec()):
        da = comps[DATASET_NAMES.get(component, component)]
        for name in names:
            pieces.append((name, kind, da.sel({ROLE_DIMS[kind]: name}, drop=True)))
    for name in ("intercept", "trend", "seasonality"):
        pieces.append((name, "baseline", comps[name]))
    pieces.append(("mu", "total", comps["mu"]))
    frames = []
    dates = pd.DatetimeIndex(comps["date"].values)
    for name, kind, da in pieces:
        lo, hi = hdi(da, hdi_prob)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates.strftime("%Y-%m-%d"),
                    "component": name,
                    "kind": kind,
                    "mean": _mean(da).to_numpy(),
                    "hdi_low": lo.to_numpy(),
                    "hdi_high": hi.to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


#: the role blocks' kind (in the tables) and dim
ROLE_DIMS = {"organic": "organic", "treatment": "treatment", "event": "event"}


def role_kinds(spec: ModelSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(component, kind, names)`` of each role block the model has: organic media, treatments, events."""
    blocks = [("organic", "organic", spec.organic), ("treatments", "treatment", spec.treatments)]
    blocks.append(("events", "event", spec.events))
    return [b for b in blocks if b[2]]


def roles_table(mmm: MMM, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> pd.DataFrame:
    """Per organic medium, treatment and event level: its contribution over the training weeks, with HDI.

    Columns ``name, role, column, contribution_mean, contribution_hdi_low, contribution_hdi_high,
    contribution_median, share_of_target, baseline, reference``. A treatment's contribution is
    ``Σ_t gamma · (x_t − baseline)`` (what it did relative to staying at ``baseline``); an event
    level's is its effect summed over the weeks it occurred, against the ``reference`` level; an
    organic medium's is ``Σ_t beta · saturation(adstock(x))_t``. Organic media have no spend: no
    ROAS (they are never part of :func:`roas_table` or the budget). ``share_of_target`` is the mean
    contribution over the target's training total. National totals for a geo model. Empty (with
    the columns) for a model without these roles.
    """
    comps = mmm.posterior_components() if components is None else components
    spec = mmm.require_spec()
    target_total = float(np.sum(spec.data.target))
    references = {c: ref for c, (ref, _levels) in spec.data.encoding.events.items()}
    columns = [
        "name",
        "role",
        "column",
        "contribution_mean",
        "contribution_hdi_low",
        "contribution_hdi_high",
        "contribution_median",
        "share_of_target",
        "baseline",
        "reference",
    ]
    rows = []
    for component, kind, names in role_kinds(spec):
        totals = comps[DATASET_NAMES.get(component, component)].sum("date")
        lo, hi = hdi(totals, hdi_prob)
        mean, median = _mean(totals), _median(totals)
        for name in names:
            sel = {ROLE_DIMS[kind]: name}
            column = name.split("[", 1)[0] if kind == "event" else name
            rows.append(
                {
                    "name": name,
                    "role": kind,
                    "column": column,
                    "contribution_mean": float(mean.sel(sel)),
                    "contribution_hdi_low": float(lo.sel(sel)),
                    "contribution_hdi_high": float(hi.sel(sel)),
                    "contribution_median": float(median.sel(sel)),
                    "share_of_target": float(mean.sel(sel)) / target_total if target_total else float("nan"),
                    "baseline": spec.data.encoding.baselines.get(name, np.nan) if kind == "treatment" else np.nan,
                    "reference": references.get(column) if kind == "event" else None,
                }
            )
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["hdi_prob"] = hdi_prob
    return table


def fit_metrics(mmm: MMM, components: xr.Dataset | None = None) -> dict[str, float]:
    """R², MAPE and NRMSE of the posterior-mean fit against the observed target.

    ``nrmse`` is RMSE divided by the target's range; ``mape`` skips zero targets.
    """
    comps = mmm.posterior_components() if components is None else components
    pred = _mean(comps["mu"]).to_numpy()
    y = mmm.data.target
    resid = y - pred
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    nonzero = y != 0
    rmse = float(np.sqrt(np.mean(resid**2)))
    span = float(y.max() - y.min())
    return {
        "r2": 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "mape": float(np.mean(np.abs(resid[nonzero] / y[nonzero]))) if nonzero.any() else float("nan"),
        "nrmse": rmse / span if span > 0 else float("nan"),
        "rmse": rmse,
    }


def parameter_summary(idata: Any, hdi_prob: float = 0.9) -> pd.DataFrame:
    """Posterior summary of every free parameter: mean, sd, HDI, R-hat, bulk/tail ESS, MCSE."""
    import arviz_stats as az  # arviz re-exports these; its plotting half costs 0.35 s to import

    summary = az.summary(idata, kind="all", ci_prob=hdi_prob, ci_kind="hdi", round_to="none")
    frame = pd.DataFrame(summary).apply(pd.to_numeric, errors="coerce")
    frame.index.name = "parameter"
    return frame


def diagnostics(idata: Any, config: DiagnosticsConfig | None = None) -> dict[str, Any]:
    """Convergence diagnostics and a pass/fail verdict against ``config``'s thresholds."""
    import arviz_stats as az  # arviz re-exports these; its plotting half costs 0.35 s to import

    config = config or DiagnosticsConfig()

    def extreme(tree, fn) -> float:
        values = [float(fn(tree[name].to_numpy())) for name in tree.data_vars]
        return float(fn(np.array(values))) if values else float("nan")

    post = idata["posterior"]
    rhat = az.rhat(idata)
    ess_bulk = az.ess(idata, method="bulk")
    ess_tail = az.ess(idata, method="tail")
    stats = idata["sample_stats"]
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    result: dict[str, Any] = {
        "max_rhat": extreme(rhat, np.nanmax),
        "min_ess_bulk": extreme(ess_bulk, np.nanmin),
        "min_ess_tail": extreme(ess_tail, np.nanmin),
        "divergences": divergences,
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
    }
    problems = []
    if not result["max_rhat"] <= config.max_rhat:
        problems.append(f"max R-hat {result['max_rhat']:.3f} > {config.max_rhat}")
    if not result["min_ess_bulk"] >= config.min_ess_bulk:
        problems.append(f"min bulk ESS {result['min_ess_bulk']:.0f} < {config.min_ess_bulk:.0f}")
    if not result["min_ess_tail"] >= config.min_ess_tail:
        problems.append(f"min tail ESS {result['min_ess_tail']:.0f} < {config.min_ess_tail:.0f}")
    if divergences:
        result["divergence_locations"] = divergence_locations(idata)
    if divergences > config.max_divergences:
        problems.append(
            f"{divergences} divergences > {config.max_divergences} ({result['divergence_locations']['summary']})"
        )
    result["passed"] = not problems
    result["problems"] = problems
    result["thresholds"] = config.model_dump()
    return result


def forecast_table(
    mmm: MMM | Predictive, frame: pd.DataFrame, hdi_prob: float = 0.9, contributions: bool = False, seed: int = 0
) -> pd.DataFrame:
    """Forecast for future weeks: ``date, sales_pred_mean, sales_pred_hdi_low_90, sales_pred_hdi_high_90``.

    ``mmm`` is a fitted model or a :class:`~bayesmmm.model.predictive.Predictive` (a thinned view, say:
    the forecast then uses exactly its draws).

    The interval is the HDI of the posterior predictive (observation noise included, seeded);
    trend and seasonality continue and adstock carries over from the training weeks. With
    ``contributions``, adds ``<channel>_contribution_mean`` columns (and one per organic medium,
    treatment and event level).
    """
    if not 0 < hdi_prob < 1:
        raise ValueError(f"hdi_prob must be between 0 and 1, got {hdi_prob}")
    pred = mmm.predict(frame, noise=True, seed=seed)
    lo, hi = hdi(pred["y"], hdi_prob)
    suffix = f"{hdi_prob * 100:g}".replace(".", "_")
    table = pd.DataFrame(
        {
            "date": pd.DatetimeIndex(pred["date"].values).strftime("%Y-%m-%d"),
            "sales_pred_mean": _mean(pred["y"]).to_numpy(),
            f"sales_pred_hdi_low_{suffix}": lo.to_numpy(),
            f"sales_pred_hdi_high_{suffix}": hi.to_numpy(),
        }
    )
    if contributions:
        media = _mean(pred["media"])
        for ch in media["channel"].values:
            table[f"{ch}_contribution_mean"] = media.sel(channel=ch).to_numpy()
        for var, dim in (("organic_media", "organic"), ("treatments", "treatment"), ("events", "event")):
            if var in pred:  # organic media, treatments (against their baselines), event levels
                part = _mean(pred[var])
                for name in part[dim].values:
                    table[f"{name}_contribution_mean"] = part.sel({dim: name}).to_numpy()
    return table
