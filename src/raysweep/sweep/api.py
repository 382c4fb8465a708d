"""``raysweep.run``: one call from an objective and a space to a stored sweep.

Order matters here and is deliberate: every input is validated first (no Ray, no
disk), then an existing experiment is checked (exists? same space?), then Ray is
reached and the objective is checked to travel to workers, and only then is
anything written. A rejected call leaves no trace and never touches what is
stored.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from raysweep.errors import (
    ExperimentExistsError,
    ExperimentMismatchError,
    InfeasibleSpaceError,
    SpecError,
    TooManyFailuresError,
)
from raysweep.objectives import Objectives
from raysweep.resources import Resources
from raysweep.store import SQLiteStore
from raysweep.sweep.callbacks import Callback, ExperimentInfo
from raysweep.sweep.execution import Backend, Clock, WallClock
from raysweep.sweep.plan import Plan, make_plan, spec_diff
from raysweep.sweep.result import Result
from raysweep.sweep.runner import Runner, RunnerOptions
from raysweep.sweep.searchers import Searcher
from raysweep.sweep.stopping import Stop
from raysweep.sweep.study import Study
from raysweep.trial import TrialState

__all__ = ["run"]

#: Worker/node deaths retried per trial when the hints do not say.
DEFAULT_MAX_RETRIES = 3


def run(
    objective: Callable[[dict[str, Any]], Any],
    space: Any,
    *,
    metric: str = "loss",
    mode: Literal["min", "max"] = "min",
    num_trials: int | None = None,
    max_concurrent: int | None = None,
    searcher: str | Searcher = "random",
    searcher_options: Mapping[str, Any] | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    constraints: Sequence[str] | None = None,
    name: str | None = None,
    storage: str | Path = "runs",
    seed: int | None = None,
    resume: bool = False,
    force: bool = False,
    max_failures: int | None = None,
    stop: Stop | Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
    timeout_s: float | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    address: str | None = None,
    backend: Backend | None = None,
    clock: Clock | None = None,
) -> Result:
    """Run a parallel black-box search and store every trial.

    Args:
        objective: ``fn(config) -> float | dict[str, float]``; may call
            :func:`raysweep.report` for intermediate results.
        space: a dict of domains (``rs.uniform(...)``...), fixed values, YAML-style
            mappings, or an Ax parameter list.
        metric, mode: the metric to optimize and its direction.
        num_trials: trials to create in all; required unless the searcher is
            ``"grid"`` (then the whole grid) or ``stop`` bounds the run.
        max_concurrent: trials in flight at most (default: what fits the cluster).
        searcher: ``"random"``, ``"grid"``, ``"sobol"`` or a :class:`Searcher`.
        searcher_options: keyword arguments for a searcher given by name.
        resources: per-trial :class:`Resources` or ``{"cpu": 1, "gpu": 0.25}``.
        constraints: strings such as ``"lr * layers <= 0.2"``.
        name, storage: the experiment lives in ``<storage>/<name>/experiment.db``.
        seed: makes the searcher reproducible.
        resume: continue the stored experiment (re-runs unfinished trials; a
            larger ``num_trials`` extends it).
        force: on resume, accept a changed space, constraints, metric or mode.
        max_failures: stop with :class:`TooManyFailuresError` when more trials fail.
        stop: :class:`Stop` or ``{"time_budget_s":..., "target":..., "patience":...}``.
        callbacks: :class:`Callback` instances.
        timeout_s: per-trial wall-clock limit; a trial past it FAILS.
        runtime_env: Ray runtime environment (env vars, ``working_dir``...).
        address: Ray cluster address (default: ``RAY_ADDRESS`` or a local Ray).
        backend, clock: where trials run and the time source (tests, debugging).

    Returns:
        The :class:`Result` with every trial.

    Example:
        >>> import raysweep as rs
        >>> def f(config):
        ...     return (config["x"] - 1) ** 2
        >>> result = rs.run(f, {"x": rs.uniform(-2, 2)}, num_trials=20,
        ...                 storage=tmp, name="doc")  # doctest: +SKIP
        >>> result.best.config  # doctest: +SKIP
    """
    plan = make_plan(
        objective,
        space,
        metric=metric,
        mode=mode,
        num_trials=num_trials,
        max_concurrent=max_concurrent,
        searcher=searcher,
        searcher_options=searcher_options,
        resources=resources,
        constraints=constraints,
        name=name,
        storage=storage,
        seed=seed,
        max_failures=max_failures,
        stop=stop,
        callbacks=callbacks,
        timeout_s=timeout_s,
        runtime_env=runtime_env,
    )
    store = _open_resumed(plan, force) if resume else None
    if store is None and SQLiteStore.exists(plan.directory):
        raise ExperimentExistsError(
            f"an experiment already exists at {plan.directory}; pass resume=True (CLI: --resume) "
            f"to continue it, or choose another name or storage"
        )
    clock = clock or WallClock()
    if backend is None:
        from raysweep.sweep.execution.ray_backend import RayBackend

        backend = RayBackend(address=address, runtime_env=runtime_env)
    try:
        backend.prepare(objective, metric=metric, hints=plan.hints)
        concurrency = max_concurrent or backend.default_concurrency(plan.hints)
        plan.spec["max_concurrent"] = concurrency
        if store is None:
            store = SQLiteStore.create(plan.directory, plan.spec)
        else:
            store.write_spec(plan.spec)
            store.add_event("resumed", {"num_trials": num_trials})
        return _execute(
            plan,
            store,
            backend,
            clock,
            concurrency,
            callbacks,
            bool(resume),
            metric,
            mode,
            num_trials,
        )
    finally:
        backend.shutdown()
        if store is not None:
            store.close()


def _execute(
    plan: Plan,
    store: SQLiteStore,
    backend: Backend,
    clock: Clock,
    concurrency: int,
    callbacks: Sequence[Callback],
    resumed: bool,
    metric: str,
    mode: Literal["min", "max"],
    num_trials: int | None,
) -> Result:
    objectives = Objectives.parse(metric, mode)
    study = Study(store, plan.searcher, plan.space, plan.constraints, objectives, num_trials)
    stored = [study.trials[i] for i in sorted(study.trials)]
    in_space = [
        t
        for t in stored
        if not plan.space.problems(t.config) and plan.constraints.is_feasible(t.config)
    ]
    saved = store.get_meta("searcher_state")
    if resumed and isinstance(saved, dict) and saved.get("name") == plan.searcher.name:
        plan.searcher.load_state_dict(saved.get("state") or {})
    plan.searcher.restore(in_space)
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
        name=plan.name,
        directory=str(plan.directory),
        objectives=objectives,
        num_trials=num_trials,
        counts=store.count_by_state(),
        best=study.best,
        resumed=resumed,
        max_concurrent=concurrency,
    )
    for cb in callbacks:
        cb.on_experiment_start(info)
    options = RunnerOptions(
        max_concurrent=concurrency,
        timeout_s=plan.spec["timeout_s"],
        max_retries=DEFAULT_MAX_RETRIES
        if plan.hints.max_retries is None
        else plan.hints.max_retries,
        max_failures=plan.spec["max_failures"],
        stop=plan.stop,
    )
    runner = Runner(study, backend, clock, options, callbacks)
    try:
        reason = runner.run()
    except TooManyFailuresError as exc:
        store.commit(meta={"status": "failed", "stop_reason": str(exc)})
        exc.result = _result(plan, study, metric, mode, str(exc), callbacks)
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
    return _result(plan, study, metric, mode, reason, callbacks)


def _result(
    plan: Plan,
    study: Study,
    metric: str,
    mode: Literal["min", "max"],
    reason: str,
    callbacks: Sequence[Callback],
) -> Result:
    result = Result(
        name=plan.name,
        directory=plan.directory,
        objectives=Objectives.parse(metric, mode),
        trials=tuple(study.trials[i] for i in sorted(study.trials)),
        stop_reason=reason,
    )
    for cb in callbacks:
        cb.on_experiment_end(result)
    return result


def _open_resumed(plan: Plan, force: bool) -> SQLiteStore:
    """Open the stored experiment and check it matches ``plan`` (no write)."""
    store = SQLiteStore.open(plan.directory)
    try:
        old = store.read_spec()
        if old.get("kind", "sweep") != "sweep":
            raise SpecError(f"{plan.directory} holds a {old.get('kind')!r} run, not a sweep")
        diffs = spec_diff(old, plan)
        if diffs and not force:
            raise ExperimentMismatchError(
                f"cannot resume {plan.directory}: the experiment changed ({'; '.join(diffs)}); "
                f"pass force=True (CLI: --force) to accept the change; stored trials are kept "
                f"and checked against the new space"
            )
        if diffs:
            store.add_event("forced_change", {"differences": diffs})
    except BaseException:
        store.close()
        raise
    return store
