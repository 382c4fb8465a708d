"""raysweep: parallel black-box and gradient-based optimization on Ray.

Example:
    >>> import raysweep as rs
    >>> space = {"lr": rs.loguniform(1e-4, 1e-1), "layers": rs.randint(1, 4), "seed": 0}
    >>> # result = rs.run(objective, space, metric="loss", num_trials=50)

The public names below are imported on first use (PEP 562), so ``import
raysweep`` loads almost nothing, and ``import raysweep.gradient`` does not drag
in the black-box half (runner, study, searchers) through this package. Heavy
dependencies (Ray, pandas, SciPy, JAX) are imported only by the code that
needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from raysweep.errors import (
    ConstraintError,
    ExperimentExistsError,
    ExperimentMismatchError,
    ExperimentNotFoundError,
    InfeasibleSpaceError,
    MissingExtraError,
    RayConnectError,
    RaysweepError,
    SpecError,
    StepFailedError,
    StoreError,
    StoreWriteError,
    TooManyFailuresError,
)

if TYPE_CHECKING:
    from raysweep.objectives import Direction, Metric, Objectives
    from raysweep.resources import Resources, SchedulerHints
    from raysweep.sweep.api import run
    from raysweep.sweep.callbacks import Callback, ExperimentInfo
    from raysweep.sweep.reporting import report
    from raysweep.sweep.result import Result
    from raysweep.sweep.searchers import Searcher
    from raysweep.sweep.space import (
        SearchSpace,
        choice,
        grid,
        lograndint,
        loguniform,
        quniform,
        randint,
        uniform,
    )
    from raysweep.sweep.stopping import Stop
    from raysweep.trial import Trial, TrialState

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY: dict[str, str] = {
    "Callback": "raysweep.sweep.callbacks",
    "Direction": "raysweep.objectives",
    "ExperimentInfo": "raysweep.sweep.callbacks",
    "Metric": "raysweep.objectives",
    "Objectives": "raysweep.objectives",
    "Resources": "raysweep.resources",
    "Result": "raysweep.sweep.result",
    "SchedulerHints": "raysweep.resources",
    "SearchSpace": "raysweep.sweep.space",
    "Searcher": "raysweep.sweep.searchers",
    "Stop": "raysweep.sweep.stopping",
    "Trial": "raysweep.trial",
    "TrialState": "raysweep.trial",
    "choice": "raysweep.sweep.space",
    "grid": "raysweep.sweep.space",
    "lograndint": "raysweep.sweep.space",
    "loguniform": "raysweep.sweep.space",
    "quniform": "raysweep.sweep.space",
    "randint": "raysweep.sweep.space",
    "report": "raysweep.sweep.reporting",
    "run": "raysweep.sweep.api",
    "uniform": "raysweep.sweep.space",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'raysweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Callback",
    "ConstraintError",
    "Direction",
    "ExperimentExistsError",
    "ExperimentInfo",
    "ExperimentMismatchError",
    "ExperimentNotFoundError",
    "InfeasibleSpaceError",
    "Metric",
    "MissingExtraError",
    "Objectives",
    "RayConnectError",
    "RaysweepError",
    "Resources",
    "Result",
    "SchedulerHints",
    "SearchSpace",
    "Searcher",
    "SpecError",
    "StepFailedError",
    "Stop",
    "StoreError",
    "StoreWriteError",
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
