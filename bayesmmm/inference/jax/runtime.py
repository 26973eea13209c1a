"""JAX set up for sampling: host devices, 64-bit floats, the persistent compilation cache, devices.

JAX is imported only by these functions, when a JAX backend is used.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bayesmmm.config.experiment import SamplerConfig
from bayesmmm.inference.base import SamplerError, available_cores

__all__ = ["cache_dir", "configure_jax", "precision", "resolve_devices", "start", "warn_once"]

_CACHE_ENV = "BAYESMMM_JAX_CACHE"


def cache_dir() -> Path:
    """Persistent JAX compilation cache: ``$BAYESMMM_JAX_CACHE`` or ``~/.cache/bayesmmm/jax``."""
    env = os.environ.get(_CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bayesmmm" / "jax"


def _jax_backend_started() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # pragma: no cover - private API moved: assume started
        return True


def configure_jax(devices: int | None = None):
    """Import JAX set up for sampling; returns the ``jax`` module.

    Before JAX's backend first starts: unless the user set it in ``XLA_FLAGS``, ask
    XLA for ``devices`` host (CPU) devices (default: one per core;
    ``--xla_force_host_platform_device_count``) so that chains run in parallel on CPU. Every time: 64-bit floats on, the
    persistent compilation cache in :func:`cache_dir` on. PyMC's JAX module is
    imported after the backend started: on import it rewrites ``XLA_FLAGS`` (100
    devices), which then has no effect; the user's ``XLA_FLAGS`` are restored.
    """
    if not _jax_backend_started():
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            count = max(1, devices or available_cores())
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    user_flags = os.environ.get("XLA_FLAGS")
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        path = cache_dir()
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except OSError:  # read-only home: run without the persistent cache
        pass
    jax.devices()  # start the backend with the flags above
    import pymc.sampling.jax  # noqa: F401  (registers JAX versions of PyMC's Assert ops)

    if user_flags is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = user_flags
    return jax


def resolve_devices(device: str, jax) -> list:
    """JAX devices for ``sampler.device``: ``cpu``, ``gpu`` (error if none) or ``auto`` (GPU if any)."""
    if device in ("gpu", "auto"):
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as exc:
            gpus = []
            reason = str(exc).splitlines()[0]
        else:
            reason = ""
        if gpus:
            return list(gpus)
        if device == "gpu":
            raise SamplerError(
                "sampler.device is 'gpu' but JAX finds no GPU"
                + (f" ({reason})" if reason else "")
                + "; install JAX with CUDA (pip install -U 'jax[cuda12]') or set sampler.device: cpu"
            )
    return list(jax.devices("cpu"))


_WARNED: set[str] = set()

_WARNED: set[str] = set()


def warn_once(msg: str) -> None:
    """A RuntimeWarning, once per message and process."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


@contextmanager
def precision(jax, width: str) -> Iterator[None]:
    """Trace, compile and run in 32-bit floats when ``width == 'float32'``."""
    if width == "float32":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not available, and will be truncated.*")
            with jax.enable_x64(False):
                yield
    else:
        yield


def start(config: SamplerConfig, library: str):
    """JAX (configured: :func:`configure_jax`) and the backend's ``library`` imported; the ``jax`` module."""
    import importlib

    try:
        # one host device per chain, at least one per core: chains never run in lockstep
        # (a vmap over chains waits for the longest trajectory at every draw); the OS
        # shares the cores among the devices' threads
        jax = configure_jax(max(config.chains, config.cores or available_cores()))
        importlib.import_module(library)
    except ImportError as exc:
        raise SamplerError(
            f"the {config.backend} backend needs the JAX extra ({exc.name} is missing): pip install 'bayesmmm[jax]'"
        ) from exc
    return jax
