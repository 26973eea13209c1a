"""The ``bayesmmm`` command line.

- :mod:`bayesmmm.cli.main`: the typer app, shared options and error handling, and the model commands
  (demo, simulate, fit, predict, select, compare, sweep, bench, optimize, report);
- :mod:`bayesmmm.cli.serve`: the service and registry commands (serve, register, models,
  compare-models, promote), added to the same app.
"""

from bayesmmm.cli import serve as _serve_commands  # noqa: F401  (adds its commands to the app)
from bayesmmm.cli.main import app

__all__ = ["app"]
