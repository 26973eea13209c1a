"""Registry-pluggable model components: adstock (carry-over) and saturation transforms, their
priors, and the plugins that add more.

- :mod:`~bayesmmm.components.base`: :class:`Registry`, :class:`Transform` (binds a pure PyTensor
  function to priors); :mod:`~bayesmmm.components.adstock`, :mod:`~bayesmmm.components.saturation`:
  the built-ins; :mod:`~bayesmmm.components.priors`: :class:`Prior`;
  :mod:`~bayesmmm.components.features`: Fourier and changepoint features;
  :mod:`~bayesmmm.components.plugins`: loading user code (files, modules, entry points of the
  group ``bayesmmm.transforms``) and the record a saved model keeps of it.

Add your own in a few lines::

    import pytensor.tensor as pt
    from bayesmmm.components import SATURATIONS, Saturation
    from bayesmmm.components.priors import Prior

    def root(x, power):
        return x ** power

    @SATURATIONS.register("root")
    class RootSaturation(Saturation):
        function = staticmethod(root)
        default_priors = {"power": Prior(dist="Beta", alpha=2, beta=2)}

and use it from YAML as ``saturation: {name: root}`` with ``plugins: [my_module.py]``.
"""

from bayesmmm.components import base as _base
from bayesmmm.components.adstock import (
    ADSTOCKS,
    Adstock,
    GeometricAdstock,
    WeibullCDFAdstock,
    WeibullPDFAdstock,
    convolve,
    geometric_weights,
    weibull_cdf_weights,
    weibull_pdf_weights,
)
from bayesmmm.components.base import Registry, Transform, UnknownNameError, registries
from bayesmmm.components.baseline import HSGPTrend, SplineTrend
from bayesmmm.components.likelihood import LIKELIHOODS, Likelihood, NormalLikelihood, StudentTLikelihood
from bayesmmm.components.multiplier import MULTIPLIERS, HSGPMultiplier, Multiplier, SplineMultiplier
from bayesmmm.components.plugins import (
    ENTRY_POINT_GROUP,
    PluginError,
    PluginRecord,
    ensure_plugins,
    load_entry_points,
    load_plugins,
)
from bayesmmm.components.saturation import (
    SATURATIONS,
    HillSaturation,
    LogisticSaturation,
    MichaelisMentenSaturation,
    Saturation,
    TanhSaturation,
    hill,
    logistic,
    michaelis_menten,
    tanh_saturation,
)
from bayesmmm.components.seasonality import SEASONALITIES, FourierSeasonality, Seasonality
from bayesmmm.components.trend import TRENDS, LinearTrend, NoTrend, PiecewiseTrend, Trend

_base._before_lookup.append(load_entry_points)

__all__ = [
    "ADSTOCKS",
    "ENTRY_POINT_GROUP",
    "LIKELIHOODS",
    "MULTIPLIERS",
    "SATURATIONS",
    "SEASONALITIES",
    "TRENDS",
    "Adstock",
    "FourierSeasonality",
    "GeometricAdstock",
    "HSGPMultiplier",
    "HSGPTrend",
    "HillSaturation",
    "Likelihood",
    "LinearTrend",
    "LogisticSaturation",
    "MichaelisMentenSaturation",
    "Multiplier",
    "NoTrend",
    "NormalLikelihood",
    "PiecewiseTrend",
    "PluginError",
    "PluginRecord",
    "Registry",
    "Saturation",
    "Seasonality",
    "SplineMultiplier",
    "SplineTrend",
    "StudentTLikelihood",
    "TanhSaturation",
    "Transform",
    "Trend",
    "UnknownNameError",
    "WeibullCDFAdstock",
    "WeibullPDFAdstock",
    "convolve",
    "ensure_plugins",
    "geometric_weights",
    "hill",
    "load_entry_points",
    "load_plugins",
    "logistic",
    "michaelis_menten",
    "registries",
    "tanh_saturation",
    "weibull_cdf_weights",
    "weibull_pdf_weights",
]
