"""Weights & Biases: a run per trial, grouped by experiment, offline by default.

Each trial is a W&B run in the experiment's group (``job_type="trial"``): its
configuration as the run's config, every report logged at its ``step``, the
final metrics and its state in the summary, and an exit code (0 when it
completed, 1 otherwise). A gradient run is one W&B run (``job_type="gradient"``)
with the series of :func:`gradient_metrics` per step.

``mode="offline"`` (the default) writes everything under ``dir`` and never
contacts a server; ``wandb sync`` uploads it later. Run ids are derived from the
experiment and the trial (``<experiment>-trial-<id>``), so a trial run again
after a resume logs under the same id (``resume="allow"``) and completed trials,
which a resume does not run again, get no second run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raysweep._checks import expect_str
from raysweep._extras import require
from raysweep.errors import SpecError
from raysweep.integrations._base import (
    DEFAULT_FLUSH_TIMEOUT_S,
    DEFAULT_QUEUE_SIZE,
    LoggingCallback,
    option,
)
from raysweep.integrations._records import (
    config_value,
    final_metrics,
    final_step,
    gradient_metrics,
    report_metrics,
    report_step,
)
from raysweep.sweep.callbacks import ExperimentInfo
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    import os

    from raysweep.sweep.result import Result

__all__ = ["WandbCallback"]

MODES = ("offline", "online", "disabled")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def run_id(*parts: str) -> str:
    """A W&B run id from names: letters, digits, ``_`` and ``-`` only.

    Example:
        >>> run_id("lr.sweep", "trial", "3")
        'lr-sweep-trial-3'
    """
    return _UNSAFE.sub("-", "-".join(parts))[:128]


class WandbCallback(LoggingCallback):
    """Log a sweep (a W&B run per trial, grouped) or a gradient run to Weights & Biases.

    Args:
        project: the W&B project (default: the experiment name, or the gradient
            run's name).
        mode: ``"offline"`` (default: written under ``dir``, nothing sent),
            ``"online"`` or ``"disabled"``.
        dir: the folder W&B writes into (default: W&B's, ``WANDB_DIR`` or ``./wandb``).
        entity: the W&B entity (team or user), for ``online``.
        group: the group of a sweep's trial runs (default: the experiment name).
        tags: tags of every run.
        run_name: see :class:`LoggingCallback`.
        queue_size, flush_timeout_s: see :class:`LoggingCallback`.

    Example:
        >>> import raysweep as rs  # doctest: +SKIP
        >>> from raysweep.integrations import WandbCallback
        >>> rs.run(f, space, num_trials=20,  # doctest: +SKIP
        ...        callbacks=[WandbCallback(project="demo", dir="wandb-logs")])
    """

    library = ("wandb", "wandb", "wandb")
    path_options = ("dir",)

    def __init__(
        self,
        project: str | None = None,
        *,
        mode: str = "offline",
        dir: str | os.PathLike[str] | None = None,
        entity: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        run_name: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
    ) -> None:
        super().__init__(run_name=run_name, queue_size=queue_size, flush_timeout_s=flush_timeout_s)
        if mode not in MODES:
            raise SpecError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise SpecError(f"tags: expected a list of strings, got {tags!r}")
        self.project = None if project is None else option("project", expect_str, project)
        self.mode = mode
        self.dir = None if dir is None else Path(dir)
        self.entity = None if entity is None else option("entity", expect_str, entity)
        self.group = None if group is None else option("group", expect_str, group)
        self.tags = tuple(tags)
        self._runs: dict[int, Any] = {}  # trial id (-1: the gradient run) -> wandb run
        self._name = ""

    def _init(self, key: int, *, project: str, run: str, job_type: str, **kwargs: Any) -> Any:
        wandb = require("wandb", "wandb", "WandbCallback")
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        started = wandb.init(
            project=project,
            entity=self.entity,
            dir=None if self.dir is None else str(self.dir),
            mode=self.mode,
            id=run_id(run),
            name=run,
            job_type=job_type,
            tags=list(self.tags) or None,
            reinit="create_new",  # a run per trial, several open at once
            resume="allow",
            # The driver's output and its machine are not the trial's: leave them out.
            settings=wandb.Settings(
                silent=True,
                console="off",
                x_disable_stats=True,
                x_disable_machine_info=True,
                disable_git=True,
                save_code=False,
            ),
            **kwargs,
        )
        self._runs[key] = started
        return started

    def _finish(self, key: int, exit_code: int) -> None:
        run = self._runs.pop(key, None)
        if run is not None:
            run.finish(exit_code=exit_code)

    # -- a sweep --------------------------------------------------------------------------
    def _log_experiment_start(self, info: ExperimentInfo) -> None:
        self._finish_all(1)
        self._name = self.run_name or info.name

    def _log_trial_start(self, trial: Trial) -> None:
        config = {k: config_value(v) for k, v in trial.config.items()}
        run = self._runs.get(trial.trial_id)
        if run is not None:  # run again in this process (a lost worker, a pause)
            run.config.update(config, allow_val_change=True)
            return
        self._init(
            trial.trial_id,
            project=self.project or self._name,
            run=f"{self._name}-trial-{trial.trial_id}",
            job_type="trial",
            group=self.group or self._name,
            config=config,
        )

    def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        run = self._runs.get(trial.trial_id)
        if run is not None:
            run.log(report_metrics(report), step=report_step(report))

    def _log_trial_end(self, trial: Trial) -> None:
        if trial.trial_id not in self._runs:
            self._log_trial_start(trial)
        run = self._runs[trial.trial_id]
        final = final_metrics(trial)
        if final:
            run.log(final, step=final_step(trial))
        run.summary.update({**trial.metrics, "state": trial.state.value})
        self._finish(trial.trial_id, 0 if trial.state is TrialState.COMPLETED else 1)

    def _log_end(self, result: Result | None) -> None:
        gradient = self._runs.pop(-1, None)
        if gradient is not None:
            gradient.finish(exit_code=0)
        for run in self._runs.values():  # abandoned: run again on resume
            run.summary.update({"state": TrialState.ABANDONED.value})
        self._finish_all(1)

    def _finish_all(self, exit_code: int) -> None:
        for key in list(self._runs):
            self._finish(key, exit_code)

    # -- a gradient run -------------------------------------------------------------------
    def _log_gradient_steps(
        self, name: str, steps: Sequence[tuple[int, Mapping[str, Any]]], first: bool
    ) -> None:
        if first:
            self._finish_all(1)
            self._init(-1, project=self.project or name, run=name, job_type="gradient")
        run = self._runs.get(-1)
        if run is None:
            return
        for step, data in steps:
            run.log(gradient_metrics(data), step=step)
