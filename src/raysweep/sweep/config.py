"""The one typed description of a sweep, and everything derived from it.

Each option of an experiment is declared once, as a field of :class:`SweepConfig`
with an :class:`Option` saying how it is checked, its default, whether it is a
sweep-file key, whether it is stored, and what a resume may do with a changed
value. From that one declaration come: the keyword arguments of
:func:`raysweep.run` (its signature and docstring), the YAML keys and their
did-you-mean, the CLI override flags, the stored spec, the resume/force diff,
and the experiment header of ``export``. Adding an option means adding a field
here plus the code that gives it behaviour.

Example:
    >>> config = SweepConfig.build({"objective": lambda c: c["x"], "space": {"x": [1, 2]},
    ...                             "num_trials": 4, "name": "doc"})
    >>> config.to_spec()["num_trials"]
    4
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raysweep._checks import did_you_mean
from raysweep.errors import ConstraintError, SpecError
from raysweep.objectives import Objectives
from raysweep.resources import Resources
from raysweep.store import Location, locate
from raysweep.sweep import _config_checks as checks
from raysweep.sweep._config_checks import Context, ObjectiveRef, SchedulerChoice, SearcherChoice
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.stopping import Stop
from raysweep.sweep.trial_files import DEFAULT_KEEP

__all__ = ["OnResume", "Option", "SweepConfig", "UnknownOptionError"]

_PROBE_DRAWS = 2000
_NESTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: ")


class UnknownOptionError(SpecError, TypeError):
    """An option name that does not exist (a typo); a ``TypeError`` too, like an
    unexpected keyword argument."""


class OnResume(enum.Enum):
    """What a resume does when the option's value differs from the stored one."""

    KEEP = "keep"  # part of what the experiment is: refused unless force=True
    UPDATE = "update"  # the resumed run uses the new value; the change is logged
    NOT_STORED = "not stored"  # a property of this invocation only


@dataclass(frozen=True, slots=True)
class Option:
    """How one option is checked, defaulted, stored and resumed.

    Attributes:
        doc: one line for ``help(raysweep.run)`` and the CLI.
        check: ``(value, Context) -> normal form``; raises :class:`SpecError`.
        default: the value when not given (``None``: unset, and not checked).
        default_from: computes the default from the context instead.
        required: must be given.
        in_file: a key of sweep files.
        on_resume: see :class:`OnResume`; ``NOT_STORED`` options are not in the spec.
        to_json: the stored form of the normal form (default: as is).
        from_json: the stored form back to a value ``check`` takes (default: as is).
        flag: help text of a ``raysweep run`` override flag (``None``: no flag).
        annotation: the type shown in ``run``'s signature.
    """

    doc: str
    check: Callable[[Any, Context], Any]
    default: Any = None
    default_from: Callable[[Context], Any] | None = None
    required: bool = False
    in_file: bool = True
    on_resume: OnResume = OnResume.UPDATE
    to_json: Callable[[Any], Any] | None = None
    from_json: Callable[[Any], Any] | None = None
    flag: str | None = None
    annotation: str = "Any"

    @property
    def stored(self) -> bool:
        return self.on_resume is not OnResume.NOT_STORED

    def json(self, value: Any) -> Any:
        if value is None or self.to_json is None:
            return value
        return self.to_json(value)


def _option(**kwargs: Any) -> dict[str, Option]:
    """Field metadata declaring an option: ``field(metadata=_option(...))``."""
    return {"option": Option(**kwargs)}


