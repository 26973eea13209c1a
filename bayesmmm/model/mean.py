"""The model's mean as pure functions: parameters and inputs in, the mean and its components out.

Everything that needs the model's mean ``mu`` calls these (through
:class:`~bayesmmm.model.predictive.Predictive` after sampling):

- :func:`mean_components` — the scaled components as PyTensor expressions (pure);
- :func:`total` — ``mu`` from the components (PyTensor or NumPy);
- :func:`media_contributions` (:func:`adstocked_media`, :func:`saturated_media`) — the channels' part,
  also used by calibration, the business-unit media priors and the response curves;
- :func:`compile_mean`, :func:`compile_media` — the same graphs vectorized over draws and compiled
  with NumPy, once per :class:`~bayesmmm.model.spec.ModelSpec`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.components.features import time_index
from bayesmmm.model.geo import geo_parameters
from bayesmmm.model.multiplier import media_multiplier
from bayesmmm.model.reach import rf_input, rf_output, rf_parameters

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "BLOCKS",
    "COMPONENTS",
    "DESIGN_BLOCKS",
    "adstocked_media",
    "channel_contributions",
    "compile_mean",
    "compile_media",
    "compile_multiplier",
    "mean_components",
    "media_contributions",
    "national_and_geo",
    "placeholders",
    "saturated_media",
    "total",
    "training_frequency",
    "warn_past_trend_limit",
]

#: the additive components of the mean, in summation order; the last three are empty (no column) in a
#: model without organic media, treatments or events (:mod:`bayesmmm.data.roles`)
COMPONENTS = ("intercept", "trend", "seasonality", "controls", "media", "organic", "treatments", "events")
#: components with a column axis last (control, channel, organic, treatment, event), summed by :func:`total`
BLOCKS = ("controls", "media", "organic", "treatments", "events")


def total(comps: Mapping[str, Any]):
    """``mu``: the sum of the components (PyTensor tensors or NumPy arrays, same layout).

    The blocks (:data:`BLOCKS`) carry their column axis last; it is summed. A block missing from
    ``comps`` counts as zero (components computed before organic media, treatments and events existed).
    """
    out = comps["intercept"] + comps["trend"] + comps["seasonality"]
    for name in BLOCKS:
        if name in comps:
            out = out + comps[name].sum(axis=-1)
    return out


def _with_rf(spec: ModelSpec, params: Mapping[str, Any], block: str) -> bool:
    return block == "media" and bool(spec.rf_channels)


def adstocked_media(
    spec: ModelSpec, media_x: Any, params: Mapping[str, Any], block: str = "media", frequency: Any = None
) -> Any:
    """Scaled spend (or organic activity, ``block="organic"``) carried over by the block's adstock
    (PyTensor; same shape as ``media_x``). Reach & frequency channels carry over scaled reach ×
    hill(frequency) (:func:`~bayesmmm.model.reach.rf_input`; ``frequency`` broadcasts against
    ``media_x``, default: the plan frequency); ignored without them."""
    adstock, _saturation, _beta = spec.transforms(block)
    if _with_rf(spec, params, block):
        params = rf_parameters(spec, params)
        media_x = rf_input(spec, media_x, params, frequency)
    ad = {p: params[v] for p, v in adstock.variable_names.items()}
    return adstock.apply(media_x, **ad)


def saturated_media(spec: ModelSpec, adstocked: Any, params: Mapping[str, Any], block: str = "media") -> Any:
    """``saturation(adstocked) × beta``: the scaled contributions of already adstocked spend (PyTensor);
    ``block="organic"``: the organic media's saturation and ``beta_organic``. Reach & frequency
    channels are not saturated (``adstocked × beta``: :mod:`bayesmmm.model.reach`)."""
    _adstock, saturation, beta = spec.transforms(block)
    sat = {p: params[v] for p, v in saturation.variable_names.items()}
    saturated = saturation.apply(adstocked, **sat)
    if _with_rf(spec, params, block):
        saturated = rf_output(rf_parameters(spec, params), adstocked, saturated)
    return saturated * params[beta]


def media_contributions(
    spec: ModelSpec, media_x: Any, params: Mapping[str, Any], block: str = "media", frequency: Any = None
) -> Any:
    """Scaled media contributions ``saturation(adstock(media)) × beta`` (PyTensor).

    ``media_x`` is scaled spend with the date axis first; ``params`` maps the model's
    variable names (``beta``, ``adstock_*``, ``saturation_*``) to tensors broadcasting
    against ``media_x.shape[1:]``. ``block="organic"``: the organic media (scaled activity) with
    their own transforms and variables (``beta_organic``, ``*_organic``).

    Reach & frequency channels (:mod:`bayesmmm.model.reach`): their ``media_x`` columns are scaled
    impressions, and they contribute ``beta × adstock(scaled reach × hill(frequency))``;
    ``frequency`` (original units, broadcasting against ``media_x``) defaults to the plan frequency
    (:func:`~bayesmmm.model.reach.plan_frequency`).
    """
    return saturated_media(spec, adstocked_media(spec, media_x, params, block, frequency), params, block)


def training_frequency(spec: ModelSpec) -> Any:
    """The training rows' frequency (date, [geo,] channel) as a PyTensor constant (ones without R&F channels)."""
    import pytensor.tensor as pt

    return pt.constant(spec.training_design()["frequency"], dtype="float64")


