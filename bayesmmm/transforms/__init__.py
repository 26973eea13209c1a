"""Former home of the transforms, kept so plugins written against it keep working.

New code imports from :mod:`bayesmmm.components`.
"""

from bayesmmm.components import *  # noqa: F403
from bayesmmm.components import __all__  # noqa: F401
