"""The model: :class:`MMM` (graph, fit, predict, save/load).

- :mod:`bayesmmm.model.mmm`: the :class:`MMM` class (data binding, graph, fit, persistence).
"""

from bayesmmm.model.mmm import MMM, ModelFileError, Scales, link_of, pool_parameter

__all__ = ["MMM", "ModelFileError", "Scales", "link_of", "pool_parameter"]
