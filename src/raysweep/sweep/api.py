"""``raysweep.run``: one call from an objective and a space to a stored sweep.

Order matters here and is deliberate: every input is checked first (the
:class:`~raysweep.sweep.config.SweepConfig`: no Ray, no disk), then an existing
experiment is checked (exists? same space?) without writing, then Ray is
reached and the objective is checked to travel to workers, and only then is
anything written. A rejected call leaves no trace and never touches what is
stored.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from raysweep.errors import (
    ExperimentExistsError,
    ExperimentMismatchError,
    InfeasibleSpaceError,
    SpecError,
    TooManyFailuresError,
)
from raysweep.store import ExperimentStore, Location
from raysweep.sweep.callbacks import CallbackGuard, ExperimentInfo
from raysweep.sweep.config import SweepConfig, run_args_doc, run_signature
from raysweep.sweep.execution import Backend, TrialIO, WallClock, capacity_note
from raysweep.sweep.result import Result
from raysweep.sweep.runner import Runner, RunnerOptions
from raysweep.sweep.schedulers import Scheduler, SchedulerContext
from raysweep.sweep.searchers import SearchContext, Searcher
from raysweep.sweep.study import Study
from raysweep.trial import TrialState

if TYPE_CHECKING:
    from raysweep.sweep.progress import ProgressCallback

__all__ = ["execute", "run"]

#: Worker/node deaths retried per trial when the resources do not say.
DEFAULT_MAX_RETRIES = 3


def run(objective: Any = None, space: Any = None, **options: Any) -> Result:
    """Run a parallel black-box search and store every trial.

    ``run(objective, space, **options)``, or ``run(config, **overrides)`` with a
    :class:`~raysweep.sweep.config.SweepConfig` (e.g. from a sweep file).

    {args}

    Returns:
        The :class:`Result` with every trial.

    Raises:
        SpecError: a bad option, in one line naming it (nothing started or written).
        ExperimentExistsError / ExperimentMismatchError: the store does not fit
            the request (see ``resume`` and ``force``).
        TooManyFailuresError: more trials failed than ``max_failures``.

    Example:
        >>> import raysweep as rs
        >>> def f(config):
        ...     return (config["x"] - 1) ** 2
        >>> result = rs.run(f, {{"x": rs.uniform(-2, 2)}}, num_trials=20,
        ...                 storage=tmp, name="doc")  # doctest: +SKIP
        >>> result.best.config  # doctest: +SKIP
    """
    if isinstance(objective, SweepConfig):
        if space is not None:
            raise SpecError("space: give it in the SweepConfig, not beside it")
        return execute(objective.replace(**options))
    return execute(SweepConfig.build({"objective": objective, "space": space, **options}))


run.__doc__ = (run.__doc__ or "").format(args=run_args_doc().strip())
run.__signature__ = run_signature()  # type: ignore[attr-defined]


def execute(config: SweepConfig) -> Result:
    """Run the sweep ``config`` describes (see :func:`run`)."""
    if config.resume == "auto":
        config = config.replace(resume=config.location.exists())
    searcher = config.searcher.build()
    searcher.setup(
        SearchContext(
            space=config.space,
            constraints=config.constraints,
            objectives=config.objectives,
            seed=config.seed,
            num_trials=config.num_trials,
            max_concurrent=config.max_concurrent,
        )
    )
    location = config.location
    store = _open_resumed(config, location) if config.resume else None
    if store is None and location.exists():
        raise ExperimentExistsError(
            f"an experiment already exists at {location}; pass resume=True (CLI: "
            f"--resume) to continue it, or choose another name or storage"
        )
    location.check_writable()  # before Ray starts; writes nothing
    display = _display(config)
    guard = CallbackGuard(
        [*config.callbacks, *config.integrations, *([display] if display else [])]
    )
    backend: Backend = config.backend
    if backend is None:
        from raysweep.sweep.execution.ray_backend import RayBackend

        backend = RayBackend(
            address=config.address,
            runtime_env=config.runtime_env,
            connect_timeout_s=config.connect_timeout_s,
        )
    io = _trial_io(config)
    error: BaseException | None = None
    try:
        backend.start(guard.on_note)
        backend.prepare(config.objective.fn, metric=config.metric, hints=config.resources, io=io)
        capacity = backend.default_concurrency(config.resources)
        concurrency = config.max_concurrent or capacity
        note = capacity_note(concurrency, capacity)
        if note is not None:
            guard.on_note(note)
        spec = {**config.to_spec(), "max_concurrent": concurrency}
        if store is None:
            store = location.create(spec)
        else:
            store.write_spec(spec)
            store.add_event("resumed", {"num_trials": config.num_trials})
        return _execute(config, searcher, store, backend, concurrency, guard, io)
    except BaseException as exc:
        error = exc
        raise
    finally:
        guard.on_experiment_closed(error)
        if display is not None:
            display.close()
        backend.shutdown()
        if store is not None:
            if guard.errors:
                store.add_event("callback_errors", guard.summary())
            store.close()


def _trial_io(config: SweepConfig) -> TrialIO:
    """Where trials keep their folders, and whether their reports are answered."""
    from raysweep.sweep.trial_files import trials_root

    directory = config.location.directory
    return TrialIO(
        trials_root=None if directory is None else str(trials_root(directory)),
        keep_checkpoints=config.keep_checkpoints,
        log_output=config.log_output,
        answered=config.scheduler.judges,
    )


def _scheduler(
    config: SweepConfig, study: Study, concurrency: int, stored: list[Any]
) -> Scheduler | None:
    """The scheduler set up and, on resume, rebuilt from the stored trials."""
    if not config.scheduler.judges:
        return None
    scheduler = config.scheduler.build()
    scheduler.setup(
        SchedulerContext(
            objectives=config.objectives,
            space=config.space,
            seed=config.seed,
            num_trials=config.num_trials,
            max_concurrent=concurrency,
        )
    )
    saved = study.store.get_meta("scheduler_state")
    if config.resume and isinstance(saved, dict) and saved.get("name") == scheduler.name:
        scheduler.load_state_dict(saved.get("state") or {})
    scheduler.restore(stored)
    return scheduler


def _display(config: SweepConfig) -> ProgressCallback | None:
    """The progress display ``verbose`` asks for, unless a callback already is one."""
    if config.verbose == 0:
        return None
    from raysweep.sweep.progress import ProgressCallback

    if any(isinstance(cb, ProgressCallback) for cb in config.callbacks):
        return None
    return ProgressCallback(min_interval_s=1.0 if config.verbose == 1 else 0.0)


def _execute(
    config: SweepConfig,
    searcher: Searcher,
    store: ExperimentStore,
    backend: Backend,
    concurrency: int,
    guard: CallbackGuard,
    io: TrialIO,
) -> Result:
    clock = config.clock or backend.clock() or WallClock()
    objectives = config.objectives
    study = Study(store, searcher, config.space, config.constraints, objectives, config.num_trials)
    stored = [study.trials[i] for i in sorted(study.trials)]
    in_space = [
        t
        for t in stored
        if not config.space.problems(t.config) and config.constraints.is_feasible(t.config)
    ]
    saved = store.get_meta("searcher_state")
    if config.resume and isinstance(saved, dict) and saved.get("name") == searcher.name:
        searcher.load_state_dict(saved.get("state") or {})
    searcher.restore(in_space)
    summary = searcher.summary()
    if summary is not None:
        study.stage_meta("searcher_summary", summary)
        study.save_searcher_state()
        guard.on_note(summary)
    now = clock.now()
    # Unfinished trials a forced change left outside the space cannot be re-run.
    inside = {t.trial_id for t in in_space}
    for trial in stored:
        if trial.trial_id not in inside and trial.state.needs_rerun():
            study.end(
                trial.trial_id,
                TrialState.FAILED,
                "configuration is outside the search space after a forced change",
                now,
            )
    study.stage_meta("status", "running")
    study.stage_meta("started_at", now)
    study.stage_meta("driver", {"pid": os.getpid(), "host": socket.gethostname()})
    study.flush()
    info = ExperimentInfo(
        name=config.name,
        directory=str(config.directory),
        objectives=objectives,
        num_trials=config.num_trials,
        counts=store.count_by_state(),
        best=study.best,
        resumed=config.resume is True,
        max_concurrent=concurrency,
        front=tuple(objectives.pareto_front(stored)) if objectives.multi else (),
    )
    guard.on_experiment_start(info)
    retries = config.resources.max_retries
    options = RunnerOptions(
        max_concurrent=concurrency,
        timeout_s=config.timeout_s,
        max_retries=DEFAULT_MAX_RETRIES if retries is None else retries,
        max_failures=config.max_failures,
        stop=config.stop,
    )
    scheduler = _scheduler(config, study, concurrency, stored)
    runner = Runner(study, backend, clock, options, [guard], scheduler=scheduler, io=io)
    try:
        reason = runner.run()
    except TooManyFailuresError as exc:
        store.commit(meta={"status": "failed", "stop_reason": str(exc)})
        exc.result = _result(config, study, str(exc), guard)
        raise
    except KeyboardInterrupt:
        store.commit(meta={"status": "stopped", "stop_reason": "interrupted"})
        raise
    except InfeasibleSpaceError as exc:
        store.commit(meta={"status": "failed", "stop_reason": str(exc)})
        raise
    status = "completed" if reason in ("num_trials reached", "searcher exhausted") else "stopped"
    store.commit(meta={"status": status, "stop_reason": reason})
    store.add_event("ended", {"reason": reason})
    return _result(config, study, reason, guard)


def _result(config: SweepConfig, study: Study, reason: str, guard: CallbackGuard) -> Result:
    result = Result(
        name=config.name,
        directory=config.directory,
        objectives=config.objectives,
        trials=tuple(study.trials[i] for i in sorted(study.trials)),
        stop_reason=reason,
    )
    guard.on_experiment_end(result)
    return result


def _open_resumed(config: SweepConfig, location: Location) -> ExperimentStore:
    """Open the stored experiment and check it matches ``config``.

    The checks read the store read-only, so a refused resume leaves every file of
    the experiment byte-identical; only then is it opened for writing.
    """
    reader = location.open(readonly=True)
    try:
        old = reader.read_spec()
    finally:
        reader.close()
    if old.get("kind", "sweep") != "sweep":
        raise SpecError(f"{config.directory} holds a {old.get('kind')!r} run, not a sweep")
    refused, updated = config.resume_changes(old)
    if refused and not config.force:
        raise ExperimentMismatchError(
            f"cannot resume {config.directory}: the experiment changed ({'; '.join(refused)}); "
            f"pass force=True (CLI: --force) to accept the change; stored trials are kept "
            f"and checked against the new space"
        )
    store = location.open()
    if refused:
        store.add_event("forced_change", {"differences": refused})
    if updated:
        store.add_event("options_changed", {"differences": updated})
    return store
