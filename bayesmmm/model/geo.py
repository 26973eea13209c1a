"""Geo panels: which variables pool the channel effects and parameters across geos, and how.

``beta[g, c] = beta[c] · exp(beta_geo_sigma[c] · z[g, c])`` (non-centered; ``z`` zero-sum over
geos with ``beta_pooling: zerosum``); pooled transform parameters (``z`` zero-sum with
``param_pooling: zerosum``), trend slopes and Fourier
coefficients vary on the scale of their prior's support (:func:`link_of`). With ``sigma:
per_geo`` the noise scale ``sigma`` has a geo dim. Which geo variables exist, with their dims and
priors, is the spec's :attr:`~bayesmmm.model.spec.ModelSpec.geo_variables`; this module holds the math.
With one geo there is nothing to pool and every function here returns its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.components.priors import Prior

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = ["geo_media_parameters", "geo_parameters", "link_of", "pool_parameter"]

#: link functions of pooled positive / unit-interval parameters, by prior distribution
_LOGIT_DISTS = frozenset({"Beta", "Kumaraswamy", "LogitNormal"})
_LOG_DISTS = frozenset(
    {"HalfNormal", "HalfCauchy", "HalfStudentT", "Gamma", "InverseGamma", "LogNormal", "Exponential", "Weibull"}
)


def link_of(prior: Prior) -> str:
    """Scale on which a pooled parameter varies across geos: ``logit``, ``log`` or ``identity``.

    Chosen from the support of the parameter's prior, so pooled values stay in it.
    """
    if prior.dist in _LOGIT_DISTS:
        return "logit"
    if prior.dist in _LOG_DISTS:
        return "log"
    return "identity"


def pool_parameter(value, sigma, z, link: str = "identity"):
    """Per-geo value of a partially pooled parameter (non-centered), PyTensor.

    ``inv_link(link(value) + sigma * z)``: ``value`` is the national (median geo)
    value with dims ``(...)``, ``sigma`` its spread across geos, ``z ~ N(0, 1)`` with
    dims ``(geo, ...)``.
    """
    import pytensor.tensor as pt

    if link == "logit":
        return pt.sigmoid(pt.log(value) - pt.log1p(-value) + sigma * z)
    if link == "log":
        return value * pt.exp(sigma * z)
    return value + sigma * z


def geo_parameters(spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Per-geo values of the pooled parameters (PyTensor; pure, core shapes).

    ``beta`` becomes ``(geo, channel)``; pooled transform parameters ``(geo,
    channel)``, a pooled trend slope ``(geo,)`` and pooled Fourier coefficients
    ``(geo, fourier_mode)``. Shared parameters are returned unchanged.
    """
    if not spec.pooled:
        return dict(params)
    out = dict(params)
    z = params["beta_geo_z"]
    if spec.geo_config.beta_pooling == "zerosum":
        z = z.T  # stored (channel, geo)
    spread = params.get("beta_geo_sigma", spec.geo_config.beta_sigma)  # beta_spread: fixed
    out["beta"] = pool_parameter(params["beta"], spread, z, "log")
    if "trend_geo_z" in params:
        name = spec.trend.pooled_variable
        out[name] = pool_parameter(params[name], params["trend_geo_sigma"], params["trend_geo_z"])
    if "seasonality_geo_z" in params:
        name = spec.seasonality.pooled_variable
        out[name] = pool_parameter(params[name], params["seasonality_geo_sigma"], params["seasonality_geo_z"])
    for transform in (spec.adstock, spec.saturation):
        for p, name in transform.variable_names.items():
            if f"{name}_geo_z" in params:
                pz = params[f"{name}_geo_z"]
                out[name] = pool_parameter(
                    params[name],
                    params.get(f"{name}_geo_sigma", spec.geo_config.param_sigma),  # param_spread: fixed
                    pz.T if spec.geo_config.param_pooling == "zerosum" else pz,  # stored (channel, geo)
                    link_of(transform.priors[p]),
                )
    return out


@convolution_graphs()
def geo_media_parameters(spec: ModelSpec, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-geo media parameters of a geo model for each draw: ``beta`` and the transform
    variables, each ``(sample, geo, channel)`` (shared ones broadcast over geos)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    dims = spec.variable_dims
    core = {n: pt.tensor(n, shape=(None,) * len(d), dtype="float64") for n, d in dims.items()}
    batched = {n: pt.tensor(f"{n}_draws", shape=(None,) * (len(d) + 1), dtype="float64") for n, d in dims.items()}
    names = ["beta", *spec.adstock.variable_names.values(), *spec.saturation.variable_names.values()]
    per_geo = geo_parameters(spec, core)
    outs = vectorize_graph([per_geo[n] for n in names], {core[n]: batched[n] for n in dims})
    fn = pytensor.function(list(batched.values()), outs, mode=numpy_mode(), on_unused_input="ignore")
    values = fn(*[np.asarray(draws[n], dtype="float64") for n in dims])
    shape = (len(values[0]), len(spec.geos), len(spec.channels))
    return {
        n: np.ascontiguousarray(np.broadcast_to(v[:, None, :] if v.ndim == 2 else v, shape))
        for n, v in zip(names, values, strict=True)
    }
