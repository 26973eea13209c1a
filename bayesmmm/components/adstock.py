"""Adstock (carry-over) transforms.

Every adstock is a lag-weight function ``w[l] = f(l; params)`` for ``l = 0 .. l_max-1``,
applied as a finite convolution along the leading ``date`` axis:

.. math:: \\mathrm{adstock}(x)_t = \\sum_{l=0}^{L-1} w_l\\, x_{t-l}, \\qquad x_{t<0} = 0,

with the weights divided by their sum when ``normalize=True`` (the default), so that
adstock conserves the total spend and the channel coefficient measures total effect.

Tensors are laid out as ``(date, *batch)`` (``(date, channel)`` now, ``(date, geo,
channel)`` later); parameters broadcast against ``x.shape[1:]``.

Formulation: the convolution is written as ``l_max`` shifted slices added together
(pure elementwise ops). Measured on this 2-core machine with pytensor 3.3 on a
4-channel × 104-week MMM compiled by nutpie's numba backend: 27.7 s cold / 11.4 s
warm cache with shift-and-add, 36.8 s with a stacked (l_max, date, channel) tensor
reduced by a sum, 63.3 s with an ``einsum`` (dot product); sampling time was the same
(≈1 s). PyMC's C backend took 78 s cold. See ``benchmarks/compile_adstock.py``.

Long windows (daily data: ``l_max`` of 28 to 90 days) cost ``T · l_max`` per evaluation in that
form. An adstock may declare ``recursion``: an exact linear-time equivalent of its truncated
convolution, used from :data:`RECURSION_MIN_LAGS` lags on. The geometric one is
:func:`geometric_recursion`, ``y_t = x_t + α y_{t-1} − α^L x_{t-L}`` (the last term drops the lag
that leaves the window, so the result IS the convolution over ``l_max`` lags, to rounding),
written as a ``scan``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ClassVar

import numpy as np
import pytensor.tensor as pt

from bayesmmm.components.base import Registry, Transform
from bayesmmm.components.priors import Prior

__all__ = [
    "ADSTOCKS",
    "RECURSION_MIN_LAGS",
    "Adstock",
    "GeometricAdstock",
    "WeibullCDFAdstock",
    "WeibullPDFAdstock",
    "convolution_graphs",
    "convolve",
    "geometric_recursion",
    "geometric_weights",
    "weibull_cdf_weights",
    "weibull_pdf_log_weights",
    "weibull_pdf_weights",
]


def convolve(x, weights):
    """Causal finite convolution along axis 0: ``out[t] = sum_l weights[l] * x[t - l]``.

    Parameters
    ----------
    x : tensor, shape (date, *batch)
    weights : tensor, shape (l_max, *batch_broadcastable)
        ``l_max`` must be known statically (it is a Python int in every adstock).
    """
    x = pt.as_tensor_variable(x)
    weights = pt.as_tensor_variable(weights)
    l_max = weights.type.shape[0]
    if l_max is None:
        raise ValueError("the number of lags must be static: build weights from pt.arange(l_max) with an int l_max")
    if l_max == 1:
        return weights[0] * x
    zeros = pt.zeros((l_max - 1, *[x.shape[i] for i in range(1, x.ndim)]), dtype=x.dtype)
    padded = pt.concatenate([zeros, x], axis=0)
    n = padded.shape[0]
    out = weights[0] * x
    for lag in range(1, l_max):
        out = out + weights[lag] * padded[l_max - 1 - lag : n - lag]
    return out


#: lags from which an adstock with a ``recursion`` uses it instead of the shift-and-add convolution
RECURSION_MIN_LAGS = 16

#: set inside :func:`convolution_graphs`: graphs built there use the convolution whatever ``l_max``
_CONVOLUTION_ONLY: ContextVar[bool] = ContextVar("convolution_only", default=False)


@contextlib.contextmanager
def convolution_graphs() -> Iterator[None]:
    """Build adstock graphs for NumPy evaluation on whole batches of draws inside this block.

    For graphs evaluated with NumPy on whole batches of draws (post-processing, response curves,
    calibration draws), never sampled or differentiated: no ``scan``, which ``vectorize_graph``
    turns into a loop over the draws in Python, each stepping through the dates in Python (8×
    slower than the convolution on 1092 days × 500 draws, measured). An adstock whose recursion
    has a batched NumPy form (:attr:`Adstock.batched_recursion`: the geometric one,
    :class:`~bayesmmm.components.recursion.GeometricRecursion`) uses it from
    :data:`RECURSION_MIN_LAGS` lags on (one pass over the dates for the whole batch: 40× faster
    than the convolution on 4000 draws × 1095 days × 10 channels, 28 lags, measured); the others
    use the shift-and-add convolution. All compute the same numbers; the sampling graph keeps the
    differentiable ``scan``.
    """
    token = _CONVOLUTION_ONLY.set(True)
    try:
        yield
    finally:
        _CONVOLUTION_ONLY.reset(token)


def geometric_recursion(x, alpha, *, l_max: int, normalize: bool = True):
    """Geometric adstock over ``l_max`` lags in linear time: exactly :func:`convolve` of ``x`` with
    :func:`geometric_weights` (normalized by their sum ``(1 - α^L) / (1 - α)`` when ``normalize``).

    ``y_t = x_t + α y_{t-1} − α^L x_{t-L}`` (``x_{t<0} = 0``), a ``scan`` along axis 0: one
    multiply-add per date and channel whatever ``l_max``, where the convolution has ``l_max``.

    Parameters
    ----------
    x : tensor, shape (date, *batch)
    alpha : tensor broadcasting against ``x.shape[1:]``, in (0, 1)
    l_max : number of lags (lag 0 included)
    normalize : divide by the weights' sum, as :class:`Adstock` does
    """
    x_in = pt.as_tensor_variable(x)
    alpha_in = pt.as_tensor_variable(alpha)
    l_max = int(l_max)
    if _CONVOLUTION_ONLY.get():  # a batched NumPy graph (convolution_graphs): one pass, no scan
        from bayesmmm.components.recursion import geometric_recursion_numpy

        y = geometric_recursion_numpy(x_in, alpha_in, l_max=l_max)
    else:
        y = _geometric_scan(x_in, alpha_in, l_max)
    if not normalize:
        return y
    # Σ_l α^l = (1 - α^L) / (1 - α); computed as the sum of the weights (exact, and finite at α → 1)
    return y / pt.sum(geometric_weights(lag_tensor(l_max, alpha_in.ndim), alpha_in), axis=0)


def _geometric_scan(x_in, alpha_in, l_max: int):
    """The unnormalized recursion of :func:`geometric_recursion` as a ``scan`` (the sampling graph's form)."""
    import pytensor

    # the scan runs on (date, batch) with no static sizes, so that a graph rewritten with other inputs
    # (the JAX translation replaces the data by inputs of unknown shape) keeps consistent types
    batch_shape = pt.broadcast_shape(x_in[0], alpha_in)
    # plus one padding column: a batch of static size 1 (one organic medium, one channel) would make
    # the rewritten sequence broadcastable where the scan's inner sequence is not (a TypeError)
    x = pt.broadcast_to(x_in, (x_in.shape[0], *batch_shape)).reshape((x_in.shape[0], -1))
    x = pt.concatenate([x, pt.zeros((x.shape[0], 1), dtype=x.dtype)], axis=1)
    alpha_flat = pt.broadcast_to(alpha_in, batch_shape).reshape((-1,))
    alpha_flat = pt.concatenate([alpha_flat, pt.as_tensor_variable(np.array([0.5], dtype=alpha_flat.dtype))])
    alpha_l = alpha_flat**l_max
    lagged = pt.concatenate([pt.zeros((l_max, x.shape[1]), dtype=x.dtype), x], axis=0)
    lagged = lagged[: x.shape[0]]  # x_{t-L}
    start = pt.zeros((x.shape[1],), dtype=(x[0] * alpha_flat).dtype)

    def step(x_t, x_out, y_prev, alpha, alpha_l):
        return x_t + alpha * y_prev - alpha_l * x_out

    return pytensor.scan(
        step,
        sequences=[x, lagged],
        outputs_info=[start],
        non_sequences=[alpha_flat, alpha_l],
        strict=True,
        return_updates=False,
    )[:, :-1].reshape((x_in.shape[0], *batch_shape))


def lag_tensor(l_max: int, ndim: int):
    """``pt.arange(l_max)`` as float, shaped ``(l_max, 1, ..., 1)`` with ``ndim`` trailing 1s."""
    lags = pt.arange(l_max, dtype="float64")
    return pt.shape_padright(lags, ndim) if ndim else lags


def geometric_weights(lags, alpha):
    """Geometric decay: ``w_l = alpha ** l``, ``0 < alpha < 1``."""
    return alpha**lags


def weibull_cdf_weights(lags, scale, shape):
    """Weibull survival weights: ``w_l = 1 - F(l) = exp(-(l / scale) ** shape)``.

    ``F`` is the Weibull CDF with ``shape`` k and ``scale`` λ (in weeks); ``w_0 = 1``.
    Equals ``scipy.stats.weibull_min(c=shape, scale=scale).sf(l)``. Lag 0 is set to 1
    through a switch: ``0 ** shape`` has a NaN gradient in ``shape`` (``0 · log 0``).
    """
    positive = pt.gt(lags, 0)
    safe = pt.switch(positive, lags, 1.0)
    return pt.switch(positive, pt.exp(-((safe / scale) ** shape)), 1.0)


def weibull_pdf_weights(lags, scale, shape):
    """Weibull density weights: ``w_l = f(l + 1)``, ``f(t) = k/λ (t/λ)^(k-1) exp(-(t/λ)^k)``.

    Evaluated at ``l + 1`` so that lag 0 is finite for ``shape < 1``; equals
    ``scipy.stats.weibull_min(c=shape, scale=scale).pdf(l + 1)``. Allows a delayed peak.
    """
    t = (lags + 1.0) / scale
    return (shape / scale) * t ** (shape - 1.0) * pt.exp(-(t**shape))


def weibull_pdf_log_weights(lags, scale, shape):
    """``log`` of :func:`weibull_pdf_weights`: finite where the weights themselves underflow."""
    t = (lags + 1.0) / scale
    return pt.log(shape / scale) + (shape - 1.0) * pt.log(t) - t**shape


class Adstock(Transform):
    """Base class of adstocks: ``function`` returns lag weights; this class convolves.

    Settings: ``l_max`` (number of lags, including lag 0) and ``normalize``.
    """

    prefix: ClassVar[str] = "adstock"
    #: optional: an exact linear-time equivalent of the convolution, ``recursion(x, *params, l_max=,
    #: normalize=)``, used from :data:`RECURSION_MIN_LAGS` lags on (:func:`geometric_recursion`)
    recursion: ClassVar[Callable[..., Any] | None] = None
    #: whether ``recursion`` builds a batched NumPy op inside :func:`convolution_graphs` (no ``scan``
    #: there): then post-processing uses it too; otherwise post-processing uses the convolution
    batched_recursion: ClassVar[bool] = False
    #: optional: the log of ``function`` (same signature); normalized weights are then a softmax,
    #: which keeps values AND gradients finite where every weight underflows
    log_function: ClassVar[Callable[..., Any] | None] = None

    def __init__(self, priors=None, *, l_max: int = 8, normalize: bool = True, **settings) -> None:
        if int(l_max) < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max}")
        super().__init__(priors, **settings)
        self.l_max = int(l_max)
        self.normalize = bool(normalize)

    def weights(self, **params):
        """Lag weights, shape ``(l_max, *param_shape)``, normalized if configured."""
        params = {k: pt.as_tensor_variable(v) for k, v in params.items()}
        ndim = max(v.ndim for v in params.values()) if params else 0
        lags = lag_tensor(self.l_max, ndim)
        log_function = type(self).log_function
        if self.normalize and log_function is not None:
            log_w = log_function(lags, **params, **self.settings)
            w = pt.exp(log_w - pt.max(log_w, axis=0, keepdims=True))
            return w / pt.sum(w, axis=0, keepdims=True)
        w = type(self).function(lags, **params, **self.settings)
        if self.normalize:
            # a vanishing mass at lag 0 keeps extreme parameters (all weights underflowing
            # to 0, e.g. a Weibull scale near 0) at their limit, all mass at lag 0, not NaN
            w = w + pt.eq(lags, 0) * np.finfo("float64").tiny
            w = w / pt.sum(w, axis=0, keepdims=True)
        return w

    def apply(self, x, **params):
        """Adstocked ``x`` (same shape), params broadcasting against ``x.shape[1:]``: the convolution
        with :meth:`weights`, or its exact linear-time ``recursion`` for long windows."""
        recursion = type(self).recursion
        long_window = self.l_max >= RECURSION_MIN_LAGS and (type(self).batched_recursion or not _CONVOLUTION_ONLY.get())
        if recursion is not None and long_window and not self.settings:
            args = [pt.as_tensor_variable(params[p]) for p in self.param_names]
            return recursion(x, *args, l_max=self.l_max, normalize=self.normalize)
        return convolve(x, self.weights(**params))

    @property
    def linear(self) -> bool:
        """Whether ``apply`` is linear in ``x`` (``apply(m x) = m apply(x)``): true for the
        convolution of this class, assumed false for a subclass that overrides ``apply``."""
        return type(self).apply is Adstock.apply

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l_max={self.l_max}, normalize={self.normalize})"


