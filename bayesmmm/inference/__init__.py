"""Inference: NUTS sampler backends behind one function.

- :mod:`bayesmmm.inference.sampling`: :func:`sample`, the backend dispatch and harmonized statistics;
- :mod:`bayesmmm.inference.jax_backends`: the numpyro and blackjax backends over the model's JAX log-density.
"""

from bayesmmm.inference.sampling import BACKENDS, JAX_BACKENDS, SAMPLE_STATS, SamplerError, harmonize_stats, sample

__all__ = ["BACKENDS", "JAX_BACKENDS", "SAMPLE_STATS", "SamplerError", "harmonize_stats", "sample"]