def channel_contributions(
    spec: ModelSpec,
    media_x: Any,
    t: Any,
    params: Mapping[str, Any],
    reference_media: Any = None,
    frequency: Any = None,
) -> Any:
    """The channels' contributions in the mean: :func:`media_contributions` times the time-varying
    multiplier ``m_c(t)`` of ``model.time_varying_media`` (:mod:`bayesmmm.model.multiplier`; the same
    without one), PyTensor. ``params`` per geo for a panel (:func:`~bayesmmm.model.geo.geo_parameters`).

    ``reference_media``: the scaled TRAINING media over which the multiplier is centred; None: the rows
    given ARE the training rows (the sampling graph). Any other rows pass it (forecasts, counterfactuals).
    ``frequency``: the reach & frequency channels' frequency on these rows (:func:`media_contributions`).
    """
    contributions = media_contributions(spec, media_x, params, frequency=frequency)
    if spec.varying is None:
        return contributions
    import pytensor.tensor as pt

    if reference_media is None:
        reference, reference_t = contributions, t
    else:
        reference = media_contributions(
            spec, pt.as_tensor_variable(reference_media), params, frequency=training_frequency(spec)
        )
        reference_t = pt.constant(spec.training_design()["t"], dtype="float64")
    return contributions * media_multiplier(spec, params, t, reference_t, reference)


def media_total(
    spec: ModelSpec,
    params: Mapping[str, Any],
    reference_media: Any,
    reference_organic: Any = None,
    resolved: bool = False,
) -> Any:
    """``Σ_c contribution_c`` per row of ``reference_media`` (scaled units, PyTensor), plus the organic
    media's over ``reference_organic`` (default: the training organic activity); ``(date,)`` or
    ``(date, geo)``: what :func:`media_mean` and :func:`media_weekly_profile` reduce. ``resolved``: the
    ``params`` of a geo panel are already per geo (:func:`~bayesmmm.model.geo.geo_parameters`)."""
    import pytensor.tensor as pt

    if spec.is_geo and not resolved:
        params = geo_parameters(spec, params)
    reference_t = pt.constant(spec.training_design()["t"], dtype="float64")
    media = channel_contributions(spec, reference_media, reference_t, params, frequency=training_frequency(spec))
    out = pt.sum(media, axis=-1)
    if spec.organic:
        if reference_organic is None:
            reference_organic = pt.constant(spec.training_design()["organic"], dtype="float64")
        organic = media_contributions(spec, pt.as_tensor_variable(reference_organic), params, "organic")
        out = out + pt.sum(organic, axis=-1)
    return out


