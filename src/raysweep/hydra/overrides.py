"""Hydra override strings <-> raysweep parameters and configurations.

Hydra names a value by a key such as ``optimizer.lr``, ``+db@backup`` or
``model`` (a config group); raysweep names a parameter by a Python identifier,
so that constraints can refer to it. Each override key becomes one parameter
named by :func:`parameter_name` (``optimizer.lr`` -> ``optimizer_lr``); a
:class:`Param` remembers its key and writes a trial's value back as the override
Hydra reads. Values a user wrote keep their exact spelling; values a searcher
drew are written in Hydra's grammar and checked to read back as the same value.

Sweep syntax and the domain each becomes:

========================================  ==================================
``a=1,2,3``, ``a=choice(1,2,3)``          ``choice([1, 2, 3])``
``a=range(1,5)`` (integers, step 1)       ``randint(1, 4)`` (Hydra's stop is exclusive)
``a=range(0,1,0.25)``, other steps        ``choice`` of the values
``a=interval(0,1)``                       ``uniform(0, 1)``
``a=tag(log, interval(1e-4,1))``          ``loguniform(1e-4, 1)``
``a=tag(int, interval(1,8))``             ``randint(1, 8)`` (``int, log``: ``lograndint``)
``db=glob(*)``                            ``choice`` of the matching group options
``a=1`` (no sweep)                        a fixed value
========================================  ==================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from raysweep._checks import describe
from raysweep.errors import SpecError
from raysweep.sweep.space import (
    Domain,
    Fixed,
    SearchSpace,
    choice,
    lograndint,
    loguniform,
    randint,
    uniform,
)

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

__all__ = [
    "Param",
    "format_value",
    "from_jobs",
    "from_overrides",
    "parameter_name",
    "space_of",
    "to_overrides",
]

#: The tags of an ``interval`` sweep this module understands.
INTERVAL_TAGS = frozenset({"log", "int"})
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def _canon(value: Any) -> str:
    """A value's identity as JSON: ``1``, ``1.0`` and ``true`` stay distinct."""
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Param:
    """One swept (or fixed) Hydra key as a raysweep parameter.

    Attributes:
        name: the raysweep parameter name (an identifier).
        key: the Hydra key element as written, prefix and package included
            (``optimizer.lr``, ``+db@backup``, ``~trainer.logger``).
        domain: the raysweep domain of its values.
        exact: a value (as JSON) -> the override exactly as the user wrote it.
    """

    name: str
    key: str
    domain: Domain
    exact: Mapping[str, str] = field(default_factory=dict)

    def override(self, value: Any) -> str:
        """The override string that sets this key to ``value``."""
        written = self.exact.get(_canon(value))
        if written is not None:
            return written
        return f"{self.key}={format_value(value)}"


def parameter_name(key: str) -> str:
    """The raysweep parameter name of a Hydra key: ``+`` / ``~`` dropped, every
    other character that is not a letter, digit or ``_`` made ``_``.

    Example:
        >>> parameter_name("optimizer.lr"), parameter_name("+db@backup"), parameter_name("model")
        ('optimizer_lr', 'db_backup', 'model')
    """
    name = _NOT_IDENTIFIER.sub("_", key.lstrip("+~"))
    return name if name.isidentifier() else f"p_{name}"


def format_value(value: Any) -> str:
    """``value`` in Hydra's override grammar, checked to read back as ``value``.

    Example:
        >>> format_value(0.001), format_value("relu"), format_value("1"), format_value(None)
        ('0.001', 'relu', "'1'", 'null')
    """
    from hydra.core.override_parser.types import Transformer

    plain = Transformer.str(value)
    if _reads_as(plain, value):
        return plain
    if isinstance(value, str):
        quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if _reads_as(quoted, value):
            return quoted
    raise SpecError(
        f"the value {describe(value)} cannot be written as a Hydra override value; "
        f"use numbers, booleans, null or strings without unmatched quotes"
    )


def _reads_as(text: str, value: Any) -> bool:
    try:
        parsed = _parser().parse_override(f"k={text}").value()
    except Exception:  # any parse failure means: not this spelling
        return False
    return _canon(parsed) == _canon(value)


_PARSER: list[OverridesParser] = []


def _parser() -> OverridesParser:
    """One plain parser per process (building Hydra's ANTLR parser is not free)."""
    if not _PARSER:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        _PARSER.append(OverridesParser.create())
    return _PARSER[0]


def _parse(line: str, parser: OverridesParser) -> Override:
    try:
        return parser.parse_override(line)
    except Exception as exc:
        why = " ".join(str(exc).split())
        raise SpecError(f"override {line!r} does not parse: {why}") from None


