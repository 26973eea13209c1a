"""The geometric adstock recursion as one NumPy op, for graphs evaluated on whole batches of draws.

The sampling graph writes :func:`~bayesmmm.components.adstock.geometric_recursion` as a ``scan``
(linear in the dates, differentiable, translated to JAX). Post-processing evaluates the same mean
on thousands of draws at once (``vectorize_graph``), and there a ``scan`` becomes a ``Blockwise``
that loops over the draws in Python, each draw stepping through the dates in Python again
(4000 draws × 1095 days: ~90 s for one ``beta`` per draw, measured), and the shift-and-add
convolution costs ``l_max`` passes over the whole batch (~25 s for the intercept's centering on
the same batch). :class:`GeometricRecursion` steps once through the dates with every draw and
channel vectorized (one multiply-add per date on the whole batch), and registers its own
vectorization, so a batched graph keeps one node.

Numbers: exactly :func:`~bayesmmm.components.adstock.convolve` of ``x`` with the unnormalized
geometric weights ``α^l``, ``l < l_max``, to rounding (``y_t = x_t + α y_{t-1} − α^L x_{t-L}``).
NumPy only: no gradient, no C or JAX implementation (graphs with it are built inside
:func:`~bayesmmm.components.adstock.convolution_graphs` and compiled with
:func:`~bayesmmm.components.base.numpy_mode`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.replace import _vectorize_node

__all__ = ["GeometricRecursion", "geometric_recursion_numpy"]


def _broadcast_static(a: tuple, b: tuple) -> tuple:
    """Static shape of the broadcast of two equal-length static shapes: 1 only where both are 1."""
    return tuple(
        1 if (i == 1 and j == 1) else (i if j == 1 else (j if i == 1 else None)) for i, j in zip(a, b, strict=True)
    )


class GeometricRecursion(Op):
    """``y_t = Σ_{l<L} α^l x_{t-l}`` along the date axis, the draws and channels vectorized.

    Inputs ``x`` of shape ``(*lead, date, *rest)`` and ``alpha`` of shape ``(*lead, *rest)``, one
    axis fewer than ``x`` (the two broadcast against each other, without ``x``'s date axis);
    ``lead`` leading batch axes (0 as built; ``vectorize_graph`` adds the draws' there). The
    output has the broadcast shape, the date axis where ``x`` has it.
    """

    __props__ = ("l_max", "lead")

    def __init__(self, l_max: int, lead: int = 0) -> None:
        self.l_max = int(l_max)
        self.lead = int(lead)

    def make_node(self, x, alpha) -> Apply:
        x = pt.as_tensor_variable(x)
        alpha = pt.as_tensor_variable(alpha)
        if x.ndim < self.lead + 1 or alpha.ndim != x.ndim - 1:
            raise ValueError(
                f"GeometricRecursion(lead={self.lead}) needs x (*lead, date, *rest) and alpha (*lead, *rest), "
                f"got {x.ndim} and {alpha.ndim} dimensions"
            )
        shape = list(x.type.shape)
        date = shape.pop(self.lead)
        rest = list(_broadcast_static(tuple(shape), tuple(alpha.type.shape)))
        dtype = (np.zeros((), x.dtype) * np.zeros((), alpha.dtype)).dtype
        out_shape = (*rest[: self.lead], date, *rest[self.lead :])
        return Apply(self, [x, alpha], [pt.tensor(dtype=str(dtype), shape=out_shape)])

    def perform(self, node, inputs, output_storage) -> None:
        x, alpha = inputs
        dtype = node.outputs[0].dtype
        xd = np.moveaxis(np.asarray(x, dtype=dtype), self.lead, 0)  # (date, *batch)
        batch = np.broadcast_shapes(xd.shape[1:], np.shape(alpha))
        xd = np.broadcast_to(xd, (xd.shape[0], *batch))
        a = np.broadcast_to(np.asarray(alpha, dtype=dtype), batch)
        a_l = a**self.l_max
        y = np.empty(xd.shape, dtype=dtype)
        prev = np.zeros(batch, dtype=dtype)
        for t in range(xd.shape[0]):
            prev = xd[t] + a * prev
            if t >= self.l_max:
                prev = prev - a_l * xd[t - self.l_max]
            y[t] = prev
        output_storage[0][0] = np.moveaxis(y, 0, self.lead)

    def infer_shape(self, fgraph, node, shapes):
        x_shape, a_shape = shapes
        rest = [*x_shape[: self.lead], *x_shape[self.lead + 1 :]]
        static = node.outputs[0].type.shape
        static_rest = [*static[: self.lead], *static[self.lead + 1 :]]
        out = [1 if s == 1 else pt.maximum(r, a) for s, r, a in zip(static_rest, rest, a_shape, strict=True)]
        return [(*out[: self.lead], x_shape[self.lead], *out[self.lead :])]


def geometric_recursion_numpy(x, alpha, *, l_max: int):
    """:class:`GeometricRecursion` applied: the unnormalized geometric adstock of ``x`` (date first),
    ``alpha`` broadcasting against ``x.shape[1:]`` (NumPy's rule: padded on the left)."""
    x = pt.as_tensor_variable(x)
    alpha = pt.as_tensor_variable(alpha)
    if alpha.ndim > x.ndim - 1:
        raise ValueError(f"alpha has {alpha.ndim} dimensions, more than x's {x.ndim - 1} non-date ones")
    return GeometricRecursion(l_max)(x, pt.shape_padleft(alpha, x.ndim - 1 - alpha.ndim))


@_vectorize_node.register(GeometricRecursion)
def _vectorize_recursion(op: GeometricRecursion, node: Apply, x, alpha) -> Apply:
    """Batched inputs → the same op with the new leading axes (one node, no ``Blockwise``)."""
    old_x, old_alpha = node.inputs
    bx = x.type.ndim - old_x.type.ndim
    ba = alpha.type.ndim - old_alpha.type.ndim
    n = max(bx, ba)
    x = pt.shape_padleft(x, n - bx)
    alpha = pt.shape_padleft(alpha, n - ba)
    return GeometricRecursion(op.l_max, op.lead + n).make_node(x, alpha)
