"""bayesmmm: Bayesian marketing mix modelling with pluggable PyTensor transforms."""

__version__ = "0.1.0"
