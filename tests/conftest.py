"""Shared fixtures: bundled data sets and small, seeded fits reused across tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TRANSFORMS = ROOT / "examples" / "custom_transform.py"

# Small but real MCMC: enough draws for stable means and 90% intervals.
SMALL_SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 400, "tune": 400, "seed": 11, "progressbar": False}


def pytest_configure(config):
    """Register the example's transforms first, so the contract tests cover them too."""
    from bayesmmm.config.experiment import load_plugins

    load_plugins([str(EXAMPLE_TRANSFORMS)])


@contextlib.contextmanager
def _exclusive(path: Path):
    """An exclusive lock file shared by the xdist workers (POSIX ``flock``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder shared by all xdist workers of this session (the parent of the workers' temp roots)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return root / f"shared-{name}"


def build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """Run ``build(folder)`` once per test session, whichever worker asks first; return the folder.

    Expensive fits are shared across xdist workers this way (the ``xdist_group`` marks are
    not honoured by pytest-xdist 3.8 under pytest 9). ``build`` must leave ``done`` last.
    """
    folder = shared_dir(tmp_path_factory, name)
    with _exclusive(folder.with_name(folder.name + ".lock")):
        if not (folder / "done").exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            build(folder)
            (folder / "done").write_text("ok")
    return folder


@pytest.fixture(scope="session")
def mmm_example_frame() -> pd.DataFrame:
    """PyMC-Marketing's example data set, bundled as ``bayesmmm.datasets`` ``pymc_marketing_example``."""
    from bayesmmm.datasets import load_dataset

    return load_dataset("pymc_marketing_example")


MMM_EXAMPLE_DATA = {
    "date_column": "date_week",
    "target_column": "y",
    "channel_columns": ["x1", "x2"],
    "control_columns": ["event_1", "event_2"],
}


@pytest.fixture(scope="session")
def fitted_example(mmm_example_frame, tmp_path_factory):
    """The PyMC-Marketing example fitted with geometric + logistic (its true forms).

    Fitted once per session and shared by the xdist workers through ``posterior.nc``.
    """
    from bayesmmm import MMM

    def build(folder: Path) -> None:
        mmm = MMM(
            MMM_EXAMPLE_DATA,
            {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
        )
        mmm.fit(mmm_example_frame, SMALL_SAMPLER)
        mmm.save(folder / "posterior.nc")

    return MMM.load(build_once(tmp_path_factory, "fitted_example", build) / "posterior.nc")


@pytest.fixture(scope="session")
def four_channel_fit(tmp_path_factory):
    """The built-in four-channel scenario fitted with its experiment (real MCMC); (RunResult, truth).

    Fitted once per session (shared by the xdist workers). Treat the run folder as
    read-only: tests that write into a run folder copy it first.
    """
    import json

    from bayesmmm import load_experiment, load_scenario, run_experiment
    from bayesmmm.workflows.experiment import load_run
    from bayesmmm.workflows.simulate import builtin_scenario, write_simulation

    def build(root: Path) -> None:
        data_path, _ = write_simulation(load_scenario(builtin_scenario("four_channel")), root / "data")
        config = load_experiment(
            builtin_scenario("four_channel_experiment"),
            {
                "data.path": str(data_path),
                "sampler.backend": "nutpie",  # the statistical checks below were calibrated on nutpie's draws
                "sampler.draws": 500,
                "sampler.tune": 600,
                "sampler.chains": 4,
                "sampler.seed": 5,
                "sampler.target_accept": 0.95,
                "sampler.progressbar": False,
            },
        )
        run_experiment(config, root / "run")

    root = build_once(tmp_path_factory, "four_channel", build)
    return load_run(root / "run"), json.loads((root / "data" / "truth.json").read_text())


HOLDOUT_WEEKS = 13


@pytest.fixture(scope="session")
def example_run(mmm_example_frame, tmp_path_factory):
    """A run folder (``bayesmmm fit`` layout) of the example without its last 13 weeks (kept for hold-out).

    Same model structure as ``fitted_example``, so a worker that fitted that one reuses its
    compiled sampler; small MCMC (2 chains × 400 draws). Built once per session (shared by
    the xdist workers): treat it as read-only.
    """
    from bayesmmm import run_experiment
    from bayesmmm.config.experiment import ExperimentConfig

    config = ExperimentConfig.model_validate(
        {
            "name": "example",
            "data": MMM_EXAMPLE_DATA,
            "model": {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
            "sampler": SMALL_SAMPLER,
            "diagnostics": {"min_ess_bulk": 50, "min_ess_tail": 50, "max_rhat": 1.1, "max_divergences": 5},
        }
    )

    def build(folder: Path) -> None:
        run_experiment(config, folder / "run", frame=mmm_example_frame.iloc[:-HOLDOUT_WEEKS].reset_index(drop=True))

    return build_once(tmp_path_factory, "example_run", build) / "run"


def compiled_components(mmm, point: dict, design, reference_media=None) -> Callable[[dict], dict]:
    """``mmm.components`` as ONE function of the parameters, compiled without C code (FAST_COMPILE: one
    cheap compile, not one ``.eval()`` compile per component and point): ``params -> {component: array}``."""
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    sym = {k: pt.tensor(name=k, shape=np.shape(v), dtype=str(np.asarray(v).dtype)) for k, v in point.items()}
    outs = mmm.components(sym, design, reference_media)
    keys = list(outs)
    fn = pytensor.function(list(sym.values()), [outs[k] for k in keys], on_unused_input="ignore", mode="FAST_COMPILE")
    return lambda params: dict(zip(keys, fn(*(np.asarray(params[k]) for k in sym)), strict=True))
