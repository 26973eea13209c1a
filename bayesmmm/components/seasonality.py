"""Seasonality: registered components over features computed from the dates.

A seasonality turns dates into a feature matrix (:meth:`Seasonality.features`, NumPy: the
same for any date in training and forecasts), declares its coefficient variable(s) and
their dims, and combines features and coefficients (:meth:`Seasonality.apply`, PyTensor).
``pooled_variable`` is what ``model.geo.seasonality: pooled`` lets vary across geos
(it then arrives with a leading geo axis). The built-in ``fourier`` uses the model's
``yearly_seasonality`` order (period 365.25 days) and, for daily data, its
``weekly_seasonality`` order (day of the week, period 7 days): both sets of terms are columns
of one feature matrix with one coefficient vector ``gamma_fourier``, so geo pooling and the
variables' dims treat them alike. Order 0 means none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bayesmmm.components.base import Registry
from bayesmmm.components.features import (
    day_of_week_features,
    day_of_week_mode_names,
    fourier_features,
    fourier_mode_names,
)
from bayesmmm.components.priors import Prior

__all__ = ["SEASONALITIES", "FourierSeasonality", "Seasonality"]


class Seasonality:
    """Base class of seasonalities.

    Parameters
    ----------
    order : the model's ``yearly_seasonality`` (0: none).
    weekly_order : the model's ``weekly_seasonality`` as resolved for the data (0: none); a
        seasonality that cannot use it sets ``supports_weekly = False``.
    """

    name: ClassVar[str] = ""
    default_priors: ClassVar[Mapping[str, Prior]] = {}
    pooled_variable: ClassVar[str] = "gamma_fourier"
    feature_dim: ClassVar[str] = "fourier_mode"
    #: whether the class uses ``weekly_order`` (day-of-week terms)
    supports_weekly: ClassVar[bool] = False

    def __init__(self, order: int = 2, weekly_order: int = 0) -> None:
        if weekly_order and not self.supports_weekly:
            raise ValueError(
                f"seasonality {self.name!r} has no day-of-week terms: set model.weekly_seasonality: 0, or use "
                "seasonality: fourier"
            )
        self.order = order
        self.weekly_order = int(weekly_order)

    @property
    def active(self) -> bool:
        """Whether there is anything to fit."""
        return len(self.feature_names()) > 0

    def feature_names(self) -> list[str]:
        """Coordinates of the feature axis."""
        raise NotImplementedError

    def features(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """``(date, feature)`` matrix."""
        raise NotImplementedError

    def variables(self) -> dict[str, tuple[str, ...]]:
        """Variable name → dims."""
        return {self.pooled_variable: (self.feature_dim,)} if self.active else {}

    def coords(self) -> dict[str, list[str]]:
        return {self.feature_dim: self.feature_names()} if self.active else {}

    def n_parameters(self) -> int:
        return len(self.feature_names())

    def day_of_week_columns(self) -> slice | None:
        """The feature columns of the day-of-week terms (names ``dow_...``, contiguous), or None
        without any: what ``model.center_day_of_week`` centers the media on."""
        idx = [i for i, name in enumerate(self.feature_names()) if name.startswith("dow_")]
        if not idx:
            return None
        if idx != list(range(idx[0], idx[-1] + 1)):
            raise ValueError(f"seasonality {self.name!r}: its dow_ features must be contiguous columns")
        return slice(idx[0], idx[-1] + 1)

    def apply(self, features: Any, params: Mapping[str, Any], geo: bool) -> Any:
        """Seasonal effect (scaled target units), PyTensor: ``(date,)``, or ``(date, geo)`` / ``(date, 1)``
        for a geo panel (per-geo coefficients are ``(geo, feature)``)."""
        import pytensor.tensor as pt

        gamma = params[self.pooled_variable]
        if geo:
            per_geo = gamma.ndim == 2
            season = pt.sum((features[:, None, :] if per_geo else features) * gamma, axis=-1)
            return season if per_geo else season[:, None]
        # elementwise product + sum compiles much faster than a dot in numba
        return pt.sum(features * gamma, axis=-1)

    def __repr__(self) -> str:
        weekly = f", weekly_order={self.weekly_order}" if self.weekly_order else ""
        return f"{type(self).__name__}(order={self.order}{weekly})"


SEASONALITIES: Registry[type[Seasonality]] = Registry("seasonality", base=Seasonality)


@SEASONALITIES.register("fourier")
class FourierSeasonality(Seasonality):
    """Yearly Fourier terms, ``Σ_k γ_sin,k sin(2πk d / 365.25) + γ_cos,k cos(2πk d / 365.25)``, and
    day-of-week terms of ``weekly_order`` (the same with period 7 days; feature names ``dow_...``)."""

    supports_weekly: ClassVar[bool] = True

    def feature_names(self) -> list[str]:
        return fourier_mode_names(self.order) + day_of_week_mode_names(self.weekly_order)

    def features(self, dates: pd.DatetimeIndex) -> np.ndarray:
        yearly = fourier_features(dates, self.order)
        if not self.weekly_order:
            return yearly
        return np.concatenate([yearly, day_of_week_features(dates, self.weekly_order)], axis=1)
