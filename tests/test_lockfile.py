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


def test_the_ci_lock_pins_every_requirement_of_every_extra_within_its_range():
    """constraints.txt (``nox -s lock``) is what CI and the README's commands install from: every
    requirement of pyproject.toml, core and every extra, is pinned there inside pyproject's range, so a
    fresh machine gets the releases the suite was run on (``nox -s tests_latest`` tries the newest)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, set[Version]] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)  # name==version, with a platform marker where the resolution needs one
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not pinned with =="
        pins.setdefault(canonicalize_name(req.name), set()).add(Version(spec.version))
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        wanted += [Requirement(r) for r in extra]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} ({req}) is not in constraints.txt: run `nox -s lock`"
        for version in pins[name]:
            assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} outside {req}"
    for path in ("README.md", ".ci/run"):
        text = (ROOT / path).read_text()
        assert "-c constraints.txt" in text, f"{path} must install with -c constraints.txt"


def test_the_images_import_check_names_modules_that_exist():
    """The Dockerfile's build step imports the service's modules to fail the build early; each module it
    names must exist (it named ``bayesmmm.service`` after that package had become ``bayesmmm.serving``)."""
    import importlib
    import re

    text = (ROOT / "Dockerfile").read_text()
    checks = re.findall(r'python -c "import ([\w., ]+)"', text)
    assert checks, "the Dockerfile no longer checks its imports"
    for names in checks:
        for name in names.split(","):
            importlib.import_module(name.strip())
