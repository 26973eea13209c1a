"""Where do the divergent transitions sit? A rank test per parameter.

A divergence count says that NUTS failed somewhere, not where. The usual manual check is a pairs
plot of the divergent draws against the others; this module does it per scalar parameter:

- every posterior element (``beta_organic[newsletter_sends]``, ...) is ranked over all draws of
  all chains, as a percentile in (0, 1);
- the divergent draws' mean percentile ``p`` is compared with what it would be if the divergences
  had nothing to do with that parameter: the mean of ``n`` independent uniform percentiles, mean
  0.5 and sd ``√(1 / (12 n))``, so ``z = (p − 0.5) / √(1 / (12 n))``;
- parameters with ``|z| ≥ z_threshold`` (default 3) are reported, strongest first, as
  ``high`` (divergences where the parameter is large) or ``low``.

The ranks make the test free of each parameter's scale and of its constraining transform (the
rank of a positive variable is the rank of its log). The draw recorded for a divergent transition
is the point the sampler kept, near the region where the trajectory diverged; that is what the
pairs-plot check uses too. With few divergences the test has little power: nothing is flagged
rather than a guess.

Typical reading: an organic (or paid) medium's ``beta``, ``saturation_slope`` and
``saturation_kappa`` together mean a ridge along the saturation curve, which a medium whose volume
hardly varies cannot resolve; a saturation with one parameter (``logistic``,
``michaelis_menten``) or tighter priors on those variables removes it. Divergences in one chain
only (``per_chain``) point to a mode or a region the other chains never visit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_ELEMENTS", "Z_THRESHOLD", "divergence_locations"]

#: the |z| from which a parameter counts as associated with the divergences
Z_THRESHOLD = 3.0
#: variables with more elements per draw than this (per-date deterministics) are skipped
MAX_ELEMENTS = 200

_SATURATION_HINT = (
    "the divergences follow a saturation curve's parameters ({names}): with inputs that hardly vary the data "
    "cannot tell the curve's shape from its scale (a ridge); a saturation with one parameter ({keys}: logistic or "
    "michaelis_menten) or tighter priors on those variables removes it"
)


def _element_labels(name: str, var: Any) -> list[str]:
    dims = [d for d in var.dims if d not in ("chain", "draw")]
    if not dims:
        return [name]
    grids = np.meshgrid(*[np.asarray(var[d].values) for d in dims], indexing="ij")
    return [f"{name}[{', '.join(str(g.flat[i]) for g in grids)}]" for i in range(grids[0].size)]


def divergence_locations(
    idata: Any, z_threshold: float = Z_THRESHOLD, top: int = 6, max_elements: int = MAX_ELEMENTS
) -> dict[str, Any] | None:
    """The parameters the divergent draws are associated with (see the module docstring).

    Parameters
    ----------
    idata : a posterior ``DataTree`` with ``posterior`` and ``sample_stats.diverging``.
    z_threshold : report parameters with ``|z|`` at least this.
    top : at most this many parameters.
    max_elements : skip variables with more elements per draw.

    Returns
    -------
    None without divergences, else ``{"divergences", "per_chain", "z_threshold", "parameters": [{"parameter",
    "percentile", "z", "direction"}], "summary", "advice"}``; ``parameters`` is empty when none passes the
    threshold, ``advice`` None unless the parameters point to a saturation ridge.
    """
    stats = idata["sample_stats"]
    if "diverging" not in stats:
        return None
    diverging = np.asarray(stats["diverging"].values, dtype=bool)
    n = int(diverging.sum())
    if n == 0:
        return None
    flat = diverging.reshape(-1)
    total = flat.size
    sd = np.sqrt(1.0 / (12.0 * n))
    per_chain = [int(v) for v in diverging.sum(axis=1)]
    found: list[dict[str, Any]] = []
    post = idata["posterior"]
    for name in post.data_vars:
        var = post[name]
        if var.dims[:2] != ("chain", "draw") or var.shape[:2] != diverging.shape:
            continue
        values = np.asarray(var.values, dtype="float64").reshape(total, -1)
        if values.shape[1] > max_elements:
            continue
        labels = _element_labels(name, var)
        for j in range(values.shape[1]):
            column = values[:, j]
            if not np.isfinite(column).all() or np.ptp(column) == 0:
                continue
            percentile = np.empty(total)
            percentile[np.argsort(column, kind="stable")] = (np.arange(total) + 0.5) / total
            mean = float(percentile[flat].mean())
            z = (mean - 0.5) / sd
            if abs(z) >= z_threshold:
                found.append(
                    {
                        "parameter": labels[j],
                        "percentile": round(mean, 3),
                        "z": round(float(z), 1),
                        "direction": "high" if z > 0 else "low",
                    }
                )
    found.sort(key=lambda r: -abs(r["z"]))
    found = found[:top]
    summary = (
        "divergent draws at "
        + ", ".join(f"{r['direction']} {r['parameter']} (mean percentile {r['percentile']:.0%})" for r in found[:3])
        if found
        else "divergent draws not concentrated in any parameter"
    )
    if len(per_chain) > 1 and max(per_chain) == n:
        summary += f"; all in chain {per_chain.index(n)}"
    saturation = [r["parameter"] for r in found if r["parameter"].startswith("saturation_")]
    keys = sorted({"model.organic.saturation" if "_organic[" in p else "model.saturation" for p in saturation})
    advice = _SATURATION_HINT.format(names=", ".join(saturation), keys=" / ".join(keys)) if saturation else None
    return {
        "divergences": n,
        "per_chain": per_chain,
        "z_threshold": z_threshold,
        "parameters": found,
        "summary": summary,
        "advice": advice,
    }
