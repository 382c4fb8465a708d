"""Parameter domains: the set of values one parameter may take.

Every domain maps a unit coordinate ``u`` in ``[0, 1)`` to a value
(:meth:`Domain.from_unit`), so random, quasi-random (Sobol) and grid searchers
share one mapping, and every domain has a small JSON form, so the store can compare
a resumed experiment's space with the stored one and print the difference.
Values come out as plain Python types because they are stored as JSON.

A domain searched only under a condition on earlier parameters is a
:class:`Conditional`, made with :meth:`Domain.when`; it is itself a domain, so a
space stays a mapping of names to domains (see docs/conditional.md).

Users normally import these from :mod:`raysweep.sweep.space`.

Example:
    >>> round(loguniform(1e-4, 0.1).from_unit(0.5), 6), randint(1, 6).from_unit(0.999)
    (0.003162, 6)
"""

from __future__ import annotations

import abc
import copy
import decimal
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from raysweep.errors import SpecError

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
    "Uniform",
    "choice",
    "grid",
    "lograndint",
    "loguniform",
    "quniform",
    "randint",
    "uniform",
]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _jsonable(value: Any) -> Any:
    """Tuples become lists and numpy scalars Python ones, as a JSON round trip would."""
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return _plain(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    try:
        return _is_real(value) and math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _same(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but True is not 1 and "1" is not 1."""
    if _is_real(a) and _is_real(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _json_problem(value: Any, nested: bool) -> str | None:
    """Why ``value`` cannot be stored as JSON, or ``None`` if it can."""
    if value is None or isinstance(value, str | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if nested and isinstance(value, list):
        return next((p for v in value if (p := _json_problem(v, True))), None)
    if nested and isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return f"{value!r} has keys that are not strings"
        return next((p for v in value.values() if (p := _json_problem(v, True))), None)
    return f"{value!r} is a {type(value).__name__}; expected str, int, float, bool or None"


def _clip_unit(u: float) -> float:
    return min(max(u, 0.0), 1.0)


class Domain(abc.ABC):
    """Base of all domains: frozen value objects, equal when their content is."""

    __slots__ = ()
    #: The ``type`` key of the JSON/YAML form.
    type_name: ClassVar[str] = ""

    @abc.abstractmethod
    def validate(self, name: str) -> None:
        """Raise :class:`SpecError` naming parameter ``name`` if the domain is malformed."""

    @abc.abstractmethod
    def from_unit(self, u: float) -> Any:
        """Map ``u`` in ``[0, 1)`` to a value, uniformly in the domain's own scale."""

    @abc.abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this domain can produce."""

    def to_unit(self, value: Any) -> float:
        """A unit coordinate that :meth:`from_unit` maps back to ``value`` (the
        middle of its cell for discrete domains); for searchers that work in the
        unit cube and must be told stored configurations."""
        return 0.5

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The JSON/YAML form, e.g. ``{"type": "uniform", "low": 0, "high": 1}``."""

    def grid_values(self) -> list[Any] | None:
        """All values in order if the domain is finite, else ``None`` (continuous)."""
        return None

    def cardinality(self) -> int | None:
        """How many values :meth:`grid_values` lists, without building the list."""
        return None

    def when(self, condition: str) -> Conditional:
        """This domain, searched only in configurations where ``condition`` holds.

        ``condition`` is a constraint expression over parameters declared before
        this one; where it does not hold, the parameter is absent from the config.
        It is checked when the space is built, which knows the parameter names.

        Example:
            >>> uniform(0, 0.99).when("optimizer == 'sgd'")
            uniform(0, 0.99).when("optimizer == 'sgd'")
        """
        return Conditional(self, condition)

    @property
    def base(self) -> Domain:
        """The domain of values without any condition: ``self``, except for a
        :class:`Conditional`, whose wrapped domain libraries encode instead."""
        return self

    def __str__(self) -> str:
        args = ", ".join(repr(v) for k, v in self.to_json().items() if k != "type")
        return f"{self.type_name}({args})"


#: Largest integer bound: every integer up to it is exactly a float, so draws are exact.
MAX_EXACT_INT = 2**53


@dataclass(frozen=True, slots=True)
class _Range(Domain):
    """Shared validation of the numeric ranges; not public, so that an
    ``isinstance(d, Uniform)`` check never matches a log-scaled domain."""

    low: Any
    high: Any
    _integer: ClassVar[bool] = False
    _log: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _plain(self.low))
        object.__setattr__(self, "high", _plain(self.high))

    def validate(self, name: str) -> None:
        for label in ("low", "high"):
            value = getattr(self, label)
            if self._integer:
                ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
            else:
                ok, what = _is_finite(value), "a finite number"
            if not ok:
                raise SpecError(
                    f"parameter {name!r}: {self.type_name} {label}={value!r} must be {what}"
                )
        if self.low >= self.high:
            raise SpecError(
                f"parameter {name!r}: {self.type_name} needs low < high, got low={self.low!r}, "
                f"high={self.high!r} (use a fixed value for a constant)"
            )
        if self._integer and max(abs(self.low), abs(self.high)) > MAX_EXACT_INT:
            raise SpecError(
                f"parameter {name!r}: {self.type_name} bounds must be within +/-2**53 so every "
                f"integer can be drawn, got low={self.low!r}, high={self.high!r}"
            )
        if not math.isfinite(float(self.high) - float(self.low)):
            raise SpecError(
                f"parameter {name!r}: {self.type_name} range high - low overflows a float "
                f"(low={self.low!r}, high={self.high!r}); narrow the bounds"
            )
        if self._log and self.low <= 0:
            raise SpecError(
                f"parameter {name!r}: {self.type_name} is log-scaled and needs low > 0, "
                f"got low={self.low!r}"
            )

    def contains(self, value: Any) -> bool:
        if self._integer and not isinstance(value, int):
            return False
        return _is_real(value) and bool(self.low <= value <= self.high)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class Uniform(_Range):
    """Floats uniformly between ``low`` and ``high``."""

    low: float
    high: float
    type_name: ClassVar[str] = "uniform"

    def from_unit(self, u: float) -> float:
        low, high = float(self.low), float(self.high)
        return min(low + u * (high - low), high)

    def to_unit(self, value: Any) -> float:
        low, high = float(self.low), float(self.high)
        return _clip_unit((float(value) - low) / (high - low))


@dataclass(frozen=True, slots=True)
class LogUniform(_Range):
    """Floats between ``low > 0`` and ``high``, uniform in log scale (learning rates)."""

    low: float
    high: float
    type_name: ClassVar[str] = "loguniform"
    _log: ClassVar[bool] = True

    def from_unit(self, u: float) -> float:
        if u <= 0.0:  # exp(log(low)) is not always exactly low
            return float(self.low)
        lo, hi = math.log(self.low), math.log(self.high)
        return min(max(math.exp(lo + u * (hi - lo)), float(self.low)), float(self.high))

    def to_unit(self, value: Any) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        return _clip_unit((math.log(float(value)) - lo) / (hi - lo))


@dataclass(frozen=True, slots=True)
class RandInt(_Range):
    """Integers from ``low`` to ``high``, both inclusive, equally likely."""

    low: int
    high: int
    type_name: ClassVar[str] = "randint"
    _integer: ClassVar[bool] = True

    def from_unit(self, u: float) -> int:
        n = self.high - self.low + 1
        return int(self.low + min(int(u * n), n - 1))

    def to_unit(self, value: Any) -> float:
        return _clip_unit((int(value) - self.low + 0.5) / (self.high - self.low + 1))

    def grid_values(self) -> list[Any]:
        return list(range(self.low, self.high + 1))

    def cardinality(self) -> int:
        return int(self.high - self.low + 1)


@dataclass(frozen=True, slots=True)
class LogRandInt(_Range):
    """Integers from ``low > 0`` to ``high`` (inclusive), small ones favoured as in log scale.

    Integer ``k`` has probability ``log((k+1)/k) / log((high+1)/low)``: a log-uniform
    draw over ``[low, high+1)``, floored, so both bounds are reachable.
    """

    low: int
    high: int
    type_name: ClassVar[str] = "lograndint"
    _integer: ClassVar[bool] = True
    _log: ClassVar[bool] = True

    def from_unit(self, u: float) -> int:
        lo, hi = math.log(self.low), math.log(self.high + 1)
        return int(min(max(math.floor(math.exp(lo + u * (hi - lo))), self.low), self.high))

    def to_unit(self, value: Any) -> float:
        # The middle, in log scale, of the cell [k, k + 1) that from_unit floors to k.
        lo, hi = math.log(self.low), math.log(self.high + 1)
        k = int(value)
        middle = (math.log(k) + math.log(k + 1)) / 2
        return _clip_unit((middle - lo) / (hi - lo))

    def grid_values(self) -> list[Any]:
        return list(range(self.low, self.high + 1))

    def cardinality(self) -> int:
        return int(self.high - self.low + 1)


def _decimals(x: float) -> int:
    exponent = decimal.Decimal(repr(float(x))).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True, slots=True)
