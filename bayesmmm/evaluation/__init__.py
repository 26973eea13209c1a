"""Evaluation: contributions, ROAS, fit measures, convergence diagnostics and model-selection criteria.

- :mod:`bayesmmm.evaluation.summaries`: tables and diagnostics from a fitted model;
- :mod:`bayesmmm.evaluation.criteria`: LOO, WAIC, BIC, CRPS and hold-out scores.
"""
