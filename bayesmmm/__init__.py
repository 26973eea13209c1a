"""bayesmmm: Bayesian marketing mix modelling with pluggable PyTensor transforms.

Public API
----------
- :class:`MMM` — the model (``fit``, ``predict``, ``save``, ``MMM.load``).
- :data:`ADSTOCKS`, :data:`SATURATIONS`, :class:`Adstock`, :class:`Saturation` — registries
  and base classes for transforms; :class:`Prior` — YAML-friendly priors.
- :class:`ExperimentConfig` and friends, :func:`load_experiment`, :func:`run_experiment`.
- :func:`simulate`, :func:`load_scenario`, :class:`ScenarioConfig` — data with known truth.
- :func:`roas_table`, :func:`contributions_table`, :func:`fit_metrics`, :func:`diagnostics`.
- Decisions: :func:`channel_insights` (ROAS, marginal ROAS, saturation status),
  :func:`findings`, :func:`response_curves`, :func:`marginal_roas`, :func:`optimize_budget`,
  :func:`run_scenarios`, :func:`write_optimization`, :func:`write_report`.

Not imported here: :mod:`bayesmmm.testing` (``from bayesmmm.testing import check_saturation``),
the contract checks to run on your own transforms in your test suite (:func:`check_adstock`,
:func:`check_saturation`, :func:`check_registered_components`).
"""

__version__ = "0.1.0"

from bayesmmm.components import ADSTOCKS, SATURATIONS, Adstock, Saturation, UnknownNameError
from bayesmmm.components.priors import Prior
from bayesmmm.config.experiment import (
    AdstockConfig,
    ConfigError,
    DataConfig,
    DiagnosticsConfig,
    ExperimentConfig,
    ModelConfig,
    OutputConfig,
    SamplerConfig,
    SaturationConfig,
    load_experiment,
)
from bayesmmm.data.loading import DataError
from bayesmmm.decisions.insights import channel_insights, decomposition_table, findings
from bayesmmm.decisions.optimizer import OptimizationError, OptimizationResult, optimize_budget, run_scenarios
from bayesmmm.decisions.response import FlightResponse, adstock_weights, marginal_roas, response_curves
from bayesmmm.evaluation.summaries import (
    contributions_table,
    diagnostics,
    fit_metrics,
    forecast_table,
    parameter_summary,
    roas_table,
)
from bayesmmm.model.mmm import MMM, ModelFileError
from bayesmmm.reporting.report import write_optimization, write_report
from bayesmmm.workflows.experiment import RunResult, run_experiment
from bayesmmm.workflows.simulate import ScenarioConfig, load_scenario, simulate, write_simulation

__all__ = [
    "ADSTOCKS",
    "MMM",
    "SATURATIONS",
    "Adstock",
    "AdstockConfig",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DiagnosticsConfig",
    "ExperimentConfig",
    "FlightResponse",
    "ModelConfig",
    "ModelFileError",
    "OptimizationError",
    "OptimizationResult",
    "OutputConfig",
    "Prior",
    "RunResult",
    "SamplerConfig",
    "Saturation",
    "SaturationConfig",
    "ScenarioConfig",
    "UnknownNameError",
    "__version__",
    "adstock_weights",
    "channel_insights",
    "contributions_table",
    "decomposition_table",
    "diagnostics",
    "findings",
    "fit_metrics",
    "forecast_table",
    "load_experiment",
    "load_scenario",
    "marginal_roas",
    "optimize_budget",
    "parameter_summary",
    "response_curves",
    "roas_table",
    "run_experiment",
    "run_scenarios",
    "simulate",
    "write_optimization",
    "write_report",
    "write_simulation",
]
