"""The ``bayesmmm`` command line.

- :mod:`bayesmmm.cli.main`: the typer app, shared options and error handling, and the model commands
  (demo, simulate, fit, predict, select, compare, sweep, bench, optimize, report);
- :mod:`bayesmmm.cli.serve`: the service and registry commands (serve, register, models,
  compare-models, promote), added to the same app here (:func:`bayesmmm.cli.serve.add_commands`);
- :mod:`bayesmmm.cli.loop`: the refresh / validate loop (refresh, validate), added the same way.
- :mod:`bayesmmm.cli.design`: the experiment designer (design), added the same way.

The console script is :func:`run` (the app, then a quick exit; not named ``main``, which is the
submodule).
"""

from bayesmmm.cli import design, loop
from bayesmmm.cli.main import app
from bayesmmm.cli.serve import add_commands

__all__ = ["app", "run"]

add_commands(app)
loop.add_commands(app)
design.add_commands(app)


def run() -> None:
    """Console-script entry point: run the app, then exit without the interpreter's teardown.

    Once a command has finished, freeing JAX's and XLA's runtime (and every module's objects)
    at interpreter shutdown took about a second of every fitting command. The exit handlers
    (``atexit``: logging, MLflow, ...) still run and the standard streams are flushed; the exit
    status is the command's. If a non-daemon thread is still running, the exit is the normal
    one, which waits for it.
    """
    import atexit
    import contextlib
    import os
    import sys
    import threading

    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing left to flush
            stream.flush()
    os._exit(code)