def media_mean(spec: ModelSpec, params: Mapping[str, Any], reference_media: Any, reference_organic: Any = None) -> Any:
    """``Σ_c mean_t contribution_c`` over ``reference_media`` (scaled units, PyTensor), plus the same
    over the organic media's ``reference_organic`` (default: the training organic activity): what the
    intercept is centered by when ``center_media`` is on; ``()`` or ``(geo,)``."""
    import pytensor.tensor as pt

    return pt.mean(media_total(spec, params, reference_media, reference_organic), axis=0)


def day_of_week_projection(spec: ModelSpec) -> np.ndarray | None:
    """``pinv(F_w)``, ``(dow_mode, date)``, of the training rows' day-of-week features ``F_w``, when the model
    centers the media on them (``center_media`` and ``center_day_of_week`` on, day-of-week terms present);
    else None. Computed once per spec."""
    cfg = spec.model_config
    if not (cfg.center_media and cfg.center_day_of_week and spec.seasonality.active):
        return None
    columns = spec.seasonality.day_of_week_columns()
    if columns is None:
        return None
    if "day_of_week_projection" not in spec.memo:
        features = np.asarray(spec.training_design()["fourier"], dtype=float)[:, columns]
        projection = np.linalg.pinv(features)
        projection.flags.writeable = False
        spec.memo["day_of_week_projection"] = projection
    return spec.memo["day_of_week_projection"]


def weekly_profile_of(spec: ModelSpec, totals: Any) -> Any:
    """The day-of-week coefficients of ``totals`` (:func:`media_total` of the training rows) by least squares on
    the training day-of-week features, ``(dow_mode,)`` (for a geo panel: the mean over geos, so that one shift of
    every geo's coefficients absorbs it, pooled or shared); None when the model does not center on them."""
    import pytensor.tensor as pt

    projection = day_of_week_projection(spec)
    if projection is None:
        return None
    coef = pt.dot(pt.constant(projection, dtype="float64"), totals)  # (dow_mode,) or (dow_mode, geo)
    return pt.mean(coef, axis=-1) if spec.is_geo else coef


def media_weekly_profile(
    spec: ModelSpec, params: Mapping[str, Any], reference_media: Any, reference_organic: Any = None
) -> Any:
    """The media's mean day-of-week profile over the training rows (``model.center_day_of_week``), PyTensor
    ``(dow_mode,)``: the least-squares day-of-week coefficients of :func:`media_total` over ``reference_media``
    (the training media), which the day-of-week terms are centered by. None when the model does not center
    on them."""
    if day_of_week_projection(spec) is None:
        return None
    return weekly_profile_of(spec, media_total(spec, params, reference_media, reference_organic))


