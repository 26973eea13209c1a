"""The ``numpyro`` backend: NumPyro's NUTS kernel over the model's JAX log-density."""

from __future__ import annotations

from collections.abc import Callable

from bayesmmm.inference.base import MAX_TREE_DEPTH
from bayesmmm.inference.jax.program import JaxSampler

__all__ = ["SAMPLER", "numpyro_chain"]


def numpyro_chain(logp: Callable, tune: int, draws: int, target_accept: float, dense: bool) -> Callable:
    """``(key, position, data) → (positions, stats)`` for one chain: NumPyro's NUTS kernel
    (its windowed warm-up adapts the step size and, ``dense``, a dense mass matrix)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.hmc import hmc

    def potential_gen(*data):
        return lambda position: -logp(position, list(data))

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def run(key, position, data):
        state = init_kernel(
            position,
            num_warmup=tune,
            target_accept_prob=target_accept,
            max_tree_depth=MAX_TREE_DEPTH,
            dense_mass=dense,
            model_args=tuple(data),
            rng_key=key,
        )

        def one(state, _):
            state = sample_kernel(state, model_args=tuple(data))
            n = state.num_steps
            stats = {
                "diverging": state.diverging,
                "tree_depth": jnp.floor(jnp.log2(jnp.maximum(n, 1))).astype(jnp.int64) + 1,
                "step_size": state.adapt_state.step_size,
                "energy": state.energy,
                "n_steps": n,
                "lp": -state.potential_energy,
                "acceptance_rate": state.accept_prob,
            }
            return state, (state.z, stats)

        # one scan over warm-up and draws (the kernel adapts while i < tune): the NUTS
        # kernel is traced once, not twice; the warm-up part is dropped
        _, out = jax.lax.scan(one, state, None, length=tune + draws)
        return jax.tree.map(lambda x: x[tune:], out)

    return run


#: the registered ``numpyro`` backend's functions
SAMPLER = JaxSampler(numpyro_chain, "numpyro")
