"""Priors in business units: each channel's ROAS, marginal ROAS or contribution share.

With ``model.media_prior.type`` ``roas``, ``mroas`` or ``share`` the free variable of a
channel is that quantity, and the channel coefficient ``beta`` is its exact function given
the channel's adstock and saturation parameters (national model, scaled units, ``s_y`` the
target scale, ``S_c`` the channel's spend and ``Y`` the target's total over the training
weeks, ``g_c = Σ_t saturation(adstock(x_c / s_c))_t`` the curve summed over those weeks):

- ``roas``: contribution ÷ spend ``= beta_c g_c s_y / S_c``, so ``beta_c = roas_c S_c / (s_y g_c)``;
- ``mroas``: the return of 1% more spend in every week, ``beta_c Δg_c s_y / (0.01 S_c)`` with
  ``Δg_c = g_c(1.01 x) − g_c(x)`` (as :func:`~bayesmmm.decisions.response.marginal_roas`);
- ``share``: contribution ÷ ``Y``, so ``beta_c = share_c Y / (s_y g_c)``.

``S_c`` is always money (the spend column), also for a channel whose curves act on an exposure
column (``x`` is then the exposure): ROAS and marginal ROAS priors keep their meaning, return
per unit of spend. With ``data.revenue_per_kpi_column`` they are revenue ROAS: ``g_c`` and
``Δg_c`` weigh each week's curve by its revenue per KPI ``r_t`` (``Σ_t r_t curve_t``), and the
total media share prior's ``Y`` is the revenue ``Σ_t r_t y_t``. A ``share`` is a share of the
KPI either way.

Without ``media_prior.default``, a ``roas`` or ``share`` channel not named under
``channels`` gets the *total media share* prior (:func:`total_share_prior`): independent
``LogNormal`` priors whose sum over the channels, as a share of the target, has mean
``total_share_mean`` and sd ``total_share_sd`` (Meridian's default for a non-revenue KPI,
0.4 and 0.2). ``share`` splits it evenly over the K channels (mean ``m / K``, sd
``s / √K`` each); ``roas`` gives every channel the same ROAS prior (mean ``m Y / Σ_c S_c``,
sd ``s Y / √(Σ_c S_c²)``), i.e. prior shares in proportion to spend. ``share`` is the
default (``type: auto``), chosen by measurement (README, "Default media prior"), pooled
``level`` (``pooling: auto``, below; also chosen by measurement).

``pooling`` (:func:`hierarchical_prior`) replaces the independent total media share prior by
a pooled one: the channels are a priori exchangeable and share a log level that the data
and lift tests learn, ``log q_c = mu + tau z_c`` (non-centred, ``z_c ~ Normal(0, 1)``), with

- ``mu ~ Normal(m0, s_T)``: centred on the independent prior's log mean ``m0`` (each
  channel's ``LogNormal(m0, s0)``), with the total share's own log-sd ``s_T = √log(1 +
  (total_share_sd / total_share_mean)²)`` (0.47 for 40% ± 20%): the uncertainty of the
  total is uncertainty of the level;
- ``level``: ``tau = √(s0² − s_T²)`` fixed, so that each channel's prior is EXACTLY the
  independent ``LogNormal(m0, s0)``; only the dependence changes. The total's mean stays
  ``total_share_mean``; its sd becomes ``total_share_sd · √(2 − 1/K)`` (0.26 for K = 3, 0.28
  for large K) because the channels now move together;
- ``hierarchical``: ``tau ~ HalfNormal(√(s0² − s_T²))`` learned too (each channel's log
  quantity keeps the mean ``m0`` and variance ``s0²``; heavier tails: the total's prior
  mean is 0.41 for K = 3, 0.43 for K = 4 and infinite for K ≥ 10, where ``√(s0² − s_T²) ≥
  1``).

One channel: nothing to pool, the independent prior. A lift-tested channel then moves
``mu``, and so the prior of an untested channel: toward the tested channels' level rather
than toward a fixed ``total_share_mean / K``. Measured (``benchmarks/README.md``, "Pooled
share prior"): ``level`` lowers the errors a little and keeps the untested channel honestly
uncertain; ``hierarchical`` lowers them more, but its posteriors diverge in about a third of
the fits (a funnel when ``tau`` is small) and, when the tested channels agree, it shrinks the
untested channel confidently toward them (too-narrow intervals that the identifiability
check, which compares with the marginal prior, often does not flag). The free variables are
``media_prior_mu``, ``media_prior_z`` and (``hierarchical``) ``media_prior_tau``; the quantity
is their deterministic function.

Sampling the prior therefore gives exactly the requested distribution of the quantity
(tested with a KS test). The graph uses :func:`coefficient`; after sampling, ``beta`` is
recomputed per draw by the same function (:func:`posterior_coefficients`), so every backend
stores the same ``beta`` and everything downstream (contributions, ROAS, forecasts) works
unchanged.

Organic media (``model.organic.prior: share``) get the same ``share`` mapping on their own block:
``beta_organic = organic_share · Y / (s_y Σ_t saturation(adstock(x / s_x))_t)`` with the organic
transforms (:func:`organic_coefficient`; ``organic_share ~ model.priors.organic_share``, default
``Beta(1, 99)``), recomputed per draw by :func:`posterior_organic_coefficients`. National models only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import ConfigError
from bayesmmm.model.mean import media_contributions, training_frequency
from bayesmmm.model.spec import ORGANIC_SHARE, POOLING_VARIABLES, QUANTITY_VARIABLES
from bayesmmm.model.value import value_weights

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "MROAS_STEP",
    "POOLING_VARIABLES",
    "QUANTITY_VARIABLES",
    "HierarchicalPrior",
    "coefficient",
    "create_quantity",
    "hierarchical_prior",
    "lognormal_with",
    "organic_coefficient",
    "posterior_coefficients",
    "posterior_organic_coefficients",
    "quantity_prior",
    "target_total",
    "total_share_prior",
]

#: spend increase of the marginal ROAS (as ``marginal_roas``'s default step)
MROAS_STEP = 0.01


def lognormal_with(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of the LogNormal with this mean and standard deviation."""
    mean, sd = np.asarray(mean, dtype="float64"), np.asarray(sd, dtype="float64")
    sigma = np.sqrt(np.log1p((sd / mean) ** 2))
    return np.log(mean) - sigma**2 / 2, sigma


