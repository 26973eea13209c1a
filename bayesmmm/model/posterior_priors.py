"""A fitted model's posterior as priors for a refit: ``bayesmmm refresh --prior-from-posterior``.

Each parameter that does not change with time (the channels' effect: ``beta`` or the media
prior's quantity ``roas`` / ``mroas`` / ``contribution_share``; the adstock and saturation
parameters; the controls' coefficients ``gamma_control``; the likelihood's ``sigma`` and its own
parameters such as ``nu``) gets an independent prior per element, moment-matched on the
parameter's unconstrained scale (the scale PyMC samples it on):

=============  ==============  ===============================================================
support        PyMC transform  prior
=============  ==============  ===============================================================
real           none            ``Normal(mu=m, sigma=s)``, ``m, s``: mean and sd of the draws
positive       log             ``LogNormal(mu=m, sigma=s)``, ``m, s`` of ``log(draws)``
(0, 1)         log-odds        ``Beta(alpha, beta)`` with the draws' mean ``m`` and variance
                               ``v``: ``alpha = m k``, ``beta = (1 − m) k``, ``k = m(1 − m)/v − 1``
=============  ==============  ===============================================================

(``s``, ``v``: sample sd and variance, ``ddof=1``. PyMC's ``LogitNormal`` is not a distribution
class the prior machinery can name, hence the moment-matched Beta for (0, 1) parameters.) A
parameter of any other support keeps its prior (listed in :attr:`PosteriorPriors.kept`). The
intercept, the trend and the seasonality keep their priors: they describe the level and the path
over time that new periods revise. The correlations of the posterior (``beta`` with the
saturation's half-point, say) are not carried: the product of the marginals is wider than the
joint posterior along those ridges.

A ``share`` or ``roas`` media prior is on the quantity over the *training window* (contribution ÷
the window's target total, or ÷ its spend). Given the refresh's table (``data``), that quantity's
prior is fitted to the first posterior's draws of the quantity **over the new window**: each draw's
media contribution over ``data``'s periods (the first fit's scales) ÷ ``data``'s target total or
spend: the same belief about the channels, expressed in the new model's parameter (without
``data``, or for ``mroas`` and for data with revenue per KPI, the first posterior's own draws of the
quantity, over its own window).

The priors are expressed in the model configuration (``model.priors``, ``model.adstock.priors``,
``model.saturation.priors``, ``model.media_prior.channels``), so the new run's ``config.yaml``
states exactly the priors it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import ModelConfig
from bayesmmm.model.spec import QUANTITY_VARIABLES

__all__ = ["PosteriorPriors", "fitted_prior", "moments", "posterior_priors", "variable_supports", "window_quantity"]

#: support → (map of the draws to where the moments are taken, the PyMC distribution fitted)
_SUPPORTS = {
    "real": (lambda x: x, "Normal"),
    "positive": (np.log, "LogNormal"),
    "unit": (lambda x: x, "Beta"),
}
_TRANSFORMS = {None: "real", "LogTransform": "positive", "LogOddsTransform": "unit"}


def moments(draws: np.ndarray, support: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (``ddof=1``) over the first axis of ``draws``, of ``log(draws)`` for ``positive``
    (``real`` and ``unit``: of the draws); a zero sd is raised to 1e-6."""
    forward, _dist = _SUPPORTS[support]
    z = forward(np.asarray(draws, dtype=float))
    return z.mean(axis=0), np.maximum(z.std(axis=0, ddof=1), 1e-6)


def fitted_prior(draws: np.ndarray, support: str) -> Prior:
    """The moment-matched prior of ``draws`` (``(sample,)`` or ``(sample, k)``): see the module table."""
    mu, sigma = moments(draws, support)
    _forward, dist = _SUPPORTS[support]

    def value(a: np.ndarray) -> float | list[float]:
        return float(a) if np.ndim(a) == 0 else [float(v) for v in np.ravel(a)]

    if support == "unit":  # Beta by the method of moments; v < m(1 - m) holds for draws inside (0, 1)
        k = np.maximum(mu * (1 - mu) / sigma**2 - 1.0, 1e-3)
        return Prior(dist=dist, alpha=value(mu * k), beta=value((1 - mu) * k))
    return Prior(dist=dist, mu=value(mu), sigma=value(sigma))


