"""The check of each sweep option: a value as given -> its normal form, or a SpecError.

Every check takes the value and a :class:`Context` (the folder relative paths
are read against, and the options already checked), and accepts its own normal
form again, so :meth:`SweepConfig.replace` can re-run checks on a built config.
Messages never name the option: :mod:`raysweep.sweep.config` prefixes it, and a
sweep file adds the file's path, so each rule is written once for the Python API,
YAML files and CLI flags alike.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raysweep._checks import (
    SEED_MAX,
    describe,
    expect_bool,
    expect_int,
    expect_mapping,
    expect_number,
    expect_str,
)
from raysweep.errors import SpecError
from raysweep.objectives import metric_directions, metric_names
from raysweep.resources import Resources
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.stopping import Stop

if TYPE_CHECKING:
    from raysweep.sweep.schedulers import Scheduler
    from raysweep.sweep.searchers import Searcher

__all__ = ["Context", "ObjectiveRef", "SchedulerChoice", "SearcherChoice"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Longest experiment name: one path component on every common filesystem.
NAME_MAX = 200


@dataclass(slots=True)
class Context:
    """What a check may read besides the value.

    Attributes:
        base: folder that relative paths are read against (a sweep file's
            folder); ``None`` keeps them relative to the working directory.
        source: the sweep file being read, if any.
        values: options checked so far, in declaration order, in normal form.
    """

    base: Path | None = None
    source: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def path(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base is None else self.base / path


@dataclass(frozen=True, slots=True)
class ObjectiveRef:
    """The objective function and where it came from.

    Attributes:
        fn: the callable, ``fn(config) -> float | dict``.
        ref: ``"module:function"`` as written in a sweep file, or the function's
            module and qualified name; this is what the store keeps.
        modules: modules imported from a sweep file's folder, shipped to workers
            by value.
    """

    fn: Callable[[dict[str, Any]], Any]
    ref: str
    modules: tuple[str, ...] = ()

    @classmethod
    def stored(cls, ref: Any) -> ObjectiveRef:
        """The reference a stored spec holds, checked but not imported: readers
        (``status``, ``export``) must never run a user's module."""
        ref = expect_str(ref, what="'module:function'")

        def not_imported(config: dict[str, Any]) -> Any:
            raise SpecError(f"objective {ref!r} was read from a stored spec, not imported")

        return cls(not_imported, ref)


def plugin_from_json(value: Any) -> Any:
    """A stored searcher or scheduler, ``{"name": ..., "options": {...}}`` (or a
    bare name, as stores of schema 2 hold the scheduler), as the option takes it
    (``{name: ..., <option>: ...}``)."""
    if isinstance(value, str):
        return value
    stored = dict(expect_mapping(value, "{name: random, options: {}}"))
    options = expect_mapping(stored.pop("options", {}), "{seed: 0}")
    return {**stored, **options}


def stored_plugin(value: Any) -> tuple[str, dict[str, Any]]:
    """A stored searcher or scheduler, checked for its form only: its name and options.

    Readers (``raysweep status``, ``raysweep.load``) do not build it: the name may be
    a user's own instance (not in the table), and its library need not be
    installed where the store is read (Ax on a login node).
    """
    return _named(plugin_from_json(value), "stored plugin", "{name: asha, options: {}}")


