"""Flexible baselines: time-varying trends registered as ``trend: hsgp`` and ``trend: spline``.

Both are functions of scaled time ``t`` (0 at the first training week, 1 at the last, beyond 1
in forecasts), written as pure PyTensor expressions, so the same graph serves fitting,
post-processing in NumPy mode and forecasts. Their settings come from ``model.trend_options``.

``hsgp`` — a Gaussian process on ``t`` in the Hilbert-space approximation of Solin & Särkkä
(2020) and Riutort-Mayol et al. (2023), as :class:`pymc.gp.HSGP` computes it: ``m`` Laplacian
eigenfunctions on ``[-L, L]`` around the training midpoint, ``L = c · 0.5`` (half the training
span times the boundary factor ``c``), weighted by the square root of the kernel's spectral
density (ExpQuad or Matern52) and non-centered ``N(0, 1)`` coefficients:

.. math::

    f(t) = \\sum_{j=1}^m \\bigl(\\phi_j(t) - \\bar\\phi_j\\bigr)\\,\\sqrt{S(\\omega_j; \\eta, \\ell)}\\, z_j,
    \\qquad \\phi_j(t) = L^{-1/2} \\sin\\bigl(\\omega_j (t - \\tfrac12 + L)\\bigr),
    \\qquad \\omega_j = \\frac{\\pi j}{2L}.

``\\bar\\phi_j`` is the basis function's mean over the training span ``[0, 1]`` (closed form):
the curve averages zero over the training weeks and the intercept keeps the level. The amplitude
``η`` (``trend_gp_amplitude``) is in scaled target units, the lengthscale ``ℓ``
(``trend_gp_lengthscale``) in training spans. Beyond the data the process reverts towards
the intercept on the scale of ``ℓ`` and its interval widens towards the prior's. The
approximation holds on ``[0.5 - L, 0.5 + L]`` only (every eigenfunction vanishes at ``0.5 + L``,
so the interval pinches towards it). With the defaults (``c = 3``, ``m = 20``) the prior sd of
the approximation against the exact GP's is, at t = 1.0 / 1.3 / 1.6 / 1.8: 1.00 / 1.00 / 0.89 /
0.57 for ``ℓ = 0.45`` (the prior median) and 0.98 / 0.89 / 0.63 / 0.34 for ``ℓ = 0.8``:
forecasts up to about 30% of the training span ahead are honest; for longer horizons raise
``c`` (and ``m`` in proportion).

``spline`` — a linear trend plus a penalized cubic B-spline (P-spline, Eilers & Marx 1996):

.. math::

    f(t) = \\text{trend\\_slope} \\cdot t + \\sum_k B_k(t)\\, a_k,
    \\qquad \\Delta^2 a = \\sigma\\, h^{3/2} z,\\; z_k \\sim N(0, 1),

with uniform knots spaced ``h = 1 / (n_knots - 1)`` over the training span, continued
``horizon`` training spans past its end. The coefficients' second differences are the
innovations of a second-order random walk, the discrete analogue of integrated Brownian
motion with intensity ``σ²`` (``trend_spline_sigma``), so the smoothness prior does not
depend on ``n_knots``. Over the training knots the coefficients are the minimum-norm solution
(``a = Δ²ᵀ (Δ² Δ²ᵀ)⁻¹ σ h^{3/2} z``, the mixed-model form of a P-spline): they have no
constant and no linear part, which are the intercept's and ``trend_slope``'s alone (a
random walk pinned at the start instead makes its first innovation a ramp almost collinear
with ``trend_slope``: measured as 22 divergences of 1000 on the four-channel scenario). Past
the training knots the random walk continues from the last two coefficients with innovations
the data do not inform: the trend continues its last slope on average, with an interval
that widens like an integrated random walk's (variance ∝ distance³). Past ``1 + horizon``
(the last knot) it continues linearly with the slope it has there (the interval keeps
widening, linearly). ``trend_slope`` may be pooled
across geos (``model.geo.trend: pooled``); the spline's wiggles are shared.

Geo panels: the HSGP curve is shared by every geo (in each geo's scaled units, i.e. the same
relative trend); it has no pooled variable (``model.geo.trend: pooled`` is a configuration error).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bayesmmm.components.priors import Prior
from bayesmmm.components.trend import TRENDS, Trend

__all__ = [
    "HSGPTrend",
    "SplineTrend",
    "cubic_bspline",
    "cubic_bspline_derivative",
    "expquad_psd",
    "hsgp_basis",
    "hsgp_basis_mean",
    "hsgp_frequencies",
    "matern52_psd",
    "random_walk_matrix",
    "spline_basis",
]


# --------------------------------------------------------------------------- HSGP math
def hsgp_frequencies(m: int, L: float) -> np.ndarray:
    """Square roots of the Laplacian's Dirichlet eigenvalues on ``[-L, L]``: ``π j / (2L)``, j = 1..m."""
    return np.pi * np.arange(1, m + 1) / (2.0 * L)


