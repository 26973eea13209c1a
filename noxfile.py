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


@nox.session(python=PYTHON)
def bench_peers(session: nox.Session) -> None:
    """bayesmmm vs PyMC-Marketing's MMM, interleaved, side by side (benchmarks/peers.py).

    This session's own virtualenv holds PyMC-Marketing (and its sampler backends); our
    fits run in the interpreter that runs nox (the project's dev environment, where
    bayesmmm and its JAX backends are installed). Extra arguments go to the script, e.g.
    ``nox -s bench_peers -- --datasets four_channel --reps 1``.
    """
    import sys
    from pathlib import Path

    session.install("pymc-marketing", "numpyro", "nutpie")
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    peer_python = Path(session.virtualenv.location) / bindir / "python"
    session.run(
        sys.executable,
        "benchmarks/peers.py",
        "--peer-python",
        str(peer_python),
        *session.posargs,
        external=True,
    )
