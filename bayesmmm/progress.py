"""How much the commands say: verbosity (``-q`` / ``-v``) and progress bars on long steps.

The command line sets the verbosity once (:func:`set_verbosity`); library code asks
:func:`is_quiet` and wraps its long loops in :func:`progress`, a ``tqdm`` bar on stderr that
is off when quiet and when stderr is not a terminal (logs and captured output stay clean).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["is_quiet", "progress", "set_verbosity", "verbosity"]

QUIET, DEFAULT, VERBOSE, DEBUG = -1, 0, 1, 2

_STATE = {"verbosity": DEFAULT}
_SAVED_LEVELS: dict[str, int] = {}  # the loggers' levels before -q / -v changed them

# the libraries whose log messages -q silences and -v / -vv turn up
_LIBRARY_LOGGERS = ("pymc", "pytensor", "jax", "numpyro", "nutpie", "distributed", "mlflow")


def set_verbosity(level: int) -> None:
    """Set how much is printed: -1 quiet, 0 default, 1 verbose, 2 debug.

    Parameters
    ----------
    level : quiet (-1) prints errors and warnings only, no progress bars; verbose (1)
        shows INFO log messages of bayesmmm and the libraries (PyMC, PyTensor, JAX, ...);
        debug (2) shows their DEBUG messages too. The default (0) restores the levels the
        loggers had before.
    """
    level = max(QUIET, min(DEBUG, int(level)))
    _STATE["verbosity"] = level
    names = ("bayesmmm", *_LIBRARY_LOGGERS)
    if level == DEFAULT:
        for name, saved in _SAVED_LEVELS.items():
            logging.getLogger(name).setLevel(saved)
        _SAVED_LEVELS.clear()
        return
    log_level = {QUIET: logging.WARNING, VERBOSE: logging.INFO, DEBUG: logging.DEBUG}[level]
    if level > DEFAULT and not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    for name in names:
        logger = logging.getLogger(name)
        _SAVED_LEVELS.setdefault(name, logger.level)
        logger.setLevel(log_level)


def verbosity() -> int:
    """The current verbosity: -1 quiet, 0 default, 1 verbose, 2 debug."""
    return _STATE["verbosity"]


def is_quiet() -> bool:
    """Whether ``-q`` was given: print errors and warnings only."""
    return _STATE["verbosity"] <= QUIET


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it"):
    """A progress bar on stderr over ``iterable`` (or updated by hand up to ``total``).

    Off when quiet and when stderr is not a terminal. Use as an iterator or as a context
    manager with ``.update(n)``; ``.write(msg)`` prints a line without breaking the bar.
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=True if is_quiet() else None,  # None: tqdm turns itself off on a non-terminal
        leave=False,
        dynamic_ncols=True,
    )
