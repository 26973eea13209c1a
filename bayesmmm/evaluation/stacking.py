"""Stacked posteriors: the mixture of several candidate models' draws by their stacking weights.

When forms fit the observed periods about equally well (PSIS-LOO ties, see
:func:`bayesmmm.workflows.selection.loo_ties`) but extrapolate differently, picking one hides the
difference. Stacking of predictive distributions (Yao, Vehtari, Simpson & Gelman 2018) weighs the
candidates to predict held-out periods best; the mixture of their posteriors by those weights
carries the form's uncertainty into every derived quantity. Here a quantity's stacked draws are
``n_draws`` draws, candidate ``k`` contributing a multinomial share ``n_k`` of them (weights
``w_k``), each drawn from its own posterior without replacement while it has enough draws.

All candidates must be fitted on the same data (same channels, dates, geos): their components
then share every dimension but the draws, and the tables of :mod:`bayesmmm.evaluation.summaries`
accept the mixture in place of one model's components.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = ["MEDIA_VARIABLES", "mixture_indices", "stack_components", "stacked_roas_tables"]

#: the components the ROAS tables read (the ``*_value`` ones exist with a revenue per KPI, ``*_geo`` for panels)
MEDIA_VARIABLES = ("media", "media_value", "media_geo", "media_geo_value")


def mixture_indices(sizes: Sequence[int], weights: Sequence[float], n_draws: int, seed: int = 0) -> list[np.ndarray]:
    """Which draws of each candidate make up ``n_draws`` draws of their mixture.

    Parameters
    ----------
    sizes : number of (pooled chain × draw) draws of each candidate.
    weights : mixture weights (non-negative; normalized here).
    n_draws : draws of the mixture.

    Returns
    -------
    One index array per candidate, ``len = n_k`` with ``(n_k) ~ Multinomial(n_draws, w)``; without
    replacement where ``n_k <= size_k``.
    """
    w = np.asarray(weights, dtype=float)
    if len(w) != len(sizes) or len(w) == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative, finite and not all zero, one per candidate; got {weights}")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_draws, w / w.sum())
    return [rng.choice(size, n, replace=n > size) for size, n in zip(sizes, counts, strict=True)]


def stack_components(
    components: Sequence[xr.Dataset],
    weights: Sequence[float],
    n_draws: int = 2000,
    seed: int = 0,
    variables: Sequence[str] = MEDIA_VARIABLES,
) -> xr.Dataset:
    """The mixture of the candidates' posterior components: ``variables`` present in every candidate,
    with dims ``(chain=1, draw=n_draws, ...)``."""
    names = [v for v in variables if all(v in c for c in components)]
    if not names:
        raise ValueError(f"the candidates share none of the components {list(variables)}")
    pooled = [c[names].stack(sample=("chain", "draw")) for c in components]
    picks = mixture_indices([p.sizes["sample"] for p in pooled], weights, n_draws, seed)
    parts = [p.isel(sample=idx).drop_vars(["sample", "chain", "draw"]) for p, idx in zip(pooled, picks, strict=True)]
    mixed = xr.concat(parts, dim="sample", coords="minimal", compat="override", join="override")
    mixed = mixed.rename(sample="draw").assign_coords(draw=np.arange(n_draws)).expand_dims(chain=[0])
    return mixed.transpose("chain", "draw", ...)


def stacked_roas_tables(
    models: Sequence[MMM],
    weights: Sequence[float],
    hdi_prob: float = 0.9,
    n_draws: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """National (and, for geo models, per-geo) ROAS tables of the stacked posterior of ``models``
    (fitted on the same data) with mixture ``weights``: :func:`~bayesmmm.evaluation.summaries.roas_table`
    and :func:`~bayesmmm.evaluation.summaries.roas_geo_table` of :func:`stack_components`."""
    from bayesmmm.evaluation.summaries import roas_geo_table, roas_table

    first = models[0]
    for other in models[1:]:
        if list(other.channels) != list(first.channels) or other.is_geo != first.is_geo:
            raise ValueError("stacked models must be fitted on the same data (same channels and geos)")
    mixed = stack_components([m.posterior_components() for m in models], weights, n_draws, seed)
    national = roas_table(first, hdi_prob, mixed)
    geo = roas_geo_table(first, hdi_prob, mixed) if first.is_geo else None
    return national, geo