def mean_components(
    spec: ModelSpec,
    params: Mapping[str, Any],
    design: Mapping[str, Any],
    reference_media: Any = None,
    centering: Any = None,
    weekly_centering: Any = None,
) -> dict[str, Any]:
    """Scaled mean components as PyTensor expressions (pure: no model context).

    Parameters
    ----------
    spec : the model whose structure (transforms, trend, seasonality, geo pooling) applies.
    params : variable name → tensor (random variables or placeholders).
    design : ``media`` (date, channel), ``controls`` (date, control), ``t`` (date,),
        ``fourier`` (date, fourier_mode) tensors or arrays, and (:meth:`ModelSpec.design`) ``organic``,
        ``treatments``, ``events`` (date, ·); for a geo panel media, controls and these have a
        geo axis, ``(date, geo, channel|control|...)``.
    reference_media : the scaled TRAINING media, over which the media contributions
        are centered when ``center_media`` is on (default: ``design["media"]``, i.e.
        the design is the training data). Forecasts and counterfactuals pass the
        training media here so that the intercept does not move with their inputs.
    centering : :func:`media_mean` over the training media, if already computed (it depends on
        the parameters only: a forecaster evaluating many designs with the same draws
        computes it once).
    weekly_centering : :func:`media_weekly_profile`, likewise (with ``centering``; only for a model that
        centers its day-of-week terms: ``center_day_of_week``).

    Returns
    -------
    dict with ``intercept`` (date,), ``trend`` (date,), ``seasonality`` (date,),
    ``controls`` (date, control), ``media`` (date, channel), ``organic`` (date, organic),
    ``treatments`` (date, treatment) and ``events`` (date, event); for a geo panel each has a
    geo axis after ``date``.
    """
    import pytensor.tensor as pt

    t = pt.as_tensor_variable(design["t"])
    media_x = pt.as_tensor_variable(design["media"])
    if spec.is_geo:  # per-date terms gain a geo axis; pooled parameters become per geo
        params = geo_parameters(spec, params)
        zeros = pt.zeros((t.shape[0], media_x.shape[1]), dtype=t.dtype)
    else:
        zeros = pt.zeros_like(t)
    out: dict[str, Any] = {"intercept": zeros + params["intercept"]}
    trend = spec.trend.apply(t, params, spec.is_geo)
    out["trend"] = trend + zeros if spec.is_geo else trend
    if spec.seasonality.active:
        season = spec.seasonality.apply(pt.as_tensor_variable(design["fourier"]), params, spec.is_geo)
        out["seasonality"] = season + zeros if spec.is_geo else season
    else:
        out["seasonality"] = zeros
    if spec.controls:
        out["controls"] = pt.as_tensor_variable(design["controls"]) * params["gamma_control"]
    elif spec.is_geo:
        out["controls"] = pt.zeros((t.shape[0], media_x.shape[1], 0), dtype=t.dtype)
    else:  # shaped from t, never from the data: a compiled model must serve any number of weeks
        out["controls"] = pt.zeros((t.shape[0], 0), dtype=t.dtype)
    out["media"] = channel_contributions(spec, media_x, t, params, reference_media, frequency=design.get("frequency"))
    empty = pt.zeros((t.shape[0], media_x.shape[1], 0) if spec.is_geo else (t.shape[0], 0), dtype=t.dtype)
    if spec.organic:  # shared parameters: (organic,) broadcasts over (date, [geo,] organic)
        out["organic"] = media_contributions(spec, pt.as_tensor_variable(design["organic"]), params, "organic")
    else:
        out["organic"] = empty
    for name, variable, columns in (
        ("treatments", "gamma_treatment", spec.treatments),
        ("events", "gamma_event", spec.events),
    ):
        out[name] = pt.as_tensor_variable(design[name]) * params[variable] if columns else empty
    if spec.model_config.center_media:
        weekly = day_of_week_projection(spec) is not None
        if centering is None:
            if reference_media is None:  # the design is the training data
                totals = pt.sum(out["media"], axis=-1)
                if spec.organic:  # always-on organic media trade off with the intercept as paid media do
                    totals = totals + pt.sum(out["organic"], axis=-1)
            else:  # not the training design: center on the training media and organic activity
                totals = media_total(spec, params, pt.as_tensor_variable(reference_media), resolved=True)
            centering = pt.mean(totals, axis=0)
            weekly_centering = weekly_profile_of(spec, totals) if weekly else None
        if weekly:  # the day-of-week terms absorb the media's mean weekday profile (exact reparameterization)
            columns = spec.seasonality.day_of_week_columns()
            shift = pt.sum(pt.as_tensor_variable(design["fourier"])[:, columns] * weekly_centering, axis=-1)
            out["seasonality"] = out["seasonality"] - (shift[:, None] if spec.is_geo else shift)
        out["intercept"] = out["intercept"] - centering
    return out