class QUniform(_Range):
    """Floats ``low, low+q, low+2q, ...`` up to ``high``, equally likely.

    Values are rounded to the decimals of ``low`` and ``q``, so ``quniform(0, 1, 0.1)``
    yields ``0.3``, not ``0.30000000000000004``: they are stored and compared as JSON.
    """

    low: float
    high: float
    q: float
    type_name: ClassVar[str] = "quniform"

    def __post_init__(self) -> None:
        _Range.__post_init__(self)
        object.__setattr__(self, "q", _plain(self.q))

    def validate(self, name: str) -> None:
        _Range.validate(self, name)
        if not _is_finite(self.q) or not 0 < self.q <= self.high - self.low:
            raise SpecError(
                f"parameter {name!r}: quniform q={self.q!r} must be a number with "
                f"0 < q <= high - low = {self.high - self.low!r}"
            )

    def _value(self, k: int) -> float:
        digits = max(_decimals(self.low), _decimals(self.q))
        return round(float(self.low) + k * float(self.q), digits)

    def value_at(self, k: int) -> float:
        """The ``k``-th value (0-based), clipped to the grid: ``quniform(0, 1, 0.1).value_at(3)``
        is ``0.3``; libraries that search integers search this index."""
        return self._value(min(max(int(k), 0), self.cardinality() - 1))

    def index_of(self, value: Any) -> int:
        """The index of the grid value nearest ``value`` (inverse of :meth:`value_at`)."""
        k = round((float(value) - float(self.low)) / float(self.q))
        return min(max(int(k), 0), self.cardinality() - 1)

    def to_unit(self, value: Any) -> float:
        return _clip_unit((self.index_of(value) + 0.5) / self.cardinality())

    def cardinality(self) -> int:
        # The epsilon keeps (0.3 - 0) / 0.1 = 2.9999999999999996 from losing 0.3.
        return math.floor((self.high - self.low) / self.q + 1e-9) + 1

    def from_unit(self, u: float) -> float:
        n = self.cardinality()
        return self._value(min(int(u * n), n - 1))

    def contains(self, value: Any) -> bool:
        if not _is_finite(value):
            return False
        k = round((value - self.low) / self.q)
        return 0 <= k < self.cardinality() and math.isclose(
            self._value(k), value, rel_tol=1e-9, abs_tol=1e-12
        )

    def grid_values(self) -> list[Any]:
        return [self._value(k) for k in range(self.cardinality())]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "low": self.low, "high": self.high, "q": self.q}