def hsgp_basis(t: Any, m: int, L: float, center: float = 0.5) -> Any:
    """HSGP eigenfunctions ``L^{-1/2} sin(ω_j (t - center + L))``, PyTensor, shape ``(date, m)``.

    The same basis as :func:`pymc.gp.hsgp_approx.calc_eigenvectors` (Dirichlet boundary)
    for inputs centered at ``center``.
    """
    import pytensor.tensor as pt

    omega = hsgp_frequencies(m, L)
    t = pt.as_tensor_variable(t)
    return pt.sin((t[:, None] - center + L) * omega[None, :]) / np.sqrt(L)


def hsgp_basis_mean(m: int, L: float, center: float = 0.5, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Mean of each :func:`hsgp_basis` function over ``[lo, hi]`` (closed form), shape ``(m,)``."""
    omega = hsgp_frequencies(m, L)
    a, b = lo - center + L, hi - center + L
    return (np.cos(omega * a) - np.cos(omega * b)) / (omega * (hi - lo) * np.sqrt(L))


def expquad_psd(omega: Any, amplitude: Any, lengthscale: Any) -> Any:
    """Spectral density of ``η² exp(-(t - t')² / (2ℓ²))`` in one dimension (PyTensor):
    ``η² √(2π) ℓ exp(-ω² ℓ² / 2)``."""
    import pytensor.tensor as pt

    return amplitude**2 * np.sqrt(2.0 * np.pi) * lengthscale * pt.exp(-0.5 * (omega * lengthscale) ** 2)


def matern52_psd(omega: Any, amplitude: Any, lengthscale: Any) -> Any:
    """Spectral density of the Matérn-5/2 kernel ``η² k_{5/2}(t - t'; ℓ)`` in one dimension
    (PyTensor): ``η² (16/3) (√5/ℓ)^5 / (5/ℓ² + ω²)^3``."""
    lam2 = 5.0 / lengthscale**2
    return amplitude**2 * (16.0 / 3.0) * lam2**2.5 / (lam2 + omega**2) ** 3


_PSD = {"expquad": expquad_psd, "matern52": matern52_psd}


class HSGPOptions(BaseModel):
    """``trend_options`` of ``trend: hsgp``."""

    model_config = ConfigDict(extra="forbid")

    m: int = Field(20, ge=2, le=500, description="number of basis functions")
    c: float = Field(3.0, ge=1.2, le=20.0, description="boundary factor: L = c × half the training span")
    kernel: Literal["expquad", "matern52"] = Field("expquad", description="covariance kernel")


@TRENDS.register("hsgp")
class HSGPTrend(Trend):
    """A zero-mean (over the training span) Gaussian process on ``t`` in the HSGP approximation.

    Parameters
    ----------
    n_changepoints : ignored (the model passes it to every trend).
    m : number of basis functions (default 20: resolves lengthscales down to ≈ 0.15 training
        spans with ``c = 3``; the rule of thumb is ``m ≳ 1.75 c / (ℓ_min / 0.5)``).
    c : boundary factor; the approximation holds for ``t`` in ``[0.5 - c/2, 0.5 + c/2]``.
    kernel : ``expquad`` (default) or ``matern52``.

    Variables: ``trend_gp_amplitude`` (marginal sd, scaled target units; default
    ``HalfNormal(0.2)``), ``trend_gp_lengthscale`` (training spans; default
    ``InverseGamma(6, 2.5)``: median ≈ 0.45, about 1% below 0.2) and ``trend_gp_z``
    (``(trend_basis,)``, ``N(0, 1)``). The lengthscale prior keeps the curve a *trend*:
    shorter lengthscales (half a span is a year of two years' data) would let it trade off
    with the yearly seasonality, which measured as divergences (47 of 600 draws on the
    four-channel scenario with ``InverseGamma(5, 1.2)``, none with the default).
    """

    options_model = HSGPOptions
    pooled_variable = None
    default_priors: ClassVar = {
        "trend_gp_amplitude": Prior(dist="HalfNormal", sigma=0.2),
        "trend_gp_lengthscale": Prior(dist="InverseGamma", alpha=6.0, beta=2.5),
        "trend_gp_z": Prior(dist="Normal", mu=0.0, sigma=1.0),
    }

    def __init__(self, n_changepoints: int = 4, *, m: int = 20, c: float = 3.0, kernel: str = "expquad") -> None:
        super().__init__(n_changepoints)
        self.m, self.c, self.kernel = int(m), float(c), kernel
        self.L = self.c * 0.5  # half the training span [0, 1] times c

    def variables(self):
        return {"trend_gp_amplitude": (), "trend_gp_lengthscale": (), "trend_gp_z": ("trend_basis",)}

    def coords(self):
        return {"trend_basis": [f"basis_{j}" for j in range(1, self.m + 1)]}

    def forecast_limit(self) -> float:
        """Half a training span inside the approximation's boundary ``0.5 + L``: every basis
        function vanishes at the boundary, and the prior variance with it (``ℓ = 0.45``, ``c = 3``:
        92% of its value inside at ``t = 1.5``, 46% at 1.75, 0 at 2), so a forecast past this
        ``t = L`` would narrow toward the boundary instead of widening."""
        return self.L

    def forecast_fix(self, t_last: float) -> str:
        c = math.ceil(2 * t_last * 10) / 10
        return f"forecast fewer weeks, or set model.trend_options.c to at least {c:g} (now {self.c:g}) and refit"

    def basis(self, t: Any) -> Any:
        """The centered basis ``φ_j(t) - φ̄_j``, PyTensor ``(date, m)``."""
        return hsgp_basis(t, self.m, self.L) - hsgp_basis_mean(self.m, self.L)[None, :]

    def apply(self, t, params, geo):
        import pytensor.tensor as pt

        omega = hsgp_frequencies(self.m, self.L)
        psd = _PSD[self.kernel](omega, params["trend_gp_amplitude"], params["trend_gp_lengthscale"])
        weights = pt.sqrt(psd) * params["trend_gp_z"]
        trend = pt.sum(self.basis(t) * weights, axis=-1)
        return trend[:, None] if geo else trend

    def __repr__(self) -> str:
        return f"HSGPTrend(m={self.m}, c={self.c}, kernel={self.kernel!r})"


# ------------------------------------------------------------------------- spline math
def cubic_bspline(u: Any) -> Any:
    """The cardinal cubic B-spline centered at 0 (support ``(-2, 2)``, knots at the integers), PyTensor."""
    import pytensor.tensor as pt

    a = pt.abs(u)
    inner = 2.0 / 3.0 - a**2 + 0.5 * a**3
    outer = (2.0 - a) ** 3 / 6.0
    return pt.switch(a < 1.0, inner, pt.switch(a < 2.0, outer, 0.0))


def cubic_bspline_derivative(u: np.ndarray) -> np.ndarray:
    """Derivative of :func:`cubic_bspline` (NumPy: used for the constant end slopes)."""
    u = np.asarray(u, float)
    a = np.abs(u)
    inner = -2.0 * u + 1.5 * u * a
    outer = -0.5 * np.sign(u) * (2.0 - a) ** 2
    return np.where(a < 1.0, inner, np.where(a < 2.0, outer, 0.0))


def random_walk_matrix(n_fitted: int, n_free: int, order: int = 1) -> np.ndarray:
    """``M`` with spline coefficients ``a ∝ M z`` whose ``order``-th differences are the innovations
    ``z``: ``Δ^order M = I``. Over the first ``n_fitted`` coefficients the minimum-norm solution
    ``Δᵀ (Δ Δᵀ)⁻¹`` (orthogonal to polynomials of degree < ``order``: constants, and lines for
    ``order=2``); past them the walk continues (``order=1``: ``a_k = a_{k−1} + z``; ``order=2``:
    ``a_k = 2 a_{k−1} − a_{k−2} + z``). Shape ``(n_free + order, n_free)``."""
    d = np.diff(np.eye(n_fitted), n=order, axis=0)  # (n_fitted - order, n_fitted)
    inner = n_fitted - order
    rows = list(np.hstack([d.T @ np.linalg.inv(d @ d.T), np.zeros((n_fitted, n_free - inner))]))
    # the recursion Δ^order a_k = z_k solved for a_k: a_k = -Σ_{j≥1} (-1)^j C(order, j) a_{k-j} + z_k
    weights = [-((-1) ** j) * math.comb(order, j) for j in range(1, order + 1)]
    for j in range(n_free - inner):
        rows.append(sum(w * rows[-1 - i] for i, w in enumerate(weights)) + np.eye(n_free)[inner + j])
    return np.asarray(rows)


def spline_basis(t: Any, centers: np.ndarray, h: float, lo: float, hi: float) -> Any:
    """Uniform cubic B-spline basis ``B_k(t) = b((t - centers_k) / h)`` on ``[lo, hi]``, continued
    linearly outside it (value and slope of each basis function at the end), PyTensor
    ``(date, n_basis)``."""
    import pytensor.tensor as pt

    t = pt.as_tensor_variable(t)
    inside = cubic_bspline((pt.clip(t, lo, hi)[:, None] - centers[None, :]) / h)
    slope_hi = cubic_bspline_derivative((hi - centers) / h) / h
    slope_lo = cubic_bspline_derivative((lo - centers) / h) / h
    return (
        inside
        + pt.maximum(t - hi, 0.0)[:, None] * slope_hi[None, :]
        + pt.minimum(t - lo, 0.0)[:, None] * slope_lo[None, :]
    )


class SplineOptions(BaseModel):
    """``trend_options`` of ``trend: spline``."""

    model_config = ConfigDict(extra="forbid")

    n_knots: int = Field(6, ge=3, le=200, description="knots over the training span (spacing 1 / (n_knots - 1))")
    horizon: float = Field(
        0.5, ge=0.0, le=10.0, description="training spans past the data that the random-walk knots continue"
    )


@TRENDS.register("spline")
class SplineTrend(Trend):
    """Linear trend plus a penalized cubic B-spline with a second-order random-walk prior.

    Parameters
    ----------
    n_changepoints : ignored (the model passes it to every trend).
    n_knots : knots over the training span (default 6: one every ~5 months on two years of
        data, coarse enough that the curve stays a trend and leaves the yearly cycle to the
        seasonality; 10 knots also sample without divergences on the four-channel scenario).
    horizon : how far past the data (in training spans) the random-walk knots continue
        (default 0.5); past it the trend continues linearly.

    Variables: ``trend_slope`` (the model's prior), ``trend_spline_sigma`` (intensity of the
    curvature, scaled target units per training span², default ``HalfNormal(0.5)``) and
    ``trend_spline_z`` (``(trend_knot,)``, ``N(0, 1)``).
    """

    options_model = SplineOptions
    pooled_variable = "trend_slope"
    default_priors: ClassVar = {
        "trend_spline_sigma": Prior(dist="HalfNormal", sigma=0.5),
        "trend_spline_z": Prior(dist="Normal", mu=0.0, sigma=1.0),
    }

    def __init__(self, n_changepoints: int = 4, *, n_knots: int = 6, horizon: float = 0.5) -> None:
        super().__init__(n_changepoints)
        self.n_knots, self.horizon = int(n_knots), float(horizon)
        self.h = 1.0 / (self.n_knots - 1)
        self.n_in = self.n_knots - 1  # knot intervals over the training span
        self.n_out = math.ceil(self.horizon / self.h - 1e-9)  # ... and past it
        self.hi = (self.n_in + self.n_out) * self.h
        #: centres of the basis functions that touch [0, hi]: -h, 0, h, ..., hi + h
        self.centers = self.h * np.arange(-1, self.n_in + self.n_out + 2)

    @property
    def n_free(self) -> int:
        """Random-walk innovations: one per coefficient but two."""
        return len(self.centers) - 2

    @property
    def n_fitted(self) -> int:
        """Coefficients whose basis functions touch the training span ``[0, 1]`` (centres -h .. 1 + h)."""
        return self.n_in + 3

    def variables(self):
        return {"trend_slope": (), "trend_spline_sigma": (), "trend_spline_z": ("trend_knot",)}

    def coords(self):
        return {"trend_knot": [f"knot_{k}" for k in range(self.n_free)]}

    def n_parameters(self) -> int:
        """Slope, sigma and the innovations of the knots within the training span (the ones the
        data inform)."""
        return 2 + self.n_in + 1

    def basis(self, t: Any) -> Any:
        """:func:`spline_basis` on ``[0, 1 + horizon]``, PyTensor ``(date, n_basis)``."""
        return spline_basis(t, self.centers, self.h, 0.0, self.hi)

    def coefficient_matrix(self) -> np.ndarray:
        """``M`` with ``a = σ h^{3/2} M z``, shape ``(n_basis, n_free)``: ``Δ² M = I``; the rows of the
        training knots are ``Δ²ᵀ (Δ² Δ²ᵀ)⁻¹`` (orthogonal to constants and lines), the rows past
        them continue the random walk (``a_k = 2 a_{k-1} - a_{k-2} + z``)."""
        return random_walk_matrix(self.n_fitted, self.n_free, order=2)

    def coefficients(self, sigma: Any, z: Any) -> np.ndarray:
        """All spline coefficients ``σ h^{3/2} M z`` (NumPy)."""
        return (np.asarray(z, float) @ self.coefficient_matrix().T) * (np.asarray(sigma)[..., None] * self.h**1.5)

    def apply(self, t, params, geo):
        import pytensor.tensor as pt

        # Σ_k B_k(t) a_k = σ h^{3/2} Σ_i D_i(t) z_i with D = B M: the parameters enter
        # elementwise only, so the graph vectorizes over draws as it is
        design = pt.dot(self.basis(t), self.coefficient_matrix())
        wiggle = pt.sum(design * params["trend_spline_z"], axis=-1) * (params["trend_spline_sigma"] * self.h**1.5)
        linear = params["trend_slope"] * (t[:, None] if geo else t)
        return linear + (wiggle[:, None] if geo else wiggle)

    def __repr__(self) -> str:
        return f"SplineTrend(n_knots={self.n_knots}, horizon={self.horizon})"