def total_share_prior(spec: ModelSpec) -> Prior:
    """The total media share prior of every channel (``roas`` or ``share``), see the module docstring.

    Independent channels: the total share's mean is the sum of the channels' means and its
    variance the sum of their variances.
    """
    cfg = spec.model_config.media_prior
    k = len(spec.channels)
    m, s = cfg.total_share_mean, cfg.total_share_sd
    if cfg.type == "share":
        mean, sd = np.full(k, m / k), np.full(k, s / np.sqrt(k))
    elif cfg.type == "roas":
        spend = np.asarray(spec.data.channel_spend, dtype="float64").sum(axis=0)
        total = float(np.sum(spec.data.target * value_weights(spec)))  # revenue with a revenue per KPI
        if not (spend > 0).all() or total <= 0:
            raise ConfigError(
                "model.media_prior type roas: the total media share prior needs spend on every channel and a "
                "positive target total; give media_prior.default"
            )
        mean = np.full(k, m * total / spend.sum())
        sd = np.full(k, s * total / np.sqrt(np.sum(spend**2)))
    else:
        raise ConfigError(f"model.media_prior type {cfg.type} has no automatic prior: set media_prior.default")
    mu, sigma = lognormal_with(mean, sd)
    return Prior(dist="LogNormal", mu=float(mu[0]), sigma=float(sigma[0]))


@dataclass(frozen=True)
class HierarchicalPrior:
    """``log q_c = mu + tau z_c``: ``mu ~ Normal(mu_mean, mu_sd)``, ``z_c ~ Normal(0, 1)``, and ``tau =
    tau_scale`` (``pooling: level``) or ``tau ~ HalfNormal(tau_scale)`` (``pooling: hierarchical``); see the
    module docstring."""

    mu_mean: float
    mu_sd: float
    tau_scale: float