@dataclass(frozen=True, slots=True)
class Choice(Domain):
    """One of a few values (str, int, float, bool or None), equally likely."""

    values: tuple[Any, ...]
    type_name: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        if isinstance(self.values, list | tuple | range | np.ndarray):
            object.__setattr__(self, "values", tuple(_plain(v) for v in self.values))

    def validate(self, name: str) -> None:
        if not isinstance(self.values, tuple):
            raise SpecError(
                f"parameter {name!r}: {self.type_name} values must be a list, got {self.values!r}"
            )
        if not self.values:
            raise SpecError(f"parameter {name!r}: {self.type_name} needs at least one value")
        for i, value in enumerate(self.values):
            if problem := _json_problem(value, nested=False):
                raise SpecError(f"parameter {name!r}: {self.type_name} value {problem}")
            if any(_same(value, other) for other in self.values[:i]):
                raise SpecError(
                    f"parameter {name!r}: {self.type_name} value {value!r} is listed twice"
                )

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def contains(self, value: Any) -> bool:
        return any(_same(value, v) for v in self.values)

    def index_of(self, value: Any) -> int:
        """The position of ``value`` among :attr:`values`; libraries choose by index,
        so any JSON value can be a choice. Raises ``ValueError`` if it is not one."""
        for i, v in enumerate(self.values):
            if _same(value, v):
                return i
        raise ValueError(f"{value!r} is not one of {list(self.values)!r}")

    def to_unit(self, value: Any) -> float:
        return (self.index_of(value) + 0.5) / len(self.values)

    def grid_values(self) -> list[Any]:
        return list(self.values)

    def cardinality(self) -> int:
        return len(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "values": list(self.values)}


@dataclass(frozen=True, slots=True)
class Grid(Choice):
    """Values the grid searcher tries exhaustively; other searchers treat it as a
    :class:`Choice` (it is one, so ``isinstance(d, Choice)`` holds)."""

    type_name: ClassVar[str] = "grid"


