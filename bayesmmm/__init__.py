"""bayesmmm: Bayesian marketing mix modelling with pluggable PyTensor transforms.

Public API
----------
- :class:`MMM` — the model (``fit``, ``predict``, ``save``, ``MMM.load``).
- :data:`ADSTOCKS`, :data:`SATURATIONS`, :class:`Adstock`, :class:`Saturation` — registries
  and base classes for transforms; :class:`Prior` — YAML-friendly priors.
- :class:`ExperimentConfig` and friends, :func:`load_experiment`, :func:`run_experiment`.
- :func:`simulate`, :func:`load_scenario`, :class:`ScenarioConfig` — data with known truth.
- :func:`roas_table`, :func:`contributions_table`, :func:`fit_metrics`, :func:`diagnostics`.
"""

__version__ = "0.1.0"

from bayesmmm.analysis import (
    contributions_table,
    diagnostics,
    fit_metrics,
    forecast_table,
    parameter_summary,
    roas_table,
)
from bayesmmm.config import (
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
from bayesmmm.data import DataError
from bayesmmm.experiment import RunResult, run_experiment
from bayesmmm.model import MMM, ModelFileError
from bayesmmm.priors import Prior
from bayesmmm.simulate import ScenarioConfig, load_scenario, simulate, write_simulation
from bayesmmm.transforms import ADSTOCKS, SATURATIONS, Adstock, Saturation, UnknownNameError

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
    "ModelConfig",
    "ModelFileError",
    "OutputConfig",
    "Prior",
    "RunResult",
    "SamplerConfig",
    "Saturation",
    "SaturationConfig",
    "ScenarioConfig",
    "UnknownNameError",
    "__version__",
    "contributions_table",
    "diagnostics",
    "fit_metrics",
    "forecast_table",
    "load_experiment",
    "load_scenario",
    "parameter_summary",
    "roas_table",
    "run_experiment",
    "simulate",
    "write_simulation",
]
