"""The one exception root of raysweep and its documented subclasses.

Every error raysweep raises on purpose derives from :class:`RaysweepError`, so a
caller can catch them all with one ``except``. Errors about user input also
derive from :class:`ValueError`, because that is what they are: a bad value.
"""

from __future__ import annotations

__all__ = [
    "ConstraintError",
    "ExperimentExistsError",
    "ExperimentMismatchError",
    "ExperimentNotFoundError",
    "InfeasibleSpaceError",
    "MissingExtraError",
    "RayConnectError",
    "RaysweepError",
    "SpecError",
    "StepFailedError",
    "StoreError",
    "StoreWriteError",
    "TooManyFailuresError",
    "TrialInterrupted",
    "TrialPaused",
    "TrialPruned",
]


class RaysweepError(Exception):
    """Root of every error raysweep raises deliberately."""


class SpecError(RaysweepError, ValueError):
    """Raised at start when an input is invalid: a search space, an option, a YAML
    key, an objective path. The message names the field, the value and what is
    expected, in one line, so the CLI can print it as it is."""


class ConstraintError(SpecError):
    """Raised at start when a constraint string does not parse, uses a name that is
    not a parameter, or uses an operation outside the whitelist."""


class InfeasibleSpaceError(RaysweepError):
    """Raised when a searcher cannot produce a configuration that satisfies every
    constraint within its bounded number of tries (instead of hanging)."""


class ExperimentExistsError(RaysweepError):
    """Raised when a new run would reuse the folder of an existing experiment;
    ``resume=True`` continues it instead. Nothing stored is ever overwritten."""


class ExperimentNotFoundError(RaysweepError):
    """Raised when ``resume=True`` (or a read command) names an experiment that
    does not exist."""


class ExperimentMismatchError(RaysweepError):
    """Raised on resume when the stored experiment has a different search space,
    metric or mode than the one given; the message shows the difference and the
    flag (``force=True`` / ``--force``) that accepts it."""


class TooManyFailuresError(RaysweepError):
    """Raised when more trials failed than ``max_failures`` allows. The experiment
    is stored as it stands and can be resumed."""

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        #: The :class:`raysweep.Result` of the experiment up to the stop.
        self.result = result


class RayConnectError(RaysweepError, ConnectionError):
    """Raised at start when the Ray cluster to join cannot be reached: nothing
    answered at ``address`` (or ``RAY_ADDRESS``) within the connect time-out
    (``RAYSWEEP_CONNECT_TIMEOUT_S``, 30 s by default), its host is unknown, or
    ``address="auto"`` found no cluster. The message names the address, in one
    line; nothing was started or written."""


class StepFailedError(RaysweepError, RuntimeError):
    """Raised by the gradient optimizer (``RayOptimizer.step``, and so ``run``) when a
    step cannot complete: a unit failed (or its process died) past its retries, an
    objective was still not ready when the step's attempts ran out (the message says
    the step could not be resolved after N attempts and names the objective and its
    last reason), or an objective returned a gradient unlike the params. The
    message names the step, the unit and the reason in one line. A ``RuntimeError``
    too, as mythos raised, so ``except RuntimeError`` written for mythos catches it."""


class StoreError(RaysweepError):
    """Raised when an experiment store cannot be read or written as asked: the file
    is damaged, empty or not a raysweep experiment, was written by a newer
    raysweep, or sits where this process may not read it. The message names the
    file and what is wrong, in one line; the file is left as it was."""


class StoreWriteError(StoreError):
    """Raised when a write to the store fails during a run (disk full, the file
    removed or made read-only meanwhile). The run stops; everything committed
    before it is kept, so it can be resumed once the cause is fixed."""


class MissingExtraError(RaysweepError, ImportError):
    """Raised when an optional dependency is missing; names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed; "
            f'run: pip install "raysweep[{extra}]"'
        )
        self.package = package
        self.extra = extra


class TrialInterrupted(RaysweepError):
    """Raised inside a trial by :func:`raysweep.report` when the scheduler ended its
    run early. Catch it to clean up (close files, save a checkpoint), then let it
    propagate: a trial that goes on regardless is cancelled after the scheduler's
    ``stop_grace_s``."""


class TrialPruned(TrialInterrupted):
    """The scheduler pruned this trial (ASHA, Hyperband, median stopping): it ends
    PRUNED with its last reported metrics. The worker process is kept for the
    next trial."""


class TrialPaused(TrialInterrupted):
    """The scheduler paused this trial (population-based training): its task ends
    and it goes on later from a checkpoint, perhaps with a new configuration.
    Save what it needs with :func:`raysweep.save_checkpoint` before reporting."""