@dataclass(frozen=True, slots=True)
class Fixed(Domain):
    """A constant passed to every trial, never searched; any JSON value.

    Tuples become lists at once, so a space equals its own JSON round trip.
    """

    value: Any
    type_name: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _jsonable(self.value))

    def validate(self, name: str) -> None:
        if problem := _json_problem(self.value, nested=True):
            raise SpecError(f"parameter {name!r}: fixed value {problem}")

    def from_unit(self, u: float) -> Any:
        # A copy, so a trial that mutates its config cannot change the next ones.
        return copy.deepcopy(self.value)

    def contains(self, value: Any) -> bool:
        return _same(_jsonable(value), self.value)

    def grid_values(self) -> list[Any]:
        return [self.from_unit(0.0)]

    def cardinality(self) -> int:
        return 1

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "value": self.value}


@dataclass(frozen=True, slots=True, repr=False)
class Conditional(Domain):
    """A domain searched only where ``condition`` holds; made by :meth:`Domain.when`.

    It takes its values, unit mapping and grid from ``domain``; the space compiles
    ``condition`` (only it knows which parameters come before) and leaves the
    parameter out of configurations where the condition does not hold. A fixed
    value cannot be conditional: a constant that is sometimes absent is what a
    one-value ``choice`` under the same condition gives, without a special case.

    Example:
        >>> Conditional(uniform(0, 1), "opt == 'sgd'").to_json()
        {'type': 'uniform', 'low': 0, 'high': 1, 'when': "opt == 'sgd'"}
    """

    domain: Domain
    condition: str
    type_name: ClassVar[str] = "conditional"

    @property
    def base(self) -> Domain:
        return self.domain

    def validate(self, name: str) -> None:
        if not isinstance(self.condition, str) or not self.condition.strip():
            raise SpecError(
                f"parameter {name!r}: 'when' must be a condition string such as "
                f"\"optimizer == 'sgd'\", got {self.condition!r}"
            )
        if isinstance(self.domain, Conditional):
            raise SpecError(
                f"parameter {name!r}: has two conditions ({self.domain.condition!r} and "
                f"{self.condition!r}); give one, joined with 'and'"
            )
        if isinstance(self.domain, Fixed):
            raise SpecError(
                f"parameter {name!r}: a fixed value cannot have a condition ('when'); for a "
                "constant present only when it holds, use a one-value choice, e.g. "
                f"choice([{self.domain.value!r}])"
            )
        if not isinstance(self.domain, Domain):
            raise SpecError(f"parameter {name!r}: 'when' needs a domain, got {self.domain!r}")
        self.domain.validate(name)

    def from_unit(self, u: float) -> Any:
        return self.domain.from_unit(u)

    def contains(self, value: Any) -> bool:
        return self.domain.contains(value)

    def to_unit(self, value: Any) -> float:
        return self.domain.to_unit(value)

    def grid_values(self) -> list[Any] | None:
        return self.domain.grid_values()

    def cardinality(self) -> int | None:
        return self.domain.cardinality()

    def to_json(self) -> dict[str, Any]:
        return {**self.domain.to_json(), "when": self.condition}

    def __str__(self) -> str:
        return f"{self.domain}.when({self.condition!r})"

    __repr__ = __str__


def uniform(low: float, high: float) -> Uniform:
    """Floats uniformly in ``[low, high]``: ``uniform(0, 1)``."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """Floats log-uniformly in ``[low, high]`` with ``0 < low``: ``loguniform(1e-4, 0.1)``."""
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    """Integers in ``[low, high]``, both inclusive: ``randint(1, 6)`` is a die."""
    return RandInt(low, high)


def lograndint(low: int, high: int) -> LogRandInt:
    """Integers in ``[low, high]`` (inclusive), log-scaled: ``lograndint(16, 1024)``."""
    return LogRandInt(low, high)


def quniform(low: float, high: float, q: float) -> QUniform:
    """Floats ``low, low+q, ...`` up to ``high``: ``quniform(0, 0.5, 0.1)``."""
    return QUniform(low, high, q)


def choice(values: Sequence[Any]) -> Choice:
    """One of ``values``, equally likely: ``choice(["relu", "tanh"])``."""
    return Choice(values)  # type: ignore[arg-type]  # __post_init__ makes it a tuple


def grid(values: Sequence[Any]) -> Grid:
    """Values the grid searcher crosses exhaustively: ``grid([16, 32, 64])``."""
    return Grid(values)  # type: ignore[arg-type]  # __post_init__ makes it a tuple
