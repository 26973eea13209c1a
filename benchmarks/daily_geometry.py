"""Why NUTS takes long trees on daily data: sampler statistics and the posterior's geometry.

Builds the model of ``benchmarks/daily_speed.py`` (``--days`` days × ``--channels`` channels) and
runs NumPyro's NUTS directly on the model's JAX log-density (the ``numpyro`` backend's own
function), so that the adapted inverse mass matrix and the unconstrained draws are at hand.
Prints: leapfrog steps per draw, tree depth, step size, divergences; the posterior sd of each
unconstrained coordinate; the strongest posterior correlations; and the condition number of the
posterior correlation matrix (what a dense metric has to undo; a diagonal one cannot).

``--model KEY=VALUE`` overrides the model config (YAML values), e.g. ``--model weekly_seasonality=0``
or ``--model center_media=false``, to see which part of the model drives the trees.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/daily_geometry.py --days 365 --chains 2 --draws 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daily_speed import simulate_daily


def build(days: int, channels: int, l_max: int, overrides: dict):
    from bayesmmm import MMM

    frame = simulate_daily(days, channels, l_max=l_max)
    model_cfg = {"adstock": {"name": "geometric", "l_max": l_max}, "saturation": "logistic", "yearly_seasonality": 2}
    model_cfg.update(overrides)
    mmm = MMM({"channel_columns": [f"ch{c}" for c in range(channels)], "target_column": "sales"}, model_cfg)
    return mmm, mmm.build_model(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--l-max", type=int, default=28)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--dense", action="store_true", help="dense mass matrix (the default for <= 200 parameters)")
    parser.add_argument("--diag", action="store_true", help="diagonal mass matrix")
    parser.add_argument("--model", action="append", default=[], help="KEY=VALUE model-config override (YAML value)")
    parser.add_argument(
        "--precondition",
        choices=["none", "diag", "dense"],
        default="none",
        help="sample θ = L u: L = diag(Laplace sd) or the Laplace covariance's factor",
    )
    parser.add_argument("--target-accept", type=float, default=0.95, help="as sampler.target_accept (default 0.95)")
    parser.add_argument("--top", type=int, default=12, help="how many correlations to print")
    args = parser.parse_args()
    overrides = {}
    for item in args.model:
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)

    from bayesmmm.inference.jax import runtime

    runtime.configure_jax()
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer import MCMC, NUTS

    from bayesmmm.inference.jax.translate import jax_model

    _mmm, model = build(args.days, args.channels, args.l_max, overrides)
    jm = jax_model(model)
    data = [jnp.asarray(v) for v in jm.data_values]
    init = [jnp.asarray(jm.initial_point[k]) for k in jm.value_names]
    flat0, unravel = ravel_pytree(init)
    names = []
    for name, shape in zip(jm.value_names, jm.value_shapes, strict=True):
        size = int(np.prod(shape))
        names += [name] if size == 1 and not shape else [f"{name}[{i}]" for i in range(size)]

    factor = np.eye(len(flat0))
    if args.precondition != "none":
        from bayesmmm.inference.jax.precondition import laplace_hessian, metric_factor

        t0 = time.perf_counter()
        hess = jax.jit(lambda p, d: laplace_hessian(jm.logp, p, d))(init, data)
        factor = np.asarray(metric_factor(hess, args.precondition == "dense"))
        factor = factor if factor.ndim == 2 else np.diag(factor)
        print(f"Laplace {args.precondition} factor in {time.perf_counter() - t0:.1f} s (compile included)")
    scale = np.sqrt((factor**2).sum(axis=1))
    factor_j = jnp.asarray(factor)

    def potential(u):
        return -jm.logp(unravel(factor_j @ u), data)

    dense = not args.diag
    kernel = NUTS(potential_fn=potential, dense_mass=dense, target_accept_prob=args.target_accept, max_tree_depth=10)
    mcmc = MCMC(
        kernel,
        num_warmup=args.tune,
        num_samples=args.draws,
        num_chains=args.chains,
        chain_method="sequential",
        progress_bar=False,
    )
    fields = ("num_steps", "diverging", "adapt_state.step_size", "adapt_state.inverse_mass_matrix")
    start = time.perf_counter()
    mcmc.warmup(
        jax.random.key(1),
        init_params=jnp.tile(jnp.linalg.solve(factor_j, flat0), (args.chains, 1)),
        extra_fields=("num_steps",),
        collect_warmup=True,
    )
    warm_steps = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"])
    warm_wall = time.perf_counter() - start
    mcmc.run(jax.random.key(2), extra_fields=fields)
    wall = time.perf_counter() - start
    extra = mcmc.get_extra_fields(group_by_chain=True)
    z = np.asarray(mcmc.get_samples(group_by_chain=True)) @ factor.T  # (chain, draw, dim), θ = L u
    steps = np.asarray(extra["num_steps"])
    div = np.asarray(extra["diverging"])
    step_size = np.asarray(extra["adapt_state.step_size"])[:, -1]
    inv_mass = np.asarray(extra["adapt_state.inverse_mass_matrix"])[:, -1]
    print(f"model overrides: {overrides or 'none'}; {'dense' if dense else 'diag'} mass matrix; dim {len(names)}")
    blocks = np.array_split(warm_steps.mean(axis=0), 6)
    print(
        f"warm-up: {warm_wall:.1f} s, leapfrog steps per iteration {warm_steps.mean():.1f} (by sixths of the "
        f"warm-up: {[round(float(b.mean())) for b in blocks]}); share of all gradients spent in warm-up "
        f"{warm_steps.sum() / (warm_steps.sum() + steps.sum()):.2f}"
    )
    print(
        f"wall {wall:.1f} s; leapfrog steps per draw: mean {steps.mean():.1f}, median {np.median(steps):.0f}, "
        f"per chain {np.round(steps.mean(axis=1), 1).tolist()}; step size {np.round(step_size, 4).tolist()}; "
        f"divergences {int(div.sum())}"
    )
    flat = z.reshape(-1, z.shape[-1])
    sd = flat.std(axis=0)
    corr = np.corrcoef(flat, rowvar=False)
    eig = np.linalg.eigvalsh(corr)
    cov_eig = np.linalg.eigvalsh(np.cov(flat, rowvar=False))
    print(
        f"posterior correlation matrix: condition number {eig[-1] / eig[0]:.3g} (smallest eigenvalues "
        f"{np.round(eig[:4], 4).tolist()}); covariance condition number {cov_eig[-1] / cov_eig[0]:.3g}"
    )
    diag_mass = np.diagonal(inv_mass, axis1=-2, axis2=-1) if inv_mass.ndim == 3 else inv_mass
    order = np.argsort(sd)
    print("unconstrained posterior sd (smallest / largest), adapted inverse-mass diagonal on u (chain 0), scale:")
    for i in [*order[:6], *order[-6:]]:
        print(f"  {names[i]:28s} sd {sd[i]:.4g}  inv-mass (u) {diag_mass[0][i]:.4g}  Laplace scale {scale[i]:.4g}")
    iu = np.triu_indices(len(names), 1)
    pairs = sorted(zip(np.abs(corr[iu]), iu[0], iu[1], strict=True), reverse=True)[: args.top]
    print("strongest posterior correlations (unconstrained):")
    for _r, i, j in pairs:
        print(f"  {names[i]:28s} {names[j]:28s} {corr[i, j]:+.3f}")
    white = (flat - flat.mean(axis=0)) / sd
    skew = (white**3).mean(axis=0)
    kurt = (white**4).mean(axis=0) - 3
    print("least Gaussian marginals (|skewness| + |excess kurtosis|):")
    for i in np.argsort(-(np.abs(skew) + np.abs(kurt)))[:8]:
        print(f"  {names[i]:28s} skew {skew[i]:+.2f}  kurt {kurt[i]:+.2f}")
    _vals, vecs = np.linalg.eigh(corr)
    print("weakest direction of the correlation matrix (largest loadings):")
    v = vecs[:, 0]
    for i in np.argsort(-np.abs(v))[:8]:
        print(f"  {names[i]:28s} {v[i]:+.3f}")


if __name__ == "__main__":
    main()
