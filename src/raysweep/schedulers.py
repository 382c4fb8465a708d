"""``raysweep.schedulers``: when to stop or pause running trials.

The public home of the schedulers (``raysweep.schedulers.ASHA(max_t=27)``); they
live in :mod:`raysweep.sweep.schedulers`, with the plugin interface.
"""

from __future__ import annotations

from raysweep.sweep.schedulers import *  # noqa: F403
from raysweep.sweep.schedulers import __all__  # noqa: F401
