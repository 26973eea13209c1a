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
  :func:`run_scenarios`, :func:`write_optimization`, :func:`write_report`; :func:`rf_table` and
  :func:`rf_surface` (reach & frequency channels: optimal frequency, response surface); :func:`design_tests`
  (which lift test next, ``bayesmmm design``) and :func:`write_design`.
- The loop: :func:`refresh_run` (``bayesmmm refresh``), :func:`run_validation` (``bayesmmm validate``).

Not imported here: :mod:`bayesmmm.testing` (``from bayesmmm.testing import check_saturation``),
the contract checks to run on your own transforms in your test suite (:func:`check_adstock`,
:func:`check_saturation`, :func:`check_registered_components`).
"""

__version__ = "0.1.0"

# Imported on first use (PEP 562): ``import bayesmmm`` and light commands (``bayesmmm --version``,
# ``schema``, ``--help``) do not pay for PyMC, PyTensor and JAX.
_LAZY: dict[str, str] = {
    "ADSTOCKS": "bayesmmm.components",
    "SATURATIONS": "bayesmmm.components",
    "Adstock": "bayesmmm.components",
    "Saturation": "bayesmmm.components",
    "MULTIPLIERS": "bayesmmm.components.multiplier",
    "Multiplier": "bayesmmm.components.multiplier",
    "UnknownNameError": "bayesmmm.components",
    "Prior": "bayesmmm.components.priors",
    "AdstockConfig": "bayesmmm.config.experiment",
    "ChannelColumns": "bayesmmm.config.experiment",
    "ConfigError": "bayesmmm.config.experiment",
    "DataConfig": "bayesmmm.config.experiment",
    "DiagnosticsConfig": "bayesmmm.config.experiment",
    "ExperimentConfig": "bayesmmm.config.experiment",
    "ModelConfig": "bayesmmm.config.experiment",
    "OutputConfig": "bayesmmm.config.experiment",
    "SamplerConfig": "bayesmmm.config.experiment",
    "SaturationConfig": "bayesmmm.config.experiment",
    "TimeVaryingMediaConfig": "bayesmmm.config.experiment",
    "load_experiment": "bayesmmm.config.experiment",
    "DataError": "bayesmmm.data.loading",
    "DesignError": "bayesmmm.decisions.design",
    "DesignResult": "bayesmmm.decisions.design",
    "design_tests": "bayesmmm.decisions.design",
    "write_design": "bayesmmm.reporting.design_page",
    "channel_insights": "bayesmmm.decisions.insights",
    "decomposition_table": "bayesmmm.decisions.insights",
    "findings": "bayesmmm.decisions.insights",
    "OptimizationError": "bayesmmm.decisions.optimizer",
    "OptimizationResult": "bayesmmm.decisions.optimizer",
    "optimize_budget": "bayesmmm.decisions.optimizer",
    "run_scenarios": "bayesmmm.decisions.optimizer",
    "rf_surface": "bayesmmm.decisions.reach",
    "rf_table": "bayesmmm.decisions.reach",
    "FlightResponse": "bayesmmm.decisions.response",
    "adstock_weights": "bayesmmm.decisions.response",
    "marginal_roas": "bayesmmm.decisions.response",
    "response_curves": "bayesmmm.decisions.response",
    "contributions_table": "bayesmmm.evaluation.summaries",
    "diagnostics": "bayesmmm.evaluation.summaries",
    "fit_metrics": "bayesmmm.evaluation.summaries",
    "forecast_table": "bayesmmm.evaluation.summaries",
    "parameter_summary": "bayesmmm.evaluation.summaries",
    "roas_table": "bayesmmm.evaluation.summaries",
    "stacked_roas_tables": "bayesmmm.evaluation.stacking",
    "multiplier_table": "bayesmmm.evaluation.varying",
    "roas_by_period_table": "bayesmmm.evaluation.varying",
    "MMM": "bayesmmm.model.mmm",
    "ModelFileError": "bayesmmm.model.mmm",
    "write_optimization": "bayesmmm.reporting.report",
    "write_report": "bayesmmm.reporting.report",
    "RunResult": "bayesmmm.workflows.experiment",
    "run_experiment": "bayesmmm.workflows.experiment",
    "ScenarioConfig": "bayesmmm.workflows.simulate",
    "load_scenario": "bayesmmm.workflows.simulate",
    "simulate": "bayesmmm.workflows.simulate",
    "write_simulation": "bayesmmm.workflows.simulate",
    "refresh_run": "bayesmmm.workflows.refresh",
    "run_validation": "bayesmmm.workflows.validate",
}


__all__ = [
    "ADSTOCKS",
    "MMM",
    "MULTIPLIERS",
    "SATURATIONS",
    "Adstock",
    "AdstockConfig",
    "ChannelColumns",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DesignError",
    "DesignResult",
    "DiagnosticsConfig",
    "ExperimentConfig",
    "FlightResponse",
    "ModelConfig",
    "ModelFileError",
    "Multiplier",
    "OptimizationError",
    "OptimizationResult",
    "OutputConfig",
    "Prior",
    "RunResult",
    "SamplerConfig",
    "Saturation",
    "SaturationConfig",
    "ScenarioConfig",
    "TimeVaryingMediaConfig",
    "UnknownNameError",
    "__version__",
    "adstock_weights",
    "channel_insights",
    "contributions_table",
    "decomposition_table",
    "design_tests",
    "diagnostics",
    "findings",
    "fit_metrics",
    "forecast_table",
    "load_experiment",
    "load_scenario",
    "marginal_roas",
    "multiplier_table",
    "optimize_budget",
    "parameter_summary",
    "refresh_run",
    "response_curves",
    "rf_surface",
    "rf_table",
    "roas_by_period_table",
    "roas_table",
    "run_experiment",
    "run_scenarios",
    "run_validation",
    "simulate",
    "stacked_roas_tables",
    "write_design",
    "write_optimization",
    "write_report",
    "write_simulation",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bayesmmm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
