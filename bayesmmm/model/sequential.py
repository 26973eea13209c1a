"""The sequential (joint) update of a refresh: ``bayesmmm refresh --prior-from-posterior``.

Bayes' rule in two steps: ``p(θ | y_old, y_new) ∝ p(y_new | θ, y_old) · p(θ | y_old)``. The refresh
fits the new table's model with

- **the prior**: a multivariate normal approximation of the first posterior ``p(θ | y_old)`` on
  PyMC's unconstrained space: the mean and covariance of the first posterior's draws of **every**
  free variable the first fit had (media, adstock, saturation, controls, noise, and the intercept,
  trend and seasonality too), each mapped through the new model's own transforms (log, log-odds,
  ...; :func:`~bayesmmm.model.warm_start.unconstrained_draws`). The covariance keeps the posterior's
  ridges (``beta`` against the saturation's half-point, the intercept against the media). It is
  shrunk a little toward its diagonal, ``(1 − λ) Σ + λ diag(Σ)`` with ``λ =``
  :data:`SHRINKAGE`, and a jitter of 1e-9 × the mean variance is added if the Cholesky factor
  still fails, so that it is positive definite. The term enters the model as a
  ``pm.Potential`` equal to the MvNormal log-density **minus** the log-density PyMC gives those
  value variables (their original priors and the transforms' log-Jacobians: ``model.logp(vars)``),
  so the density of the carried value variables is exactly the MvNormal on the unconstrained
  values. Free variables new to the refreshed model (absent from the first posterior or of another
  shape) keep their priors.
- **the likelihood of the new periods only** (those after the first fit's last date); the mean is
  computed over the whole history, so adstock carries the old spend into the new periods. Lift
  tests the first fit already used are not counted again (:func:`new_lift_tests`): only new rows
  of the lift-test file enter.

Two quantities of the model are defined over the *training window*, which the refresh lengthens;
the prior is stated on the first fit's definitions, and the new model's variables are mapped to
them inside the Potential:

- ``center_media`` (the default): the intercept is the level net of the media's mean contribution
  over the training weeks, ``mu_t = intercept − c_W(θ) + ...``. The first fit's intercept is
  centred over its weeks, the refreshed model's over the whole table: the prior is evaluated at
  ``intercept_old = intercept_new − c_new(θ) + c_old(θ)`` (:func:`~bayesmmm.model.mean.media_mean`
  over each window), the value that gives the same mean in every period.
- ``center_day_of_week`` (with daily data): the day-of-week coefficients likewise absorb the media's
  weekday profile over the training rows, ``F_w γ − F_w c_W(θ)``; the prior is evaluated at
  ``γ_old = γ_new − c_new(θ) + c_old(θ)`` (:func:`~bayesmmm.model.mean.media_weekly_profile`, zero for a
  window whose model does not center on them).
- a ``share`` / ``roas`` / ``mroas`` media prior: the free variable is the quantity over the
  training window, ``beta = q · k_W(θ)`` (:func:`~bayesmmm.model.media_prior.coefficient`,
  linear in ``q``). The prior is evaluated at the first fit's quantity of the same ``beta``,
  ``q_old = beta / k_old(θ)`` (with the pooled prior, ``log q = mu + tau z``: at
  ``z_old = (log q_old − mu) / tau``).

Both maps add to a carried variable a function of the others (a shear: lower triangular with a unit
diagonal in a suitable order), so the change of variables has a unit Jacobian and the Potential
needs no Jacobian term for them (an intercept with a transform gets its elementwise
log-Jacobian; a pooled prior with a fixed spread that differs between the two windows, ``roas``
``level``, a constant factor, which does not change the posterior).

What it is not: exact. The MvNormal is an approximation of the first posterior (good where it is
near-Gaussian on the unconstrained space, as the warm metric also assumes); restated history in the
first fit's periods is not re-read (the first posterior stands for them as they were). The exact
refresh (the option off) is the posterior given all the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ConfigError
from bayesmmm.model.spec import POOLING_VARIABLES, QUANTITY_VARIABLES

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "SHRINKAGE",
    "SequentialPrior",
    "SequentialUpdate",
    "mvnormal_logp",
    "new_lift_tests",
    "regularized_moments",
]

#: weight of the covariance's diagonal in the regularized covariance ``(1 − λ) Σ + λ diag(Σ)``
SHRINKAGE = 0.05
#: draws of the first posterior the moments are estimated from (a seeded subsample)
PRIOR_DRAWS = 4000
POTENTIAL = "sequential_prior"


def regularized_moments(draws: np.ndarray, shrinkage: float = SHRINKAGE) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``ddof=1``) of ``draws`` ``(n, dim)``, the covariance shrunk toward its
    diagonal, ``(1 − λ) Σ + λ diag(Σ)``, and made positive definite (a jitter of ``1e-9 ×`` the mean
    variance, raised tenfold until the Cholesky factor exists)."""
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"draws must be (n >= 2, dim); got shape {x.shape}")
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    cov = (1.0 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov))
    jitter = 1e-9 * max(float(np.mean(np.diag(cov))), 1e-12)
    for _ in range(12):
        try:
            np.linalg.cholesky(cov)
            return mean, cov
        except np.linalg.LinAlgError:
            cov = cov + jitter * np.eye(len(cov))
            jitter *= 10.0
    raise ValueError("the first posterior's covariance is not positive definite even after regularization")