def hierarchical_prior(spec: ModelSpec) -> HierarchicalPrior:
    """The pooled form of :func:`total_share_prior` (see the module docstring).

    With the independent prior ``LogNormal(m0, s0)`` of each channel and ``s_T`` the total
    share's log-sd (``√log(1 + (total_share_sd / total_share_mean)²)``): ``mu ~ Normal(m0, s_T)``
    and the spread's scale ``√(s0² − s_T²)``, so that each channel's log quantity keeps the
    independent prior's mean ``m0`` and variance ``s0²`` (``Var mu + E tau² = s0²``). Where
    ``s0 < s_T`` (a ``roas`` prior with one dominant spender) the level takes all of ``s0``.
    """
    cfg = spec.model_config.media_prior
    independent = total_share_prior(spec)
    m0, s0 = float(independent.params["mu"]), float(independent.params["sigma"])
    s_total = float(np.sqrt(np.log1p((cfg.total_share_sd / cfg.total_share_mean) ** 2)))
    level_sd = min(s_total, s0)
    return HierarchicalPrior(mu_mean=m0, mu_sd=level_sd, tau_scale=float(np.sqrt(max(s0**2 - level_sd**2, 0.0))))


def create_quantity(spec: ModelSpec) -> Any:
    """Create the channels' quantity variable (``channel``,) in the current PyMC model: a random
    variable with :func:`quantity_prior`, or with a pooled prior the deterministic ``exp(mu + tau z)``
    of its free variables (:func:`hierarchical_prior`; ``tau`` the fixed ``tau_scale`` with
    ``pooling: level``)."""
    import pymc as pm

    name = QUANTITY_VARIABLES[spec.model_config.media_prior.type]
    if not spec.media_prior_pooled:
        return quantity_prior(spec).create(name, ("channel",))
    quantity_prior(spec)  # the same checks of the channels' names
    h = hierarchical_prior(spec)
    mu = pm.Normal(POOLING_VARIABLES["level"], mu=h.mu_mean, sigma=h.mu_sd)
    tau: Any = h.tau_scale
    if spec.model_config.media_prior.pooling == "hierarchical":
        tau = pm.HalfNormal(POOLING_VARIABLES["spread"], sigma=h.tau_scale)
    z = pm.Normal(POOLING_VARIABLES["offset"], mu=0.0, sigma=1.0, dims="channel")
    return pm.Deterministic(name, pm.math.exp(mu + tau * z), dims="channel")


def quantity_prior(spec: ModelSpec) -> Prior:
    """The channels' prior of the quantity as one vectorized prior over ``channel``."""
    cfg = spec.model_config.media_prior
    unknown = sorted(set(cfg.channels) - set(spec.channels))
    if unknown:
        raise ConfigError(
            f"model.media_prior.channels names {unknown}, which are not channels of the data; "
            f"channels: {', '.join(spec.channels)}"
        )
    missing = [c for c in spec.channels if c not in cfg.channels]
    default = cfg.default
    if missing and default is None:
        if cfg.type == "mroas":
            raise ConfigError(
                f"model.media_prior (type {cfg.type}) has no prior for {missing}: set media_prior.default or name "
                "them under media_prior.channels"
            )
        default = total_share_prior(spec)
    priors = [cfg.channels.get(c, default) for c in spec.channels]
    if len({p.dist for p in priors}) > 1:
        raise ConfigError(
            f"model.media_prior: channels without a prior get the total media share prior ({default.dist}); "
            f"every channel's prior must use the same distribution: set media_prior.default"
        )
    names = sorted({k for p in priors for k in p.params})
    params: dict[str, Any] = {}
    for name in names:
        values = [p.params.get(name) for p in priors]
        if any(v is None for v in values):
            raise ConfigError(
                f"model.media_prior: every channel's {priors[0].dist} prior needs the parameter {name!r} "
                "(give each channel the same parameters)"
            )
        params[name] = values[0] if all(np.array_equal(v, values[0]) for v in values) else [float(v) for v in values]
    return Prior(dist=priors[0].dist, **params)


def target_total(spec: ModelSpec) -> float:
    """``Y / s_y``: the target's total over the training weeks in scaled units (the ``share`` mapping's
    only data constant; it enters the graph as ``pm.Data``, so that compiled code serves other data)."""
    return float(np.sum(spec.data.target)) / float(spec.scales.target)