def _domain(override: Override, line: str) -> tuple[Domain, dict[str, str]]:
    """The domain of one parsed override and the exactly written values it keeps."""
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep

    if not override.is_sweep_override():
        value = override.value()
        return Fixed(value), {_canon(value): line.strip()}
    sweep = override.value()
    tags = set(getattr(sweep, "tags", ()) or ())
    if isinstance(sweep, IntervalSweep):
        unknown = tags - INTERVAL_TAGS
        if unknown:
            raise SpecError(
                f"override {line!r}: unknown tag {sorted(unknown)[0]!r}; an interval "
                f"takes the tags {sorted(INTERVAL_TAGS)} (tag(log, interval(1e-4, 1)))"
            )
        low, high = sweep.start, sweep.end
        if low is None or high is None:
            raise SpecError(f"override {line!r}: an interval needs a start and an end")
        if "int" in tags:
            return (lograndint if "log" in tags else randint)(int(low), int(high)), {}
        return (loguniform if "log" in tags else uniform)(float(low), float(high)), {}
    if tags:
        raise SpecError(
            f"override {line!r}: tags apply only to interval(...) sweeps, got "
            f"{sorted(tags)}; write choice(...) or range(...) without tag(...)"
        )
    if isinstance(sweep, RangeSweep) and _unit_int_range(sweep):
        assert sweep.start is not None  # _unit_int_range checked both
        assert sweep.stop is not None
        if sweep.stop - 1 < sweep.start:
            raise SpecError(f"override {line!r}: the range is empty")
        return randint(int(sweep.start), int(sweep.stop) - 1), {}
    values = list(override.sweep_iterator())
    if not values:
        raise SpecError(f"override {line!r}: the sweep has no values")
    return choice(values), {}


def _unit_int_range(sweep: Any) -> bool:
    return (
        all(isinstance(v, int) and not isinstance(v, bool) for v in (sweep.start, sweep.stop))
        and sweep.step == 1
    )


def _line(key: str, value: Any) -> str:
    """A ``hydra.sweeper.params`` entry as an override line."""
    return f"{key}={value if isinstance(value, str) else format_value(value)}"


def from_overrides(
    params: Mapping[str, Any], arguments: Sequence[str], parser: OverridesParser
) -> list[Param]:
    """Parameters of a sweep: the ``hydra.sweeper.params`` block, then the command
    line's overrides (which replace a block entry of the same key).

    A block value is an override value (``interval(0, 1)``, ``a,b``), a list (a
    choice), or a raysweep domain mapping (``{type: loguniform, low: ..., high: ...}``).

    Raises:
        SpecError: an override that does not parse, an unknown tag, or two keys
            that map to one parameter name.
    """
    found: dict[str, Param] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise SpecError(f"params: keys are Hydra keys such as optimizer.lr, got {key!r}")
        if isinstance(value, Mapping):
            name = parameter_name(key)
            domain = SearchSpace.from_any({name: dict(value)})[name]
            found[key] = Param(name, key, domain)
            continue
        if isinstance(value, list | tuple):
            found[key] = Param(parameter_name(key), key, choice(list(value)))
            continue
        line = _line(key, value)
        override = _parse(line, parser)
        domain, exact = _domain(override, line)
        found[key] = Param(parameter_name(key), override.get_key_element(), domain, exact)
    for line in arguments:
        override = _parse(line, parser)
        key = override.get_key_element()
        domain, exact = _domain(override, line)
        found.pop(key.lstrip("+~"), None)  # a block entry written without the prefix
        found[key] = Param(parameter_name(key), key, domain, exact)
    return _unique(found.values())


def _unique(params: Iterable[Param]) -> list[Param]:
    out: dict[str, Param] = {}
    for param in params:
        other = out.get(param.name)
        if other is not None:
            raise SpecError(
                f"overrides {other.key!r} and {param.key!r} both become the raysweep "
                f"parameter {param.name!r}; sweep only one of them"
            )
        out[param.name] = param
    return list(out.values())


def from_jobs(
    jobs: Sequence[Sequence[str]], parser: OverridesParser
) -> tuple[list[Param], list[dict[str, Any]]]:
    """Parameters and one configuration per job, for jobs chosen by another sweeper.

    A key set in every job to one value becomes a fixed parameter, any other a
    choice of the values the jobs give it; every value keeps its exact spelling.

    Raises:
        SpecError: a job's override does not parse, or the jobs set different keys.
    """
    values: dict[str, dict[str, Any]] = {}
    exact: dict[str, dict[str, str]] = {}
    configs: list[dict[str, Any]] = []
    keys: list[str] | None = None
    for number, job in enumerate(jobs):
        row: dict[str, Any] = {}
        for line in job:
            override = _parse(line, parser)
            key = override.get_key_element()
            value = None if override.is_delete() else override.value()
            values.setdefault(key, {})[_canon(value)] = value
            exact.setdefault(key, {})[_canon(value)] = line.strip()
            row[key] = value
        if keys is None:
            keys = list(row)
        elif sorted(row) != sorted(keys):
            raise SpecError(
                f"job {number} overrides {sorted(row)} but job 0 overrides {sorted(keys)}; "
                f"the raysweep launcher runs jobs that set the same keys"
            )
        configs.append(row)
    params = _unique(
        Param(
            parameter_name(key),
            key,
            Fixed(next(iter(seen.values()))) if len(seen) == 1 else choice(list(seen.values())),
            exact[key],
        )
        for key, seen in values.items()
    )
    by_key = {p.key: p.name for p in params}
    return params, [{by_key[k]: v for k, v in row.items()} for row in configs]


def space_of(params: Sequence[Param]) -> SearchSpace:
    """The raysweep search space of ``params``."""
    return SearchSpace({p.name: p.domain for p in params})


def to_overrides(params: Sequence[Param], config: Mapping[str, Any]) -> list[str]:
    """The Hydra overrides of a trial's configuration, in the order of ``params``."""
    return [p.override(config[p.name]) for p in params if p.name in config]
