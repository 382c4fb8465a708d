"""MLflow: a parent run per experiment, a nested run per trial, or one run per fit.

A sweep is one MLflow run (the parent, named after the experiment) with one
nested run per trial: the trial's configuration as params, every report as a
metric series at its ``step``, the final metrics, its state as a tag, and an
end status (FINISHED, FAILED, KILLED for pruned or abandoned trials). A gradient
run is one MLflow run with the series of :func:`gradient_metrics` per step.

Runs are found again by their tags (``raysweep.experiment``, ``raysweep.kind``,
``raysweep.trial_id``), so a resumed sweep logs into the same parent run, a
trial run again (after a crash or a pause) into its own run, and no trial gets a
second run; steps a run holds already are not logged again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raysweep._checks import expect_mapping, expect_str
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
    from raysweep.sweep.result import Result

__all__ = ["MLflowCallback"]

TAG_EXPERIMENT = "raysweep.experiment"
TAG_KIND = "raysweep.kind"
TAG_TRIAL = "raysweep.trial_id"
TAG_STATE = "raysweep.state"
_PARENT = "mlflow.parentRunId"
#: MLflow's limits: metrics per ``log_batch`` call, characters of a tag value.
_BATCH = 1000
_TAG_CHARS = 5000
_STATUS = {
    TrialState.COMPLETED: "FINISHED",
    TrialState.FAILED: "FAILED",
    TrialState.PRUNED: "KILLED",
}


class MLflowCallback(LoggingCallback):
    """Log a sweep (a parent run, a nested run per trial) or a gradient run to MLflow.

    Args:
        tracking_uri: where MLflow stores runs, e.g. ``"sqlite:///mlflow.db"`` or
            ``"http://mlflow:5000"``; ``None``: MLflow's own default
            (``MLFLOW_TRACKING_URI``, else its local store).
        experiment_name: the MLflow experiment; by default the sweep's experiment
            name (the ``run_name`` of a gradient run).
        run_name: the parent run's name (default: the experiment name); for a
            gradient run, its name (see :class:`LoggingCallback`).
        tags: extra tags set on the parent run (or the gradient run).
        artifact_location: the artifact location of an MLflow experiment this
            creates (default: MLflow's).
        queue_size, flush_timeout_s: see :class:`LoggingCallback`.

    Example:
        >>> import raysweep as rs  # doctest: +SKIP
        >>> from raysweep.integrations import MLflowCallback
        >>> rs.run(f, space, num_trials=20,  # doctest: +SKIP
        ...        callbacks=[MLflowCallback(tracking_uri="sqlite:///mlflow.db")])
    """

    library = ("mlflow", "mlflow-skinny", "mlflow")

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
    ) -> None:
        super().__init__(run_name=run_name, queue_size=queue_size, flush_timeout_s=flush_timeout_s)
        self.tracking_uri = (
            None if tracking_uri is None else option("tracking_uri", expect_str, tracking_uri)
        )
        self.experiment_name = (
            None
            if experiment_name is None
            else option("experiment_name", expect_str, experiment_name)
        )
        given = option("tags", expect_mapping, tags or {}, example="{team: vision}")
        self.tags = {key: str(value) for key, value in given.items()}
        self.artifact_location = (
            None
            if artifact_location is None
            else option("artifact_location", expect_str, artifact_location)
        )
        self._reset()

    def _reset(self) -> None:
        """Forget the runs of the last experiment (worker side)."""
        self._client: Any = None
        self._entities: Any = None
        self._experiment_id = ""
        self._name = ""
        self._parent: str | None = None  # the sweep's parent run, or the gradient run
        self._kind = ""
        self._runs: dict[int, str] = {}  # trial id -> run id
        self._open_runs: set[int] = set()
        self._logged_to: dict[int, int] = {}  # run found again -> last step it holds

    # -- MLflow ---------------------------------------------------------------------------
    def _connect(self, experiment_name: str) -> None:
        mlflow = require("mlflow", "mlflow", "MLflowCallback", "mlflow-skinny")
        self._entities = require("mlflow.entities", "mlflow", "MLflowCallback", "mlflow-skinny")
        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            self._experiment_id = client.create_experiment(
                experiment_name, artifact_location=self.artifact_location
            )
        else:
            self._experiment_id = found.experiment_id
        self._client = client

    def _search(self, where: str) -> list[Any]:
        """Every active run of the experiment matching the filter ``where``."""
        runs: list[Any] = []
        token = None
        while True:
            page = self._client.search_runs(
                [self._experiment_id], filter_string=where, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _last_step(self, run_id: str) -> int:
        """The last step any metric of the run holds (-1: none)."""
        keys = self._client.get_run(run_id).data.metrics
        steps = [m.step for key in keys for m in self._client.get_metric_history(run_id, key)]
        return max(steps, default=-1)

    def _log(self, run_id: str, metrics: Mapping[str, float], step: int, when: float) -> None:
        ms = int(when * 1000)
        batch = [self._entities.Metric(k, v, ms, step) for k, v in metrics.items()]
        for i in range(0, len(batch), _BATCH):
            self._client.log_batch(run_id, metrics=batch[i : i + _BATCH])

    def _find_or_create(self, name: str, kind: str, run_name: str, tags: Mapping[str, str]) -> str:
        where = f"tags.`{TAG_EXPERIMENT}` = '{name}' and tags.`{TAG_KIND}` = '{kind}'"
        found = self._search(where)
        if found:
            run_id: str = found[0].info.run_id
            self._client.update_run(run_id, status="RUNNING")
            return run_id
        run = self._client.create_run(
            self._experiment_id,
            run_name=run_name,
            tags={**self.tags, **tags, TAG_EXPERIMENT: name, TAG_KIND: kind},
        )
        created: str = run.info.run_id
        return created

    # -- a sweep --------------------------------------------------------------------------
    def _log_experiment_start(self, info: ExperimentInfo) -> None:
        self._reset()
        self._name, self._kind = info.name, "sweep"
        self._connect(self.experiment_name or info.name)
        objectives = info.objectives
        tags = {
            "raysweep.directory": info.directory,
            "raysweep.metric": ",".join(objectives.names),
            "raysweep.mode": ",".join(m.direction.value for m in objectives),
        }
        self._parent = self._find_or_create(info.name, "sweep", self.run_name or info.name, tags)
        for key, value in {
            **tags,
            "raysweep.num_trials": str(info.num_trials),
            "raysweep.max_concurrent": str(info.max_concurrent),
        }.items():
            self._client.set_tag(self._parent, key, value)
        for run in self._search(f"tags.`{_PARENT}` = '{self._parent}'"):
            trial_id = run.data.tags.get(TAG_TRIAL)
            if trial_id is not None and trial_id.isdigit():
                self._runs[int(trial_id)] = run.info.run_id

    def _log_trial_start(self, trial: Trial) -> None:
        config = json.dumps({k: config_value(v) for k, v in trial.config.items()})
        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            run = self._client.create_run(
                self._experiment_id,
                run_name=f"trial-{trial.trial_id}",
                tags={
                    _PARENT: self._parent,
                    TAG_EXPERIMENT: self._name,
                    TAG_KIND: "trial",
                    TAG_TRIAL: str(trial.trial_id),
                    "raysweep.config": config[:_TAG_CHARS],
                },
            )
            run_id = run.info.run_id
            self._runs[trial.trial_id] = run_id
            params = [
                self._entities.Param(k, str(config_value(v))[:_TAG_CHARS])
                for k, v in trial.config.items()
            ]
            self._client.log_batch(run_id, params=params)
        else:
            # Run again (a resume, a lost worker, a pause): its params were logged
            # with its first configuration; a new one (a PBT exploit) is a tag.
            self._client.update_run(run_id, status="RUNNING")
            self._client.set_tag(run_id, "raysweep.config", config[:_TAG_CHARS])
            if trial.trial_id not in self._logged_to:
                self._logged_to[trial.trial_id] = self._last_step(run_id)
        self._open_runs.add(trial.trial_id)

    def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        run_id = self._runs.get(trial.trial_id)
        step = report_step(report)
        if run_id is None or step <= self._logged_to.get(trial.trial_id, -1):
            return  # a step the run holds from before the resume
        when = report.get("time")
        self._log(
            run_id,
            report_metrics(report),
            step,
            when if isinstance(when, float) else time.time(),
        )

    def _log_trial_end(self, trial: Trial) -> None:
        if trial.trial_id not in self._runs:
            self._log_trial_start(trial)
        run_id = self._runs[trial.trial_id]
        self._log(run_id, final_metrics(trial), final_step(trial), trial.ended_at or time.time())
        self._client.set_tag(run_id, TAG_STATE, trial.state.value)
        if trial.error:
            self._client.set_tag(run_id, "raysweep.error", trial.error[-_TAG_CHARS:])
        self._client.set_terminated(run_id, status=_STATUS.get(trial.state, "KILLED"))
        self._open_runs.discard(trial.trial_id)

    def _log_end(self, result: Result | None) -> None:
        if self._client is None or self._parent is None:
            self._reset()
            return
        for trial_id in sorted(self._open_runs):  # abandoned: run again on resume
            run_id = self._runs[trial_id]
            self._client.set_tag(run_id, TAG_STATE, TrialState.ABANDONED.value)
            self._client.set_terminated(run_id, status="KILLED")
        # A sweep closed without its end was interrupted; a gradient run has no other end.
        status = "FINISHED" if self._kind == "gradient" else "KILLED"
        if result is not None:
            self._client.set_tag(self._parent, "raysweep.stop_reason", result.stop_reason)
            best = result.best
            if best is not None:
                self._client.set_tag(self._parent, "raysweep.best_trial", str(best.trial_id))
                self._log(
                    self._parent,
                    {f"best/{k}": v for k, v in report_metrics(best.metrics).items()},
                    0,
                    time.time(),
                )
            status = "FINISHED"
        self._client.set_terminated(self._parent, status=status)
        self._reset()

    # -- a gradient run -------------------------------------------------------------------
    def _log_gradient_steps(
        self, name: str, steps: Sequence[tuple[int, Mapping[str, Any]]], first: bool
    ) -> None:
        if first:
            self._reset()
            self._name, self._kind = name, "gradient"
            self._connect(self.experiment_name or name)
            self._parent = self._find_or_create(name, "gradient", name, {})
            self._logged_to[-1] = self._last_step(self._parent)
        if self._parent is None:
            return
        for step, data in steps:
            if step > self._logged_to.get(-1, -1):
                self._log(self._parent, gradient_metrics(data), step, time.time())
