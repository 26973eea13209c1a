"""Figures (PNG, matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

    from bayesmmm.model.mmm import MMM

__all__ = [
    "plot_adstock_weights",
    "plot_allocation",
    "plot_comparison",
    "plot_contributions",
    "plot_decomposition",
    "plot_fit",
    "plot_multipliers",
    "plot_rank",
    "plot_response_curves",
    "plot_roas",
    "plot_roas_geo",
    "plot_scenarios",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    from bayesmmm.io import atomic_path

    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def _err(mean, lo, hi) -> np.ndarray:
    """Error-bar half-widths from HDI bounds (the mean of a skewed posterior may lie outside its HDI)."""
    mean, lo, hi = (np.asarray(a, dtype=float) for a in (mean, lo, hi))
    return np.clip(np.vstack([mean - lo, hi - mean]), 0.0, None)


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.0)):
    plt = _pyplot()
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def plot_fit(mmm: MMM, path: str | Path, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> Path:
    """Observed target vs posterior mean fit with its HDI band, and media contributions below."""
    from bayesmmm.evaluation.summaries import fit_metrics, hdi

    plt = _pyplot()
    comps = mmm.posterior_components() if components is None else components
    dates = pd.DatetimeIndex(comps["date"].values)
    mu = comps["mu"]
    lo, hi = hdi(mu, hdi_prob)
    metrics = fit_metrics(mmm, comps)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 2])
    ax.fill_between(dates, lo, hi, color="C0", alpha=0.25, label=f"{hdi_prob:.0%} HDI of the mean")
    ax.plot(dates, mu.mean(("chain", "draw")), color="C0", lw=1.8, label="posterior mean")
    ax.plot(dates, mmm.data.target, "k.", ms=4, label="observed")
    ax.set_ylabel(mmm.data_config.target_column)
    ax.set_title(f"Fit: R² {metrics['r2']:.3f} · MAPE {metrics['mape']:.1%} · NRMSE {metrics['nrmse']:.3f}", loc="left")
    ax.legend(loc="upper left", frameon=False)
    media = comps["media"].mean(("chain", "draw")).to_numpy()
    ax2.stackplot(dates, media.T, labels=list(mmm.channels), alpha=0.85)
    ax2.set_ylabel("media contribution")
    ax2.legend(loc="upper left", ncol=min(len(mmm.channels), 6), frameon=False, fontsize=8)
    ax2.set_ylim(0, max(float(np.max(media.sum(axis=1))) * 1.3, 1e-9))
    return _save(fig, path)


def plot_comparison(table: pd.DataFrame, path: str | Path) -> Path:
    """Candidates' ELPD (LOO) with ±1 SE and ±1 dSE to the best, and hold-out CRPS where computed."""

    plt = _pyplot()
    ok = table[table["status"] == "ok"].iloc[::-1]
    labels = list(ok["candidate"].astype(str))
    has_holdout = "holdout_crps" in ok and ok["holdout_crps"].notna().any()
    fig, axes = plt.subplots(
        1, 2 if has_holdout else 1, figsize=(11 if has_holdout else 7, 1.2 + 0.5 * len(ok)), squeeze=False
    )
    y = np.arange(len(ok))
    ax = axes[0, 0]
    ax.errorbar(ok["elpd"], y, xerr=ok["se"], fmt="o", color="C0", capsize=3, label="ELPD ± SE")
    best = ok["elpd"].max()
    ax.errorbar(
        best - ok["elpd_diff"].fillna(0),
        y + 0.15,
        xerr=ok["dse"].fillna(0),
        fmt="none",
        ecolor="C1",
        capsize=3,
        label="± dSE vs best",
    )
    ax.set_yticks(y, labels)
    ax.set_xlabel("ELPD (PSIS-LOO), higher is better")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    if has_holdout:
        ax2 = axes[0, 1]
        ax2.barh(y, ok["holdout_crps"], color="C2")
        ax2.set_yticks(y, [""] * len(ok))
        ax2.set_xlabel("hold-out CRPS, lower is better")
    return _save(fig, path)


