"""Former home of :class:`Prior`, kept so plugins written against it keep working.

New code imports from :mod:`bayesmmm.components.priors` (or ``bayesmmm.Prior``).
"""

from bayesmmm.components.priors import *  # noqa: F403
from bayesmmm.components.priors import __all__  # noqa: F401
