"""Search spaces: named parameter domains, read from whatever users already have.

A :class:`SearchSpace` is an ordered, validated, immutable mapping of parameter
names to :mod:`domains <raysweep.sweep.space.domains>` (re-exported here). It is built from
Python domains, from YAML-style mappings, or from an Ax ``parameters`` list taken
as it is, so users of those tools can bring their spaces without rewriting them.
It round-trips through JSON, which is how the store detects a changed space on
resume and shows what changed (:meth:`SearchSpace.diff`).

A parameter may be searched only under a condition on the parameters declared
before it (``uniform(0, 0.99).when("optimizer == 'sgd'")``, or a ``when:`` key in
YAML); where the condition does not hold it is absent from the configuration.
See docs/conditional.md.

Example:
    >>> space = SearchSpace.from_any({"lr": loguniform(1e-4, 0.1), "act": choice(["relu", "tanh"])})
    >>> space.from_unit([0.0, 0.99])
    {'lr': 0.0001, 'act': 'tanh'}
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from raysweep.errors import ConstraintError, SpecError
from raysweep.sweep.space._ax import space_from_ax
from raysweep.sweep.space._ax import unknown_key as _unknown_key
from raysweep.sweep.space.constraints import Constraint
from raysweep.sweep.space.domains import (
    Choice,
    Conditional,
    Domain,
    Fixed,
    Grid,
    LogRandInt,
    LogUniform,
    QUniform,
    RandInt,
    Uniform,
    choice,
    grid,
    lograndint,
    loguniform,
    quniform,
    randint,
    uniform,
)

__all__ = [
    "Choice",
    "Conditional",
    "Domain",
    "Fixed",
    "Grid",
    "LogRandInt",
    "LogUniform",
    "QUniform",
    "RandInt",
    "SearchSpace",
    "Uniform",
    "choice",
    "grid",
    "lograndint",
    "loguniform",
    "quniform",
    "randint",
    "uniform",
]

#: YAML ``type`` -> (domain class, keys besides ``type``, in constructor order).
_YAML_TYPES: dict[str, tuple[type[Domain], tuple[str, ...]]] = {
    cls.type_name: (cls, keys)
    for cls, keys in (
        (Uniform, ("low", "high")),
        (LogUniform, ("low", "high")),
        (RandInt, ("low", "high")),
        (LogRandInt, ("low", "high")),
        (QUniform, ("low", "high", "q")),
        (Choice, ("values",)),
        (Grid, ("values",)),
        (Fixed, ("value",)),
    )
}
#: Where a unit coordinate of exactly 1 lands: domains map [0, 1).
_BELOW_ONE = math.nextafter(1.0, 0.0)


def _yaml_number(value: Any) -> Any:
    """Read ``"1e-4"`` as a number: YAML 1.1 (PyYAML) loads exponents without a dot
    as strings, and users write learning rates that way."""
    if isinstance(value, str):
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                pass
    return value


#: A string that reads as a domain call (``"uniform(0, 1)"``, ``"tune.choice([...])"``).
_CALL_TEXT = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)\s*\(")


def _fixed_text(name: str, value: str) -> Domain:
    """A string constant, unless it reads as a domain call: that is a domain written
    in quotes (YAML has no calls), which would otherwise be passed to every trial as
    text and fail there. ``{type: fixed, value: "..."}`` keeps such a string."""
    match = _CALL_TEXT.match(value)
    kind = match.group(1).lower() if match else ""
    if kind not in _YAML_TYPES:
        return Fixed(value)
    write = f"{{type: {kind}, ...}}"
    with contextlib.suppress(SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        write = _mapping_text(kind, ast.parse(value.strip(), mode="eval").body) or write
    shown = repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    raise SpecError(
        f"parameter {name!r}: {shown} is a string, not a domain; write {write} "
        "(or {type: fixed, value: '...'} to pass this text to every trial)"
    )


def _mapping_text(kind: str, node: ast.expr) -> str | None:
    """``{type: uniform, low: 0, high: 1[, when: "..."]}`` for a call with literal
    arguments (optionally followed by ``.when("...")``), else None."""
    when = None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "when"
        and len(node.args) == 1
    ):
        when, node = ast.literal_eval(node.args[0]), node.func.value
    if not isinstance(node, ast.Call):
        return None
    keys = _YAML_TYPES[kind][1]
    given = dict(zip(keys, (ast.literal_eval(a) for a in node.args), strict=False))
    given |= {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in keys}
    if len(node.args) + len(node.keywords) != len(keys) or len(given) != len(keys):
        return None
    items = [f"type: {kind}"] + [f"{k}: {given[k]!r}" for k in keys]
    if when is not None:
        items.append(f"when: {when!r}")
    return "{" + ", ".join(items) + "}"


def _domain_from_mapping(name: str, spec: Mapping[str, Any]) -> Domain:
    """Build a domain from its YAML/JSON form, e.g. ``{type: uniform, low: 0, high: 1}``."""
    kind = spec.get("type")
    types = ", ".join(_YAML_TYPES)
    if kind not in _YAML_TYPES:
        if kind is None:
            raise SpecError(
                f"parameter {name!r} needs a 'type' key, one of: {types} (write a constant "
                "mapping as {type: fixed, value: {...}})"
            )
        raise SpecError(f"parameter {name!r} has unknown type {kind!r}; expected one of: {types}")
    cls, keys = _YAML_TYPES[kind]
    expected = ("type", *keys, "when")
    where = f"parameter {name!r} ({kind})"
    for key in spec:
        if key not in expected:
            raise _unknown_key(where, key, expected)
    for key in keys:
        if key not in spec:
            raise SpecError(f"{where}: missing key {key!r}; expected keys: {', '.join(expected)}")
    if "values" in keys and not isinstance(spec["values"], list | tuple):
        raise SpecError(f"{where}: 'values' must be a list, got {spec['values']!r}")
    args = [spec[k] if k in ("values", "value") else _yaml_number(spec[k]) for k in keys]
    domain = cls(*args)
    return Conditional(domain, spec["when"]) if "when" in spec else domain


def _compile_conditions(params: Mapping[str, Domain]) -> dict[str, Constraint]:
    """Each conditional parameter's condition, compiled by the constraint compiler
    (same whitelist, same messages) and limited to the parameters before it, so
    a library that asks for values one at a time always knows whether to ask."""
    names = list(params)
    out: dict[str, Constraint] = {}
    for i, (name, domain) in enumerate(params.items()):
        if not isinstance(domain, Conditional):
            continue
        expr = domain.condition
        try:
            condition = Constraint(expr, names)
        except ConstraintError as exc:
            why = str(exc).removeprefix(f"constraint {expr!r}: ")
            raise SpecError(f"parameter {name!r}: when {expr!r}: {why}") from None
        earlier = ", ".join(names[:i]) or "none"
        for used in condition.names:
            if names.index(used) >= i:
                what = "itself" if used == name else f"{used!r}, which is declared after it"
                raise SpecError(
                    f"parameter {name!r}: when {expr!r} names {what}; a condition may name "
                    f"only parameters declared before it ({earlier})"
                )
        out[name] = condition
    return out


class SearchSpace(Mapping[str, Domain]):
    """An ordered mapping of parameter names to domains, validated on construction.

    Parameters that are not :class:`Fixed` are *free*: searchers choose them, one
    unit coordinate each, in the order given. Names must be Python identifiers so
    that constraint strings can refer to them. A :class:`Conditional` parameter
    is *active* only where its condition holds (and every parameter the condition
    names is active); an inactive one is absent from the configuration.

    Example:
        >>> space = SearchSpace({"x": uniform(0, 1), "n": randint(1, 3), "tag": Fixed("a")})
        >>> space.free_names, space.fixed
        (('x', 'n'), {'tag': 'a'})
    """

    __slots__ = ("_conditions", "_free", "_params")

    def __init__(self, params: Mapping[str, Domain]) -> None:
        if not isinstance(params, Mapping):
            raise SpecError(f"a search space maps names to domains, got {params!r}")
        for name, domain in params.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SpecError(
                    f"parameter name {name!r} must be a Python identifier (letters, digits "
                    "and _, not starting with a digit), so constraints can refer to it"
                )
            normal = unicodedata.normalize("NFKC", name)
            if normal != name:
                # Python reads names in expressions normalized, so a constraint could
                # never refer to this parameter (and might silently mean another).
                raise SpecError(
                    f"parameter name {name!r} changes under Unicode normalization (NFKC) to "
                    f"{normal!r}, which is what constraints would see; rename it {normal!r}"
                )
            if not isinstance(domain, Domain):
                raise SpecError(
                    f"parameter {name!r}: {domain!r} is not a Domain; use "
                    "SearchSpace.from_any() to accept constants and YAML-style mappings"
                )
            domain.validate(name)
        self._params: dict[str, Domain] = dict(params)
        self._free = tuple(n for n, d in self._params.items() if not isinstance(d, Fixed))
        self._conditions = _compile_conditions(self._params)

    @classmethod
    def from_any(cls, obj: Any) -> SearchSpace:
        """Build a space from a space, a mapping, or an Ax parameter list.

        A mapping's values may be domains, YAML-style mappings such as
        ``{"type": "uniform", "low": 0, "high": 1}`` (with an optional ``"when"``
        condition), or anything else (a constant).
        A list of dicts is read as Ax ``parameters`` (``name``, ``type`` range /
        choice / fixed, ``bounds`` / ``values`` / ``value``, ...), unchanged.

        Example:
            >>> SearchSpace.from_any({"lr": {"type": "loguniform", "low": 1e-4, "high": 1}, "n": 5})
            SearchSpace({'lr': loguniform(0.0001, 1), 'n': fixed(5)})
        """
        if isinstance(obj, SearchSpace):
            return obj
        if isinstance(obj, Mapping):
            params: dict[str, Domain] = {}
            for name, value in obj.items():
                if isinstance(value, Domain):
                    params[name] = value
                elif isinstance(value, Mapping):
                    params[name] = _domain_from_mapping(name, value)
                elif isinstance(value, str):
                    params[name] = _fixed_text(name, value)
                else:
                    params[name] = Fixed(value)
            return cls(params)
        if isinstance(obj, list | tuple) and all(isinstance(p, Mapping) for p in obj):
            return cls(space_from_ax(obj))
        raise SpecError(
            f"cannot read a search space from {obj!r}; expected a SearchSpace, a mapping "
            "of names to domains, constants or {type: ..., ...} mappings, or an Ax "
            "parameter list [{name, type, bounds|values|value, ...}]"
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_json` (also reads the same shape from YAML)."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a search space in JSON is an object of parameters, got {data!r}")
        params: dict[str, Domain] = {}
        for name, spec in data.items():
            if not isinstance(spec, Mapping):
                raise SpecError(
                    f"parameter {name!r}: expected a {{type: ...}} object, got {spec!r}"
                )
            params[name] = _domain_from_mapping(name, spec)
        return cls(params)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """``{name: domain.to_json()}``, in order; safe for ``json`` and ``yaml.safe_dump``."""
        return {name: domain.to_json() for name, domain in self._params.items()}

    def __getitem__(self, name: str) -> Domain:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        # Order is not compared: YAML dumpers sort keys by default, and the order
        # changes no value a trial can get (searchers keep their own order in state).
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self._params == other._params

    def __repr__(self) -> str:
        inner = ", ".join(f"{name!r}: {domain}" for name, domain in self._params.items())
        return f"SearchSpace({{{inner}}})"

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the parameters searchers choose (all but the fixed ones), in order."""
        return self._free

    @property
    def conditional(self) -> bool:
        """Whether some parameter is searched only under a condition (``when``)."""
        return bool(self._conditions)

    def condition(self, name: str) -> Constraint | None:
        """The compiled condition of parameter ``name``, or ``None`` if it has none."""
        return self._conditions.get(name)

    def active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` takes a value given the values in ``config``
        (those of the active parameters before it); always true without conditions.

        A define-by-run library asks each parameter in order, passing the values
        chosen so far, and skips the inactive ones.

        Example:
            >>> space = SearchSpace({"opt": choice(["sgd", "adam"]),
            ...                      "momentum": uniform(0, 1).when("opt == 'sgd'")})
            >>> space.active("momentum", {"opt": "sgd"}), space.active("momentum", {"opt": "adam"})
            (True, False)

        Raises:
            SpecError: if ``config`` lacks the value of an active parameter that
                decides whether ``name`` is active.
        """
        if name not in self._params:
            return False
        state = self._activity(config, until=name)
        if state[name] is None:
            missing = [n for n, on in state.items() if on and n not in config]
            raise SpecError(
                f"active({name!r}): the config has no value for {', '.join(map(repr, missing))}, "
                f"which decides whether {name!r} is searched; give the values of the active "
                "parameters before it"
            )
        return bool(state[name])

    def _activity(
        self, config: Mapping[str, Any], until: str | None = None
    ) -> dict[str, bool | None]:
        """Whether each parameter (in order, up to ``until``) is active in ``config``:
        true, false, or ``None`` where a value its condition needs is missing."""
        state: dict[str, bool | None] = {}
        for name in self._params:
            condition = self._conditions.get(name)
            if condition is None:
                state[name] = True
            else:
                parents = [state[p] for p in condition.names]
                if any(on is False for on in parents):
                    state[name] = False
                elif any(
                    on is None or p not in config
                    for p, on in zip(condition.names, parents, strict=True)
                ):
                    state[name] = None
                else:
                    state[name] = condition.evaluate(config)
            if name == until:
                break
        return state

    @property
    def fixed(self) -> dict[str, Any]:
        """The constant parameters and their values."""
        return {n: d.from_unit(0.0) for n, d in self._params.items() if isinstance(d, Fixed)}

    def from_unit(self, vector: Sequence[float]) -> dict[str, Any]:
        """The full configuration (constants included) for one unit coordinate per
        free parameter; a coordinate of exactly 1 is read as just below 1.

        Inactive conditional parameters have a coordinate too (so every point has
        the same dimension) but are left out of the result."""
        if len(vector) != len(self._free):
            raise SpecError(
                f"from_unit needs {len(self._free)} coordinates (one for each of "
                f"{', '.join(self._free) or 'no free parameters'}), got {len(vector)}"
            )
        coords = dict(zip(self._free, vector, strict=True))
        config: dict[str, Any] = {}
        for name, domain in self._params.items():
            u = float(coords.get(name, 0.0))
            if not 0.0 <= u <= 1.0:
                raise SpecError(f"from_unit: coordinate {u!r} for {name!r} is not in [0, 1]")
            condition = self._conditions.get(name)
            # Parents come first and an inactive one is absent, so absence is inactivity.
            if condition is not None and not (
                all(p in config for p in condition.names) and condition.evaluate(config)
            ):
                continue
            config[name] = domain.from_unit(min(u, _BELOW_ONE))
        return config

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One configuration drawn uniformly (in each domain's scale) with ``rng``;
        a coordinate is drawn for every free parameter, active or not."""
        return self.from_unit(rng.random(len(self._free)).tolist())

    def problems(self, config: Any) -> list[str]:
        """Why ``config`` is not a point of this space; empty when it is.

        An inactive conditional parameter must be absent, an active one present.
        """
        if not isinstance(config, Mapping):
            return [f"a config maps parameter names to values, got {type(config).__name__}"]
        state = self._activity(config)
        out: list[str] = []
        for n in self._params:
            if state[n] and n not in config:
                out.append(f"missing parameter {n!r}")
            elif state[n] is False and n in config:
                out.append(
                    f"parameter {n!r} is inactive (when {self._conditions[n].expr!r}) "
                    "and must be absent"
                )
        out += [f"unknown parameter {k!r}" for k in config if k not in self._params]
        out += [
            f"{n}: {config[n]!r} is not in {d.base}"
            for n, d in self._params.items()
            if n in config and state[n] is not False and not d.contains(config[n])
        ]
        return out

    def diff(self, other: SearchSpace) -> list[str]:
        """Human-readable changes from this space to ``other``, one line each; empty
        exactly when the spaces are equal.

        Example:
            >>> old = SearchSpace({"a": uniform(0, 1), "b": Fixed(1)})
            >>> old.diff(SearchSpace({"a": uniform(0, 2)}))
            ['a: uniform(0, 1) -> uniform(0, 2)', '- b']
        """
        lines: list[str] = []
        for name, domain in self._params.items():
            if name not in other:
                lines.append(f"- {name}")
            elif other[name] != domain:
                lines.append(f"{name}: {domain} -> {other[name]}")
        lines += [f"+ {n}: {d}" for n, d in other.items() if n not in self._params]
        return lines
