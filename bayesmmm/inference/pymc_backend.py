"""The ``pymc`` backend: PyMC's own NUTS."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import cores, get_backend, progress, timings

__all__ = ["sample_pymc"]


def sample_pymc(
    model, config: SamplerConfig, cache_key: str | None = None, prepare: Callable[[], Any] | None = None
) -> tuple[Any, dict[str, float]]:
    """Sample with ``pm.sample`` (compilation is not timed apart: ``compile_s`` is 0)."""
    import numpy as np
    import pymc as pm

    start = time.perf_counter()
    dim = sum(int(np.size(v)) for v in model.initial_point().values())
    dense = get_backend(config.backend).mass_matrix(config.mass_matrix, dim) == "dense"
    # PyMC's own default runs cpu_count() // 2 chains at a time; ours: up to the cores
    idata = pm.sample(
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        cores=cores(config),
        random_seed=config.seed,
        target_accept=config.target_accept,
        init="jitter+adapt_full" if dense else "jitter+adapt_diag",
        progressbar=progress(config),
        nuts_sampler="pymc",
        # forking a process that runs JAX threads can deadlock: start workers afresh then
        mp_ctx="forkserver" if "jax" in sys.modules else None,
        compute_convergence_checks=False,
        idata_kwargs={"log_likelihood": False},
        model=model,
    )
    return idata, timings(start, start, reused=False)  # PyMC compiles inside pm.sample: no compile_s of its own
