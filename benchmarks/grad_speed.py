"""Cost of our model's log-density gradient: µs per gradient evaluation, per backend.

For each data set (simulated 4 × 104 and 10 × 260, the benchmark model: geometric
adstock l_max 8, logistic saturation, yearly seasonality 2, linear trend):

* JAX (the numpyro/blackjax backends): ``value_and_grad`` of the log-density, 2000
  evaluations inside one jitted ``fori_loop`` (no Python dispatch), float64 and float32;
* numba (nutpie's backend): PyMC's ``logp_dlogp`` function compiled in NUMBA mode,
  2000 calls from Python (includes a few µs of call overhead).

Gradient evaluations per effective sample come from ``bayesmmm bench`` results
(``ess_per_1k_grad``). Prints a markdown table.
"""

from __future__ import annotations

import time

import numpy as np

N = 2000


def models():
    from bayesmmm import MMM
    from bayesmmm.config import load_experiment
    from bayesmmm.simulate import builtin_scenario, load_scenario, simulate

    for name, overrides in (
        ("four_channel", {"model.saturation": "logistic", "model.trend": "linear"}),
        ("ten_channel", {}),
    ):
        frame, _ = simulate(load_scenario(builtin_scenario(name)))
        cfg = load_experiment(builtin_scenario(f"{name}_experiment"), {"data.path": "unused.csv", **overrides})
        mmm = MMM(cfg.data, cfg.model)
        yield name, mmm.build_model(frame)


def jax_us_per_grad(model, precision: str) -> float:
    from bayesmmm.sampling_jax import _precision, configure_jax, jax_model

    jax = configure_jax()
    import jax.numpy as jnp

    with _precision(jax, precision):
        jm = jax_model(model)
        dtype = jnp.float32 if precision == "float32" else jnp.float64
        data = [jnp.asarray(v, dtype=dtype) for v in jm.data_values]
        ip = model.initial_point()
        position = [jnp.asarray(ip[n], dtype=dtype) for n in jm.value_names]
        vg = jax.value_and_grad(lambda p: jm.logp(p, data))

        @jax.jit
        def loop(position):
            def body(i, carry):
                value, grads = vg([p + 1e-9 * i for p in position])
                return carry + value + sum(g.sum() for g in grads)

            return jax.lax.fori_loop(0, N, body, jnp.zeros((), dtype))

        loop(position).block_until_ready()
        start = time.perf_counter()
        loop(position).block_until_ready()
        return (time.perf_counter() - start) / N * 1e6


def numba_us_per_grad(model) -> float:
    fn = model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
    fn.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    fn(x)
    start = time.perf_counter()
    for _ in range(N):
        fn(x)
    return (time.perf_counter() - start) / N * 1e6


def main() -> None:
    rows = ["| data | JAX float64 | JAX float32 | numba (nutpie) |", "|---|---|---|---|"]
    for name, model in models():
        j64 = jax_us_per_grad(model, "float64")
        j32 = jax_us_per_grad(model, "float32")
        try:
            nb = f"{numba_us_per_grad(model):.1f}"
        except Exception as exc:  # the numba path is PyMC-internal: report, do not fail
            nb = f"n/a ({type(exc).__name__})"
        rows.append(f"| {name} | {j64:.1f} | {j32:.1f} | {nb} |")
        print(rows[-1], flush=True)
    print("\nµs per log-density + gradient evaluation, one chain, one core\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
