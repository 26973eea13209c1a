"""Data: loading and validating weekly (and geo-panel) frames, scaling constants.

The loaders live in :mod:`bayesmmm.data.loading`; this package re-exports them.
"""

from bayesmmm.data.loading import *  # noqa: F403
from bayesmmm.data.loading import __all__  # noqa: F401