def coefficient(
    spec: ModelSpec, params: Mapping[str, Any], quantity: Any, reference_media: Any, total: Any | None = None
) -> Any:
    """``beta`` (channel,) that gives each channel the ``quantity`` (PyTensor; national models).

    ``params`` holds the transform variables; ``reference_media`` is the scaled training media
    (date, channel); ``total`` the scaled target total (default :func:`target_total`).
    """
    import pytensor.tensor as pt

    kind = spec.model_config.media_prior.type
    data = spec.data
    scale = float(spec.scales.target)
    unit = {**params, "beta": pt.ones_like(quantity)}
    frequency = training_frequency(spec)  # reach & frequency channels: the training frequency
    curve = media_contributions(spec, reference_media, unit, frequency=frequency)  # (date, channel)
    spend = np.asarray(data.channel_spend, dtype="float64").sum(axis=0)  # money, also for exposure channels
    weights = value_weights(spec)[:, None]  # revenue per KPI of each week (ones without one)
    if kind == "roas":
        return quantity * spend / (scale * pt.sum(curve * weights, axis=0))
    if kind == "share":
        return quantity * (target_total(spec) if total is None else total) / pt.sum(curve, axis=0)
    if kind == "mroas":
        up = media_contributions(spec, reference_media * (1.0 + MROAS_STEP), unit, frequency=frequency)
        return quantity * MROAS_STEP * spend / (scale * pt.sum((up - curve) * weights, axis=0))
    raise ValueError(f"no coefficient mapping for media prior type {kind!r}")


def posterior_coefficients(spec: ModelSpec, posterior) -> np.ndarray:
    """``beta`` per draw, ``(chain, draw, channel)``, from a posterior holding the quantity and the
    transform variables (the same :func:`coefficient` as the graph, compiled with NumPy)."""
    name = QUANTITY_VARIABLES[spec.model_config.media_prior.type]
    inputs = [name, *spec.adstock.variable_names.values(), *spec.saturation.variable_names.values()]
    inputs += [n for n in ("rf_slope", "rf_ec") if n in spec.variable_dims]
    reference = spec.training_design()["media"]
    return _per_draw(inputs, posterior, lambda core, ref: coefficient(spec, core, core[name], ref), reference)


def organic_coefficient(spec: ModelSpec, params: Mapping[str, Any], share: Any, reference_organic: Any, total=None):
    """``beta_organic`` (organic,) that gives each organic medium the contribution ``share`` of the
    target's total over the training periods (``model.organic.prior: share``; PyTensor, national models):
    ``beta_organic = share · Y / (s_y Σ_t saturation(adstock(x / s_x))_t)``, the paid ``share``
    mapping (:func:`coefficient`) with the organic block's transforms. ``reference_organic`` is the
    scaled training activity (date, organic); ``total`` the scaled target total (default
    :func:`target_total`)."""
    import pytensor.tensor as pt

    unit = {**params, "beta_organic": pt.ones_like(share)}
    curve = media_contributions(spec, reference_organic, unit, "organic")  # (date, organic)
    return share * (target_total(spec) if total is None else total) / pt.sum(curve, axis=0)


def posterior_organic_coefficients(spec: ModelSpec, posterior) -> np.ndarray:
    """``beta_organic`` per draw, ``(chain, draw, organic)``, from a posterior holding ``organic_share``
    and the organic transforms' variables (the graph's :func:`organic_coefficient`, compiled with NumPy)."""
    inputs = [
        ORGANIC_SHARE,
        *spec.organic_adstock.variable_names.values(),
        *spec.organic_saturation.variable_names.values(),
    ]
    reference = spec.training_design()["organic"]
    return _per_draw(
        inputs, posterior, lambda core, ref: organic_coefficient(spec, core, core[ORGANIC_SHARE], ref), reference
    )


def _per_draw(inputs: list[str], posterior, build, reference: np.ndarray) -> np.ndarray:
    """``build(core, reference)`` (a graph of vectors ``core[name]``) evaluated on every draw of
    ``posterior[name]`` (chain, draw, k) at once: vectorized, NumPy mode, no scan."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    core = {n: pt.vector(n, dtype="float64") for n in inputs}
    batched = {n: pt.matrix(f"{n}_draws", dtype="float64") for n in inputs}
    with convolution_graphs():  # evaluated with NumPy on every draw at once: no scan
        out_core = build(core, pt.constant(reference, dtype="float64"))
    fn = pytensor.function(
        list(batched.values()),
        vectorize_graph(out_core, {core[n]: batched[n] for n in inputs}),
        mode=numpy_mode(fast_compile=True),
    )  # fmt: skip  (called once: 0.39 s -> 0.13 s)
    arrays = [np.asarray(posterior[n]) for n in inputs]
    chains, draws = arrays[0].shape[:2]
    out = fn(*[a.reshape(chains * draws, -1).astype("float64") for a in arrays])
    return np.asarray(out).reshape(chains, draws, -1)
