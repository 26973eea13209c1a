"""Scaling constants fixed at training time: the model works on scaled data, reports in original units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmmm.data.loading import DataError, MMMData, spend_scale

__all__ = ["Scales"]


@dataclass(frozen=True)
class Scales:
    """Scaling constants fixed at training time (original units = scaled × scale)."""

    target: float | tuple[float, ...]  # (geo,) for a geo panel
    media: tuple[float, ...] | tuple[tuple[float, ...], ...]  # (channel,) or (geo, channel)
    controls: tuple[float, ...]
    start: str
    span_days: float
    #: organic media: like media, ``(organic,)`` or ``(geo, organic)`` (:mod:`bayesmmm.data.roles`)
    organic: tuple[float, ...] | tuple[tuple[float, ...], ...] = ()
    #: treatments: ``max |x − baseline|`` over the training rows (and geos), ``(treatment,)``
    treatments: tuple[float, ...] = ()

    @classmethod
    def from_data(cls, data: MMMData, target_name: str = "target") -> Scales:
        """Scales of national data, or per-geo scales of a panel (:meth:`from_panel`)."""
        if data.is_panel:
            return cls.from_panel(data, target_name)
        target = float(np.mean(np.abs(data.target)))
        if not np.isfinite(target) or target <= 0:
            raise DataError(
                f"the target column {target_name!r} is zero in every week; nothing to model: "
                "check data.target_column and the file"
            )
        if np.ptp(data.target) == 0:
            raise DataError(
                f"the target column {target_name!r} is constant ({data.target[0]:g} every week); nothing to "
                "explain: check data.target_column and the file"
            )
        media = spend_scale(data.media)
        for name, value in zip(data.channels, media, strict=True):
            if value <= 0:
                raise DataError(
                    f"channel {name!r} has zero spend in every week; drop it from data.channel_columns / data.channels"
                )
        controls = np.abs(data.controls).max(axis=0) if data.controls.shape[1] else np.zeros(0)
        for name, value, col in zip(data.control_names, controls, data.controls.T, strict=True):
            if value <= 0 or np.ptp(col) == 0:
                raise DataError(
                    f"control {name!r} does not vary ({col[0]:g} every week): it cannot be told apart from the "
                    "intercept; drop it from control_columns"
                )
        span = float((data.dates[-1] - data.dates[0]).days)
        organic = spend_scale(data.organic)
        for name, value in zip(data.organic_names, organic, strict=True):
            if value <= 0:
                raise DataError(f"organic column {name!r} is zero in every week; drop it from organic_columns")
        return cls(
            target=target,
            media=tuple(float(v) for v in media),
            controls=tuple(float(v) for v in controls),
            start=str(data.dates[0].date()),
            span_days=span,
            organic=tuple(float(v) for v in organic),
            treatments=treatment_scales(data, data.treatments),
        )

    @classmethod
    def from_panel(cls, data: MMMData, target_name: str = "target") -> Scales:
        """Per-geo scales of a geo panel: ``target`` is ``(geo,)``, ``media`` ``(geo, channel)``.

        Without population, a geo's target scale is its mean absolute target and a
        channel's scale its mean active-week spend in that geo (a geo that never spends on
        a channel gets the mean of the other geos' scales). With ``population`` the
        scales are per capita, shared by all geos, times the geo's population: target
        ``pop_g · mean(|y| / pop)``, media ``pop_g · spend_scale(x / pop)`` over all weeks
        and geos — so geos with more spend per head are further along the saturation curve.
        Controls are scaled by their maximum absolute value over the panel.
        """
        y, x, z = data.geo_target, data.geo_media, data.geo_controls
        n_dates, n_geos, n_ch = x.shape
        for g, geo in enumerate(data.geos):
            if not np.mean(np.abs(y[:, g])) > 0 or np.ptp(y[:, g]) == 0:
                raise DataError(
                    f"geo {geo!r}: the target column {target_name!r} is constant ({y[0, g]:g} every week); "
                    "nothing to explain: drop the geo or check data.target_column"
                )
        if data.population is not None:
            pop = np.asarray(data.population, dtype=float)
            target = pop * float(np.mean(np.abs(y) / pop))
            media = pop[:, None] * spend_scale((x / pop[None, :, None]).reshape(n_dates * n_geos, n_ch))[None, :]
        else:
            target = np.mean(np.abs(y), axis=0)
            media = np.stack([spend_scale(x[:, g, :]) for g in range(n_geos)])  # (geo, channel)
        for c, name in enumerate(data.channels):
            col = media[:, c]
            if not (col > 0).any():
                raise DataError(
                    f"channel {name!r} has zero spend in every week and geo; drop it from data.channel_columns "
                    "/ data.channels"
                )
            media[col <= 0, c] = col[col > 0].mean()
        flat = z.reshape(n_dates * n_geos, z.shape[-1])
        controls = np.abs(flat).max(axis=0) if flat.shape[1] else np.zeros(0)
        for name, value, col in zip(data.control_names, controls, flat.T, strict=True):
            if value <= 0 or np.ptp(col) == 0:
                raise DataError(
                    f"control {name!r} does not vary ({col[0]:g} in every week and geo): it cannot be told apart "
                    "from the intercepts; drop it from control_columns"
                )
        org = data.geo_organic
        organic = (
            np.stack([spend_scale(org[:, g, :]) for g in range(n_geos)]) if org.shape[-1] else np.zeros((n_geos, 0))
        )
        for c, name in enumerate(data.organic_names):  # like media: a geo without any gets the others' mean
            col = organic[:, c]
            if not (col > 0).any():
                raise DataError(f"organic column {name!r} is zero in every week and geo; drop it from organic_columns")
            organic[col <= 0, c] = col[col > 0].mean()
        return cls(
            target=tuple(float(v) for v in target),
            media=tuple(tuple(float(v) for v in row) for row in media),
            controls=tuple(float(v) for v in controls),
            start=str(data.dates[0].date()),
            span_days=float((data.dates[-1] - data.dates[0]).days),
            organic=tuple(tuple(float(v) for v in row) for row in organic),
            treatments=treatment_scales(data, data.geo_treatments.reshape(n_dates * n_geos, -1)),
        )


def treatment_scales(data: MMMData, values: np.ndarray) -> tuple[float, ...]:
    """``max |x − baseline|`` of each treatment over ``values`` (rows, treatment); a treatment that never
    leaves its baseline is refused (nothing to measure its effect on)."""
    out = []
    for c, name in enumerate(data.treatment_names):
        base = data.encoding.baselines[name]
        value = float(np.max(np.abs(values[:, c] - base))) if len(values) else 0.0
        if value <= 0 or np.ptp(values[:, c]) == 0:
            raise DataError(
                f"treatment {name!r} does not vary (it is {values[0, c]:g} in every row): its effect cannot be "
                "told apart from the intercept; drop it from treatment_columns"
            )
        out.append(value)
    return tuple(out)
