"""The ``numpyro`` backend: NumPyro's NUTS kernel over the model's JAX log-density."""

from __future__ import annotations

from collections.abc import Callable

from bayesmmm.inference.base import MAX_TREE_DEPTH
from bayesmmm.inference.jax.program import JaxSampler

__all__ = ["SAMPLER", "numpyro_chain"]


def numpyro_chain(
    logp: Callable, tune: int, draws: int, target_accept: float, dense: bool, warm: bool = False
) -> Callable:
    """``(key, position, data) → (positions, stats)`` for one chain: NumPyro's NUTS kernel
    (its windowed warm-up adapts the step size and, ``dense``, a dense mass matrix).

    ``warm``: ``(key, position, data, inverse_mass_matrix, step_size) → (positions, stats)``: the
    given mass matrix is kept and the ``tune`` warm-up iterations adapt only the step size, by
    NumPyro's dual averaging started from ``step_size`` (as its own warm-up starts each window,
    ``log(10 ε)`` as the centre), in one window: NumPyro's windowed schedule would restart the step
    size for the last tenth of a short warm-up, meant for a mass matrix that just changed; here
    none does. The last warm-up iteration sets the step size to the dual-averaging mean."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.hmc import hmc
    from numpyro.infer.hmc_util import dual_averaging

    def potential_gen(*data):
        return lambda position: -logp(position, list(data))

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def stats_of(state, step_size):
        n = state.num_steps
        return {
            "diverging": state.diverging,
            "tree_depth": jnp.floor(jnp.log2(jnp.maximum(n, 1))).astype(jnp.int64) + 1,
            "step_size": step_size,
            "energy": state.energy,
            "n_steps": n,
            "lp": -state.potential_energy,
            "acceptance_rate": state.accept_prob,
        }

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
            return state, (state.z, stats_of(state, state.adapt_state.step_size))

        # one scan over warm-up and draws (the kernel adapts while i < tune): the NUTS
        # kernel is traced once, not twice; the warm-up part is dropped
        _, out = jax.lax.scan(one, state, None, length=tune + draws)
        return jax.tree.map(lambda x: x[tune:], out)

    def run_warm(key, position, data, inverse_mass_matrix, step_size):
        ss_init, ss_update = dual_averaging()
        state = init_kernel(
            position,
            num_warmup=0,
            step_size=step_size,
            inverse_mass_matrix=inverse_mass_matrix,
            adapt_step_size=False,
            adapt_mass_matrix=False,
            target_accept_prob=target_accept,
            max_tree_depth=MAX_TREE_DEPTH,
            dense_mass=dense,
            model_args=tuple(data),
            rng_key=key,
        )
        averaging = ss_init(jnp.log(10.0 * state.adapt_state.step_size))

        def one(carry, i):
            state, averaging = carry
            used = state.adapt_state.step_size
            state = sample_kernel(state, model_args=tuple(data))
            adapting = i < tune
            updated = ss_update(target_accept - state.accept_prob, averaging)
            averaging = jax.tree.map(lambda a, b: jnp.where(adapting, a, b), updated, averaging)
            log_step = jnp.where(i < tune - 1, averaging[0], averaging[1])  # the mean once warm-up ends
            finfo = jnp.finfo(jnp.result_type(used))
            step = jnp.where(adapting, jnp.clip(jnp.exp(log_step), finfo.tiny, finfo.max), used)
            state = state._replace(adapt_state=state.adapt_state._replace(step_size=step))
            return (state, averaging), (state.z, stats_of(state, used))

        _, out = jax.lax.scan(one, (state, averaging), jnp.arange(tune + draws))
        return jax.tree.map(lambda x: x[tune:], out)

    return run_warm if warm else run


#: the registered ``numpyro`` backend's functions
SAMPLER = JaxSampler(numpyro_chain, "numpyro")
