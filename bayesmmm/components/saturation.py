"""Saturation (diminishing returns) transforms.

Each is a pure PyTensor function of the adstocked, scaled spend ``x`` (spend divided
by the channel's mean spend over active training weeks) and per-channel parameters broadcasting against
``x.shape[1:]``. All map 0 to 0, increase, and are bounded by 1, so the channel
coefficient ``beta`` is the maximum weekly effect (in scaled target units).
"""

from __future__ import annotations

from typing import ClassVar

import pytensor.tensor as pt

from bayesmmm.components.base import Registry, Transform
from bayesmmm.components.priors import Prior

__all__ = [
    "SATURATIONS",
    "HillSaturation",
    "LogisticSaturation",
    "MichaelisMentenSaturation",
    "Saturation",
    "TanhSaturation",
    "hill",
    "logistic",
    "michaelis_menten",
    "tanh_saturation",
]


def logistic(x, lam):
    """Logistic saturation: ``(1 - exp(-lam x)) / (1 + exp(-lam x)) = tanh(lam x / 2)``."""
    return pt.tanh(lam * x / 2.0)


def hill(x, slope, kappa):
    """Hill saturation: ``x^slope / (x^slope + kappa^slope)``; ``kappa`` is the half-saturation point.

    Written as ``sigmoid(slope (log x - log kappa))`` with ``x = 0`` mapped to 0 through a
    switch, so gradients stay finite at zero spend.
    """
    positive = pt.gt(x, 0)
    safe_x = pt.switch(positive, x, 1.0)
    value = pt.sigmoid(slope * (pt.log(safe_x) - pt.log(kappa)))
    return pt.switch(positive, value, 0.0)


def michaelis_menten(x, kappa):
    """Michaelis–Menten saturation: ``x / (kappa + x)`` (Hill with slope 1)."""
    return x / (kappa + x)


def tanh_saturation(x, c):
    """Hyperbolic tangent saturation: ``tanh(x / c)``."""
    return pt.tanh(x / c)


class Saturation(Transform):
    """Base class of saturations: ``function(x, *params)``."""

    prefix: ClassVar[str] = "saturation"

    def apply(self, x, **params):
        """Saturated ``x`` (same shape)."""
        params = {k: pt.as_tensor_variable(v) for k, v in params.items()}
        return type(self).function(pt.as_tensor_variable(x), **params, **self.settings)


SATURATIONS: Registry[type[Saturation]] = Registry("saturation", base=Saturation)


@SATURATIONS.register("logistic")
class LogisticSaturation(Saturation):
    """Logistic saturation; ``lam ~ Gamma(3, 1)`` (per unit of mean spend)."""

    function = staticmethod(logistic)
    default_priors = {"lam": Prior(dist="Gamma", alpha=3, beta=1)}


@SATURATIONS.register("hill")
class HillSaturation(Saturation):
    """Hill saturation; ``slope ~ Gamma(3, 2)``, ``kappa ~ Gamma(2, 2)`` (half point, in mean spends)."""

    function = staticmethod(hill)
    default_priors = {
        "slope": Prior(dist="Gamma", alpha=3, beta=2),
        "kappa": Prior(dist="Gamma", alpha=2, beta=2),
    }


@SATURATIONS.register("michaelis_menten")
class MichaelisMentenSaturation(Saturation):
    """Michaelis–Menten saturation; ``kappa ~ Gamma(2, 2)``."""

    function = staticmethod(michaelis_menten)
    default_priors = {"kappa": Prior(dist="Gamma", alpha=2, beta=2)}


@SATURATIONS.register("tanh")
class TanhSaturation(Saturation):
    """Tanh saturation; ``c ~ Gamma(2, 2)``."""

    function = staticmethod(tanh_saturation)
    default_priors = {"c": Prior(dist="Gamma", alpha=2, beta=2)}
