"""NUTS backends behind one function; every backend returns the same DataTree layout."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from bayesmmm.config import SamplerConfig

__all__ = ["BACKENDS", "SamplerError", "sample"]

BACKENDS = ("nutpie", "pymc", "numpyro")


class SamplerError(RuntimeError):
    """A sampler backend is unavailable or failed."""


def _cores(config: SamplerConfig) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(config.chains, config.cores or available))


def _progress(config: SamplerConfig) -> bool:
    return sys.stderr.isatty() if config.progressbar is None else config.progressbar


def sample(model, config: SamplerConfig) -> tuple[Any, dict[str, float]]:
    """Run NUTS on a PyMC ``model``.

    Returns
    -------
    idata : DataTree with ``posterior`` and ``sample_stats`` (warm-up discarded).
    timings : ``compile_s``, ``sample_s`` (seconds; compile is 0 where the backend
        does not separate it), ``total_s``.
    """
    backend = config.backend
    if backend not in BACKENDS:
        raise SamplerError(f"sampler backend {backend!r} is not available yet; choose one of {', '.join(BACKENDS)}")
    start = time.perf_counter()
    if backend == "nutpie":
        try:
            import nutpie
        except ImportError as exc:  # pragma: no cover - nutpie is a core dependency
            raise SamplerError("nutpie is not installed: pip install nutpie, or use --sampler pymc") from exc
        compiled = nutpie.compile_pymc_model(model)
        compiled_at = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=_cores(config),
            seed=config.seed,
            target_accept=config.target_accept,
            save_warmup=False,
            progress_bar=_progress(config),
        )
        compile_s = compiled_at - start
    else:
        import pymc as pm

        if backend == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError as exc:
                raise SamplerError("the numpyro backend needs the JAX extra: pip install 'bayesmmm[jax]'") from exc
        idata = pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=_cores(config),
            random_seed=config.seed,
            target_accept=config.target_accept,
            progressbar=_progress(config),
            nuts_sampler=backend,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": False},
            model=model,
        )
        compile_s = 0.0
    total = time.perf_counter() - start
    return idata, {
        "compile_s": round(compile_s, 3),
        "sample_s": round(total - compile_s, 3),
        "total_s": round(total, 3),
    }
