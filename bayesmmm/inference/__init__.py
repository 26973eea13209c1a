"""Inference: NUTS sampler backends behind one function.

- :mod:`bayesmmm.inference.base`: the backend registry (:class:`Backend`, :class:`Capabilities`,
  :func:`register_backend`) and the harmonized statistics;
- :mod:`bayesmmm.inference.sampling`: :func:`sample`, :func:`precompile`, asking the registry;
- :mod:`bayesmmm.inference.pymc_backend`: PyMC's NUTS; :mod:`bayesmmm.inference.nutpie_backend`:
  nutpie's sampler call and the ``nutpie_numba`` backend;
- :mod:`bayesmmm.inference.jax`: the numpyro, blackjax and nutpie backends over the model's JAX log-density.
"""

from bayesmmm.inference.base import (
    SAMPLE_STATS,
    Backend,
    Capabilities,
    SamplerError,
    backend_names,
    backends,
    get_backend,
    harmonize_stats,
    register_backend,
)
from bayesmmm.inference.sampling import sample

__all__ = [
    "SAMPLE_STATS",
    "Backend",
    "Capabilities",
    "SamplerError",
    "backend_names",
    "backends",
    "get_backend",
    "harmonize_stats",
    "register_backend",
    "sample",
]
