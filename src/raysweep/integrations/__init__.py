"""Logging integrations: MLflow, TensorBoard and W&B as callbacks.

Each is a :class:`~raysweep.Callback` for a sweep (``rs.run(..., callbacks=[...])``,
or ``integrations:`` in a sweep file) and a ``RayOptimizer.run`` callback for a
gradient run. Each needs its optional extra (``pip install "raysweep[mlflow]"``,
``[tensorboard]``, ``[wandb]``), imported only when it logs; a missing one is a
:class:`~raysweep.errors.MissingExtraError` when the callback is made.

The library is called by a worker thread, never by the runner's loop, so a slow
or failing tracking server neither stalls nor fails the run (see
:class:`LoggingCallback`). See ``docs/integrations.md``.

Example:
    >>> import raysweep as rs  # doctest: +SKIP
    >>> from raysweep.integrations import MLflowCallback, TensorBoardCallback
    >>> rs.run(f, space, num_trials=20, callbacks=[  # doctest: +SKIP
    ...     MLflowCallback(tracking_uri="sqlite:///mlflow.db"), TensorBoardCallback("tb")])
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raysweep._plugins import PluginTable
from raysweep.errors import SpecError
from raysweep.integrations._base import LoggingCallback
from raysweep.integrations._mlflow import MLflowCallback
from raysweep.integrations._tensorboard import TensorBoardCallback
from raysweep.integrations._wandb import WandbCallback

__all__ = [
    "INTEGRATIONS",
    "LoggingCallback",
    "MLflowCallback",
    "TensorBoardCallback",
    "WandbCallback",
    "make_integration",
]

#: Name -> class, for sweep files (``integrations: [tensorboard, {name: mlflow, ...}]``).
INTEGRATIONS = {
    "mlflow": "raysweep.integrations._mlflow:MLflowCallback",
    "tensorboard": "raysweep.integrations._tensorboard:TensorBoardCallback",
    "wandb": "raysweep.integrations._wandb:WandbCallback",
}
ALIASES = {"tb": "tensorboard", "weightsandbiases": "wandb"}

_TABLE: PluginTable[LoggingCallback] = PluginTable(
    "logging integration", LoggingCallback, INTEGRATIONS, ALIASES
)


def make_integration(
    spec: Any, options: Mapping[str, Any] | None = None, *, base: Path | None = None
) -> LoggingCallback:
    """An integration from its name and options (or ``spec`` itself, if it is one).

    Args:
        spec: ``"mlflow"``, ``"tensorboard"`` (``"tb"``), ``"wandb"``, or an instance.
        options: the constructor's keyword arguments.
        base: the folder relative folder options (``logdir``, ``dir``) are read
            against (a sweep file's); ``None``: the working directory.

    Raises:
        SpecError: an unknown name or option, with the valid ones.
        MissingExtraError: the library is not installed.

    Example:
        >>> make_integration("tb", {"logdir": "tb"}).logdir  # doctest: +SKIP
        PosixPath('tb')
    """
    options = dict(options or {})
    if isinstance(spec, LoggingCallback):
        return _TABLE.make(spec, options)
    name = _TABLE.canonical(spec)
    cls = _TABLE.load(name)
    _TABLE.check_options(name, cls, options)
    missing = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty and p.name not in options
    ]
    if missing:
        raise SpecError(
            f"logging integration {name!r} needs the option {missing[0]!r}, e.g. "
            f"{{name: {name}, {missing[0]}: ...}}"
        )
    if base is not None:
        for key in cls.path_options:
            value = options.get(key)
            if isinstance(value, str) and value.strip():
                options[key] = base / Path(value).expanduser()
    return _TABLE.make(name, options)
