"""The time-varying media multiplier of the mean (``model.time_varying_media``), as pure functions.

A chosen channel's contribution is ``m_c(t) · beta_c · saturation(adstock(x_c))_t``, with the
curve ``f_c(t)`` of a registered multiplier component (:mod:`bayesmmm.components.multiplier`) and

.. math::

    m_c(t) = \\frac{\\exp f_c(t)}{w_c}, \\qquad
    w_c = \\frac{\\sum_{s} \\exp f_c(s)\\, q_{s,c}}{\\sum_{s} q_{s,c}},

the sums over the TRAINING dates ``s`` and ``q_{s,c}`` the channel's constant-effect contribution
there (``beta · saturation(adstock(x))``, scaled units, summed over the geos of a panel; valued
by the revenue per KPI for a ``roas`` / ``mroas`` prior on revenue data). This is the centring:
the multiplier averages exactly 1 over the training dates, *weighted by the contribution*, so

- the channel's total training contribution is ``beta · Σ_s saturation(adstock(x))_s``, exactly
  the constant model's: ``beta`` keeps its meaning (the average effect), and so do the ROAS and
  contribution-share priors (``model.media_prior``), whose mappings to ``beta`` are unchanged and
  exact (the ``mroas`` mapping is the constant curve's marginal return: approximate when the
  multiplier moves a lot);
- the intercept's centring (``center_media``) and the ``roas.csv`` totals are unchanged in form.

An unweighted centring (``mean_t log m = 0``, or ``mean_t m = 1``) would not do this: a channel
whose spend is concentrated where ``m`` is high would have a total contribution, and so a ROAS,
different from what its prior says. ``w_c`` depends on the draw (through ``f`` and the transform
parameters) and is always computed from the training dates and media, also when the mean is
evaluated on other dates (forecasts, counterfactuals): like the intercept's centring, it never
moves with new inputs. Constant channels have ``m = 1``. Geo panels: one curve per channel shared
by every geo (each geo's contributions scaled by the same ``m_c(t)``), centred over dates and geos
in scaled units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmmm.model.value import value_weights

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = ["centring_weights", "media_multiplier", "selection"]


def selection(spec: ModelSpec) -> np.ndarray:
    """``(varying_channel, channel)`` one-hot: which channel each curve multiplies."""
    varying = spec.varying
    out = np.zeros((len(varying.channels), len(spec.channels)))
    for k, name in enumerate(varying.channels):
        out[k, spec.channels.index(name)] = 1.0
    return out


def centring_weights(spec: ModelSpec) -> np.ndarray | None:
    """The value weights of the centring, ``(date,)`` (geo: ``(date, geo)``), or None (plain contributions):
    the revenue per KPI where the channels' prior is a ``roas`` or ``mroas`` on revenue data."""
    if spec.model_config.media_prior.type in ("roas", "mroas") and spec.data.has_revenue:
        return value_weights(spec)
    return None


def media_multiplier(spec: ModelSpec, params: Any, t: Any, reference_t: Any, reference_contributions: Any) -> Any:
    """``m_c(t)`` for every channel (ones for constant channels), PyTensor ``(date, channel)``
    (``(date, 1, channel)`` for a geo panel, to broadcast over geos).

    Parameters
    ----------
    spec : the model (``spec.varying`` the bound multiplier component, not None).
    params : variable name → tensor (the component's ``tvm_*`` variables).
    t : scaled time of the rows evaluated.
    reference_t, reference_contributions : scaled time and constant-effect contributions
        ``(date, [geo,] channel)`` of the TRAINING rows, over which the multiplier is centred.
    """
    import pytensor.tensor as pt

    varying = spec.varying
    pick = selection(spec)  # (k, channel)
    curve = varying.log_curve(pt.as_tensor_variable(t), params)  # (date, k)
    reference_curve = varying.log_curve(pt.as_tensor_variable(reference_t), params)  # (date_ref, k)
    q = pt.as_tensor_variable(reference_contributions)
    q = pt.sum(q[..., None, :] * pick, axis=-1)  # (date_ref, [geo,] k): elementwise, vectorizes over draws
    weights = centring_weights(spec)
    if weights is not None:
        q = q * (weights[..., None] if spec.is_geo else weights[:, None])
    if spec.is_geo:
        q = pt.sum(q, axis=1)
    q = q + 1e-12  # a channel that never spent: the plain mean of exp f
    log_w = pt.log(pt.sum(pt.exp(reference_curve) * q, axis=0)) - pt.log(pt.sum(q, axis=0))  # (k,)
    log_m = curve - log_w[None, :]  # (date, k)
    full = pt.exp(pt.sum(log_m[:, :, None] * pick[None, :, :], axis=1))  # (date, channel)
    return full[:, None, :] if spec.is_geo else full
