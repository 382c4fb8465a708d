"""Sweep files: a YAML description of a sweep, checked completely at load time.

``raysweep run sweep.yaml`` should fail in the first second, with one line that
names the file, the field, the value and what would be right, not twenty
minutes later on a worker. So :func:`load_sweep_file` validates every field,
builds the search space and constraints, constructs the searcher once and
imports the objective before anything touches Ray or the disk.

Paths in the file (the objective module, ``storage``, a ``space`` file, a
relative ``runtime_env.working_dir``) are relative to the YAML's folder, so a
sweep runs the same from any working directory.

Example:
    >>> sweep = load_sweep_file("examples/demo/sweep.yaml")  # doctest: +SKIP
    >>> result = raysweep.run(**sweep.run_kwargs(num_trials=10))  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from raysweep.errors import SpecError
from raysweep.resources import Resources
from raysweep.sweep._objective_import import load_objective
from raysweep.sweep.plan import is_valid_name
from raysweep.sweep.searchers import make_searcher
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.sweep.stopping import Stop

__all__ = ["SweepFile", "load_sweep_file"]

#: Every top-level key a sweep file may have.
# fmt: off
SWEEP_KEYS = (
    "name", "objective", "metric", "mode", "searcher", "num_trials", "max_concurrent", "seed",
    "resources", "space", "constraints", "runtime_env", "storage", "max_failures", "stop",
    "timeout_s",
)
# fmt: on
_REQUIRED = ("objective", "space")


@dataclass(frozen=True, slots=True)
class SweepFile:
    """A validated sweep file; :meth:`run_kwargs` turns it into :func:`raysweep.run` arguments.

    Attributes:
        path: the YAML file.
        name: experiment name (default: the YAML file name without its extension,
            so ``--resume`` finds the same experiment again).
        objective: the imported objective function.
        objective_ref: where it came from, as written (``"objective:train"``).
        storage: folder holding the experiment folders (default ``runs`` next to the YAML).
        space: the parsed search space.
        searcher, searcher_options: searcher name and its options.
        modules: names of the modules imported from the YAML's folder, which are
            shipped to Ray workers by value.
        Other attributes mirror the :func:`raysweep.run` arguments of the same name.
    """

    path: Path
    name: str
    objective: Callable[..., Any]
    objective_ref: str
    storage: Path
    space: SearchSpace
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    searcher: str = "random"
    searcher_options: Mapping[str, Any] = field(default_factory=dict)
    num_trials: int | None = None
    max_concurrent: int | None = None
    seed: int | None = None
    resources: Resources | None = None
    constraints: tuple[str, ...] = ()
    runtime_env: Mapping[str, Any] | None = None
    max_failures: int | None = None
    stop: Stop | None = None
    timeout_s: float | None = None
    modules: tuple[str, ...] = ()

    def run_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for :func:`raysweep.run`; ``overrides`` win over the file.

        An override whose value is ``None`` is ignored, so CLI options that were
        not given keep the file's value.

        Raises:
            TypeError: an override that :func:`raysweep.run` does not take.

        Example:
            >>> raysweep.run(**sweep.run_kwargs(num_trials=100, resume=True))  # doctest: +SKIP
        """
        from raysweep.sweep.api import run

        unknown = sorted(set(overrides) - set(inspect.signature(run).parameters))
        if unknown:
            raise TypeError(f"run_kwargs() got unknown override(s) {unknown}")
        kwargs: dict[str, Any] = {
            "objective": self.objective,
            "space": self.space,
            "metric": self.metric,
            "mode": self.mode,
            "num_trials": self.num_trials,
            "max_concurrent": self.max_concurrent,
            "searcher": self.searcher,
            "searcher_options": dict(self.searcher_options),
            "resources": self.resources,
            "constraints": list(self.constraints),
            "name": self.name,
            "storage": self.storage,
            "seed": self.seed,
            "max_failures": self.max_failures,
            "stop": self.stop,
            "timeout_s": self.timeout_s,
            "runtime_env": dict(self.runtime_env) if self.runtime_env is not None else None,
        }
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return kwargs


