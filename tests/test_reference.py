"""The refactor changes no number: outputs equal the reference values stored before it.

``tests/reference/`` holds two small models saved by the code before the model-core refactor
(issue 15) and ``reference.json``, the numbers that code computed from them (and from a fresh
fit with a fixed seed). See ``tests/reference/make_reference.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.reference.make_reference import NATIONAL, SAMPLER, geo_frame, national_frame, outputs

HERE = Path(__file__).resolve().parent / "reference"
REFERENCE = json.loads((HERE / "reference.json").read_text())


def assert_tree_close(actual, expected, path: str = "", rtol: float = 1e-9, atol: float = 1e-9) -> None:
    if isinstance(expected, dict):
        assert set(actual) >= set(expected), f"{path}: missing {sorted(set(expected) - set(actual))}"
        for key in expected:
            assert_tree_close(actual[key], expected[key], f"{path}/{key}", rtol, atol)
        return
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol, err_msg=path
    )


@pytest.mark.parametrize("name", ["national", "geo"])
def test_saved_models_of_the_previous_version_give_the_same_numbers(name):
    from bayesmmm import MMM

    mmm = MMM.load(HERE / f"{name}.nc")
    frame = national_frame() if name == "national" else geo_frame()
    assert_tree_close(outputs(mmm, frame, name == "geo"), REFERENCE[f"{name}_outputs"], name)


def test_same_seed_gives_the_same_posterior_as_before():
    from bayesmmm import MMM

    mmm = MMM(NATIONAL["data"], NATIONAL["model"])
    mmm.fit(national_frame(), SAMPLER)
    post = mmm.idata["posterior"]
    actual = {k: post[k].mean(("chain", "draw")).to_numpy() for k in REFERENCE["national_fit_means"]}
    assert_tree_close(actual, REFERENCE["national_fit_means"], "fit", rtol=1e-6, atol=1e-8)