def national_and_geo(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reduce a batch of geo components ``(sample, date, geo, ·)`` to national sums plus
    ``mu_geo`` (sample, date, geo), ``media_geo`` (sample, geo, channel; summed over dates) and
    ``organic_geo`` (sample, geo, organic; likewise)."""
    out = {k: batch[k].sum(axis=2) for k in COMPONENTS if k in batch}
    out["mu"] = total(out)
    out["mu_geo"] = total(batch)
    out["media_geo"] = batch["media"].sum(axis=1)
    if "organic" in batch:
        out["organic_geo"] = batch["organic"].sum(axis=1)
    return out


def warn_past_trend_limit(spec: ModelSpec, dates: pd.DatetimeIndex) -> None:
    """Warn when ``dates`` reach past the trend's :meth:`~bayesmmm.components.trend.Trend.forecast_limit`."""
    limit = spec.trend.forecast_limit()
    scales = spec.scales
    if limit is None or not len(dates):
        return
    start = pd.Timestamp(scales.start)
    t_last = float(time_index(dates[-1:], start, scales.span_days)[0])  # the model's own t
    if t_last > limit:
        last_ok = start + pd.Timedelta(days=limit * max(scales.span_days, 1.0))
        warnings.warn(
            f"the forecast reaches {dates[-1].date()} (t = {t_last:.2f} training spans), past {last_ok.date()} "
            f"(t = {limit:.2f}), where the {spec.model_config.trend} trend's approximation stops widening its "
            f"intervals and narrows them toward its boundary instead: {spec.trend.forecast_fix(t_last)}",
            UserWarning,
            stacklevel=3,
        )


def placeholders(dims: Mapping[str, tuple[str, ...]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """PyTensor inputs for each free variable: one draw (core shape) and a batch of draws (leading axis)."""
    import pytensor.tensor as pt

    core = {n: pt.tensor(n, shape=(None,) * len(d), dtype="float64") for n, d in dims.items()}
    batched = {n: pt.tensor(f"{n}_draws", shape=(None,) * (len(d) + 1), dtype="float64") for n, d in dims.items()}
    return core, batched


# ------------------------------------------------------------------ compilation
#: the design's panel inputs of a compiled mean function, in argument order (then ``t``, ``fourier``)
DESIGN_BLOCKS = ("media", "controls", "organic", "treatments", "events", "frequency")


@convolution_graphs()
def compile_mean(spec: ModelSpec, names: tuple[str, ...]) -> tuple[Callable, list[str], list[str], Callable | None]:
    """The vectorized mean function of :meth:`~bayesmmm.model.predictive.Predictive.compiled` for ``names``
    (pure: spec in, functions out)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    dims = spec.variable_dims
    panel = pt.tensor3 if spec.is_geo else pt.matrix
    design = {name: panel(name, dtype="float64") for name in DESIGN_BLOCKS}
    design["t"] = pt.vector("t", dtype="float64")
    design["fourier"] = pt.matrix("fourier", dtype="float64")
    core, batched = placeholders(dims)
    centering = weekly = center_fn = None
    inputs = [*design.values(), *batched.values()]
    replace = {core[n]: batched[n] for n in dims}
    if spec.model_config.center_media:  # center on the TRAINING media, whatever the design
        reference = pt.constant(spec.training_design()["media"], dtype="float64")
        # one packed vector per draw: the intercept's shift (() or (geo,)), then any day-of-week profile
        n_shift = len(spec.geos) if spec.is_geo else 1
        packed = pt.vector("centering", dtype="float64")
        batched_packed = pt.matrix("centering_draws", dtype="float64")
        inputs.append(batched_packed)
        replace[packed] = batched_packed
        centering = packed[:n_shift] if spec.is_geo else packed[0]
        totals = media_total(spec, core, reference)
        parts = [pt.atleast_1d(pt.mean(totals, axis=0))]
        if day_of_week_projection(spec) is not None:
            weekly = packed[n_shift:]
            parts.append(weekly_profile_of(spec, totals))
        # a function of the draws alone: computed once per set of draws, not per design
        shift = vectorize_graph(pt.concatenate(parts), {core[n]: batched[n] for n in dims})
        center_fn = pytensor.function(list(batched.values()), shift, mode=numpy_mode(), on_unused_input="ignore")
    # the time-varying multiplier is centred over the TRAINING rows, whatever the design
    training = pt.constant(spec.training_design()["media"], dtype="float64") if spec.varying is not None else None
    comps = mean_components(spec, core, design, reference_media=training, centering=centering, weekly_centering=weekly)
    outs = vectorize_graph([comps[k] for k in names], replace)
    fn = pytensor.function(inputs, outs, mode=numpy_mode(), on_unused_input="ignore")
    return fn, list(dims), list(names), center_fn


@convolution_graphs()
def compile_media(spec: ModelSpec, block: str = "media") -> tuple[Callable, Callable, list[str]]:
    """``adstock(media, *draws)`` → (sample, date, [geo,] channel) and ``saturate(adstocked, weights,
    multiplier, *draws)`` → (sample, [geo,] channel), the contributions weighted by ``weights`` (date, [geo])
    and by the time-varying ``multiplier`` (sample, date, [1,] channel: :func:`compile_multiplier` of the
    training dates; ones without ``model.time_varying_media``) and summed over dates
    (:meth:`~bayesmmm.model.predictive.Predictive.media_totals`).

    ``block="organic"``: the same for the organic media (scaled activity, their own transforms; no
    multiplier applies to them, so ``multiplier`` is ignored)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    dims = spec.variable_dims
    panel = pt.tensor3 if spec.is_geo else pt.matrix
    media, carried = panel("media", dtype="float64"), panel("adstocked", dtype="float64")
    core, batched = placeholders(dims)
    carried_draws = pt.tensor("adstocked_draws", shape=(None,) * (carried.ndim + 1), dtype="float64")
    # (sample, date, [1,] channel): broadcast over geos (a static 1, PyTensor broadcasts no others)
    multiplier = pt.tensor(
        "multiplier_draws", shape=(None, None, 1, None) if spec.is_geo else (None,) * 3, dtype="float64"
    )
    params = geo_parameters(spec, core) if spec.is_geo else core
    replace = {core[n]: batched[n] for n in dims}
    adstocked = vectorize_graph(
        adstocked_media(spec, media, params, block, frequency=training_frequency(spec)), replace
    )
    weights = (pt.matrix if spec.is_geo else pt.vector)("weights", dtype="float64")  # (date, [geo])
    contributions = saturated_media(spec, carried, params, block) * weights[..., None]  # (date, [geo,] channel)
    if spec.varying is None or block != "media":
        totals = vectorize_graph(pt.sum(contributions, axis=0), {**replace, carried: carried_draws})
    else:  # each period's contribution times its multiplier (sample, date, [1,] channel), then summed
        contributions = vectorize_graph(contributions, {**replace, carried: carried_draws})
        totals = pt.sum(contributions * multiplier, axis=1)
    mode = numpy_mode()
    adstock_fn = pytensor.function([media, *batched.values()], adstocked, mode=mode, on_unused_input="ignore")
    saturate_fn = pytensor.function(
        [carried_draws, weights, multiplier, *batched.values()], totals, mode=mode, on_unused_input="ignore"
    )
    return adstock_fn, saturate_fn, list(dims)


def compile_multiplier(spec: ModelSpec) -> tuple[Callable, list[str]]:
    """``fn(t, *draws)`` → the time-varying multiplier ``m_c(t)`` per draw, (sample, date, channel) (ones for
    constant channels), centred over the training rows (:mod:`bayesmmm.model.multiplier`); and the variable
    order. Only for a model with ``model.time_varying_media``."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    dims = spec.variable_dims
    core, batched = placeholders(dims)
    params = geo_parameters(spec, core) if spec.is_geo else core
    t = pt.vector("t", dtype="float64")
    training = spec.training_design()
    reference = media_contributions(
        spec, pt.constant(training["media"], dtype="float64"), params, frequency=training_frequency(spec)
    )
    multiplier = media_multiplier(spec, params, t, pt.constant(training["t"], dtype="float64"), reference)
    if spec.is_geo:
        multiplier = multiplier[:, 0, :]
    out = vectorize_graph(multiplier, {core[n]: batched[n] for n in dims})
    fn = pytensor.function([t, *batched.values()], out, mode=numpy_mode(), on_unused_input="ignore")
    return fn, list(dims)
