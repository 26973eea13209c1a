"""Shared fixtures: data paths and small, seeded fits reused across tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TRANSFORMS = ROOT / "examples" / "custom_transform.py"
SHARED = ROOT.parent / "shared" / "data"
MMM_EXAMPLE = SHARED / "pymc-marketing" / "mmm_example.csv"

# Small but real MCMC: enough draws for stable means and 90% intervals.
SMALL_SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 400, "tune": 400, "seed": 11, "progressbar": False}


def pytest_configure(config):
    """Register the example's transforms first, so the contract tests cover them too."""
    from bayesmmm.config import load_plugins

    load_plugins([str(EXAMPLE_TRANSFORMS)])


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data set {path} is absent (CI has ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def mmm_example_frame() -> pd.DataFrame:
    return pd.read_csv(require_shared(MMM_EXAMPLE))


MMM_EXAMPLE_DATA = {
    "date_column": "date_week",
    "target_column": "y",
    "channel_columns": ["x1", "x2"],
    "control_columns": ["event_1", "event_2"],
}


@pytest.fixture(scope="session")
def fitted_example(mmm_example_frame):
    """The PyMC-Marketing example fitted with geometric + logistic (its true forms)."""
    from bayesmmm import MMM

    mmm = MMM(
        MMM_EXAMPLE_DATA,
        {"adstock": {"name": "geometric", "l_max": 8}, "saturation": "logistic", "trend": "linear"},
    )
    mmm.fit(mmm_example_frame, SMALL_SAMPLER)
    return mmm
