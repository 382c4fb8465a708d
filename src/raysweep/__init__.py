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
    TrialInterrupted,
    TrialPaused,
    TrialPruned,
)

if TYPE_CHECKING:
    from raysweep.objectives import Direction, Metric, Objectives
    from raysweep.resources import Resources, SchedulerHints
    from raysweep.sweep.api import run
    from raysweep.sweep.callbacks import Callback, ExperimentInfo
    from raysweep.sweep.reporting import load_checkpoint, report, save_checkpoint, trial_dir
    from raysweep.sweep.result import Result
    from raysweep.sweep.schedulers import Scheduler
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
    from raysweep.view import Experiment, load

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY: dict[str, str] = {
    "Callback": "raysweep.sweep.callbacks",
    "Direction": "raysweep.objectives",
    "Experiment": "raysweep.view",
    "ExperimentInfo": "raysweep.sweep.callbacks",
    "Metric": "raysweep.objectives",
    "Objectives": "raysweep.objectives",
    "Resources": "raysweep.resources",
    "Result": "raysweep.sweep.result",
    "Scheduler": "raysweep.sweep.schedulers",
    "SchedulerHints": "raysweep.resources",
    "SearchSpace": "raysweep.sweep.space",
    "Searcher": "raysweep.sweep.searchers",
    "Stop": "raysweep.sweep.stopping",
    "Trial": "raysweep.trial",
    "TrialState": "raysweep.trial",
    "choice": "raysweep.sweep.space",
    "grid": "raysweep.sweep.space",
    "load": "raysweep.view",
    "lograndint": "raysweep.sweep.space",
    "loguniform": "raysweep.sweep.space",
    "quniform": "raysweep.sweep.space",
    "randint": "raysweep.sweep.space",
    "load_checkpoint": "raysweep.sweep.reporting",
    "report": "raysweep.sweep.reporting",
    "save_checkpoint": "raysweep.sweep.reporting",
    "trial_dir": "raysweep.sweep.reporting",
    "run": "raysweep.sweep.api",
    "uniform": "raysweep.sweep.space",
}


def __getattr__(name: str) -> Any:
    if name == "schedulers":  # the module itself: rs.schedulers.ASHA(...)
        return importlib.import_module("raysweep.schedulers")
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
    "Experiment",
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
    "Scheduler",
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
    "TrialInterrupted",
    "TrialPaused",
    "TrialPruned",
    "TrialState",
    "__version__",
    "choice",
    "grid",
    "load",
    "load_checkpoint",
    "lograndint",
    "loguniform",
    "quniform",
    "randint",
    "report",
    "run",
    "save_checkpoint",
    "schedulers",
    "trial_dir",
    "uniform",
]