def mvnormal_logp(x: Any, mean: np.ndarray, cov: np.ndarray) -> Any:
    """``log N(x | mean, cov)`` of a PyTensor vector ``x`` (pure; ``mean``, ``cov`` NumPy constants)."""
    import pytensor.tensor as pt

    chol = np.linalg.cholesky(np.asarray(cov, dtype=float))
    whiten = np.linalg.solve(chol, np.eye(len(chol)))  # L⁻¹: r = L⁻¹ (x − m), log N = −½ r·r − log|L| − d/2 log 2π
    r = pt.dot(pt.constant(whiten), x - pt.constant(np.asarray(mean, dtype=float)))
    const = -float(np.sum(np.log(np.diag(chol)))) - 0.5 * len(chol) * np.log(2.0 * np.pi)
    return -0.5 * pt.sum(r**2) + const


def new_lift_tests(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows of ``new`` (checked lift tests) that are not tests of ``old`` (the first fit's: the
    same values in every column both hold); None when none is left."""
    if new is None or new.empty:
        return None
    if old is None or old.empty:
        return new
    cols = [c for c in new.columns if c in old.columns]

    def keys(frame: pd.DataFrame) -> list[tuple]:
        out = []
        for row in frame[cols].itertuples(index=False):
            out.append(tuple("" if pd.isna(v) else (round(v, 9) if isinstance(v, float) else str(v)) for v in row))
        return out

    seen = set(keys(old))
    keep = [k not in seen for k in keys(new)]
    if not any(keep):
        return None
    out = new.loc[keep].copy()
    out.attrs.update(new.attrs)
    return out


@dataclass(frozen=True)
class SequentialPrior:
    """The fitted MvNormal: the carried free variables, their value variables' names and shapes (the
    layout of ``mean``), and what kept its prior."""

    names: tuple[str, ...]
    value_names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    mean: np.ndarray
    cov: np.ndarray
    n_draws: int
    shrinkage: float = SHRINKAGE
    kept: tuple[str, ...] = ()
    mapped: tuple[str, ...] = ()

    def key(self) -> str:
        """Identifies the prior (for the compiled-code cache)."""
        h = hashlib.sha256(np.ascontiguousarray(self.mean).tobytes() + np.ascontiguousarray(self.cov).tobytes())
        h.update("|".join(self.value_names).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no arrays)."""
        sd = np.sqrt(np.diag(self.cov))
        corr = self.cov / np.outer(sd, sd)
        off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
        return {
            "kind": "joint",
            "distribution": "MvNormal on the unconstrained space",
            "variables": list(self.names),
            "dim": len(self.mean),
            "draws": int(self.n_draws),
            "shrinkage_to_diagonal": float(self.shrinkage),
            "max_abs_correlation": float(off.max()) if off.size else 0.0,
            "kept_priors": list(self.kept),
            "window_mapped": list(self.mapped),
        }


