"""Serving: the REST service and dashboard (:mod:`bayesmmm.serving.app`, :mod:`bayesmmm.serving.dashboard`)
and the versioned model registry (:mod:`bayesmmm.serving.model_registry`)."""
