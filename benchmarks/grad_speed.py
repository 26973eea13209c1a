"""Cost of our model's log-density gradient: µs per gradient evaluation, per backend.

For each data set (simulated 4 × 104 and 10 × 260 with the benchmark model: geometric
adstock l_max 8, logistic saturation, yearly seasonality 2, linear trend; and the
simulated geo panels 50 geos × 104 weeks × 3 channels and 50 × 208 × 20 with their
experiments ``configs/geo_panel.yaml`` / ``configs/geo_panel_large.yaml``):

* JAX (the numpyro/blackjax backends): ``value_and_grad`` of the log-density, 2000
  evaluations inside one jitted ``fori_loop`` (no Python dispatch), float64 and float32;
* numba (nutpie's backend): PyMC's ``logp_dlogp`` function compiled in NUMBA mode,
  2000 calls from Python (includes a few µs of call overhead).

Gradient evaluations per effective sample come from ``bayesmmm bench`` results
(``ess_per_1k_grad``). Prints a markdown table. ``--device gpu`` times the JAX
columns on a GPU; ``--datasets`` picks data sets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

N = 2000


ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    # name: (scenario, experiment, overrides)
    "four_channel": ("four_channel", None, {"model.saturation": "logistic", "model.trend": "linear"}),
    "ten_channel": ("ten_channel", None, {}),
    "geo_50x104x3": (ROOT / "configs/scenario_geo_panel_50.yaml", ROOT / "configs/geo_panel.yaml", {}),
    "geo_50x208x20": (ROOT / "configs/scenario_geo_panel_large.yaml", ROOT / "configs/geo_panel_large.yaml", {}),
}


def models(names: list[str]):
    from bayesmmm import MMM
    from bayesmmm.config.experiment import load_experiment
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

    for name in names:
        scenario, experiment, overrides = DATASETS[name]
        if experiment is None:
            experiment = builtin_scenario(f"{scenario}_experiment")
            scenario = builtin_scenario(scenario)
        frame, _ = simulate(load_scenario(scenario))
        cfg = load_experiment(experiment, {"data.path": "unused.csv", **overrides})
        mmm = MMM(cfg.data, cfg.model)
        yield name, mmm.build_model(frame)


def jax_us_per_grad(model, precision: str, device: str = "cpu") -> float:
    from bayesmmm.inference.jax import runtime
    from bayesmmm.inference.jax.translate import jax_model

    jax = runtime.configure_jax()
    import jax.numpy as jnp

    with runtime.precision(jax, precision), jax.default_device(runtime.resolve_devices(device, jax)[0]):
        jm = jax_model(model)
        dtype = jnp.float32 if precision == "float32" else jnp.float64
        data = [jnp.asarray(v, dtype=dtype) for v in jm.data_values]
        position = [jnp.asarray(jm.initial_point[n], dtype=dtype) for n in jm.value_names]
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="where the JAX columns run")
    parser.add_argument("--no-numba", action="store_true", help="skip the numba column (slow to compile)")
    args = parser.parse_args()
    rows = [f"| data | JAX float64 ({args.device}) | JAX float32 ({args.device}) | numba (nutpie, cpu) |"]
    rows.append("|---|---|---|---|")
    for name, model in models(args.datasets):
        j64 = jax_us_per_grad(model, "float64", args.device)
        j32 = jax_us_per_grad(model, "float32", args.device)
        nb = "–"
        if not args.no_numba:
            try:
                nb = f"{numba_us_per_grad(model):.1f}"
            except Exception as exc:  # the numba path is PyMC-internal: report, do not fail
                nb = f"n/a ({type(exc).__name__})"
        rows.append(f"| {name} | {j64:.1f} | {j32:.1f} | {nb} |")
        print(rows[-1], flush=True)
    print("\nµs per log-density + gradient evaluation, one chain\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
