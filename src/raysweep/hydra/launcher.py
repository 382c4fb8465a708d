"""``hydra/launcher=raysweep``: the jobs another sweeper chose, as raysweep trials on Ray.

Each call of :meth:`RaysweepLauncher.launch` (one batch of Hydra's sweeper) is one
stored experiment whose trials are exactly the batch's jobs (the ``configs``
searcher), run on a local Ray by default or on the cluster at
``hydra.launcher.address``, each with ``hydra.launcher.resources``. Every job
goes through Hydra's ``run_job`` in its worker, and the launcher returns one
``JobReturn`` per job, as Hydra's launchers do: its config and Hydra config,
composed here as Hydra's launchers compose them, its output folder, and its
return value as the trial's stored metrics give it back (numbers; see
:class:`~raysweep.hydra.job.HydraJob`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.plugins.launcher import Launcher

from raysweep._checks import did_you_mean
from raysweep.errors import RaysweepError, SpecError
from raysweep.hydra._errors import HydraRaysweepError, JobFailedError
from raysweep.hydra.job import COMPLETED_METRIC, HydraJob, job_return_value
from raysweep.hydra.overrides import from_jobs, space_of
from raysweep.hydra.sweeper import plain

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from hydra.types import HydraContext, TaskFunction
    from omegaconf import DictConfig

    from raysweep.sweep.config import SweepConfig
    from raysweep.sweep.result import Result
    from raysweep.trial import Trial

__all__ = ["NODE_DEFAULTS", "OPTIONS", "RaysweepLauncher"]

#: The keys ``hydra.launcher`` shows by default. ``None``: unset.
NODE_DEFAULTS: dict[str, Any] = {
    "address": None,  # a Ray cluster to join; default: RAY_ADDRESS, else a new local Ray
    "resources": None,  # per job: {cpu: 1, gpu: 0.5, ...}
    "max_concurrent": None,
    "storage": None,
    "name": None,  # default: <job name>-<time>, one experiment per batch of jobs
    "resume": False,
    "metric": None,  # default: every job that returns is completed (metric "completed")
    "mode": None,
    "verbose": None,
}
#: Every key ``hydra.launcher`` takes: options of raysweep.run that concern running
#: given jobs (what to run and how many is the sweeper's to say).
OPTIONS = (
    *NODE_DEFAULTS,
    "connect_timeout_s",
    "runtime_env",
    "timeout_s",
    "max_failures",
    "log_output",
    "keep_checkpoints",
    "integrations",
)


class RaysweepLauncher(Launcher):
    """Hydra's launcher plugin: each job a raysweep trial on Ray.

    Args:
        **options: see :data:`OPTIONS`; each is checked by raysweep's configuration.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = {key: plain(value) for key, value in options.items()}
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.started = time.strftime("%Y%m%d-%H%M%S")

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs as trials; one ``JobReturn`` per job, in order."""
        from hydra.core.utils import configure_log, setup_globals

        from raysweep.sweep.api import execute

        if self.hydra_context is None or self.config is None or self.task_function is None:
            raise RuntimeError("RaysweepLauncher.setup() must be called before launch()")
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        try:
            config, jobs = self.sweep_config(job_overrides, initial_job_idx)
        except RaysweepError as exc:
            raise HydraRaysweepError(f"hydra.launcher: {exc}") from None
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        try:
            result = execute(config)
        except RaysweepError as exc:
            raise HydraRaysweepError(str(exc)) from exc
        return self._returns(result, config, jobs)

    def sweep_config(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> tuple[SweepConfig, list[tuple[dict[str, Any], int, list[str]]]]:
        """The checked raysweep configuration of a batch, and its jobs (config,
        number, overrides); nothing runs."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from raysweep.sweep.config import SweepConfig

        assert self.hydra_context is not None
        assert self.config is not None
        assert self.task_function is not None
        for key in self.options:
            if key not in OPTIONS and key != "_target_":
                raise SpecError(
                    f"unknown option {key!r}{did_you_mean(key, OPTIONS)}; expected one of: "
                    f"{', '.join(OPTIONS)}"
                )
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params, configs = from_jobs([list(o) for o in job_overrides], parser)
        jobs = [
            (cfg, initial_job_idx + i, list(overrides))
            for i, (cfg, overrides) in enumerate(zip(configs, job_overrides, strict=True))
        ]
        values = {k: v for k, v in self.options.items() if v is not None}
        record = "metric" not in values
        if record:
            if "mode" in values:
                raise SpecError("mode: applies only with metric (the metric the jobs return)")
            values.update(metric=COMPLETED_METRIC, mode="max")
        name = values.get("name") or f"{self.config.hydra.job.name}-{self.started}"
        values["name"] = f"{name}-{initial_job_idx}" if initial_job_idx else name
        str(self.config.hydra.sweep.dir)  # resolved on the driver (see the sweeper)
        job = HydraJob(
            task_function=self.task_function,
            hydra_context=self.hydra_context,
            config=self.config,
            params=params,
            jobs={_key(cfg): (num, overrides) for cfg, num, overrides in reversed(jobs)},
            record=record,
        )
        config = SweepConfig.build(
            {
                **values,
                "objective": job,
                "space": space_of(params),
                "searcher": {"name": "configs", "configs": configs},
                "num_trials": max(len(configs), 1),
            }
        )
        return config, jobs

    def _returns(
        self,
        result: Result,
        config: SweepConfig,
        jobs: list[tuple[dict[str, Any], int, list[str]]],
    ) -> list[JobReturn]:
        """One ``JobReturn`` per job from its trial (matched by configuration)."""
        trials: dict[str, list[Trial]] = {}
        for stored in result.trials:
            trials.setdefault(_key(dict(stored.config)), []).append(stored)
        record = config.metric == (COMPLETED_METRIC,)
        out = []
        for cfg, number, overrides in jobs:
            # Jobs with one configuration take its trials in turn; the last is kept
            # for any further ones (a resumed run stores each configuration once).
            matches = trials.get(_key(cfg)) or []
            trial: Trial | None = matches.pop(0) if len(matches) > 1 else next(iter(matches), None)
            out.append(self._job_return(number, overrides, trial, record, result.stop_reason))
        return out

    def _job_return(
        self, number: int, overrides: list[str], trial: Trial | None, record: bool, why: str
    ) -> JobReturn:
        """The ``JobReturn`` Hydra's ``run_job`` made in the worker, rebuilt here."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.utils import JobReturn, JobStatus
        from omegaconf import open_dict, read_write

        from raysweep.trial import TrialState

        assert self.hydra_context is not None
        assert self.config is not None
        job_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(job_config):
            job_config.hydra.job.id = f"{job_config.hydra.job.name}_{number}"
            job_config.hydra.job.num = number
        saved = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(job_config)  # resolves ${hydra:...} in the folders
        try:
            cwd = str(job_config.hydra.runtime.cwd)
            sweep = job_config.hydra.sweep
            output_dir = os.path.abspath(os.path.join(cwd, str(sweep.dir), str(sweep.subdir)))
        finally:
            HydraConfig.instance().cfg = saved
        with read_write(job_config.hydra.runtime), open_dict(job_config.hydra.runtime):
            job_config.hydra.runtime.output_dir = output_dir
        task_cfg = copy.deepcopy(job_config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        ret = JobReturn(
            overrides=list(overrides),
            cfg=task_cfg,
            hydra_cfg=job_config,
            working_dir=output_dir if job_config.hydra.job.chdir else cwd,
            task_name=str(job_config.hydra.job.name),
        )
        if trial is not None and trial.state is TrialState.COMPLETED:
            ret.status = JobStatus.COMPLETED
            metrics = dict(trial.metrics)
            ret.return_value = (
                job_return_value(metrics, record)
                if record or len(metrics) > 1
                else next(iter(metrics.values()))
            )
        else:
            ret.status = JobStatus.FAILED
            ret.return_value = JobFailedError(_failure(number, trial, why))
        return ret


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def _failure(number: int, trial: Trial | None, why: str) -> str:
    if trial is None:
        return f"job {number} was not run ({why})"
    lines = [line for line in (trial.error or "").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no error recorded"
    return f"job {number} (trial {trial.trial_id}) is {trial.state.value}: {last}"