_INVOCATION = {"in_file": False, "on_resume": OnResume.NOT_STORED}


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepConfig:
    """A validated sweep: build it with :meth:`build` (or :func:`raysweep.run`,
    or a sweep file); each attribute is in its normal form."""

    # -- what the experiment is ------------------------------------------------------
    objective: ObjectiveRef = field(metadata=_option(
        doc="fn(config) -> float | dict of metrics, or 'module:function'; may call "
        "raysweep.report() for intermediate results",
        check=checks.objective, required=True, on_resume=OnResume.UPDATE,
        to_json=lambda ref: ref.ref, from_json=ObjectiveRef.stored,
        annotation="Callable[[dict[str, Any]], Any] | str",
    ))  # fmt: skip
    space: SearchSpace = field(metadata=_option(
        doc="a dict of domains (rs.uniform(...)), fixed values, YAML-style mappings, "
        "an Ax parameter list, or a .json/.yaml file",
        check=checks.space, required=True, on_resume=OnResume.KEEP,
        to_json=SearchSpace.to_json, from_json=SearchSpace.from_json,
        annotation="Mapping[str, Any] | list[dict[str, Any]] | str",
    ))  # fmt: skip
    metric: tuple[str, ...] = field(metadata=_option(
        doc="the metric to optimize, or a list of metrics to optimize together (a "
        "multi-objective sweep: Result.pareto_front() holds the trials no other beats on "
        "every metric)", check=checks.metric, default="loss", on_resume=OnResume.KEEP,
        to_json=checks.one_or_list, annotation="str | Sequence[str]",
    ))  # fmt: skip
    mode: tuple[str, ...] = field(metadata=_option(
        doc="'min' or 'max' for every metric, or a list with one per metric",
        check=checks.mode, default="min", on_resume=OnResume.KEEP,
        to_json=checks.one_or_list,
        annotation="Literal['min', 'max'] | Sequence[Literal['min', 'max']]",
    ))  # fmt: skip
    constraints: ConstraintSet = field(metadata=_option(
        doc="strings such as 'lr * layers <= 0.2', checked on every configuration",
        check=checks.constraints, default=(), on_resume=OnResume.KEEP,
        to_json=ConstraintSet.to_json, annotation="Sequence[str] | str",
    ))  # fmt: skip
    searcher_options: dict[str, Any] = field(metadata=_option(
        doc="keyword arguments of a searcher given by name", check=checks.searcher_options,
        default={}, in_file=False, on_resume=OnResume.NOT_STORED,
        annotation="Mapping[str, Any]",
    ))  # fmt: skip
    searcher: SearcherChoice = field(metadata=_option(
        doc="'auto' (a model-based choice by space, budget and parallelism), 'tpe', 'gp', "
        "'cmaes', 'qmc', 'nsga2', 'nsga3', 'ax', 'hebo', 'bayesopt', 'random', 'grid', "
        "'sobol', {name: configs, configs: [...]} (exactly the configurations given), "
        "{name: ..., <option>: ...}, or a Searcher instance",
        check=checks.searcher, default="auto", to_json=SearcherChoice.to_json,
        from_json=checks.plugin_from_json,
        annotation="str | Mapping[str, Any] | Searcher",
    ))  # fmt: skip
    scheduler: SchedulerChoice = field(metadata=_option(
        doc="when to stop trials early: 'fifo' (every trial runs to its end), 'asha', "
        "'hyperband', 'median', 'pbt', {name: asha, max_t: 27, ...}, or a Scheduler "
        "instance (raysweep.schedulers.ASHA(...))",
        check=checks.scheduler, default="fifo", to_json=SchedulerChoice.to_json,
        from_json=checks.plugin_from_json,
        annotation="str | Mapping[str, Any] | Scheduler",
    ))  # fmt: skip
    keep_checkpoints: int = field(metadata=_option(
        doc="checkpoints kept per trial (raysweep.save_checkpoint), the newest",
        check=checks.positive_int, default=DEFAULT_KEEP, annotation="int",
    ))  # fmt: skip
    log_output: bool = field(metadata=_option(
        doc="keep each trial's stdout/stderr in <storage>/<name>/trials/<id>/output.log "
        "(first 1 MiB)", check=checks.flag, default=False, annotation="bool",
    ))  # fmt: skip
    # -- limits ----------------------------------------------------------------------
    num_trials: int | None = field(metadata=_option(
        doc="trials to create in all; required unless searcher='grid' or stop bounds the "
        "run; a larger value on resume extends the experiment",
        check=checks.positive_int, flag="Total number of trials (overrides the file); with "
        "--resume a larger value extends the experiment.", annotation="int | None",
    ))  # fmt: skip
    max_concurrent: int | None = field(metadata=_option(
        doc="trials in flight at most (default: what fits the cluster)",
        check=checks.positive_int, flag="Trials in flight at most (overrides the file).",
        annotation="int | None",
    ))  # fmt: skip
    seed: int | None = field(metadata=_option(
        doc="makes the searcher reproducible", check=checks.seed, annotation="int | None",
    ))  # fmt: skip
    resources: Resources = field(metadata=_option(
        doc="per-trial {'cpu': 1, 'gpu': 0.25, 'mem_mb': ..., 'max_retries': ...} or Resources",
        check=checks.resources, default={}, to_json=Resources.to_json,
        annotation="Mapping[str, Any] | Resources",
    ))  # fmt: skip
    timeout_s: float | None = field(metadata=_option(
        doc="per-trial wall-clock limit in seconds, counted from the trial's start on a "
        "worker (time queued for resources does not count); a trial past it FAILS",
        check=checks.seconds, annotation="float | None",
    ))  # fmt: skip
    max_failures: int | None = field(metadata=_option(
        doc="stop with TooManyFailuresError when more trials than this fail",
        check=checks.nonnegative_int, annotation="int | None",
    ))  # fmt: skip
    stop: Stop = field(metadata=_option(
        doc="{'time_budget_s': ..., 'target': ..., 'patience': ..., 'metric': ...}: end the "
        "experiment early; with several metrics, 'metric' names the one target and patience "
        "follow",
        check=checks.stop, default={}, to_json=Stop.to_json,
        annotation="Mapping[str, Any] | Stop",
    ))  # fmt: skip
    # -- where it is stored and runs ---------------------------------------------------
    name: str = field(metadata=_option(
        doc="experiment name, a folder name (default: the sweep file's name, or the "
        "objective's name and the time)", check=checks.name, default_from=checks.default_name,
        flag="Experiment name (overrides the file).", annotation="str | None",
    ))  # fmt: skip
    storage: str | Path = field(metadata=_option(
        doc="folder holding experiment folders (<storage>/<name>/experiment.db) or a "
        "store URL such as file:///abs/path", check=checks.storage,
        default="runs", on_resume=OnResume.NOT_STORED,
        flag="Folder holding experiment folders (overrides the file; relative to the "
        "current directory).", annotation="str | os.PathLike[str]",
    ))  # fmt: skip
    runtime_env: dict[str, Any] | None = field(metadata=_option(
        doc="Ray runtime environment for every trial (env_vars, working_dir, ...)",
        check=checks.runtime_env, on_resume=OnResume.NOT_STORED,
        annotation="Mapping[str, Any] | None",
    ))  # fmt: skip
    address: str | None = field(metadata=_option(
        doc="Ray cluster to join (default: RAY_ADDRESS, else a new local Ray)",
        check=checks.address, **_INVOCATION, annotation="str | None",
        flag="Ray cluster to join, e.g. 'auto' or 'ray://head:10001' (default: "
        "RAY_ADDRESS, else a new local Ray).",
    ))  # fmt: skip
    connect_timeout_s: float | None = field(metadata=_option(
        doc="seconds to wait for the Ray cluster at address (or RAY_ADDRESS) to answer "
        "(default: RAYSWEEP_CONNECT_TIMEOUT_S, else 30)",
        check=checks.seconds, **_INVOCATION, annotation="float | None",
        flag="Seconds to wait for the Ray cluster at --address to answer (default: "
        "RAYSWEEP_CONNECT_TIMEOUT_S, else 30).",
    ))  # fmt: skip
    # -- this invocation -----------------------------------------------------------------
    resume: bool | str = field(metadata=_option(
        doc="continue the stored experiment: re-run unfinished trials, then go on; 'auto': "
        "continue it if it exists, else start it (batch jobs that may be requeued)",
        check=checks.resume, default=False, **_INVOCATION,
        annotation="bool | Literal['auto']",
        flag="Continue the stored experiment: finish interrupted trials, then run up to "
        "--num-trials in total. '--resume auto' continues it if it exists, else starts it "
        "(for batch jobs that may be preempted and requeued).",
    ))  # fmt: skip
    force: bool = field(metadata=_option(
        doc="with resume: accept a changed space, constraints, metric or mode",
        check=checks.flag, default=False, **_INVOCATION, annotation="bool",
        flag="With --resume: accept a changed space, constraints, metric or mode.",
    ))  # fmt: skip
    callbacks: tuple[Any, ...] = field(metadata=_option(
        doc="raysweep.Callback instances told about every trial",
        check=checks.callbacks, default=(), **_INVOCATION, annotation="Sequence[Callback]",
    ))  # fmt: skip
    integrations: tuple[Any, ...] = field(metadata=_option(
        doc="logging integrations (raysweep.integrations), also as sweep-file entries: "
        "'tensorboard', {name: mlflow, tracking_uri: ...}, {name: wandb, project: ...}",
        check=checks.integrations, default=(), in_file=True, on_resume=OnResume.NOT_STORED,
        annotation="Sequence[str | Mapping[str, Any] | LoggingCallback]",
    ))  # fmt: skip
    verbose: int = field(metadata=_option(
        doc="0: no progress display; 1: the display (live on a terminal or in a notebook, "
        "a throttled line per trial in logs); 2: a line for every trial",
        check=checks.verbosity, default=1, **_INVOCATION, annotation="int",
    ))  # fmt: skip
    backend: Any = field(metadata=_option(
        doc="where trials run (default: Ray); e.g. a SimulatedBackend",
        check=checks.backend, **_INVOCATION, annotation="Backend | None",
    ))  # fmt: skip
    clock: Any = field(metadata=_option(
        doc="the time source (default: the backend's, else wall-clock time)",
        check=checks.clock, **_INVOCATION, annotation="Clock | None",
    ))  # fmt: skip

    # -- building ----------------------------------------------------------------------
    @classmethod
    def options(cls) -> dict[str, Option]:
        """Every option, in declaration order (the order checks run in)."""
        return {f.name: f.metadata["option"] for f in dataclasses.fields(cls)}

    @classmethod
    def file_keys(cls) -> tuple[str, ...]:
        """The keys a sweep file may have."""
        return tuple(name for name, opt in cls.options().items() if opt.in_file)

    @classmethod
    def build(
        cls,
        values: Mapping[str, Any],
        *,
        base: Path | None = None,
        source: Path | None = None,
        keys: tuple[str, ...] | None = None,
    ) -> SweepConfig:
        """Check every option in ``values`` and the rules between them.

        Args:
            values: option name -> value as given; a value of ``None`` means unset.
            base: folder that relative paths are read against (a sweep file's folder).
            source: the sweep file, when reading one (it names the default experiment).
            keys: the option names allowed in ``values`` (default: all).

        Raises:
            UnknownOptionError: an option name that does not exist, with a did-you-mean.
            SpecError: one line ``"<option>: <what was wrong and what is expected>"``.
        """
        options = cls.options()
        allowed = options if keys is None else {k: options[k] for k in keys}
        for key in values:
            if key not in allowed:
                raise _unknown(key, allowed, options)
        ctx = Context(base=base, source=source)
        for key, opt in options.items():
            value = values.get(key)
            if value is None and opt.required:
                raise SpecError(f"missing required option {key!r}: {opt.doc}")
            if value is None and opt.default_from is not None:
                value = opt.default_from(ctx)
            if value is None:
                value = opt.default
            ctx.values[key] = None if value is None else _checked(key, opt, value, ctx)
        config = cls(**ctx.values)
        for rule in _RULES:
            rule(config)
        return config

    @classmethod
    def check_stored(cls, spec: Mapping[str, Any]) -> None:
        """Check a stored spec by the rules its values were given under, for readers
        of a store someone may have edited by hand; the objective is not imported.

        Raises:
            SpecError: ``"<option>: <problem>"`` for the first bad value.
        """
        ctx = Context()
        for key, opt in cls.options().items():
            value = spec.get(key)
            if not opt.stored or value is None:
                continue
            if opt.from_json is checks.plugin_from_json:
                try:
                    checks.stored_plugin(value)
                except SpecError as exc:
                    raise SpecError(f"{key}: {exc}") from None
                continue  # not built: see stored_plugin
            if opt.from_json is not None:
                try:
                    value = opt.from_json(value)
                except SpecError as exc:
                    raise SpecError(f"{key}: {exc}") from None
            ctx.values[key] = _checked(key, opt, value, ctx)

    def replace(self, **changes: Any) -> SweepConfig:
        """This config with some options changed, checked again (``None`` keeps a value).

        Relative paths in ``changes`` are read against the working directory
        (these are CLI flags and code, not sweep-file keys).
        """
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return SweepConfig.build(values)

    # -- derived views ----------------------------------------------------------------
    @property
    def objectives(self) -> Objectives:
        """Which trial is better (see :mod:`raysweep.objectives`): the metrics in the
        order given; the primary one (best so far, stop target, patience, ``best``)
        is ``stop.metric`` if named, else the first."""
        return Objectives.parse(self.metric, self.mode).with_primary(self.stop.metric)

    @property
    def location(self) -> Location:
        """Where the experiment is stored (see :func:`raysweep.store.locate`)."""
        return locate(self.storage, self.name)

    @property
    def directory(self) -> Path:
        """The experiment folder (file stores; the URL's path for ``file://`` storage)."""
        directory = self.location.directory
        return directory if directory is not None else Path(self.storage) / self.name

    def to_spec(self) -> dict[str, Any]:
        """The stored description of the experiment (JSON)."""
        spec: dict[str, Any] = {"kind": "sweep"}
        for key, opt in self.options().items():
            if opt.stored:
                spec[key] = opt.json(getattr(self, key))
        return spec

    def resume_changes(self, stored: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """How this config differs from a stored spec: ``(refused, updated)``.

        ``refused`` lists changes of options that define the experiment (a resume
        needs ``force``); ``updated`` lists the other changes, which apply.
        """
        refused: list[str] = []
        updated: list[str] = []
        for key, opt in self.options().items():
            if not opt.stored or key == "name":
                continue
            old, new = stored.get(key), opt.json(getattr(self, key))
            if new is None and opt.on_resume is OnResume.UPDATE:
                continue  # not given this time: the stored value stands
            if key == "space":
                lines = _space_diff(old, self.space)
            else:
                lines = [] if _same(old, new) else [f"{key}: {old!r} -> {new!r}"]
            (refused if opt.on_resume is OnResume.KEEP else updated).extend(lines)
        return refused, updated


def _checked(key: str, opt: Option, value: Any, ctx: Context) -> Any:
    try:
        return opt.check(value, ctx)
    except SpecError as exc:
        message = " ".join(str(exc).split())
        # A nested value's check names its own key: "stop" + "target: ..." -> "stop.target: ..."
        nested = _NESTED.match(message)
        joined = f"{key}.{message}" if nested else f"{key}: {message}"
        raise type(exc)(joined) from None


def _unknown(key: Any, allowed: Mapping[str, Option], options: Mapping[str, Option]) -> SpecError:
    if key in options:
        opt = options[key]
        where = f"--{key.replace('_', '-')}" if opt.flag else f"raysweep.run({key}=...)"
        return SpecError(f"{key!r} cannot be set in a sweep file; use {where}")
    return UnknownOptionError(
        f"unknown option {key!r}{did_you_mean(key, allowed)}; expected one of: {', '.join(allowed)}"
    )


def _same(old: Any, new: Any) -> bool:
    # Stored JSON has lists where the normal form may have tuples.
    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items() if v is not None}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return bool(plain(old) == plain(new))


