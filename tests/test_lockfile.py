"""The service image's pinned dependencies (requirements-serve.lock) cover what pyproject asks for."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements-serve.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line, f"requirements-serve.lock: {line!r} is not pinned with =="
        name, version = line.split("==", 1)
        pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def test_every_core_and_serve_requirement_is_pinned_within_its_range():
    """The image installs the lock, then bayesmmm with --no-deps: a requirement missing from the lock, or
    pinned outside pyproject's range, would be missing or wrong in the image only."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    assert "bayesmmm" not in pins  # the image installs the package itself
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["serve"]]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} ({req}) is not pinned in requirements-serve.lock: regenerate it"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name} {pins[name]} outside {req}"
