"""Developer sessions: ``nox -s tests | tests_latest | lock | slow | lint | demo | bench | docs | docs_serve``.

Python 3.12 is found as ``python3.12``; on a pyenv machine run with ``PYENV_VERSION=3.12``.

``tests`` (and CI, and the README's commands) install from ``constraints.txt``, the committed lock, so
a run is reproducible; ``tests_latest`` installs the newest releases the ranges in pyproject.toml allow,
so an upstream release that breaks bayesmmm is seen here before users see it; ``lock`` regenerates
``constraints.txt`` (then run ``tests`` on it and commit it).
"""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.12"
#: the lock tool, pinned so that a regenerated lock depends only on what PyPI holds
UV = "uv==0.13.9"
CONSTRAINTS = "constraints.txt"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Default suite (no slow tests), on both cores, with the locked dependencies."""
    session.install("-c", CONSTRAINTS, "-e", ".[dev]")
    session.run("pytest", "-n", "2", *session.posargs)


@nox.session(python=PYTHON, reuse_venv=False)
def tests_latest(session: nox.Session) -> None:
    """Default suite on the newest releases pyproject.toml allows (no lock, a fresh virtualenv)."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[dev]")
    session.run("pip", "list", "--format", "freeze", silent=False)
    session.run("pytest", "-n", "2", *session.posargs)


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """Resolve every extra of pyproject.toml for Python 3.12 on all platforms into ``constraints.txt``."""
    session.install(UV)
    session.run(
        "uv", "pip", "compile", "pyproject.toml", "--all-extras", "--universal", "--python-version", PYTHON,
        "--upgrade", "--quiet", "--custom-compile-command", "nox -s lock", "-o", CONSTRAINTS,
    )  # fmt: skip


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


DOCS_BUILD = "build/docs"


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation (docs/ -> build/docs); any warning is an error."""
    session.install("-c", CONSTRAINTS, "-e", ".[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", DOCS_BUILD, *session.posargs)


@nox.session(python=PYTHON)
def docs_serve(session: nox.Session) -> None:
    """Build the documentation, then serve it on http://127.0.0.1:8000 (``-- PORT`` for another port)."""
    session.install("-c", CONSTRAINTS, "-e", ".[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", DOCS_BUILD)
    port = session.posargs[0] if session.posargs else "8000"
    session.run("python", "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", DOCS_BUILD)


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
    _with_peer_env(session, "benchmarks/peers.py")


@nox.session(python=PYTHON)
def bench_peers_calibration(session: nox.Session) -> None:
    """Lift-test calibration, bayesmmm vs PyMC-Marketing, one error table (benchmarks/peers_calibration.py).

    Like ``bench_peers``: this session's virtualenv holds PyMC-Marketing (its
    ``add_lift_test_measurements``), our fits run in the interpreter that runs nox. Extra
    arguments go to the script, e.g. ``nox -s bench_peers_calibration -- -k 10``.
    """
    _with_peer_env(session, "benchmarks/peers_calibration.py")


@nox.session(python=PYTHON)
def bench_peers_tvm(session: nox.Session) -> None:
    """Time-varying media, bayesmmm vs PyMC-Marketing's ``time_varying_media`` (benchmarks/peers_tvm.py).

    Like ``bench_peers``: this session's virtualenv holds PyMC-Marketing, our fits run in the
    interpreter that runs nox. Extra arguments go to the script, e.g.
    ``nox -s bench_peers_tvm -- --seeds 3``.
    """
    _with_peer_env(session, "benchmarks/peers_tvm.py")


#: Google Meridian, pinned: the side-by-side figures in benchmarks/README.md were measured with it
MERIDIAN = "google-meridian[jax]==2.1.0"


@nox.session(python=PYTHON)
def bench_meridian(session: nox.Session) -> None:
    """bayesmmm vs Google Meridian on Meridian's data, ROI per channel (benchmarks/meridian_side_by_side.py).

    This session's own virtualenv holds Meridian (from PyPI, with its JAX backend); Meridian's
    fits run there (benchmarks/meridian_fit.py, which does not import bayesmmm), ours in the
    interpreter that runs nox, through the ``bayesmmm fit`` CLI. Extra arguments go to the
    script, e.g. ``nox -s bench_meridian -- --datasets national --only meridian``.
    """
    _with_meridian_env(session, "benchmarks/meridian_side_by_side.py")


@nox.session(python=PYTHON)
def bench_meridian_rf(session: nox.Session) -> None:
    """bayesmmm vs Google Meridian on simulated reach & frequency data with known truth (benchmarks/meridian_rf.py).

    The scenario ``reach_frequency`` per seed; ROI per channel and the R&F channel's optimal frequency
    from both libraries against the truth. Meridian in this session's virtualenv, as ``bench_meridian``;
    extra arguments go to the script, e.g. ``nox -s bench_meridian_rf -- --seeds 2700 --only meridian``.
    """
    _with_meridian_env(session, "benchmarks/meridian_rf.py")


def _with_meridian_env(session: nox.Session, script: str) -> None:
    """Install Meridian in the session's virtualenv; run ``script`` here with ``--meridian-python``."""
    import sys
    from pathlib import Path

    session.install(MERIDIAN)
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    meridian_python = Path(session.virtualenv.location) / bindir / "python"
    session.run(sys.executable, script, "--meridian-python", str(meridian_python), *session.posargs, external=True)


def _with_peer_env(session: nox.Session, script: str) -> None:
    """Install PyMC-Marketing in the session's virtualenv; run ``script`` here with ``--peer-python``."""
    import sys
    from pathlib import Path

    session.install("pymc-marketing", "numpyro", "nutpie")
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    peer_python = Path(session.virtualenv.location) / bindir / "python"
    session.run(sys.executable, script, "--peer-python", str(peer_python), *session.posargs, external=True)