ADSTOCKS: Registry[type[Adstock]] = Registry("adstock", base=Adstock)


@ADSTOCKS.register("geometric")
class GeometricAdstock(Adstock):
    """Geometric adstock, ``w_l = alpha^l``; ``alpha ~ Beta(1, 3)`` by default."""

    function = staticmethod(geometric_weights)
    recursion = staticmethod(geometric_recursion)
    batched_recursion = True
    default_priors = {"alpha": Prior(dist="Beta", alpha=1, beta=3)}


@ADSTOCKS.register("weibull_cdf")
class WeibullCDFAdstock(Adstock):
    """Weibull-CDF (survival) adstock, ``w_l = exp(-(l/scale)^shape)``."""

    function = staticmethod(weibull_cdf_weights)
    default_priors = {
        "scale": Prior(dist="Gamma", alpha=2, beta=1),
        "shape": Prior(dist="Gamma", alpha=2, beta=2),
    }


@ADSTOCKS.register("weibull_pdf")
class WeibullPDFAdstock(Adstock):
    """Weibull-PDF adstock, ``w_l ∝ f(l+1; shape, scale)``; can peak after lag 0."""

    function = staticmethod(weibull_pdf_weights)
    log_function = staticmethod(weibull_pdf_log_weights)
    default_priors = {
        "scale": Prior(dist="Gamma", alpha=2, beta=1),
        "shape": Prior(dist="Gamma", alpha=2, beta=1),
    }