@dataclass(frozen=True, slots=True)
class SchedulerChoice:
    """A scheduler by name and options, or an instance the user built."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    instance: Scheduler | None = None

    def build(self) -> Scheduler:
        """A fresh scheduler for one run (the user's instance itself, if given)."""
        from raysweep.sweep.schedulers import make_scheduler

        if self.instance is not None:
            return self.instance
        return make_scheduler(self.name, self.options)

    @property
    def judges(self) -> bool:
        """Whether it judges reports at all (``fifo`` does not)."""
        return self.name != "fifo"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": _plain(self.options)}


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as JSON: a domain (PBT's mutations) by its JSON form."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            value = _plain(value)
        elif hasattr(value, "to_json"):
            value = value.to_json()
        out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class SearcherChoice:
    """A searcher by name and options, or an instance the user built."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    instance: Searcher | None = None

    def build(self) -> Searcher:
        """A fresh searcher for one run (the user's instance itself, if given)."""
        from raysweep.sweep.searchers import make_searcher

        return (
            self.instance if self.instance is not None else make_searcher(self.name, self.options)
        )

    def searcher_class(self) -> type[Searcher]:
        """The class that :meth:`build` instantiates (for its capabilities)."""
        from raysweep.sweep.searchers import searcher_class

        return type(self.instance) if self.instance is not None else searcher_class(self.name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


# -- what the experiment is ----------------------------------------------------------


def objective(value: Any, ctx: Context) -> ObjectiveRef:
    """A callable taking the config, or ``"module:function"`` (imported at once)."""
    if isinstance(value, ObjectiveRef):
        return value
    if isinstance(value, str):
        from raysweep.sweep._objective_import import load_objective

        ref = expect_str(value, what="'module:function' or a callable")
        fn, modules = load_objective(ref, ctx.base or Path.cwd())
        check_signature(fn, ref)
        return ObjectiveRef(fn, ref, modules)
    if not callable(value):
        raise SpecError(
            f"expected a callable fn(config) or 'module:function', got {describe(value)}"
        )
    check_signature(value)
    ref = f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', repr(value))}"
    return ObjectiveRef(value, ref)


def check_signature(fn: Callable[..., Any], shown: str | None = None) -> None:
    """Refuse at start a function that cannot be called with the config dict."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none; let the call decide
        return
    try:
        signature.bind({})
    except TypeError:
        name = shown or getattr(fn, "__qualname__", repr(fn))
        raise SpecError(
            f"{name!r} must accept the configuration dict as its one argument, "
            f"but its signature is {signature}"
        ) from None


def space(value: Any, ctx: Context) -> SearchSpace:
    """A SearchSpace, a mapping of parameters, an Ax parameter list, or a .json/.yaml file."""
    if isinstance(value, str | Path) and not isinstance(value, SearchSpace):
        value = _read_space_file(ctx.path(value))
    if not isinstance(value, Mapping | list | tuple):
        raise SpecError(
            f"expected a mapping of parameters (lr: {{type: loguniform, low: 1e-4, high: 0.1}}), "
            f"an Ax-style parameter list, or a .json/.yaml file name, got {describe(value)}"
        )
    return SearchSpace.from_any(value)


def _read_space_file(path: Path) -> Any:
    from raysweep.sweep._yaml import first_line, parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the space file {str(path)!r}: {first_line(exc)}") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return parse_yaml(text, str(path))


def metric(value: Any, ctx: Context) -> tuple[str, ...]:
    """One metric name or a list of distinct names (a multi-objective sweep)."""
    return metric_names(value)


def mode(value: Any, ctx: Context) -> tuple[str, ...]:
    """``"min"``/``"max"`` for every metric, or a list with one per metric."""
    names = ctx.values.get("metric") or ("loss",)
    return tuple(d.value for d in metric_directions(value, names))


def one_or_list(value: tuple[str, ...]) -> str | list[str]:
    """The stored form of ``metric`` and ``mode``: a string for one metric (as
    older versions stored it, so their experiments resume unchanged), else a list."""
    return value[0] if len(value) == 1 else list(value)


def constraints(value: Any, ctx: Context) -> ConstraintSet:
    """A list of constraint strings (one string is one constraint)."""
    if isinstance(value, ConstraintSet):
        value = value.to_json()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise SpecError(f"expected a list of strings such as ['x + y <= 1'], got {describe(value)}")
    space = ctx.values.get("space")
    if space is None:
        raise SpecError("constraints need a search space to refer to")
    return ConstraintSet(list(value), space)


def searcher_options(value: Any, ctx: Context) -> dict[str, Any]:
    return dict(expect_mapping(value, "{seed: 0}"))


def _named(value: Any, kind: str, example: str) -> tuple[str, dict[str, Any]]:
    """A plugin given by name, or by ``{name: ..., <option>: ...}``: its name and options."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping):
        options = dict(value)
        name = options.pop("name", None)
        if not isinstance(name, str) or not name:
            raise SpecError(
                f"a {kind} mapping needs a 'name' key, e.g. {example}, got {dict(value)!r}"
            )
        return name, options
    raise SpecError(
        f"expected a {kind} name or a mapping {{name: ..., <option>: ...}}, got {describe(value)}"
    )


def searcher(value: Any, ctx: Context) -> SearcherChoice:
    """A name, ``{name: sobol, <option>: ...}``, or a Searcher instance; the
    options are checked against the searcher's constructor."""
    from raysweep.sweep.searchers import Searcher, make_searcher

    extra = dict(ctx.values.get("searcher_options") or {})
    if isinstance(value, SearcherChoice):
        value = value.instance or {"name": value.name, **value.options}
    if isinstance(value, Searcher):
        if extra:
            raise SpecError(
                f"searcher_options {sorted(extra)} cannot be applied to the "
                f"{type(value).__name__} instance given; pass them to its constructor"
            )
        return SearcherChoice(value.name or type(value).__name__, {}, value)
    name, options = _named(value, "searcher", "{name: sobol}")
    for key, item in extra.items():
        if key in options and options[key] != item:
            raise SpecError(f"option {key!r} is given twice, as {options[key]!r} and {item!r}")
        options[key] = item
    from raysweep.sweep.searchers import canonical_name

    name = canonical_name(name)  # refuses an unknown name, naming the closest valid one
    make_searcher(name, options)  # refuses an unknown option or a missing extra
    return SearcherChoice(name, options)


def scheduler(value: Any, ctx: Context) -> SchedulerChoice:
    """A name, ``{name: asha, <option>: ...}``, or a Scheduler instance; the options
    are checked against the scheduler's constructor."""
    from raysweep.sweep.schedulers import Scheduler, canonical_name, make_scheduler

    if isinstance(value, SchedulerChoice):
        value = value.instance or {"name": value.name, **value.options}
    if isinstance(value, Scheduler):
        return SchedulerChoice(value.name or type(value).__name__, {}, value)
    name, options = _named(value, "scheduler", "{name: asha, max_t: 27}")
    name = canonical_name(name)  # refuses an unknown name, naming the closest valid one
    make_scheduler(name, options)  # refuses an unknown option or a bad value
    return SchedulerChoice(name, options)


# -- limits ---------------------------------------------------------------------------


def positive_int(value: Any, ctx: Context) -> int:
    return expect_int(value, minimum=1)


def nonnegative_int(value: Any, ctx: Context) -> int:
    return expect_int(value, minimum=0)


def seed(value: Any, ctx: Context) -> int:
    return expect_int(value, minimum=0, maximum=SEED_MAX)


def seconds(value: Any, ctx: Context) -> float:
    return expect_number(value, positive=True, what="seconds")


def resources(value: Any, ctx: Context) -> Resources:
    return Resources.coerce(value)


def stop(value: Any, ctx: Context) -> Stop:
    """Stop conditions; ``metric`` must be an objective metric, and with several
    metrics a target or patience must name the one it follows."""
    conditions = Stop.coerce(value)
    names = ctx.values.get("metric")
    if names is not None:
        conditions.check_metrics(names)
    return conditions


# -- where and how it runs ------------------------------------------------------------


def runtime_env(value: Any, ctx: Context) -> dict[str, Any]:
    """Ray's runtime environment; a local ``working_dir`` is read against the base folder."""
    env = dict(expect_mapping(value, "{env_vars: {OMP_NUM_THREADS: '1'}}"))
    working_dir = env.get("working_dir")
    if isinstance(working_dir, str | Path) and "://" not in str(working_dir):
        path = ctx.path(working_dir)
        if not path.is_dir() and not (path.is_file() and path.suffix == ".zip"):
            raise SpecError(f"working_dir: no such folder {str(path)!r}")
        env["working_dir"] = str(path)
    env_vars = env.get("env_vars")
    if env_vars is not None and (
        not isinstance(env_vars, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items())
    ):
        raise SpecError(
            f"env_vars: expected a mapping of names to strings (quote numbers: '1'), "
            f"got {describe(env_vars)}"
        )
    return env


def name(value: Any, ctx: Context) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > NAME_MAX:
        raise SpecError(
            f"expected a folder name of at most {NAME_MAX} letters, digits, '.', '_' or '-' "
            f"(starting with a letter or digit), got {describe(value)}"
        )
    return value


def default_name(ctx: Context) -> str:
    """A sweep file's stem, made a valid name; else the objective's name and the time."""
    if ctx.source is not None:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", ctx.source.stem).lstrip("._-")
        return stem[:NAME_MAX] or "sweep"
    ref: ObjectiveRef | None = ctx.values.get("objective")
    base = getattr(ref.fn, "__name__", "sweep") if ref is not None else "sweep"
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip("._-") or "sweep"
    return f"{base[: NAME_MAX - 16]}-{time.strftime('%Y%m%d-%H%M%S')}"


def storage(value: Any, ctx: Context) -> str | Path:
    """A folder holding experiment folders, or a store URL (``file:///abs/path``)."""
    if isinstance(value, Path):
        return ctx.path(value)
    text = expect_str(value, what="a folder path or a store URL")
    if "://" in text:
        return text
    return ctx.path(text)


def address(value: Any, ctx: Context) -> str:
    return expect_str(value, what="a Ray address such as 'auto' or 'ray://head:10001'")


def flag(value: Any, ctx: Context) -> bool:
    return expect_bool(value)


def resume(value: Any, ctx: Context) -> bool | str:
    """``True``, ``False``, or ``"auto"``: continue the experiment if it exists, else
    start it (a batch job that may be requeued runs the same command every time)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    raise SpecError(f"expected true, false or 'auto', got {describe(value)}")


def verbosity(value: Any, ctx: Context) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in (0, 1, 2):
        raise SpecError(f"expected 0, 1 or 2, got {describe(value)}")
    return value


def callbacks(value: Any, ctx: Context) -> tuple[Any, ...]:
    from raysweep.sweep.callbacks import Callback

    items = (value,) if isinstance(value, Callback) else value
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise SpecError(f"expected a list of raysweep.Callback instances, got {describe(value)}")
    for item in items:
        if not isinstance(item, Callback):
            raise SpecError(f"expected raysweep.Callback instances, got {describe(item)}")
    return tuple(items)


def integrations(value: Any, ctx: Context) -> tuple[Any, ...]:
    """Logging integrations by name, ``{name: mlflow, <option>: ...}``, or instances;
    folder options of a sweep file's entries are read against its folder."""
    from raysweep.integrations import make_integration

    items = [value] if isinstance(value, str | Mapping) else value
    if not isinstance(items, Sequence):
        raise SpecError(
            f"expected a list such as [tensorboard, {{name: mlflow}}], got {describe(value)}"
        )
    made = []
    for item in items:
        if isinstance(item, str | Mapping):
            name, options = _named(item, "logging integration", "{name: tensorboard, logdir: tb}")
            made.append(make_integration(name, options, base=ctx.base))
        else:
            made.append(make_integration(item))
    return tuple(made)


def backend(value: Any, ctx: Context) -> Any:
    from raysweep.sweep.execution import Backend

    if not isinstance(value, Backend):
        raise SpecError(f"expected a raysweep Backend instance, got {describe(value)}")
    return value


def clock(value: Any, ctx: Context) -> Any:
    from raysweep.sweep.execution import Clock

    if not isinstance(value, Clock):
        raise SpecError(f"expected a raysweep Clock instance, got {describe(value)}")
    return value