def _space_diff(old: Any, new: SearchSpace) -> list[str]:
    try:
        return [f"space {line}" for line in SearchSpace.from_json(old).diff(new)]
    except SpecError:
        return ["space: the stored space is unreadable"]


# -- rules between options ------------------------------------------------------------


def _bounded(config: SweepConfig) -> None:
    if config.num_trials is None and config.searcher.name != "grid" and config.stop == Stop():
        raise SpecError(
            "num_trials: required (a positive integer) unless searcher='grid' or a stop "
            "condition (time_budget_s, target, patience) bounds the run"
        )


def _force_with_resume(config: SweepConfig) -> None:
    if config.force and not config.resume:
        raise SpecError(
            "force: only applies with resume=True (it accepts a changed space, constraints, "
            "metric or mode); to start afresh, choose another name"
        )


def _feasible(config: SweepConfig) -> None:
    """Fail at start, not hours later, when no sampled point satisfies the constraints."""
    if not len(config.constraints):
        return
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(_PROBE_DRAWS):
        if config.constraints.is_feasible(config.space.sample(rng)):
            return
    raise ConstraintError(
        f"constraints: none of {_PROBE_DRAWS} random configurations satisfies "
        f"{config.constraints.to_json()}; the feasible region is empty or too small to sample"
    )