@dataclass
class SequentialUpdate:
    """What the refreshed :class:`~bayesmmm.model.mmm.MMM` needs to build the joint update (set as
    ``mmm.sequential``): the first fit's posterior and bound spec (its window and scales)."""

    posterior: Any  # xarray Dataset (chain, draw, ...) of the first fit
    old_spec: ModelSpec
    seed: int = 0
    max_draws: int = PRIOR_DRAWS
    prior: SequentialPrior | None = field(default=None, init=False)

    @property
    def start(self) -> int:
        """Index of the first new period: the likelihood covers ``[start, T)``."""
        return int(self.old_spec.data.n_dates)

    def key(self) -> str:
        """Identifies the update (for the compiled-code cache): the first posterior and window."""
        h = hashlib.sha256(str(self.start).encode())
        for name in sorted(self.posterior.data_vars):
            h.update(name.encode() + np.ascontiguousarray(np.asarray(self.posterior[name], float)).tobytes())
        return h.hexdigest()

    def fit_prior(self, model: Any) -> SequentialPrior:
        """The MvNormal over the first posterior's draws of the free variables of ``model`` (the new
        PyMC model) it holds with the same shape."""
        from bayesmmm.model.warm_start import unconstrained_draws

        point = model.initial_point()
        names, kept = [], []
        for rv in model.free_RVs:
            value = model.rvs_to_values[rv]
            shape = np.shape(point[value.name])
            arr = self.posterior.get(rv.name, None)
            if arr is not None and tuple(arr.shape[2:]) == shape:
                names.append(rv.name)
            else:
                kept.append(rv.name)
        if not names:
            raise ValueError("the first posterior holds none of the refreshed model's free variables")
        draws = unconstrained_draws(model, self.posterior, self.max_draws, self.seed, names=names)
        if isinstance(draws, str):
            raise ValueError(f"the first posterior cannot be mapped to the refreshed model: {draws}")
        ordered = [model.values_to_rvs[v].name for v in model.value_vars if model.values_to_rvs[v].name in names]
        values = [model.rvs_to_values[model[n]] for n in ordered]
        flat = np.concatenate([d.reshape(d.shape[0], -1) for d in draws], axis=1)
        if not np.isfinite(flat).all():
            raise ValueError("the first posterior's draws are not finite on the refreshed model's unconstrained space")
        mean, cov = regularized_moments(flat)
        self.prior = SequentialPrior(
            names=tuple(ordered),
            value_names=tuple(v.name for v in values),
            shapes=tuple(tuple(d.shape[1:]) for d in draws),
            mean=mean,
            cov=cov,
            n_draws=flat.shape[0],
            kept=tuple(kept),
        )
        return self.prior

    def add_prior(self, model: Any, spec: ModelSpec, params: dict[str, Any]) -> None:
        """Add the Potential (see the module docstring) to ``model`` (in its context)."""
        import pymc as pm
        import pytensor.tensor as pt

        if spec.organic_share:  # a share of the window's KPI total, on a logit scale: not mapped between windows
            raise ConfigError(
                "the joint refresh (refresh --prior-from-posterior, kind joint) does not map model.organic.prior: "
                "share between windows; use --prior-from-posterior-kind marginal, or fit the organic media with "
                "prior: coefficient"
            )
        prior = self.fit_prior(model)
        params = {**{rv.name: rv for rv in model.free_RVs}, **params}  # the pooled prior's variables too
        mapped = old_window_values(self.old_spec, spec, params)
        parts, extra = [], pt.constant(0.0)
        for name in prior.names:
            rv = model[name]
            value = model.rvs_to_values[rv]
            transform = model.rvs_to_transforms.get(rv)
            if name in mapped:
                x_old = mapped[name]
                if transform is None:
                    u_old = x_old
                elif name == "intercept":  # an additive shift on the constrained value: log|T'(x_old) / T'(x_new)|
                    u_old = transform.forward(x_old, *rv.owner.inputs)
                    extra = extra + pt.sum(transform.log_jac_det(value, *rv.owner.inputs))
                    extra = extra - pt.sum(transform.log_jac_det(u_old, *rv.owner.inputs))
                else:  # a log-transformed quantity scaled by a function of the others: unit Jacobian
                    u_old = transform.forward(x_old, *rv.owner.inputs)
                parts.append(pt.flatten(u_old))
            else:
                parts.append(pt.flatten(value))
        x = pt.concatenate(parts) if len(parts) > 1 else parts[0]
        original = model.logp(vars=[model[n] for n in prior.names], jacobian=True, sum=True)
        pm.Potential(POTENTIAL, mvnormal_logp(x, prior.mean, prior.cov) + extra - original)
        object.__setattr__(prior, "mapped", tuple(n for n in prior.names if n in mapped))


def old_window_values(old_spec: ModelSpec, spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The first fit's values (constrained) of the new model's window-defined variables (PyTensor; see
    the module docstring): ``intercept`` with ``center_media``, the day-of-week coefficients with
    ``center_day_of_week``, the media prior's quantity (or, pooled, its offset ``media_prior_z``); the other
    variables mean the same in both models."""
    import pytensor.tensor as pt

    from bayesmmm.model.mean import media_mean, media_weekly_profile
    from bayesmmm.model.media_prior import coefficient

    out: dict[str, Any] = {}
    old_media = pt.constant(old_spec.training_design()["media"], dtype="float64")
    new_media = pt.constant(spec.training_design()["media"], dtype="float64")
    if spec.model_config.center_media and "intercept" in params:
        shift = media_mean(old_spec, params, old_media) - media_mean(spec, params, new_media)
        out["intercept"] = params["intercept"] + shift
    gamma = spec.seasonality.pooled_variable
    profiles = (media_weekly_profile(old_spec, params, old_media), media_weekly_profile(spec, params, new_media))
    if gamma in params and any(p is not None for p in profiles):
        # the day-of-week coefficients of each window's definition: γ_old = γ_new − c_new(θ) + c_old(θ)
        old_profile, new_profile = (pt.constant(0.0) if p is None else p for p in profiles)
        columns = (spec if profiles[1] is not None else old_spec).seasonality.day_of_week_columns()
        out[gamma] = pt.inc_subtensor(params[gamma][..., columns], old_profile - new_profile)
    name = QUANTITY_VARIABLES.get(spec.model_config.media_prior.type)
    if name is not None:
        quantity = params["beta"] / coefficient(old_spec, params, pt.ones_like(params["beta"]), old_media)
        if spec.media_prior_pooled:
            tau = params.get(POOLING_VARIABLES["spread"])
            if tau is None:
                from bayesmmm.model.media_prior import hierarchical_prior

                tau = hierarchical_prior(old_spec).tau_scale
            out[POOLING_VARIABLES["offset"]] = (pt.log(quantity) - params[POOLING_VARIABLES["level"]]) / tau
        else:
            out[name] = quantity
    return out
