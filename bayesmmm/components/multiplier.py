"""Time-varying media effects: registered multiplier components (``model.time_varying_media.kind``).

A multiplier component gives each chosen channel ``c`` a smooth log-multiplier curve ``f_c(t)`` of
scaled time ``t`` (0 at the first training date, 1 at the last, beyond 1 in forecasts), as a pure
PyTensor expression (:meth:`Multiplier.log_curve`), like a trend. The model turns it into the
multiplier of the channel's contribution, ``m_c(t) = exp(f_c(t)) / w_c`` with ``w_c`` the
contribution-weighted mean of ``exp(f_c)`` over the training dates (the centring,
:func:`bayesmmm.model.multiplier.media_multiplier`): whatever the curve, the channel's total
training contribution, and so its ROAS and share priors, keep their meaning.

Variables are named ``tvm_*`` and have the dim ``varying_channel`` (the chosen channels) first.

Built-ins:

``hsgp`` — per channel, a Gaussian process on ``t`` in the Hilbert-space approximation, as the trend
``hsgp`` (:mod:`bayesmmm.components.baseline`): ``f_c(t) = Σ_j (φ_j(t) − φ̄_j) √S(ω_j; η_c, ℓ_c) z_cj``,
with the basis mean over the training span removed (the curve's level is the centring's). Past the
data the curve reverts toward the training average on the scale of ``ℓ`` and its interval widens
toward the prior's (the approximation holds up to ``t = L``, ``L = c / 2``).

``spline`` — per channel, a cubic B-spline whose coefficients follow a first-order random walk
(a level that drifts): ``Δa = σ_c √h z``, knots spaced ``h = 1 / (n_knots − 1)``. Over the training
knots the coefficients are the minimum-norm solution (no constant part, which is the centring's);
past them the random walk continues for ``horizon`` training spans with innovations the data do not
inform, so a forecast holds the last level on average with an interval that widens like a random
walk's (variance ∝ distance); past ``1 + horizon`` it is held flat.

Register another in a few lines::

    @MULTIPLIERS.register("linear")
    class LinearMultiplier(Multiplier):
        default_priors = {"tvm_slope": Prior(dist="Normal", mu=0, sigma=0.5)}

        def variables(self):
            return {"tvm_slope": (VARYING_DIM,)}

        def log_curve(self, t, params):  # (date, varying_channel)
            return (t - 0.5)[:, None] * params["tvm_slope"][None, :]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bayesmmm.components.base import Registry, check_settings
from bayesmmm.components.baseline import (
    expquad_psd,
    hsgp_basis,
    hsgp_basis_mean,
    hsgp_frequencies,
    matern52_psd,
    random_walk_matrix,
    spline_basis,
)
from bayesmmm.components.priors import Prior

__all__ = [
    "MULTIPLIERS",
    "VARYING_DIM",
    "HSGPMultiplier",
    "Multiplier",
    "SplineMultiplier",
    "random_walk_matrix",
]

#: the dim of the chosen channels (``model.time_varying_media.channels``)
VARYING_DIM = "varying_channel"


class Multiplier:
    """Base class of multiplier components.

    Parameters
    ----------
    channels : the channels whose effect varies (``model.time_varying_media.channels``).
    priors : overrides of :attr:`default_priors` by variable name.
    **options : the component's settings (validated by :meth:`check_options`).
    """

    name: ClassVar[str] = ""
    default_priors: ClassVar[Mapping[str, Prior]] = {}
    #: the settings ``model.time_varying_media.options`` may give (None: none)
    options_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, channels: Sequence[str], priors: Mapping[str, Prior] | None = None, **options: Any) -> None:
        self.channels = tuple(channels)
        self.options = dict(options)
        priors = dict(priors or {})
        unknown = sorted(set(priors) - set(self.default_priors))
        if unknown:
            raise ValueError(
                f"time_varying_media.priors: multiplier {self.name!r} has no variable {unknown[0]!r}; "
                f"its variables: {', '.join(self.default_priors) or 'none'}"
            )
        self.priors: dict[str, Prior] = {**self.default_priors, **priors}

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``model.time_varying_media.options``; returns them with defaults filled in.

        Raises ``ValueError`` naming the bad key or value and the valid settings.
        """
        return check_settings(
            options, cls.options_model, key="time_varying_media.options", owner=f"multiplier {cls.name!r}"
        )

    def variables(self) -> dict[str, tuple[str, ...]]:
        """Variable name → dims."""
        return {}

    def coords(self) -> dict[str, list[str]]:
        """Coordinates of the dims the variables use (``varying_channel`` and the component's own)."""
        return {VARYING_DIM: list(self.channels)}

    def n_parameters(self) -> int:
        """Scalar parameters (for the fewest-periods check)."""
        sizes = {dim: len(values) for dim, values in self.coords().items()}
        return sum(int(np.prod([sizes[d] for d in dims])) for dims in self.variables().values())

    @property
    def amplitude_variable(self) -> str | None:
        """The variable that sets how much the effect can change (its posterior against its prior
        says whether the change is identified), or None."""
        return None

    def log_curve(self, t: Any, params: Mapping[str, Any]) -> Any:
        """The uncentred log-multiplier ``f(t)``, PyTensor ``(date, varying_channel)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({list(self.channels)}{', ' if settings else ''}{settings})"


MULTIPLIERS: Registry[type[Multiplier]] = Registry("multiplier", base=Multiplier)


# ------------------------------------------------------------------------------ hsgp
class HSGPMultiplierOptions(BaseModel):
    """``time_varying_media.options`` of ``kind: hsgp``."""

    model_config = ConfigDict(extra="forbid")

    m: int = Field(16, ge=2, le=200, description="number of basis functions")
    c: float = Field(3.0, ge=1.2, le=20.0, description="boundary factor: L = c × half the training span")
    kernel: Literal["expquad", "matern52"] = Field("matern52", description="covariance kernel")


_PSD = {"expquad": expquad_psd, "matern52": matern52_psd}


@MULTIPLIERS.register("hsgp")
class HSGPMultiplier(Multiplier):
    """A Gaussian process per channel on the log-multiplier (HSGP approximation).

    Variables: ``tvm_gp_amplitude`` (marginal sd of ``log m``, default ``HalfNormal(0.3)``: the
    effect moves within about ×/÷ 1.35 at one sd a priori), ``tvm_gp_lengthscale`` (training spans,
    default ``InverseGamma(5, 2)``: median ≈ 0.37, about 4% below 0.2) and ``tvm_gp_z``
    (``(varying_channel, tvm_basis)``, ``N(0, 1)``). Settings ``m`` (16), ``c`` (3) and ``kernel``
    (``matern52``, as PyMC-Marketing's ``time_varying_media``; ``expquad`` smoother).
    """

    options_model = HSGPMultiplierOptions
    default_priors: ClassVar = {
        "tvm_gp_amplitude": Prior(dist="HalfNormal", sigma=0.3),
        "tvm_gp_lengthscale": Prior(dist="InverseGamma", alpha=5.0, beta=2.0),
        "tvm_gp_z": Prior(dist="Normal", mu=0.0, sigma=1.0),
    }

    def __init__(self, channels, priors=None, *, m: int = 16, c: float = 3.0, kernel: str = "matern52") -> None:
        super().__init__(channels, priors, m=int(m), c=float(c), kernel=kernel)
        self.m, self.c, self.kernel = int(m), float(c), kernel
        self.L = self.c * 0.5

    def variables(self):
        return {
            "tvm_gp_amplitude": (VARYING_DIM,),
            "tvm_gp_lengthscale": (VARYING_DIM,),
            "tvm_gp_z": (VARYING_DIM, "tvm_basis"),
        }

    def coords(self):
        return {**super().coords(), "tvm_basis": [f"basis_{j}" for j in range(1, self.m + 1)]}

    @property
    def amplitude_variable(self) -> str:
        return "tvm_gp_amplitude"

    def n_parameters(self) -> int:
        """Amplitude, lengthscale and the curve's effective degrees of freedom per channel (for the
        fewest-periods check): the ``m`` basis coefficients are shrunk by the spectral density, and a
        curve with the prior's median lengthscale (≈ 0.37 training spans) has about 4 free levels over
        the training span, not ``m``."""
        return len(self.channels) * (2 + min(4, self.m))

    def basis(self, t: Any) -> Any:
        """The basis centred over the training span, PyTensor ``(date, m)``."""
        return hsgp_basis(t, self.m, self.L) - hsgp_basis_mean(self.m, self.L)[None, :]

    def log_curve(self, t, params):
        import pytensor.tensor as pt

        omega = hsgp_frequencies(self.m, self.L)[None, :]  # (1, m)
        amplitude = params["tvm_gp_amplitude"][:, None]  # (k, 1)
        lengthscale = params["tvm_gp_lengthscale"][:, None]
        weights = pt.sqrt(_PSD[self.kernel](omega, amplitude, lengthscale)) * params["tvm_gp_z"]  # (k, m)
        # elementwise and a sum, never a dot: the graph vectorizes over draws as it is
        return pt.sum(self.basis(t)[:, None, :] * weights[None, :, :], axis=-1)


# ---------------------------------------------------------------------------- spline


class SplineMultiplierOptions(BaseModel):
    """``time_varying_media.options`` of ``kind: spline``."""

    model_config = ConfigDict(extra="forbid")

    n_knots: int = Field(7, ge=3, le=200, description="knots over the training span (spacing 1 / (n_knots - 1))")
    horizon: float = Field(
        0.5, ge=0.0, le=10.0, description="training spans past the data that the random walk continues (widening)"
    )


@MULTIPLIERS.register("spline")
class SplineMultiplier(Multiplier):
    """A cubic B-spline per channel on the log-multiplier, with a first-order random-walk prior.

    Variables: ``tvm_spline_sigma`` (``(varying_channel,)``: sd of the change of ``log m`` over one
    training span, default ``HalfNormal(0.5)``) and ``tvm_spline_z`` (``(varying_channel, tvm_knot)``,
    ``N(0, 1)``). Settings ``n_knots`` (7: one every ~4 months on two years) and ``horizon`` (0.5).
    """

    options_model = SplineMultiplierOptions
    default_priors: ClassVar = {
        "tvm_spline_sigma": Prior(dist="HalfNormal", sigma=0.5),
        "tvm_spline_z": Prior(dist="Normal", mu=0.0, sigma=1.0),
    }

    def __init__(self, channels, priors=None, *, n_knots: int = 7, horizon: float = 0.5) -> None:
        super().__init__(channels, priors, n_knots=int(n_knots), horizon=float(horizon))
        self.n_knots, self.horizon = int(n_knots), float(horizon)
        self.h = 1.0 / (self.n_knots - 1)
        n_in = self.n_knots - 1
        n_out = math.ceil(self.horizon / self.h - 1e-9)
        self.hi = (n_in + n_out) * self.h
        #: centres of the basis functions touching [0, hi]
        self.centers = self.h * np.arange(-1, n_in + n_out + 2)
        self.n_fitted = n_in + 3  # coefficients whose basis functions touch [0, 1]
        self.n_free = len(self.centers) - 1

    def variables(self):
        return {"tvm_spline_sigma": (VARYING_DIM,), "tvm_spline_z": (VARYING_DIM, "tvm_knot")}

    def coords(self):
        return {**super().coords(), "tvm_knot": [f"knot_{k}" for k in range(self.n_free)]}

    @property
    def amplitude_variable(self) -> str:
        return "tvm_spline_sigma"

    def n_parameters(self) -> int:
        """Sigma and the random walk's innovations over the training knots, per channel (the ones the
        data inform; those past the data follow their prior)."""
        return len(self.channels) * (1 + self.n_fitted - 1)

    def design(self, t: Any) -> Any:
        """``B(clip(t)) M``, PyTensor ``(date, n_free)``: held flat outside ``[0, 1 + horizon]``."""
        import pytensor.tensor as pt

        t = pt.clip(pt.as_tensor_variable(t), 0.0, self.hi)
        basis = spline_basis(t, self.centers, self.h, 0.0, self.hi)
        return pt.dot(basis, random_walk_matrix(self.n_fitted, self.n_free))

    def log_curve(self, t, params):
        import pytensor.tensor as pt

        design = self.design(t)[:, None, :]  # (date, 1, n_free)
        scale = (params["tvm_spline_sigma"] * math.sqrt(self.h))[:, None]  # (k, 1)
        return pt.sum(design * (params["tvm_spline_z"] * scale)[None, :, :], axis=-1)