def _searcher_fits(config: SweepConfig) -> None:
    """A searcher given what it cannot optimize fails at start, naming ones that can."""
    from raysweep.sweep.searchers import SEARCHERS, searcher_class

    cls = config.searcher.searcher_class()
    needs = []
    if len(config.objectives) > 1 and not cls.multi_objective:
        needs.append(("multi_objective", f"{len(config.objectives)} metrics"))
    if config.space.conditional and not cls.conditional:
        needs.append(("conditional", "a conditional space (parameters with 'when')"))
    for attr, what in needs:
        able = [n for n in SEARCHERS if _has(searcher_class, n, attr)]
        raise SpecError(
            f"searcher: {config.searcher.name!r} cannot optimize {what}; use one of: "
            f"{', '.join(able)}"
        )


def _scheduler_fits(config: SweepConfig) -> None:
    """A scheduler judges one metric, and PBT's mutations must name parameters: both
    checked at start by setting the scheduler up once."""
    if not config.scheduler.judges:
        return
    if len(config.objectives) > 1:
        raise SpecError(
            f"scheduler: {config.scheduler.name!r} judges one metric, but "
            f"{len(config.objectives)} are optimized; use scheduler 'fifo' for a "
            f"multi-objective sweep"
        )
    from raysweep.sweep.schedulers import SchedulerContext, make_scheduler

    probe = (
        make_scheduler(config.scheduler.name, config.scheduler.options)
        if config.scheduler.instance is None
        else None
    )
    if probe is not None:
        probe.setup(
            SchedulerContext(objectives=config.objectives, space=config.space, seed=config.seed)
        )


