"""TensorBoard: a run folder per trial with its scalars and hyperparameters.

A sweep writes ``<logdir>/<experiment>/trial_<id>/``: the trial's configuration
as the HParams dashboard's session (with its end status), every report as
scalars at its ``step``, then the final metrics. A gradient run writes
``<logdir>/<run_name>/`` with the series of :func:`gradient_metrics` per step.

Only the ``tensorboard`` package is needed (its event-file writer and protocol
buffers), neither TensorFlow nor PyTorch.

On resume, a trial run again writes a new event file into its folder, and its
session is not started twice; TensorBoard reads a folder's event files in
order, and a series that starts again at an earlier step replaces the points
from that step on. Completed trials are not run again, so their folders are
left as they are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raysweep._checks import expect_str
from raysweep._extras import require
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

__all__ = ["TensorBoardCallback"]

_FEATURE = "TensorBoardCallback"
#: Seconds between the event writer's flushes of what it holds.
_FLUSH_S = 5


def _tb(module: str) -> Any:
    return require(module, "tensorboard", _FEATURE)


class TensorBoardCallback(LoggingCallback):
    """Write a sweep's trials (scalars and hyperparameters) or a gradient run as
    TensorBoard event files.

    Args:
        logdir: the folder TensorBoard is pointed at (``tensorboard --logdir``);
            each experiment gets a folder in it.
        run_name: the experiment's folder name (default: the experiment name);
            for a gradient run, its folder (see :class:`LoggingCallback`).
        queue_size, flush_timeout_s: see :class:`LoggingCallback`.

    Example:
        >>> import raysweep as rs  # doctest: +SKIP
        >>> from raysweep.integrations import TensorBoardCallback
        >>> rs.run(f, space, num_trials=20, callbacks=[TensorBoardCallback("tb")])  # doctest: +SKIP
    """

    library = ("tensorboard", "tensorboard", "tensorboard")
    path_options = ("logdir",)

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        run_name: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
    ) -> None:
        super().__init__(run_name=run_name, queue_size=queue_size, flush_timeout_s=flush_timeout_s)
        if not isinstance(logdir, Path):
            logdir = option("logdir", expect_str, logdir, what="a folder")
        self.logdir = Path(logdir)
        self._root = self.logdir
        self._writers: dict[int, Any] = {}  # trial id (-1: the gradient run) -> writer

    # -- event files ----------------------------------------------------------------------
    def _writer(self, key: int, folder: Path) -> tuple[Any, bool]:
        """The open writer of ``key``, and whether its folder held no events before."""
        if key in self._writers:
            return self._writers[key], False
        fresh = not any(folder.glob("events.out.tfevents.*"))
        folder.mkdir(parents=True, exist_ok=True)
        module = _tb("tensorboard.summary.writer.event_file_writer")
        writer = module.EventFileWriter(str(folder), flush_secs=_FLUSH_S)
        self._writers[key] = writer
        return writer, fresh

    def _scalars(self, writer: Any, metrics: Mapping[str, float], step: int, when: float) -> None:
        if not metrics:
            return
        summary_pb2 = _tb("tensorboard.compat.proto.summary_pb2")
        event_pb2 = _tb("tensorboard.compat.proto.event_pb2")
        values = [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]
        summary = summary_pb2.Summary(value=values)
        writer.add_event(event_pb2.Event(wall_time=when, step=step, summary=summary))

    def _summary(self, writer: Any, summary: Any) -> None:
        event_pb2 = _tb("tensorboard.compat.proto.event_pb2")
        writer.add_event(event_pb2.Event(wall_time=time.time(), summary=summary))

    def _session_end(self, writer: Any, state: TrialState) -> None:
        """The HParams dashboard's status of a trial's session."""
        api_pb2 = _tb("tensorboard.plugins.hparams.api_pb2")
        plugin_data_pb2 = _tb("tensorboard.plugins.hparams.plugin_data_pb2")
        metadata = _tb("tensorboard.plugins.hparams.metadata")
        summary_pb2 = _tb("tensorboard.compat.proto.summary_pb2")
        # The dashboard knows no "stopped early": a pruned trial's status is unknown.
        status = {
            TrialState.COMPLETED: api_pb2.STATUS_SUCCESS,
            TrialState.FAILED: api_pb2.STATUS_FAILURE,
        }.get(state, api_pb2.STATUS_UNKNOWN)
        data = plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(
                status=status, end_time_secs=time.time()
            )
        )
        summary = summary_pb2.Summary()
        summary.value.add(
            tag=metadata.SESSION_END_INFO_TAG,
            metadata=metadata.create_summary_metadata(data),
            tensor=metadata.NULL_TENSOR,
        )
        self._summary(writer, summary)

    def _close(self, key: int) -> None:
        writer = self._writers.pop(key, None)
        if writer is not None:
            writer.close()

    # -- a sweep --------------------------------------------------------------------------
    def _log_experiment_start(self, info: ExperimentInfo) -> None:
        self._close_all()
        self._root = self.logdir / (self.run_name or info.name)
        self._root.mkdir(parents=True, exist_ok=True)

    def _log_trial_start(self, trial: Trial) -> None:
        name = f"trial_{trial.trial_id}"
        writer, fresh = self._writer(trial.trial_id, self._root / name)
        if fresh:
            summary_v2 = _tb("tensorboard.plugins.hparams.summary_v2")
            hparams = {k: config_value(v) for k, v in trial.config.items()}
            started = trial.started_at or trial.queued_at or time.time()
            self._summary(
                writer, summary_v2.hparams_pb(hparams, trial_id=name, start_time_secs=started)
            )

    def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            return
        when = report.get("time")
        self._scalars(
            writer,
            report_metrics(report),
            report_step(report),
            when if isinstance(when, float) else time.time(),
        )

    def _log_trial_end(self, trial: Trial) -> None:
        if trial.trial_id not in self._writers:
            self._log_trial_start(trial)
        writer = self._writers[trial.trial_id]
        self._scalars(
            writer, final_metrics(trial), final_step(trial), trial.ended_at or time.time()
        )
        self._session_end(writer, trial.state)
        self._close(trial.trial_id)

    def _log_end(self, result: Result | None) -> None:
        self._close_all()  # abandoned trials: their sessions go on when they run again

    def _close_all(self) -> None:
        for key in list(self._writers):
            self._close(key)

    # -- a gradient run -------------------------------------------------------------------
    def _log_gradient_steps(
        self, name: str, steps: Sequence[tuple[int, Mapping[str, Any]]], first: bool
    ) -> None:
        if first:
            self._close_all()
            writer, fresh = self._writer(-1, self.logdir / name)
            if not fresh:
                # The folder holds the earlier steps of this run (a resume).
                steps = steps[-1:]
        else:
            writer = self._writers.get(-1)
            if writer is None:
                return
        now = time.time()
        for step, data in steps:
            self._scalars(writer, gradient_metrics(data), step, now)
        writer.flush()
