"""The error the Hydra plugins raise: a raysweep error Hydra prints as one line."""

from __future__ import annotations

from hydra.errors import CompactHydraException

from raysweep.errors import RaysweepError

__all__ = ["HydraRaysweepError", "JobFailedError"]


class HydraRaysweepError(RaysweepError, CompactHydraException):
    """Raised by the raysweep sweeper and launcher for a bad option, an override
    they cannot sweep, or a run that failed; Hydra prints it as one line and the
    app exits with status 1 (``HYDRA_FULL_ERROR=1`` shows the traceback)."""


class JobFailedError(HydraRaysweepError):
    """The ``return_value`` of a launcher's ``JobReturn`` whose trial did not
    complete; names the trial and the last line of its error."""
