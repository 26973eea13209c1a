"""Observation models (likelihoods): registered components, like the transforms.

A likelihood is the ONE description of how the target scatters around the mean ``mu``. It
is used for fitting (:meth:`Likelihood.observe` adds the observed variable to a PyMC model),
for the pointwise log-likelihood (:meth:`Likelihood.logpdf`, LOO / WAIC / BIC) and for
predictive draws (:meth:`Likelihood.noise`). ``sigma`` (the scale, in scaled target units)
is shared by all; a likelihood declares any further parameters in ``param_names`` and their
default priors in ``default_priors`` (``model.priors`` overrides them by name).

Add one in a few lines::

    @LIKELIHOODS.register("laplace")
    class LaplaceLikelihood(Likelihood):
        distribution = "Laplace"          # pm.Laplace(mu=..., b=...)

        def pymc_params(self, sigma, params):
            return {"b": sigma}

        def logpdf(self, y, mu, sigma, params):
            return scipy.stats.laplace.logpdf(y, loc=mu, scale=sigma)

        def noise(self, rng, shape, params):
            return rng.laplace(size=shape)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bayesmmm.components.base import Registry
from bayesmmm.components.priors import Prior

__all__ = ["LIKELIHOODS", "Likelihood", "NormalLikelihood", "StudentTLikelihood"]


class Likelihood:
    """Base class of observation models: ``y ~ distribution(mu, sigma, **params)``.

    Subclasses set ``distribution`` (a PyMC distribution name), ``param_names`` (parameters
    besides ``sigma``, shared by all observations) with ``default_priors``, and implement
    :meth:`logpdf` and :meth:`noise` so that they agree with the PyMC distribution.
    """

    name: ClassVar[str] = ""
    distribution: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    default_priors: ClassVar[Mapping[str, Prior]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.distribution:
            return
        missing = sorted(set(cls.param_names) - set(cls.default_priors))
        if missing:
            raise TypeError(f"{cls.__name__}: parameters without a default prior: {missing}")

    def pymc_params(self, sigma: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the PyMC distribution besides ``mu``."""
        return {"sigma": sigma, **{p: params[p] for p in self.param_names}}

    def observe(self, name: str, mu: Any, sigma: Any, params: Mapping[str, Any], observed: Any, dims: tuple[str, ...]):
        """Add the observed variable to the PyMC model in context."""
        import pymc as pm

        dist = getattr(pm, self.distribution)
        return dist(name, mu=mu, **self.pymc_params(sigma, params), observed=observed, dims=dims)

    def logpdf(self, y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Pointwise log-density of ``y`` (NumPy, broadcasting)."""
        raise NotImplementedError

    def noise(self, rng: np.random.Generator, shape: tuple[int, ...], params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Standardized noise ``(y - mu) / sigma`` for predictive draws (NumPy)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood", base=Likelihood)


@LIKELIHOODS.register("normal")
class NormalLikelihood(Likelihood):
    """Gaussian noise."""

    distribution = "Normal"

    def logpdf(self, y, mu, sigma, params):
        from scipy import stats

        return stats.norm.logpdf(y, loc=mu, scale=sigma)

    def noise(self, rng, shape, params):
        return rng.standard_normal(shape)


@LIKELIHOODS.register("student_t")
class StudentTLikelihood(Likelihood):
    """Student-t noise with ``nu`` degrees of freedom (heavy tails: robust to outlier weeks)."""

    distribution = "StudentT"
    param_names = ("nu",)
    default_priors = {"nu": Prior(dist="Gamma", alpha=2, beta=0.1)}

    def logpdf(self, y, mu, sigma, params):
        from scipy import stats

        return stats.t.logpdf(y, df=params["nu"], loc=mu, scale=sigma)

    def noise(self, rng, shape, params):
        rng.standard_normal(shape)  # drawn and discarded: keeps the stream of earlier versions' forecasts
        return rng.standard_t(params["nu"], size=shape)
