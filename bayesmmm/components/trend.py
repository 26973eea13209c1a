"""Trends: registered components, a function of scaled time ``t`` (0 at the first training week,
1 at the last), like the transforms.

A trend declares its variables (name → dims) in :meth:`Trend.variables`, default priors for
any that ``model.priors`` does not name, extra coordinates (:meth:`Trend.coords`) and the
PyTensor expression (:meth:`Trend.apply`). ``pooled_variable`` names the variable that
``model.geo.trend: pooled`` lets vary across geos (it then arrives per geo, shape ``(geo,)``).
A trend with settings declares them as a pydantic model in ``options_model``; the YAML's
``model.trend_options`` is validated against it (:meth:`Trend.check_options`) and passed to
the constructor as keywords. The flexible baselines ``hsgp`` and ``spline`` live in
:mod:`bayesmmm.components.baseline`.

Add one in a few lines::

    @TRENDS.register("quadratic")
    class QuadraticTrend(Trend):
        default_priors = {"trend_curvature": Prior(dist="Normal", mu=0, sigma=0.5)}

        def variables(self):
            return {"trend_slope": (), "trend_curvature": ()}

        def apply(self, t, params, geo):
            return params["trend_slope"] * (t[:, None] if geo else t) + params["trend_curvature"] * (
                t**2 if not geo else (t**2)[:, None]
            )
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from bayesmmm.components.base import Registry, check_settings
from bayesmmm.components.features import changepoint_locations
from bayesmmm.components.priors import Prior

__all__ = ["TRENDS", "LinearTrend", "NoTrend", "PiecewiseTrend", "Trend"]


class Trend:
    """Base class of trends.

    Parameters
    ----------
    n_changepoints : the model's ``n_changepoints`` (used by trends with changepoints).
    """

    name: ClassVar[str] = ""
    default_priors: ClassVar[Mapping[str, Prior]] = {}
    pooled_variable: ClassVar[str | None] = "trend_slope"
    #: the settings ``model.trend_options`` may give (None: the trend takes none)
    options_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, n_changepoints: int = 4) -> None:
        self.n_changepoints = n_changepoints

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``model.trend_options`` against :attr:`options_model`.

        Returns
        -------
        The settings with their defaults filled in (keywords for the constructor).

        Raises
        ------
        ValueError
            One line naming the trend, the bad key or value, and the valid settings.
        """
        return check_settings(options, cls.options_model, key="trend_options", owner=f"trend {cls.name!r}")

    def variables(self) -> dict[str, tuple[str, ...]]:
        """Variable name → dims (``()`` for a scalar)."""
        return {}

    def forecast_limit(self) -> float | None:
        """The latest ``t`` (training spans from the first training date) to which this trend's
        forecast is trustworthy, or None (no limit). Forecasts past it warn (:meth:`MMM.predict`)."""
        return None

    def forecast_fix(self, t_last: float) -> str:
        """What a user can do when a forecast reaches ``t_last`` past :meth:`forecast_limit`."""
        return "forecast fewer weeks"

    def coords(self) -> dict[str, list[str]]:
        """Coordinates of the dims the variables add (e.g. ``changepoint``)."""
        return {}

    def n_parameters(self) -> int:
        """Scalar parameters (for the fewest-weeks check)."""
        sizes = {dim: len(values) for dim, values in self.coords().items()}
        return sum(int(np.prod([sizes[d] for d in dims])) for dims in self.variables().values())

    def apply(self, t: Any, params: Mapping[str, Any], geo: bool) -> Any:
        """The trend (scaled target units), PyTensor: ``(date,)``, or for a geo panel
        anything broadcasting to ``(date, geo)`` (a per-geo ``pooled_variable`` is ``(geo,)``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


TRENDS: Registry[type[Trend]] = Registry("trend", base=Trend)


@TRENDS.register("none")
class NoTrend(Trend):
    """No trend (the level is the intercept's)."""

    pooled_variable = None

    def apply(self, t, params, geo):
        import pytensor.tensor as pt

        return pt.zeros_like(t)[:, None] if geo else pt.zeros_like(t)


@TRENDS.register("linear")
class LinearTrend(Trend):
    """``trend_slope · t``."""

    def variables(self):
        return {"trend_slope": ()}

    def apply(self, t, params, geo):
        return params["trend_slope"] * (t[:, None] if geo else t)


@TRENDS.register("piecewise")
class PiecewiseTrend(Trend):
    """Linear with slope changes ``trend_delta`` at ``n_changepoints`` points evenly spaced over
    the first 90% of the training span (Prophet-style hinges)."""

    def variables(self):
        return {"trend_slope": (), "trend_delta": ("changepoint",)}

    def coords(self):
        return {"changepoint": [f"cp_{i}" for i in range(self.n_changepoints)]}

    def apply(self, t, params, geo):
        import pytensor.tensor as pt

        trend = params["trend_slope"] * (t[:, None] if geo else t)
        cps = changepoint_locations(self.n_changepoints)
        hinge = pt.maximum(t[:, None] - cps[None, :], 0.0)
        piece = pt.sum(hinge * params["trend_delta"], axis=-1)
        return trend + (piece[:, None] if geo else piece)
