"""Decisions: response of spend flights, marginal ROAS, response curves, budget optimization, insights.

- :mod:`bayesmmm.decisions.response`: :class:`FlightResponse`, response curves, marginal ROAS;
- :mod:`bayesmmm.decisions.optimizer`: :func:`optimize_budget`, scenarios;
- :mod:`bayesmmm.decisions.insights`: the channel table and findings.
"""

from bayesmmm.decisions.optimizer import (
    ALLOCATION_COLUMNS,
    OptimizationError,
    OptimizationResult,
    maximize_allocation,
    optimize_budget,
    project_to_budget,
    run_scenarios,
)

__all__ = [
    "ALLOCATION_COLUMNS",
    "OptimizationError",
    "OptimizationResult",
    "maximize_allocation",
    "optimize_budget",
    "project_to_budget",
    "run_scenarios",
]
