"""Figures (PNG, matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

    from bayesmmm.model import MMM

__all__ = ["plot_comparison", "plot_fit"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_fit(mmm: MMM, path: str | Path, hdi_prob: float = 0.9, components: xr.Dataset | None = None) -> Path:
    """Observed target vs posterior mean fit with its HDI band, and media contributions below."""
    from bayesmmm.analysis import fit_metrics, hdi
    from bayesmmm.io import atomic_path

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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def plot_comparison(table: pd.DataFrame, path: str | Path) -> Path:
    """Candidates' ELPD (LOO) with ±1 SE and ±1 dSE to the best, and hold-out CRPS where computed."""
    from bayesmmm.io import atomic_path

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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
