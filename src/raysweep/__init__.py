"""raysweep: parallel black-box and gradient-based optimization on Ray.

Example:
    >>> import raysweep as rs
    >>> space = {"lr": rs.loguniform(1e-4, 1e-1), "layers": rs.randint(1, 4), "seed": 0}
    >>> # result = rs.run(objective, space, metric="loss", num_trials=50)

Heavy dependencies (Ray, pandas, JAX) are imported only when used, so
``import raysweep`` stays fast.
"""

from __future__ import annotations

from raysweep.api import run
from raysweep.callbacks import Callback, ExperimentInfo
from raysweep.errors import (
    ConstraintError,
    ExperimentExistsError,
    ExperimentMismatchError,
    ExperimentNotFoundError,
    InfeasibleSpaceError,
    MissingExtraError,
    RaysweepError,
    SpecError,
    StepFailedError,
    TooManyFailuresError,
)
from raysweep.hints import SchedulerHints
from raysweep.reporting import report
from raysweep.result import Result
from raysweep.searchers import Searcher
from raysweep.space import (
    SearchSpace,
    choice,
    grid,
    lograndint,
    loguniform,
    quniform,
    randint,
    uniform,
)
from raysweep.stopping import Stop
from raysweep.trial import Trial, TrialState

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "ConstraintError",
    "ExperimentExistsError",
    "ExperimentInfo",
    "ExperimentMismatchError",
    "ExperimentNotFoundError",
    "InfeasibleSpaceError",
    "MissingExtraError",
    "RaysweepError",
    "Result",
    "SchedulerHints",
    "SearchSpace",
    "Searcher",
    "SpecError",
    "StepFailedError",
    "Stop",
    "TooManyFailuresError",
    "Trial",
    "TrialState",
    "__version__",
    "choice",
    "grid",
    "lograndint",
    "loguniform",
    "quniform",
    "randint",
    "report",
    "run",
    "uniform",
]