def variable_supports(model) -> dict[str, str | None]:
    """Support of each free variable of a PyMC ``model`` from its transform (None: another one)."""
    out = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        out[rv.name] = _TRANSFORMS.get(None if transform is None else type(transform).__name__)
    return out


@dataclass
class PosteriorPriors:
    """The new model configuration and what was fitted: variable → prior, and the variables kept."""

    model_config: ModelConfig
    fitted: dict[str, Prior] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"fitted": {k: v.to_dict() for k, v in self.fitted.items()}, "kept": self.kept}


def window_quantity(mmm: Any, data: Any, kind: str) -> np.ndarray | None:
    """The first posterior's ``share`` or ``roas`` per draw and channel ``(sample, channel)`` over
    ``data``'s periods (media contributions of ``mmm``'s draws on ``data`` with ``mmm``'s scales, ÷
    ``data``'s target total or channel spend); None where it does not apply (another kind, a geo
    panel, or data with revenue per KPI)."""
    if kind not in ("share", "roas") or data is None or mmm.is_geo or data.has_revenue:
        return None
    view = type(mmm)(mmm.data_config, mmm.model_config)
    view.bind(data, mmm.scales)
    view.idata = mmm.idata
    contribution = view.posterior_components()["media"].sum("date")
    contribution = contribution.stack(sample=("chain", "draw")).transpose("sample", "channel").to_numpy()
    total = float(np.sum(data.target)) if kind == "share" else np.asarray(data.channel_spend, float).sum(axis=0)
    return contribution / total


def posterior_priors(mmm: Any, data: Any = None) -> PosteriorPriors:
    """Priors from a fitted :class:`~bayesmmm.model.mmm.MMM`'s posterior (see the module docstring).

    Returns the model configuration with the priors replaced (a media prior of type roas /
    mroas / share becomes unpooled, one LogNormal per channel under ``media_prior.channels``).
    ``data``: the refit's table (:class:`~bayesmmm.data.loading.MMMData`): a ``share`` / ``roas``
    prior is then fitted to the first posterior's quantity over its periods (:func:`window_quantity`).
    """
    spec = mmm.require_spec()
    post = mmm.idata["posterior"]
    supports = variable_supports(mmm.build_model())

    def stacked(name: str) -> np.ndarray:
        arr = post[name].to_numpy()
        return arr.reshape(-1, *arr.shape[2:])

    cfg = spec.model_config
    fitted: dict[str, Prior] = {}
    kept: list[str] = []
    priors = dict(cfg.priors)
    update: dict[str, Any] = {}
    quantity = QUANTITY_VARIABLES.get(cfg.media_prior.type)
    if quantity is not None:  # a business-unit prior: one LogNormal per channel (unpooled)
        windowed = window_quantity(mmm, data, cfg.media_prior.type)
        draws = stacked(quantity) if windowed is None else windowed
        channels = {}
        for c, ch in enumerate(spec.channels):
            channels[ch] = fitted_prior(draws[:, c], "positive")
        fitted[quantity] = fitted_prior(draws, "positive")
        update["media_prior"] = cfg.media_prior.model_copy(
            update={"channels": channels, "default": None, "pooling": "none"}
        )
    names = [] if quantity is not None else ["beta"]
    if spec.controls:
        names.append("gamma_control")
    names += ["sigma", *[p for p in spec.likelihood.param_names if p != "sigma"]]
    for name in names:
        support = supports.get(name)
        if support is None:
            kept.append(name)
            continue
        priors[name] = fitted[name] = fitted_prior(stacked(name), support)
    update["priors"] = priors
    for key, transform in (("adstock", spec.adstock), ("saturation", spec.saturation)):
        block = getattr(cfg, key)
        transform_priors = dict(block.priors)
        for param, var in transform.variable_names.items():
            support = supports.get(var)
            if support is None:
                kept.append(var)
                continue
            transform_priors[param] = fitted[var] = fitted_prior(stacked(var), support)
        update[key] = block.model_copy(update={"priors": transform_priors})
    new = ModelConfig.model_validate(cfg.model_copy(update=update).model_dump(mode="json"))
    return PosteriorPriors(new, fitted, kept)
