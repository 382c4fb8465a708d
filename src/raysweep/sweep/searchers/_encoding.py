"""One encoding of a search space for every optimization library.

Each library has its own parameter types (Optuna's distributions, Ax's parameter
configs, HEBO's design space, a box of bounds for ``bayesian-optimization``).
This module is the one place that maps raysweep's domains onto them and the
libraries' answers back, so no adapter re-implements log scales, integer steps
or choices:

====================  =====================================  ====================
domain                library sees                           back to the domain
====================  =====================================  ====================
uniform, loguniform   a float range (log-scaled for log)     clipped to the range
randint, lograndint   an integer range (log-scaled for log)  rounded and clipped
quniform              the integer index of the grid value    ``value_at(index)``
choice, grid          a categorical of the indices 0..n-1    ``values[index]``
fixed                 nothing (never searched)               the constant
====================  =====================================  ====================

Choices go by index, so any JSON value (``None``, ``1.5``, ``"relu"``, ``True``)
can be a choice for every library. Continuous-only libraries get the unit cube of
:meth:`SearchSpace.from_unit` (:meth:`Encoding.unit_bounds`), which applies the
same scales.

Example:
    >>> from raysweep.sweep.space import SearchSpace, choice, quniform
    >>> enc = Encoding(SearchSpace({"act": choice(["relu", None]), "p": quniform(0, 0.5, 0.1)}))
    >>> enc.decode({"act": 1, "p": 3})
    {'act': None, 'p': 0.3}
    >>> enc.encode({"act": None, "p": 0.3})
    {'act': 1, 'p': 3}
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raysweep.sweep.space.domains import (
    Choice,
    Domain,
    Fixed,
    LogRandInt,
    LogUniform,
    QUniform,
    RandInt,
    Uniform,
)

if TYPE_CHECKING:
    from raysweep.sweep.space import SearchSpace

__all__ = ["Encoding", "Kind", "Param"]


class Kind(enum.Enum):
    """How a library sees one free parameter."""

    FLOAT = "float"
    INT = "int"
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class Param:
    """One free parameter as libraries see it.

    Attributes:
        name: the parameter's name (also the library's).
        kind: float range, integer range, or categorical of indices.
        low, high: the range (both inclusive); ``0, n - 1`` for a categorical.
        log: searched in log scale.
        domain: the raysweep domain it came from.
    """

    name: str
    kind: Kind
    low: float
    high: float
    log: bool
    domain: Domain

    @property
    def size(self) -> int | None:
        """How many values an integer or categorical parameter has (``None``: float)."""
        return None if self.kind is Kind.FLOAT else int(self.high - self.low) + 1

    def decode(self, value: Any) -> Any:
        """The domain's value for a library's ``value``.

        Floats are clipped to the range (a library may step a rounding error
        past a bound); integers and indices are rounded and clipped.
        """
        domain = self.domain
        if self.kind is Kind.FLOAT:
            return min(max(float(value), float(self.low)), float(self.high))
        k = min(max(round(float(value)), int(self.low)), int(self.high))
        if isinstance(domain, QUniform):
            return domain.value_at(k)
        if isinstance(domain, Choice):
            return domain.values[k]
        return int(k)

    def encode(self, value: Any) -> Any:
        """The library's value for the domain's ``value`` (inverse of :meth:`decode`)."""
        domain = self.domain
        if self.kind is Kind.FLOAT:
            return float(value)
        if isinstance(domain, QUniform | Choice):
            return domain.index_of(value)
        return int(value)


def _param(name: str, declared: Domain) -> Param:
    domain = declared.base  # a conditional parameter is encoded as its domain
    if isinstance(domain, Uniform | LogUniform):
        return Param(
            name,
            Kind.FLOAT,
            float(domain.low),
            float(domain.high),
            isinstance(domain, LogUniform),
            domain,
        )
    if isinstance(domain, RandInt | LogRandInt):
        return Param(
            name, Kind.INT, domain.low, domain.high, isinstance(domain, LogRandInt), domain
        )
    if isinstance(domain, QUniform):
        return Param(name, Kind.INT, 0, domain.cardinality() - 1, False, domain)
    if isinstance(domain, Choice):
        return Param(name, Kind.CATEGORY, 0, len(domain.values) - 1, False, domain)
    raise TypeError(f"parameter {name!r}: no library encoding for {type(domain).__name__}")


class Encoding:
    """The free parameters of ``space`` as libraries see them, and the way back.

    Args:
        space: the search space; its fixed parameters are added back by
            :meth:`decode` and never shown to a library.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.params: tuple[Param, ...] = tuple(
            _param(name, space[name]) for name in space.free_names
        )
        self._by_name = {p.name: p for p in self.params}

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def decode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The full configuration, in the space's order, for a library's
        ``{name: value}``; fixed values are filled in, parameters the library did
        not give (inactive conditional ones) are left out."""
        config: dict[str, Any] = {}
        for name, domain in self.space.items():
            if isinstance(domain, Fixed):
                config[name] = domain.from_unit(0.0)
            elif name in values:
                config[name] = self._by_name[name].decode(values[name])
        return config

    def encode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The library's ``{name: value}`` for a configuration of the space (free
        parameters present in ``config`` only)."""
        return {p.name: p.encode(config[p.name]) for p in self.params if p.name in config}

    # -- continuous-only libraries ----------------------------------------------------
    def unit_bounds(self) -> dict[str, tuple[float, float]]:
        """``{name: (0, 1)}`` for every free parameter: the box of unit coordinates
        that :meth:`from_unit` maps to configurations."""
        return {p.name: (0.0, 1.0) for p in self.params}

    def from_unit(self, coords: Mapping[str, float]) -> dict[str, Any]:
        """The configuration for one unit coordinate per free parameter (log scales,
        integer cells and choices as :meth:`Domain.from_unit` maps them)."""
        vector = [min(max(float(coords[n]), 0.0), 1.0) for n in self.space.free_names]
        return self.space.from_unit(vector)

    def to_unit(self, config: Mapping[str, Any]) -> dict[str, float]:
        """Unit coordinates that :meth:`from_unit` maps back to ``config``."""
        return {p.name: p.domain.to_unit(config[p.name]) for p in self.params if p.name in config}

    # -- library tables ---------------------------------------------------------------
    def optuna_distributions(self) -> dict[str, Any]:
        """``{name: optuna distribution}`` (Float, Int, or Categorical of indices)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, Any] = {}
        for p in self.params:
            if p.kind is Kind.FLOAT:
                out[p.name] = FloatDistribution(p.low, p.high, log=p.log)
            elif p.kind is Kind.INT:
                out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
            else:
                out[p.name] = CategoricalDistribution(list(range(int(p.high) + 1)))
        return out

    def ax_parameters(self) -> list[Any]:
        """Ax ``RangeParameterConfig`` / ``ChoiceParameterConfig`` for each free
        parameter. Ax refuses a range with equal bounds, so a one-value integer
        grid is given as a choice (Ax treats a one-value choice as fixed)."""
        from ax import ChoiceParameterConfig, RangeParameterConfig

        out: list[Any] = []
        for p in self.params:
            if p.kind is Kind.FLOAT:
                out.append(
                    RangeParameterConfig(
                        name=p.name,
                        bounds=(p.low, p.high),
                        parameter_type="float",
                        scaling="log" if p.log else "linear",
                    )
                )
            elif p.kind is Kind.INT and p.high > p.low:
                out.append(
                    RangeParameterConfig(
                        name=p.name,
                        bounds=(int(p.low), int(p.high)),
                        parameter_type="int",
                        scaling="log" if p.log else "linear",
                    )
                )
            else:
                out.append(
                    ChoiceParameterConfig(
                        name=p.name,
                        values=list(range(int(p.high) + 1)),
                        parameter_type="int",
                        is_ordered=p.kind is not Kind.CATEGORY,
                    )
                )
        return out


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite real number (what a library may be told)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
