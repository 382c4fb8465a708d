"""Which constraints are linear inequalities, and their coefficients.

Model-based libraries such as Ax/BoTorch can keep their proposals inside a
polytope ``A x <= b`` on their own, so a linear constraint handed to them costs
nothing, while any other constraint is left to raysweep, which rejects what
violates it. This module finds the linear ones by reading the expression's
syntax tree; it knows nothing of the space (whether a name is a float, an
integer or a choice is for the adapter to judge).

What counts as linear (``x``, ``y`` parameter names, ``c`` numbers):

- one comparison with ``<``, ``<=``, ``>`` or ``>=`` between sums of terms
  ``c``, ``x``, ``c*x``, ``x*c``, ``x/c`` and ``-x`` (parentheses allowed), e.g.
  ``"x + 2*y <= 3"``, ``"a - b >= 0"``, ``"0.5*x <= y"``;
- arithmetic on numbers alone is folded: ``"x <= 2**10 / 4"``;
- a chained comparison is one inequality per link, all of which must hold:
  ``"0 < a <= b"`` gives ``-a < 0`` and ``a - b <= 0``;
- so is ``and`` between linear parts: ``"a + b <= 1 and a >= 0.2"``.

Not linear (:func:`linear_form` gives ``None``): ``==`` and ``!=`` (an equality
leaves a region of no volume to sample), ``or``, ``not``, products or quotients
of parameters, powers and functions of parameters, comparisons with strings or
booleans.

Example:
    >>> [str(part) for part in linear_form("0 < a <= 2*b + 1")]
    ['-a < 0', 'a - 2*b <= 1']
    >>> linear_form("a * b <= 1") is None
    True
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LinearInequality", "linear_form"]


@dataclass(frozen=True, slots=True)
class LinearInequality:
    """``sum(coefficient * parameter) <= bound``, or ``<`` when ``strict``.

    Attributes:
        terms: ``(name, coefficient)`` pairs in order of first use; no
            coefficient is zero and no name repeats. Empty when the parameters
            cancel out (``"x - x <= 1"``): the inequality is then a constant.
        bound: the right-hand side.
        strict: ``<`` rather than ``<=``.
    """

    terms: tuple[tuple[str, float], ...]
    bound: float
    strict: bool = False

    @property
    def coefficients(self) -> dict[str, float]:
        """``{name: coefficient}`` of the terms."""
        return dict(self.terms)

    def holds(self, values: Mapping[str, float]) -> bool:
        """Whether ``values`` (one number per name of a term) satisfy the inequality."""
        total = math.fsum(c * float(values[name]) for name, c in self.terms)
        return total < self.bound if self.strict else total <= self.bound

    def __str__(self) -> str:
        parts: list[str] = []
        for name, c in self.terms:
            sign = "-" if c < 0 else "+"
            size = abs(c)
            term = name if size == 1 else f"{_number(size)}*{name}"
            parts.append(f"{sign} {term}" if parts else ("-" if c < 0 else "") + term)
        left = " ".join(parts) or "0"
        return f"{left} {'<' if self.strict else '<='} {_number(self.bound)}"


def _number(value: float) -> str:
    """``2`` for 2.0, ``0.5`` for 0.5: the shortest text that reads back the same."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True, slots=True)
class _Affine:
    """``sum(coefficients[name] * name) + constant``; ``coefficients`` keeps order of use."""

    coefficients: tuple[tuple[str, float], ...]
    constant: float

    @property
    def is_constant(self) -> bool:
        return not self.coefficients

    def scaled(self, factor: float) -> _Affine:
        return _Affine(tuple((n, c * factor) for n, c in self.coefficients), self.constant * factor)

    def plus(self, other: _Affine) -> _Affine:
        merged = dict(self.coefficients)
        for name, c in other.coefficients:
            merged[name] = merged.get(name, 0.0) + c
        return _Affine(tuple(merged.items()), self.constant + other.constant)


def _fold(op: ast.operator, a: float, b: float) -> float | None:
    """``a op b`` for two numbers, as the constraint evaluates it (in floats), or
    ``None`` where it has no finite real answer."""
    try:
        if isinstance(op, ast.Pow):
            result: Any = a**b
        elif isinstance(op, ast.FloorDiv):
            result = a // b
        elif isinstance(op, ast.Mod):
            result = a % b
        else:
            return None
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if not isinstance(result, float) or not math.isfinite(result):
        return None  # complex (a negative base with a fractional exponent) or overflow
    return result


def _affine(node: ast.AST) -> _Affine | None:
    """``node`` as an affine expression of parameter names, or ``None``."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        return _Affine((), number) if math.isfinite(number) else None
    if isinstance(node, ast.Name):
        return _Affine(((node.id, 1.0),), 0.0)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _affine(node.operand)
        if inner is None:
            return None
        return inner.scaled(-1.0) if isinstance(node.op, ast.USub) else inner
    if not isinstance(node, ast.BinOp):
        return None  # calls, comparisons, strings, ...
    left, right = _affine(node.left), _affine(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        return left.plus(right)
    if isinstance(node.op, ast.Sub):
        return left.plus(right.scaled(-1.0))
    if isinstance(node.op, ast.Mult):
        if right.is_constant:
            return left.scaled(right.constant)
        if left.is_constant:
            return right.scaled(left.constant)
        return None  # a product of parameters
    if isinstance(node.op, ast.Div):
        if right.is_constant and right.constant != 0:
            return left.scaled(1.0 / right.constant)
        return None
    if left.is_constant and right.is_constant:
        folded = _fold(node.op, left.constant, right.constant)
        return None if folded is None else _Affine((), folded)
    return None


_LESS: dict[type[ast.cmpop], bool] = {ast.Lt: True, ast.LtE: True, ast.Gt: False, ast.GtE: False}


def _inequality(left: _Affine, op: ast.cmpop, right: _Affine) -> LinearInequality | None:
    """``left op right`` moved to ``terms <= bound`` form."""
    less = _LESS.get(type(op))
    if less is None:
        return None  # == != in not in is is not
    diff = left.plus(right.scaled(-1.0))  # left - right (op) 0
    if not less:
        diff = diff.scaled(-1.0)
    terms = tuple((n, c) for n, c in diff.coefficients if c != 0.0)
    bound = -diff.constant
    if not all(math.isfinite(c) for _, c in terms) or not math.isfinite(bound):
        return None
    return LinearInequality(terms, bound + 0.0, isinstance(op, ast.Lt | ast.Gt))


def _inequalities(node: ast.AST) -> list[LinearInequality] | None:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        out: list[LinearInequality] = []
        for value in node.values:
            part = _inequalities(value)
            if part is None:
                return None
            out.extend(part)
        return out
    if not isinstance(node, ast.Compare):
        return None
    sides = [_affine(node.left), *(_affine(c) for c in node.comparators)]
    out = []
    for left, op, right in zip(sides, node.ops, sides[1:], strict=False):
        if left is None or right is None:
            return None
        inequality = _inequality(left, op, right)
        if inequality is None:
            return None
        out.append(inequality)
    return out


def linear_form(expr: str) -> tuple[LinearInequality, ...] | None:
    """The inequalities that together say what ``expr`` says, or ``None`` when it
    is not a conjunction of linear inequalities (see the module docstring).

    ``expr`` is a constraint already accepted by
    :class:`~raysweep.sweep.space.constraints.Constraint` (bounded in size), so
    it parses; anything that does not is simply not linear.
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    parts = _inequalities(tree.body)
    return None if parts is None else tuple(parts)
