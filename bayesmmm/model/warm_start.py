"""A warm start for a new fit from an earlier posterior of the same free variables (a refresh's).

:func:`unconstrained_draws` maps the earlier posterior's draws to the new PyMC model's
unconstrained space (its value variables, through the model's own transforms: log, log-odds,
interval, ...); :func:`posterior_warm_start` turns them into a
:class:`~bayesmmm.inference.warm.WarmStart`: one draw per chain as its start, their covariance as
the mass matrix, the earlier fit's mean adapted step size. It returns ``None`` with the reason
where the new model's free variables are not the earlier posterior's (a variable missing, or of
another shape, e.g. one per period): the fit then runs its cold warm-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmmm.inference.warm import WarmStart, metric_from_draws

__all__ = ["posterior_warm_start", "unconstrained_draws"]

#: draws of the earlier posterior the mass matrix is estimated from (a seeded subsample)
METRIC_DRAWS = 1000


def _forward_function(model, names=None):
    """``f(constrained free variables...) -> unconstrained values...`` in the order of ``model.value_vars``
    (only the free variables named in ``names``, where given)."""
    import pytensor
    from pytensor.graph.replace import clone_replace

    rvs = [model.values_to_rvs[v] for v in model.value_vars]
    if names is not None:
        rvs = [rv for rv in rvs if rv.name in set(names)]
    inputs = [rv.type(name=rv.name) for rv in rvs]
    outs = []
    for rv, x in zip(rvs, inputs, strict=True):
        transform = model.rvs_to_transforms.get(rv)
        outs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
    outs = clone_replace(outs, replace=dict(zip(rvs, inputs, strict=True)))
    return rvs, inputs, outs, pytensor


def unconstrained_draws(
    model, posterior: Any, max_draws: int = METRIC_DRAWS, seed: int = 0, names: list[str] | None = None
):
    """The draws of ``posterior`` (an xarray Dataset with ``chain, draw``) on ``model``'s
    unconstrained space: a list over ``model.value_vars`` (those of the free variables in ``names``,
    where given, in the model's order) of ``(n, *value shape)`` arrays (at most ``max_draws`` draws, a
    seeded subsample), or a string saying why not."""
    rvs, inputs, outs, pytensor = _forward_function(model, names)
    shapes = {name: np.shape(x) for name, x in model.initial_point().items()}
    values = []
    n_total = None
    for rv in rvs:
        if rv.name not in posterior:
            return f"the first posterior has no {rv.name!r}"
        arr = np.asarray(posterior[rv.name].to_numpy(), dtype=float)
        arr = arr.reshape(-1, *arr.shape[2:])
        n_total = arr.shape[0] if n_total is None else n_total
        values.append(arr)
    n = int(n_total or 0)
    if n < 2:
        return "the first posterior has fewer than 2 draws"
    idx = np.arange(n)
    if n > max_draws:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
    values = [v[idx] for v in values]
    fn = pytensor.function(inputs, outs, mode="FAST_COMPILE", on_unused_input="ignore")
    try:
        out = [np.asarray(o) for o in fn(*values)]  # elementwise transforms broadcast over the draws
        if any(o.shape[0] != len(idx) for o in out):
            raise ValueError("not batched")
    except Exception:  # a transform that does not broadcast over a leading axis: one draw at a time
        try:
            per = [fn(*(v[i] for v in values)) for i in range(len(idx))]
        except Exception as exc:
            return f"the first posterior does not fit the new model's variables ({type(exc).__name__}: {exc})"
        out = [np.stack([np.asarray(p[k]) for p in per]) for k in range(len(rvs))]
    values_of = [model.rvs_to_values[rv] for rv in rvs]
    for v, o in zip(values_of, out, strict=True):
        if o.shape[1:] != tuple(shapes.get(v.name, o.shape[1:])):
            return f"{v.name!r} has shape {shapes[v.name]} in the new model, {o.shape[1:]} in the first posterior"
    return out


def posterior_warm_start(
    model, posterior: Any, sample_stats: Any, chains: int, tune: int, seed: int | None = 0
) -> tuple[WarmStart | None, str]:
    """A :class:`WarmStart` for sampling ``model`` from an earlier ``posterior`` of its free variables.

    ``sample_stats`` (the earlier fit's, with ``step_size``; may be None) gives the step size
    (the mean adapted one; 0.1 without it). Returns ``(warm start, "")`` or ``(None, reason)``.
    """
    draws = unconstrained_draws(model, posterior, seed=seed or 0)
    if isinstance(draws, str):
        return None, draws
    flat = np.concatenate([d.reshape(d.shape[0], -1) for d in draws], axis=1)
    if not np.isfinite(flat).all():
        return None, "the first posterior's draws are not finite on the new model's unconstrained space"
    inverse = metric_from_draws(flat, dense=True)
    step = 0.1
    if sample_stats is not None and "step_size" in sample_stats:
        s = np.asarray(sample_stats["step_size"].to_numpy(), dtype=float)
        s = s[np.isfinite(s) & (s > 0)]
        if s.size:
            step = float(s.mean())
    rng = np.random.default_rng(seed)
    picks = rng.choice(flat.shape[0], size=chains, replace=flat.shape[0] < chains)
    points = [[np.asarray(d[i]) for d in draws] for i in picks]
    return WarmStart(points, inverse, step, int(tune), "the first posterior's draws"), ""
