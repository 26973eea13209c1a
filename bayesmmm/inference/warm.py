"""A sampler warm start: where the chains start, the mass matrix and step size, a shorter warm-up.

A refresh (:mod:`bayesmmm.workflows.refresh`) samples a posterior close to one it has already
sampled. What the first fit's warm-up learned can then be handed to the new one:

- ``points``: one starting position per chain on the unconstrained space (draws of the first
  posterior: already in, or next to, the new posterior's typical set);
- ``inverse_mass_matrix``: the first posterior's covariance on the unconstrained space (the
  matrix a warm-up estimates: ``(dim, dim)`` for a dense metric, its diagonal ``(dim,)`` for a
  diagonal one), in the flat layout of the model's value variables;
- ``step_size``: the first fit's adapted step size, the start of the step-size adaptation;
- ``tune``: the warm-up length to use instead of ``sampler.tune``.

A backend whose :class:`~bayesmmm.inference.base.Capabilities` has ``warm_metric`` keeps the mass
matrix fixed and adapts only the step size in that warm-up (NUTS is exact for any fixed metric:
the metric changes the cost per draw, never the target). The others start from ``points`` only
and run their usual warm-up. Nothing here changes what is sampled: the posterior is the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WarmStart", "default_warm_tune", "metric_from_draws"]

#: the shortest warm-up ``default_warm_tune`` gives: the step-size adaptation's dual averaging
#: settles within a few dozen iterations from a good start; 100 leaves a margin
MIN_WARM_TUNE = 100


@dataclass(frozen=True)
class WarmStart:
    """What a warm-started fit hands its backend (see the module docstring)."""

    points: list[list[np.ndarray]]  # per chain, per value variable (the model's order), unconstrained
    inverse_mass_matrix: np.ndarray  # (dim,) diagonal or (dim, dim) dense
    step_size: float
    tune: int
    source: str = ""  # what the warm start came from (for provenance)

    @property
    def dense(self) -> bool:
        """Whether :attr:`inverse_mass_matrix` is dense."""
        return np.ndim(self.inverse_mass_matrix) == 2

    def summary(self) -> dict[str, object]:
        """JSON-ready description (no arrays)."""
        return {
            "source": self.source,
            "chains": len(self.points),
            "metric": "dense" if self.dense else "diag",
            "dim": int(np.shape(self.inverse_mass_matrix)[-1]),
            "step_size": float(self.step_size),
            "tune": int(self.tune),
        }


def default_warm_tune(tune: int) -> int:
    """The warm-up of a warm-started fit when ``sampler.warm_tune`` is unset: a fifth of the cold
    warm-up ``tune``, at least :data:`MIN_WARM_TUNE` (never more than ``tune``)."""
    return int(min(tune, max(MIN_WARM_TUNE, tune // 5)))


def metric_from_draws(draws: np.ndarray, dense: bool) -> np.ndarray:
    """The inverse mass matrix a warm-up would estimate from ``draws`` ``(n, dim)`` (unconstrained).

    The sample covariance (its diagonal when not ``dense``), shrunk towards a small multiple of
    the identity as NumPyro and Stan regularize their windowed estimates:
    ``n / (n + 5) · Σ + 1e-3 · 5 / (n + 5) · I``; the shrinkage also keeps a matrix from a
    few hundred draws positive definite.
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"draws must be (n >= 2, dim); got shape {x.shape}")
    n, dim = x.shape
    shrink, floor = n / (n + 5.0), 1e-3 * 5.0 / (n + 5.0)
    if dense:
        cov = np.atleast_2d(np.cov(x, rowvar=False))
        return shrink * cov + floor * np.eye(dim)
    return shrink * x.var(axis=0, ddof=1) + floor
