"""Experiment configuration: pydantic models with ``extra="forbid"`` that round-trip to and from YAML.

The schema lives in :mod:`bayesmmm.config.experiment`; this package re-exports it.
"""

from bayesmmm.config.experiment import *  # noqa: F403
from bayesmmm.config.experiment import __all__, format_validation_error, set_dotted, yaml_problem  # noqa: F401
