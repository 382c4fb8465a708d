"""The objective that runs one Hydra job as one raysweep trial, in a Ray worker.

It does what Hydra's own launchers do in their workers: restore Hydra's global
state (the config store, resolvers, job runtime), compose the job's config from
the primary config and the job's overrides, and hand it to Hydra's ``run_job``,
which makes the job's output folder and its ``.hydra/`` snapshot, sets
``HydraConfig`` and calls the task function. What the task returns becomes the
trial's metrics; an exception in the task makes the trial FAILED with its
traceback.

Relative paths (``hydra.sweep.dir``, data files the task opens) are read against
the folder the app was started in when the worker's machine has it, so a local
run writes where plain Hydra would; on a cluster node without it, against the
worker's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from raysweep.hydra.overrides import Param, to_overrides

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from hydra.types import HydraContext
    from omegaconf import DictConfig

__all__ = ["COMPLETED_METRIC", "HydraJob", "job_return_value"]

#: The launcher's metric when none is named: 1.0 for every job whose task returned.
COMPLETED_METRIC = "completed"
#: The metric under which the launcher records a task's plain-number return value.
VALUE_METRIC = "value"
#: The file in a trial's folder (``trials/<id>/files/``) recording its Hydra job.
RECORD_FILE = "hydra_job.json"


class HydraJob:
    """``fn(config)`` for raysweep: run the Hydra job of one trial.

    Args:
        task_function: the ``@hydra.main`` function.
        hydra_context: Hydra's config loader and callbacks, as launchers get them.
        config: the primary (multirun) config the jobs are composed from.
        params: how a trial's configuration becomes the job's overrides.
        jobs: for the launcher, the jobs by their configuration (as JSON): the
            job number and the overrides exactly as the sweeper gave them; ``None``
            for the sweeper, whose job number is the trial id.
        record: ``True`` (launcher without a metric): every task that returns is
            a completed trial with the metric :data:`COMPLETED_METRIC`, and a number
            it returns is kept as ``value``, a mapping's numbers under their names;
            ``False``: the return value is the trial's metric (a number or a dict).
    """

    def __init__(
        self,
        *,
        task_function: Callable[[Any], Any],
        hydra_context: HydraContext,
        config: DictConfig,
        params: Sequence[Param],
        jobs: Mapping[str, tuple[int, list[str]]] | None = None,
        record: bool = False,
    ) -> None:
        from hydra.core.singleton import Singleton

        self.task_function = task_function
        self.hydra_context = hydra_context
        self.config = config
        self.params = tuple(params)
        self.jobs = dict(jobs) if jobs is not None else None
        self.record = record
        # Hydra's global state (config store, job runtime, resolvers), as the
        # driver holds it now; the worker restores it before composing.
        self.singleton_state = Singleton.get_state()
        # What the store and the progress display name the objective by.
        self.__module__ = getattr(task_function, "__module__", "?")
        self.__qualname__ = getattr(task_function, "__qualname__", "task_function")
        self.__name__ = getattr(task_function, "__name__", "task_function")

    def job_of(self, config: Mapping[str, Any], trial_id: int) -> tuple[int, list[str]]:
        """The job number and overrides of a trial's configuration."""
        if self.jobs is not None:
            found = self.jobs.get(json.dumps(dict(config), sort_keys=True))
            if found is not None:
                return found[0], list(found[1])
        return trial_id, to_overrides(self.params, config)

    def __call__(self, config: dict[str, Any]) -> Any:
        from hydra.core.utils import JobStatus

        from raysweep.sweep.reporting import current_trial

        trial = current_trial()
        number, overrides = self.job_of(config, trial.trial_id if trial is not None else 0)
        result = self.run(number, overrides)
        value = result._return_value
        if result.status is JobStatus.FAILED:
            raise value  # its traceback is the task's; raysweep stores it with the trial
        return self.metrics(value)

    def metrics(self, value: Any) -> Any:
        """The trial's metrics from the task's return value (see ``record``)."""
        if not self.record:
            return value
        out: dict[str, float] = {COMPLETED_METRIC: 1.0}
        if _is_number(value):
            out[VALUE_METRIC] = float(value)
        elif isinstance(value, Mapping):
            out.update({str(k): float(v) for k, v in value.items() if _is_number(v)})
        return out

    def run(self, number: int, overrides: list[str]) -> JobReturn:
        """Compose job ``number``'s config and run it through Hydra's ``run_job``."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.singleton import Singleton
        from hydra.core.utils import run_job, setup_globals
        from omegaconf import open_dict

        setup_globals()
        Singleton.set_state(self.singleton_state)
        with _in_folder(str(self.config.hydra.runtime.cwd)):
            job_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(job_config):
                job_config.hydra.job.id = f"{job_config.hydra.job.name}_{number}"
                job_config.hydra.job.num = number
            HydraConfig.instance().set_config(job_config)
            result = run_job(
                hydra_context=self.hydra_context,
                task_function=self.task_function,
                config=job_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        _write_record(number, overrides, job_config)
        return result


def _is_number(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@contextmanager
def _in_folder(path: str) -> Iterator[None]:
    """Work in ``path`` (the app's starting folder) if this machine has it."""
    old = os.getcwd()
    if os.path.isdir(path):
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _write_record(number: int, overrides: list[str], job_config: DictConfig) -> None:
    """Keep the job's number, overrides and output folder with the trial."""
    from raysweep.sweep.reporting import current_trial, trial_dir

    trial = current_trial()
    if trial is None or trial.files is None:
        return
    record = {
        "job_num": number,
        "overrides": overrides,
        "output_dir": str(job_config.hydra.runtime.output_dir),
    }
    (trial_dir() / RECORD_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")


def job_return_value(metrics: Mapping[str, float], record: bool) -> Any:
    """What the task returned, as the trial's stored metrics give it back: the
    number, or the mapping of numbers (``None`` when it returned neither)."""
    if not record:
        return dict(metrics)
    rest = {k: v for k, v in metrics.items() if k != COMPLETED_METRIC}
    if set(rest) == {VALUE_METRIC}:
        return rest[VALUE_METRIC]
    return rest or None
