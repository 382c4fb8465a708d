"""The ``hebo`` searcher: HEBO does not install beside raysweep, so it is refused.

HEBO (Huawei Noah's Ark's heteroscedastic evolutionary Bayesian optimization)
would be a natural searcher here, but no release of it can be installed with
raysweep's own requirements:

- HEBO 0.3.6 (the latest) and 0.3.5 require ``numpy>=1.16,<1.25``, and 0.3.6
  also ``pymoo==0.6.0`` (which pins ``cma==3.2.2``); raysweep requires
  ``numpy>=1.26``, and so do its dependencies (SciPy 1.17 needs
  ``numpy>=1.26.4``, pandas 3 ``numpy>=2.0.2``).
- HEBO 0.3.0 to 0.3.2 leave numpy unpinned but import ``pymoo.factory``,
  which pymoo removed in 0.6.0, so its optimizer fails on import with any
  pymoo a current environment resolves to.

The name stays registered so that ``searcher: hebo`` gets this explanation,
with the searchers that do the same job, instead of "unknown searcher". A
raysweep extra cannot fix it, so the error is not the usual
``pip install "raysweep[...]"`` advice. Nothing here imports HEBO, and no other
library stands in for it.
"""

from __future__ import annotations

from typing import Any

from raysweep.errors import MissingExtraError, RaysweepError
from raysweep.sweep.searchers._base import Searcher

__all__ = ["HEBOSearcher", "HEBOUnavailableError"]

#: Why, in the one line the error and the CLI show.
REASON = (
    "searcher 'hebo' is not available: HEBO does not install beside raysweep "
    "(HEBO 0.3.6, the latest, requires numpy>=1.16,<1.25 and pymoo==0.6.0, raysweep "
    "numpy>=1.26; HEBO 0.3.0-0.3.2 import pymoo.factory, removed in pymoo 0.6); "
    "use searcher 'bayesopt', 'gp' or 'ax' for Gaussian-process Bayesian optimization"
)


class HEBOUnavailableError(MissingExtraError):
    """Raised when the ``hebo`` searcher is asked for: HEBO's pins conflict with
    raysweep's, so no ``pip install`` of an extra can provide it.

    A :class:`MissingExtraError` (an ``ImportError``), so code that handles a
    missing optional searcher handles this one too.
    """

    def __init__(self) -> None:
        # Not MissingExtraError.__init__: its message would advise an install
        # that cannot succeed.
        RaysweepError.__init__(self, REASON)
        self.package = "HEBO"
        self.extra = "hebo"


class HEBOSearcher(Searcher):
    """Refused at construction with :class:`HEBOUnavailableError` (see the module).

    Args:
        options: any; taken only so that the reason is what a user sees, not
            an "unknown option" for whatever HEBO option they tried first.
    """

    name = "hebo"

    def __init__(self, **options: Any) -> None:
        raise HEBOUnavailableError()

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        raise HEBOUnavailableError()