def plot_decomposition(mmm: MMM, path: str | Path, components: xr.Dataset | None = None) -> Path:
    """Stacked posterior-mean decomposition (baseline, controls, channels) over observed, and baseline parts."""
    plt = _pyplot()
    comps = mmm.posterior_components() if components is None else components
    dates = pd.DatetimeIndex(comps["date"].values)
    mean = comps.mean(("chain", "draw"))
    baseline = (mean["intercept"] + mean["trend"] + mean["seasonality"]).to_numpy()
    controls = mean["controls"].sum("control").to_numpy()
    media = mean["media"].to_numpy()
    linear = controls.copy()  # controls, treatments (against their baselines) and events: one layer
    linear_names = ["controls"] if mmm.controls else []
    for var, dim, label in (("treatments", "treatment", "treatments"), ("events", "event", "events")):
        if var in mean:
            linear = linear + mean[var].sum(dim).to_numpy()
            linear_names.append(label)
    organic = mean["organic_media"].to_numpy() if "organic_media" in mean else np.zeros((len(dates), 0))
    organic_names = [f"{n} (organic)" for n in mean["organic"].values] if "organic_media" in mean else []
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 2])
    layers = [baseline, *([linear] if linear_names else []), *organic.T, *media.T]
    labels = ["baseline", *([" + ".join(linear_names)] if linear_names else []), *organic_names, *mmm.channels]
    n_org = len(organic_names)
    colors = ["0.75", *(["0.55"] if linear_names else []), *[f"C{i + len(mmm.channels)}" for i in range(n_org)]]
    colors += [f"C{i}" for i in range(len(mmm.channels))]
    ax.stackplot(dates, layers, labels=labels, colors=colors, alpha=0.9)
    ax.plot(dates, mmm.data.target, "k.", ms=3.5, label="observed")
    ax.set_ylabel(mmm.data_config.target_column)
    ax.set_title("Decomposition of the target (posterior means)", loc="left")
    ax.legend(loc="upper left", ncol=min(len(labels) + 1, 7), frameon=False, fontsize=8)
    for name in ("intercept", "trend", "seasonality"):
        ax2.plot(dates, mean[name], lw=1.5, label=name)
    for ctl in mmm.controls:
        ax2.plot(dates, mean["controls"].sel(control=ctl), lw=1, label=ctl)
    for var, dim in (("treatments", "treatment"), ("events", "event")):
        for name in mean[var][dim].values if var in mean else []:
            ax2.plot(dates, mean[var].sel({dim: name}), lw=1, ls="--", label=str(name))
    ax2.axhline(0, color="0.6", lw=0.6)
    ax2.set_ylabel("baseline parts")
    ax2.legend(loc="upper left", ncol=6, frameon=False, fontsize=8)
    return _save(fig, path)


def plot_contributions(mmm: MMM, path: str | Path, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> Path:
    """Each channel's contribution per period with its HDI band, spend on a second axis."""
    from bayesmmm.evaluation.summaries import hdi

    comps = mmm.posterior_components() if components is None else components
    dates = pd.DatetimeIndex(comps["date"].values)
    fig, axes = _grid(len(mmm.channels), ncols=2, size=(5.6, 2.8))
    lo, hi = hdi(comps["media"], hdi_prob)
    mean = comps["media"].mean(("chain", "draw"))
    for i, (ax, ch) in enumerate(zip(axes, mmm.channels, strict=False)):
        ax.fill_between(dates, lo.sel(channel=ch), hi.sel(channel=ch), color=f"C{i}", alpha=0.25)
        ax.plot(dates, mean.sel(channel=ch), color=f"C{i}", lw=1.4)
        ax.set_title(f"{ch}: contribution ({hdi_prob:.0%} HDI)", loc="left", fontsize=9)
        spend_ax = ax.twinx()
        # one step-area artist, not a bar patch per period (which took most of this figure's time)
        spend_ax.fill_between(dates, mmm.data.channel_spend[:, i], step="mid", color="0.6", alpha=0.35, lw=0)
        spend_ax.set_yticks([])
        ax.set_zorder(spend_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.tick_params(labelsize=7)
    return _save(fig, path)


def plot_roas(insights: pd.DataFrame, path: str | Path) -> Path:
    """Forest plot of ROAS and marginal ROAS with HDIs, and share of contribution vs share of spend."""
    plt = _pyplot()
    prob = insights.attrs.get("hdi_prob", 0.9)
    t = insights.iloc[::-1]
    y = np.arange(len(t))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 1.4 + 0.55 * len(t)))
    for off, col, color, label in ((0.12, "roas", "C0", "ROAS"), (-0.12, "mroas", "C3", "marginal ROAS")):
        mean, lo, hi = t[f"{col}_mean"], t[f"{col}_hdi_low"], t[f"{col}_hdi_high"]
        ax.errorbar(mean, y + off, xerr=_err(mean, lo, hi), fmt="o", color=color, capsize=3, label=label)
    ax.set_yticks(y, t["channel"])
    unit = insights.attrs.get("roas_unit", "return per unit of spend")
    ax.set_xlabel(f"{unit} (mean, {prob:.0%} HDI)")
    ax.axvline(0, color="0.6", lw=0.6)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax2.barh(y + 0.18, t["spend_share"], height=0.36, color="0.6", label="share of spend")
    ax2.barh(y - 0.18, t["share_mean"], height=0.36, color="C0", label="share of media contribution")
    ax2.errorbar(
        t["share_mean"],
        y - 0.18,
        xerr=_err(t["share_mean"], t["share_hdi_low"], t["share_hdi_high"]),
        fmt="none",
        ecolor="k",
        capsize=2,
        lw=0.8,
    )
    ax2.set_yticks(y, [f"{c}\n({s})" for c, s in zip(t["channel"], t["status"], strict=True)], fontsize=8)
    ax2.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax2.legend(loc="lower right", frameon=False, fontsize=8)
    return _save(fig, path)


