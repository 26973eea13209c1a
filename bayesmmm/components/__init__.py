"""Registry-pluggable transforms: adstock (carry-over) and saturation.

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
from bayesmmm.components.base import Registry, Transform, UnknownNameError
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

__all__ = [
    "ADSTOCKS",
    "SATURATIONS",
    "Adstock",
    "GeometricAdstock",
    "HillSaturation",
    "LogisticSaturation",
    "MichaelisMentenSaturation",
    "Registry",
    "Saturation",
    "TanhSaturation",
    "Transform",
    "UnknownNameError",
    "WeibullCDFAdstock",
    "WeibullPDFAdstock",
    "convolve",
    "geometric_weights",
    "hill",
    "logistic",
    "michaelis_menten",
    "tanh_saturation",
    "weibull_cdf_weights",
    "weibull_pdf_weights",
]