def _has(get: Callable[[str], type[Any]], name: str, attr: str) -> bool:
    try:
        return bool(getattr(get(name), attr))
    except ImportError:
        return False


def _one_clock(config: SweepConfig) -> None:
    """A backend with its own time (the simulator) is measured by that time only."""
    own = config.backend.clock() if config.backend is not None else None
    if own is not None and config.clock is not None and config.clock is not own:
        raise SpecError(
            "clock: the backend keeps its own time (backend.clock()); leave clock unset, "
            "or time-outs and budgets would be measured on a different clock"
        )


def _locatable(config: SweepConfig) -> None:
    """The storage URL's scheme is one raysweep has, and the name fits in it."""
    _ = config.location


_RULES: tuple[Callable[[SweepConfig], None], ...] = (
    _bounded,
    _searcher_fits,
    _scheduler_fits,
    _force_with_resume,
    _one_clock,
    _locatable,
    _feasible,
)


# -- the signature and docstring of raysweep.run ---------------------------------------


def run_signature() -> inspect.Signature:
    """``run(objective, space, *, <every other option>)`` with defaults, for ``help()``."""
    params = []
    for key, opt in SweepConfig.options().items():
        kind = (
            inspect.Parameter.POSITIONAL_OR_KEYWORD
            if key in ("objective", "space")
            else inspect.Parameter.KEYWORD_ONLY
        )
        default = inspect.Parameter.empty if opt.required else opt.default
        params.append(inspect.Parameter(key, kind, default=default, annotation=opt.annotation))
    return inspect.Signature(params, return_annotation="Result")


def run_args_doc(indent: str = "    ") -> str:
    """The ``Args:`` section of ``run``'s docstring, one line per option."""
    lines = [f"{indent}Args:"]
    for key, opt in SweepConfig.options().items():
        lines.append(f"{indent}    {key}: {opt.doc}.")
    return "\n".join(lines)