# -- YAML ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with two traps removed.

    Duplicate keys are an error (PyYAML silently keeps the last one), and
    ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3`` and otherwise reads a string,
    which would surface later as a baffling "low='1e-3' must be a number").
    """


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value, got {key!r}", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{where}: invalid YAML{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: invalid YAML: {_first_line(exc)}") from None


# -- loading ------------------------------------------------------------------------


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read, validate and prepare a sweep YAML.

    Keys: ``objective`` (``module:function``) and ``space`` are required; the
    others are ``name, metric, mode, searcher, num_trials, max_concurrent, seed,
    resources, constraints, runtime_env, storage, max_failures, stop, timeout_s``,
    with the meaning of the :func:`raysweep.run` argument of the same name.
    ``searcher`` is a name or a mapping ``{name: sobol, <option>: <value>}``;
    ``space`` is a mapping of parameters, an Ax-style parameter list, or the path
    of a JSON/YAML file holding either.

    The objective's module is looked up first in the YAML's folder (``module.py``
    or a package folder ``module/``), then among installed modules. Modules from
    the folder, and the folder's modules they import at import time, are
    registered with Ray to travel by value, so workers need not have the folder
    on their path (a sibling module imported only inside the function would
    not travel: import it at the top).

    Raises:
        SpecError: anything wrong with the file, in one line naming the file and field.

    Example:
        >>> load_sweep_file("examples/demo/sweep.yaml").run_kwargs()["num_trials"]  # doctest: +SKIP
        40
    """
    file = Path(path)
    where = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{where}: no such sweep file") from None
    except IsADirectoryError:
        raise SpecError(f"{where}: is a folder, expected a sweep YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot read the sweep file: {_first_line(exc)}") from None

    doc = _parse_yaml(text, where)
    if doc is None:
        raise SpecError(
            f"{where}: the file is empty; expected a mapping with at least 'objective' and 'space'"
        )
    if not isinstance(doc, dict):
        raise SpecError(
            f"{where}: expected a mapping of keys (objective, space, ...) at the "
            f"top level, got a {type(doc).__name__}"
        )
    _check_keys(doc, where)
    base = file.resolve().parent
    f = _Fields(doc, where)

    name = f.get("name", _check_name, default=_default_name(file))
    metric = f.get("metric", _check_nonempty_str, default="loss")
    mode = f.get("mode", _check_mode, default="min")
    num_trials = f.get("num_trials", _check_positive_int)
    max_concurrent = f.get("max_concurrent", _check_positive_int)
    seed = f.get("seed", _check_seed)
    max_failures = f.get("max_failures", _check_nonnegative_int)
    timeout_s = f.get("timeout_s", _check_positive_number)
    storage = f.get("storage", lambda v: _check_path(v, base), default=base / "runs")
    resources = f.get("resources", _check_resources)
    stop = f.get("stop", _check_stop)
    runtime_env = f.get("runtime_env", lambda v: _check_runtime_env(v, base))
    space = f.get("space", lambda v: _check_space(v, base))
    constraints = f.get("constraints", lambda v: _check_constraints(v, space), default=())
    searcher, options = f.get("searcher", _check_searcher, default=("random", {}))
    ref = f.get("objective", _check_nonempty_str)
    objective, modules = _with_field(where, "objective", lambda: load_objective(ref, base))
    # fmt: off
    return SweepFile(
        path=file, name=name, objective=objective, objective_ref=ref, storage=storage,
        space=space, metric=metric, mode=mode, searcher=searcher, searcher_options=options,
        num_trials=num_trials, max_concurrent=max_concurrent, seed=seed, resources=resources,
        constraints=constraints, runtime_env=runtime_env, max_failures=max_failures, stop=stop,
        timeout_s=timeout_s, modules=modules,
    )
    # fmt: on


def _check_keys(doc: Mapping[Any, Any], where: str) -> None:
    expected = ", ".join(SWEEP_KEYS)
    for key in doc:
        if key in SWEEP_KEYS:
            continue
        close = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"{where}: unknown key {key!r}{hint}; expected one of: {expected}")
    missing = [k for k in _REQUIRED if doc.get(k) is None]
    if missing:
        raise SpecError(
            f"{where}: missing required key {missing[0]!r}; "
            f"e.g. objective: 'objective:train' and a space: mapping"
        )


class _Fields:
    """Reads fields of the parsed file, turning a validator's complaint into a
    one-line :class:`SpecError` that names the file and the field."""

    __slots__ = ("doc", "where")

    def __init__(self, doc: Mapping[str, Any], where: str) -> None:
        self.doc = doc
        self.where = where

    def get(self, key: str, check: Callable[[Any], Any], default: Any = None) -> Any:
        value = self.doc.get(key)
        if value is None:
            return default
        return _with_field(self.where, key, lambda: check(value))


