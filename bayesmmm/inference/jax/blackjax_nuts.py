"""The ``blackjax`` backend: BlackJAX's window adaptation and NUTS over the model's JAX log-density."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayesmmm.inference.base import MAX_TREE_DEPTH
from bayesmmm.inference.jax.program import JaxSampler

__all__ = ["SAMPLER", "blackjax_chain"]


def blackjax_chain(logp: Callable, tune: int, draws: int, target_accept: float, dense: bool) -> Callable:
    """``(key, position, data) → (positions, stats)`` for one chain: window adaptation (step
    size and, ``dense``, a dense mass matrix) + NUTS."""
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    def run(key, position, data):
        def density(position):
            return logp(position, data)

        warm_key, sample_key = jax.random.split(key)
        if tune > 0:
            adapt = blackjax.window_adaptation(
                blackjax.nuts,
                density,
                is_mass_matrix_diagonal=not dense,
                target_acceptance_rate=target_accept,
                adaptation_info_fn=get_filter_adapt_info_fn(),
            )
            (state, params), _ = adapt.run(warm_key, position, num_steps=tune)
        else:
            state = blackjax.nuts.init(position, density)
            size = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(position))
            params = {"step_size": jnp.asarray(0.1), "inverse_mass_matrix": jnp.eye(size) if dense else jnp.ones(size)}
        kernel = blackjax.nuts(density, max_num_doublings=MAX_TREE_DEPTH, **params).step
        step_size = params["step_size"]

        def one(state, k):
            state, info = kernel(k, state)
            stats = {
                "diverging": info.is_divergent,
                "tree_depth": info.num_trajectory_expansions,
                "step_size": step_size,
                "energy": info.energy,
                "n_steps": info.num_integration_steps,
                "lp": state.logdensity,
                "acceptance_rate": info.acceptance_rate,
            }
            return state, (state.position, stats)

        _, (positions, stats) = jax.lax.scan(one, state, jax.random.split(sample_key, draws))
        return positions, stats

    return run


def _bound(logp: Callable, data: list, position: list):
    return logp(position, data)


#: the registered ``blackjax`` backend's functions
SAMPLER = JaxSampler(blackjax_chain, "blackjax")