def plot_roas_geo(roas_geo: pd.DataFrame, path: str | Path, national: pd.DataFrame | None = None) -> Path:
    """ROAS per geo and channel with HDIs (``roas_geo.csv``); the national ROAS as a dashed line."""
    channels = list(dict.fromkeys(roas_geo["channel"]))
    geos = list(dict.fromkeys(roas_geo["geo"]))
    fig, axes = _grid(len(channels), ncols=min(len(channels), 4), size=(3.4, 0.9 + 0.22 * len(geos)))
    y = np.arange(len(geos))[::-1]
    for i, (ax, ch) in enumerate(zip(axes, channels, strict=False)):
        t = roas_geo[roas_geo["channel"] == ch].set_index("geo").loc[geos]
        xerr = _err(t["roas_mean"], t["roas_hdi_low"], t["roas_hdi_high"])
        ax.errorbar(t["roas_mean"], y, xerr=xerr, fmt="o", ms=3, color=f"C{i}", capsize=2, lw=0.9)
        if national is not None:
            ax.axvline(float(national.set_index("channel").loc[ch, "roas_mean"]), color="k", lw=0.8, ls="--")
        ax.set_yticks(y, geos if i % 4 == 0 else [""] * len(geos), fontsize=7)
        ax.set_title(ch, loc="left", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    return _save(fig, path)


def plot_response_curves(curves: pd.DataFrame, path: str | Path, insights: pd.DataFrame | None = None) -> Path:
    """Response curve of each channel with its HDI band; the current spend is marked."""
    prob = curves.attrs.get("hdi_prob", 0.9)
    channels = list(dict.fromkeys(curves["channel"]))
    fig, axes = _grid(len(channels), ncols=3)
    for i, (ax, ch) in enumerate(zip(axes, channels, strict=False)):
        c = curves[curves["channel"] == ch]
        ax.fill_between(c["spend"], c["response_hdi_low"], c["response_hdi_high"], color=f"C{i}", alpha=0.25)
        ax.plot(c["spend"], c["response_mean"], color=f"C{i}", lw=1.6)
        now = c[np.isclose(c["multiplier"], 1.0)].iloc[0]
        ax.plot([now["spend"]], [now["response_mean"]], "ko", ms=5)
        ax.axvline(now["spend"], color="k", lw=0.6, ls="--")
        title = ch
        if insights is not None:
            row = insights[insights["channel"] == ch].iloc[0]
            title += f" · mROAS {row['mroas_mean']:.3g} · {row['status']}"
        ax.set_title(title, loc="left", fontsize=9)
        ax.set_xlabel("total spend (training periods)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel(f"contribution ({prob:.0%} HDI)", fontsize=8)
    return _save(fig, path)


def plot_adstock_weights(weights: pd.DataFrame, path: str | Path) -> Path:
    """Adstock lag weights per channel with HDI bars."""
    plt = _pyplot()
    channels = list(dict.fromkeys(weights["channel"]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(channels)
    for i, ch in enumerate(channels):
        w = weights[weights["channel"] == ch]
        x = w["lag"] + (i - (len(channels) - 1) / 2) * width
        ax.bar(x, w["weight_mean"], width=width, color=f"C{i}", label=ch)
        ax.errorbar(
            x,
            w["weight_mean"],
            yerr=_err(w["weight_mean"], w["weight_hdi_low"], w["weight_hdi_high"]),
            fmt="none",
            ecolor="k",
            lw=0.7,
            capsize=1.5,
        )
    ax.set_xlabel("lag (periods of the data)")
    ax.set_ylabel("adstock weight")
    ax.set_title("How long spend keeps working", loc="left")
    ax.legend(frameon=False, fontsize=8, ncol=min(len(channels), 5))
    return _save(fig, path)


def plot_allocation(allocation: pd.DataFrame, path: str | Path) -> Path:
    """Current vs optimized spend per channel, and the response of each with HDIs."""
    plt = _pyplot()
    prob = allocation.attrs.get("hdi_prob", 0.9)
    t = allocation.iloc[::-1]
    y = np.arange(len(t))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 1.9 + 0.55 * len(t)))
    ax.barh(y + 0.18, t["current_spend"], height=0.36, color="0.6", label="current mix")
    ax.barh(y - 0.18, t["optimized_spend"], height=0.36, color="C2", label="optimized")
    for yy, cur, opt in zip(y, t["current_spend"], t["optimized_spend"], strict=True):
        change = opt / cur - 1 if cur > 0 else np.nan
        if np.isfinite(change):
            ax.annotate(f"{change:+.0%}", (max(cur, opt), yy), xytext=(4, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(y, t["channel"])
    ax.set_xlabel("spend over the horizon")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False, fontsize=8)
    for off, key, color in ((0.12, "current", "0.4"), (-0.12, "optimized", "C2")):
        mean, lo, hi = t[f"{key}_response_mean"], t[f"{key}_response_hdi_low"], t[f"{key}_response_hdi_high"]
        ax2.errorbar(mean, y + off, xerr=_err(mean, lo, hi), fmt="o", color=color, capsize=3, label=key)
    ax2.set_yticks(y, [""] * len(t))
    ax2.set_xlabel(f"incremental response (mean, {prob:.0%} HDI)")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False, fontsize=8)
    return _save(fig, path)


def plot_scenarios(table: pd.DataFrame, path: str | Path) -> Path:
    """Expected response of the optimized and current mixes across budget scenarios."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    b = table["budget"]
    ax.fill_between(b, table["optimized_response_hdi_low"], table["optimized_response_hdi_high"], color="C2", alpha=0.2)
    ax.plot(b, table["optimized_response_mean"], "o-", color="C2", label="optimized mix")
    ax.plot(b, table["current_response_mean"], "s--", color="0.4", label="current mix")
    ax.set_xlabel("budget")
    ax.set_ylabel("expected incremental response")
    ax.legend(frameon=False, fontsize=8)
    spend_cols = [c for c in table.columns if c.endswith("_spend")]
    bottom = np.zeros(len(table))
    labels = [f"{c:+.0%}" for c in table["change"]]
    for i, col in enumerate(spend_cols):
        ax2.bar(labels, table[col], bottom=bottom, color=f"C{i}", label=col.removesuffix("_spend"))
        bottom += table[col].to_numpy()
    ax2.set_xlabel("budget change")
    ax2.set_ylabel("optimized spend")
    ax2.legend(frameon=False, fontsize=8, ncol=2)
    return _save(fig, path)


def plot_rank(idata, path: str | Path, var_names: list[str] | None = None, max_panels: int = 12) -> Path:
    """Rank plots of the parameters with the highest R-hat (uniform per-chain histograms = chains agree).

    Each panel pools a parameter's draws from all chains, ranks them, and draws one
    histogram of ranks per chain; the dashed line is the uniform level.
    """
    import arviz_stats as az  # arviz re-exports these; its plotting half costs 0.35 s to import
    from scipy.stats import rankdata

    post = idata["posterior"].to_dataset()
    names = var_names or list(post.data_vars)
    rhat = az.rhat(post[names])
    panels: list[tuple[float, str, np.ndarray]] = []
    for name in names:
        da = post[name]
        extra = da.dims[2:]
        flat = da.to_numpy().reshape(da.sizes["chain"], da.sizes["draw"], -1)
        r = np.atleast_1d(rhat[name].transpose(*extra).to_numpy()).ravel()
        if extra:
            index = da.isel(chain=0, draw=0, drop=True).to_series().index
            labels = ["[" + ",".join(map(str, k if isinstance(k, tuple) else (k,))) + "]" for k in index]
        else:
            labels = [""]
        for k in range(flat.shape[2]):
            panels.append((float(np.nan_to_num(r[k], nan=0.0)), f"{name}{labels[k]}", flat[:, :, k]))
    panels = sorted(panels, key=lambda p: -p[0])[:max_panels]
    fig, axes = _grid(len(panels), ncols=4, size=(3.0, 2.0))
    for ax, (r, label, x) in zip(axes, panels, strict=False):
        ranks = rankdata(x.ravel()).reshape(x.shape)
        bins = np.linspace(0, ranks.size, 21)
        counts = np.array([np.histogram(ranks[c], bins=bins)[0] for c in range(x.shape[0])])
        # one step line per chain, drawn in one call (a histogram patch per chain is slow to lay out)
        ax.plot(bins, np.hstack([counts, counts[:, -1:]]).T, drawstyle="steps-post", lw=1)
        ax.axhline(x.shape[1] / 20, color="k", lw=0.6, ls="--")
        ax.set_title(f"{label}  R-hat {r:.3f}", fontsize=8)
        ax.set_yticks([])
        ax.set_xticks([])
    return _save(fig, path)


def plot_rf_surface(surface: pd.DataFrame, table: pd.DataFrame, path: str | Path) -> Path:
    """Each reach & frequency channel's mean contribution over reach (× its history) and frequency
    (``rf_surface.csv``), the optimal frequency (``rf.csv``) as a dashed line."""
    import numpy as np

    plt = _pyplot()
    channels = list(dict.fromkeys(surface["channel"]))
    fig, axes = plt.subplots(1, len(channels), figsize=(4.6 * len(channels), 3.6), squeeze=False)
    for ax, ch in zip(axes[0], channels, strict=True):
        s = surface[surface["channel"] == ch]
        grid = s.pivot(index="frequency", columns="reach_multiplier", values="contribution")
        mesh = ax.contourf(grid.columns.to_numpy(), grid.index.to_numpy(), grid.to_numpy(), levels=12, cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="contribution")
        row = table[table["channel"] == ch]
        if len(row):
            f = float(row["optimal_frequency"].iloc[0])
            ax.axhline(f, color="w", ls="--", lw=1)
            ax.text(np.min(grid.columns), f, f" optimal {f:.1f}", color="w", va="bottom", fontsize=8)
        ax.set_xlabel("reach (× history)")
        ax.set_ylabel("frequency")
        ax.set_title(f"{ch}: reach & frequency", loc="left")
    return _save(fig, path)


def plot_multipliers(table: pd.DataFrame, path: str | Path, roas_by_period: pd.DataFrame | None = None) -> Path:
    """Each time-varying channel's multiplier ``m_c(t)`` over time with its HDI band (the
    :func:`~bayesmmm.evaluation.varying.multiplier_table`), the training average (1) dashed; with
    ``roas_by_period`` the channel's quarterly ROAS below it."""
    channels = list(dict.fromkeys(table["channel"]))
    plt = _pyplot()
    rows = 2 if roas_by_period is not None else 1
    fig, axes = plt.subplots(rows, len(channels), figsize=(5.0 * len(channels), 3.0 * rows), squeeze=False)
    prob = table.attrs.get("hdi_prob", 0.9)
    for k, channel in enumerate(channels):
        part = table[table["channel"] == channel]
        dates = pd.to_datetime(part["date"])
        ax = axes[0, k]
        ax.fill_between(
            dates, part["multiplier_hdi_low"], part["multiplier_hdi_high"], alpha=0.3, label=f"{prob:.0%} HDI"
        )
        ax.plot(dates, part["multiplier_mean"], lw=2, label="mean")
        ax.axhline(1.0, color="k", ls="--", lw=0.8)
        ax.set_title(f"{channel}: effect multiplier")
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylabel("× training average")
        ax.legend(loc="best", fontsize="small")
        if roas_by_period is not None:
            q = roas_by_period[(roas_by_period["channel"] == channel) & (roas_by_period["kind"] == "quarter")]
            ax = axes[1, k]
            x = np.arange(len(q))
            ax.errorbar(x, q["roas_mean"], yerr=_err(q["roas_mean"], q["roas_hdi_low"], q["roas_hdi_high"]), fmt="o")
            ax.set_xticks(x, q["period"], rotation=60, fontsize="small")
            ax.set_title(f"{channel}: ROAS by quarter")
    for ax in axes.ravel():
        ax.tick_params(axis="x", labelsize="small")
    return _save(fig, path)