def _with_field(where: str, key: str, thunk: Callable[[], Any]) -> Any:
    try:
        return thunk()
    except SpecError as exc:
        message = " ".join(str(exc).split("\n")[0].split())
        # Validators of nested values (resources, stop, ...) already name their field.
        if not re.match(rf"{re.escape(key)}\b", message):
            message = f"{key}: {message}"
        raise SpecError(f"{where}: {message}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- field validators: each raises SpecError("<what was expected>, got <value>") ------


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if isinstance(value, str) else repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_name(value: Any) -> str:
    if not is_valid_name(value):
        raise SpecError(
            f"expected a folder name of letters, digits, '.', '_' or '-', got {_describe(value)}"
        )
    return str(value)


def _default_name(file: Path) -> str:
    """The file's stem, made a valid name (``my sweep.yaml`` -> ``my_sweep``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", file.stem).lstrip("._-")
    return name or "sweep"


def _check_nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"expected a non-empty string, got {_describe(value)}")
    return value


def _check_mode(value: Any) -> str:
    if value not in ("min", "max"):
        raise SpecError(f"expected 'min' or 'max', got {_describe(value)}")
    return str(value)


def _check_positive_int(value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise SpecError(f"expected a positive integer, got {_describe(value)}")
    return int(value)


def _check_nonnegative_int(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise SpecError(f"expected an integer >= 0, got {_describe(value)}")
    return int(value)


def _check_seed(value: Any) -> int:
    if not _is_int(value) or not 0 <= value < 2**63:
        raise SpecError(f"expected an integer in [0, 2**63), got {_describe(value)}")
    return int(value)


def _check_positive_number(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise SpecError(f"expected a positive number of seconds, got {_describe(value)}")
    return float(value)


def _check_mapping(value: Any, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"expected a mapping such as {example}, got {_describe(value)}")
    return value


def _check_path(value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"expected a folder path, got {_describe(value)}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _check_resources(value: Any) -> Resources:
    return Resources.coerce(_check_mapping(value, "{cpu: 1, gpu: 0.5}"))


def _check_stop(value: Any) -> Stop:
    return Stop.coerce(_check_mapping(value, "{time_budget_s: 600, patience: 20}"))


def _check_runtime_env(value: Any, base: Path) -> dict[str, Any]:
    env = dict(_check_mapping(value, "{env_vars: {OMP_NUM_THREADS: '1'}}"))
    working_dir = env.get("working_dir")
    # Ray resolves a local working_dir against the current directory; a sweep
    # file's paths are relative to the file.
    if isinstance(working_dir, str) and "://" not in working_dir:
        path = Path(working_dir).expanduser()
        env["working_dir"] = str(path if path.is_absolute() else base / path)
    return env


def _check_space(value: Any, base: Path) -> SearchSpace:
    if isinstance(value, str):
        value = _read_space_file(value, base)
    if not isinstance(value, Mapping | list):
        raise SpecError(
            f"expected a mapping of parameters (lr: {{type: loguniform, low: 1e-4, high: 0.1}}), "
            f"an Ax-style parameter list, or a .json/.yaml file name, got {_describe(value)}"
        )
    return SearchSpace.from_any(value)


def _read_space_file(name: str, base: Path) -> Any:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the space file {str(path)!r}: {_first_line(exc)}") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return _parse_yaml(text, str(path))


def _check_constraints(value: Any, space: SearchSpace) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise SpecError(f"expected a list of strings such as ['x + y <= 1'], got {value!r}")
    ConstraintSet(list(value), space)
    return tuple(value)


def _check_searcher(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, Mapping):
        options = dict(value)
        name = options.pop("name", None)
        if not isinstance(name, str) or not name:
            raise SpecError(
                f"a searcher mapping needs a 'name' key, e.g. {{name: sobol}}, got {dict(value)!r}"
            )
        if any(not isinstance(k, str) for k in options):
            raise SpecError(f"option names must be strings, got {list(options)!r}")
    else:
        raise SpecError(
            f"expected a searcher name or a mapping {{name: ..., <option>: ...}}, "
            f"got {_describe(value)}"
        )
    # Built once here only to validate the name and options; run() builds its own.
    make_searcher(name, options)
    return name, options
