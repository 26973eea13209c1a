"""Reach & frequency channels in the model's mean: pure PyTensor functions (Meridian's form).

A reach & frequency (R&F) channel ``c`` contributes (scaled units)::

    beta_c · adstock_c(reach_c,t / s_c · hill(frequency_c,t; rf_slope_c, rf_ec_c))

with the model's registered adstock (its per-channel parameters) and no saturation of its own:
the diminishing returns of an R&F channel are in frequency (each person reached responds less to
the fifth exposure than to the second), as in Meridian's ``adstock_hill_rf`` (Hill on frequency,
times reach, then adstock). ``s_c`` is the channel's media scale: its impressions (reach ×
frequency, its ``media`` column) are scaled like any channel's exposure, so
``reach / s_c = (impressions / s_c) / frequency``. The Hill curve acts on frequency in its own units
(exposures per person; Meridian's ``ec_rf``, ``slope_rf`` and their priors, ``rf_ec``/``rf_slope``
here, dims ``rf_channel``).

Everything else (ROAS and its priors, the budget, lift tests, decomposition) reads the channel's
contributions through :func:`~bayesmmm.model.mean.media_contributions` like any channel's: the
R&F columns of the media block take the path here, the other columns the usual
``saturation(adstock(x))``, chosen per column with a 0/1 mask (one adstock for all columns).

The channel's registered saturation parameters are not used by an R&F channel (they stay in
the model's ``channel`` dim at their prior, and :func:`unused_saturation` names them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmmm.data.reach import recent_frequency

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "RF_PARAMETERS",
    "frequency_factor",
    "plan_frequency",
    "rf_channel_values",
    "rf_parameters",
    "unused_saturation",
]

#: the per-channel (``channel``-length) values :func:`rf_parameters` adds to a parameter mapping
RF_PARAMETERS = ("rf_mask", "rf_slope_channel", "rf_ec_channel", "rf_plan_frequency")


def plan_frequency(spec: ModelSpec) -> np.ndarray:
    """The frequency (channel,) R&F channels are evaluated at where none is given (lift tests, new
    spend): the channel's recent average frequency (:func:`~bayesmmm.data.reach.recent_frequency`);
    1 for other channels. Computed once per spec."""
    if "rf_plan_frequency" not in spec.memo:
        data = spec.data
        out = np.ones(len(spec.channels))
        if spec.rf_channels:
            media, freq = (data.geo_media, data.geo_rf_frequency) if spec.is_geo else (data.media, data.rf_frequency)
            out = np.where(np.isin(np.arange(len(out)), spec.rf_index), recent_frequency(media, freq, data.dates), 1.0)
        out.flags.writeable = False
        spec.memo["rf_plan_frequency"] = out
    return spec.memo["rf_plan_frequency"]


def rf_parameters(spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the R&F values per CHANNEL (:data:`RF_PARAMETERS`): the 0/1 mask of R&F
    channels, ``rf_slope``/``rf_ec`` spread over the channels (1 elsewhere: unused) and
    :func:`plan_frequency`. A mapping that has them already (gathered per lift test) is returned as is."""
    import pytensor.tensor as pt

    if "rf_mask" in params:
        return dict(params)
    n = len(spec.channels)
    spread = np.zeros((len(spec.rf_channels), n))
    spread[np.arange(len(spec.rf_channels)), list(spec.rf_index)] = 1.0
    mask = spread.sum(axis=0)
    spread_t, rest = pt.constant(spread), pt.constant(1.0 - mask)
    out = dict(params)
    out["rf_mask"] = pt.constant(mask)
    for name in ("rf_slope", "rf_ec"):  # (…, rf_channel) → (…, channel)
        out[f"{name}_channel"] = pt.dot(pt.as_tensor_variable(params[name]), spread_t) + rest
    out["rf_plan_frequency"] = pt.constant(plan_frequency(spec))
    return out


def rf_channel_values(spec: ModelSpec, draws: Mapping[str, np.ndarray], frequency: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`RF_PARAMETERS` per draw as NumPy arrays, each ``(sample, channel)``, with ``frequency``
    (channel,) as the plan frequency: what a graph gathered per channel (the optimizer's) takes in
    place of ``rf_slope``/``rf_ec``. Empty without R&F channels."""
    if not spec.rf_channels:
        return {}
    n = len(next(iter(draws.values())))
    channels = len(spec.channels)
    idx = list(spec.rf_index)
    out = {"rf_mask": np.zeros((n, channels))}
    out["rf_mask"][:, idx] = 1.0
    for name in ("rf_slope", "rf_ec"):
        full = np.ones((n, channels))
        full[:, idx] = np.asarray(draws[name], dtype=float)
        out[f"{name}_channel"] = full
    out["rf_plan_frequency"] = np.broadcast_to(np.asarray(frequency, dtype=float), (n, channels)).copy()
    return out


def frequency_factor(frequency: Any, slope: Any, ec: Any) -> Any:
    """``hill(f) / f``: the response per impression at frequency ``f`` (Meridian's Hill, PyTensor);
    reach × hill(f) = impressions × hill(f) / f."""
    import pytensor.tensor as pt

    f = pt.as_tensor_variable(frequency)
    return f ** (slope - 1.0) / (f**slope + ec**slope)


def rf_input(spec: ModelSpec, media_x: Any, params: Mapping[str, Any], frequency: Any = None) -> Any:
    """What the adstock carries over: ``impressions / s × hill(f) / f`` (= scaled reach × hill(f)) in the
    R&F columns of ``media_x``, ``media_x`` itself in the others (PyTensor). ``params`` must hold
    :data:`RF_PARAMETERS` (:func:`rf_parameters`); ``frequency`` broadcasts against ``media_x``
    (default: the plan frequency)."""
    import pytensor.tensor as pt

    f = params["rf_plan_frequency"] if frequency is None else pt.as_tensor_variable(frequency)
    factor = frequency_factor(f, params["rf_slope_channel"], params["rf_ec_channel"])
    mask = params["rf_mask"]
    return media_x * (mask * factor + (1.0 - mask))


def rf_output(params: Mapping[str, Any], adstocked: Any, saturated: Any) -> Any:
    """The adstocked input itself in the R&F columns (no saturation), ``saturated`` in the others."""
    import pytensor.tensor as pt

    return pt.switch(pt.eq(params["rf_mask"], 1.0), adstocked, saturated)


def unused_saturation(spec: ModelSpec) -> list[str]:
    """``variable[channel]`` of the saturation parameters an R&F channel does not use (at their prior)."""
    return [f"{name}[{c}]" for name in spec.saturation.variable_names.values() for c in spec.rf_channels]
