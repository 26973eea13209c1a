"""Developer sessions: ``nox -s tests | slow | lint | demo | bench``.

Python 3.12 is found as ``python3.12``; on a pyenv machine run with ``PYENV_VERSION=3.12``.
"""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.12"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Default suite (no slow tests), on both cores."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-n", "2", *session.posargs)


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Long runs: full recovery studies."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Simulate, fit, diagnose and summarize the four-channel scenario."""
    session.install("-e", ".")
    session.run("bayesmmm", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Compile-time benchmark of the adstock formulations."""
    session.install("-e", ".")
    session.run("python", "benchmarks/compile_adstock.py", *session.posargs)
