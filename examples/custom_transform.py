"""Add your own transforms and use them from YAML by name.

Register in a module of your own, then name the module under ``plugins:`` in the
experiment YAML (paths are relative to the YAML file)::

    plugins: [../examples/custom_transform.py]
    model:
      adstock: {name: delayed_geometric, l_max: 8}
      saturation: {name: power}

The function's parameters after the data argument must match ``default_priors``;
this is checked when the class is defined.
"""

import pytensor.tensor as pt

from bayesmmm import ADSTOCKS, SATURATIONS, Adstock, Prior, Saturation


def power_saturation(x, exponent):
    """Concave power curve ``1 - 1 / (1 + x) ** exponent`` (0 at 0, bounded by 1)."""
    return 1.0 - (1.0 + x) ** (-exponent)


@SATURATIONS.register("power")
class PowerSaturation(Saturation):
    """Power saturation with ``exponent ~ Gamma(2, 2)``."""

    function = staticmethod(power_saturation)
    default_priors = {"exponent": Prior(dist="Gamma", alpha=2, beta=2)}


def delayed_geometric_weights(lags, alpha, theta):
    """Geometric decay with a delayed peak: ``w_l = alpha ** ((l - theta) ** 2)``."""
    return alpha ** ((lags - theta) ** 2)


@ADSTOCKS.register("delayed_geometric")
class DelayedGeometricAdstock(Adstock):
    """Delayed geometric adstock (peak at lag ``theta``)."""

    function = staticmethod(delayed_geometric_weights)
    default_priors = {
        "alpha": Prior(dist="Beta", alpha=2, beta=2),
        "theta": Prior(dist="HalfNormal", sigma=1.5),
    }


__all__ = ["DelayedGeometricAdstock", "PowerSaturation", "pt"]
