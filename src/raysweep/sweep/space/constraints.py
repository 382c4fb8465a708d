"""Constraints: conditions every configuration must satisfy, e.g. ``"0 < a <= b"``.

Constraint strings come from YAML files and command lines, so they are never given
to ``eval``. Each is parsed once with :func:`ast.parse` and compiled, node by node
through a whitelist, into a tree of small Python closures; anything outside the
whitelist (attribute access, subscripts, calls to other functions, lambdas, ...) is
a :class:`~raysweep.errors.ConstraintError` at start, before any trial runs.

Arithmetic is done in floats, so ``9**9**9`` overflows at once (making the config
infeasible) instead of building a giant integer, and the size of an expression is
bounded (length, nodes, depth, constant exponents), so no string can hang the
driver or exhaust its memory.

Example:
    >>> c = Constraint("0 < a <= b and act != 'tanh'", names=["a", "b", "act"])
    >>> c.evaluate({"a": 1, "b": 2, "act": "relu"}), c.evaluate({"a": 3, "b": 2, "act": "relu"})
    (True, False)
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raysweep.errors import ConstraintError

if TYPE_CHECKING:
    from raysweep.sweep.space import SearchSpace
    from raysweep.sweep.space.linear import LinearInequality

__all__ = ["Constraint", "ConstraintSet"]

#: Longest accepted expression, in characters.
MAX_LENGTH = 1000
#: Most AST nodes (operators and contexts included) in one expression.
MAX_NODES = 400
#: Deepest nesting of AST nodes in one expression.
MAX_DEPTH = 40
#: Largest absolute constant exponent of ``**``.
MAX_EXPONENT = 1000
#: Largest absolute numeric literal (about the largest finite float).
MAX_LITERAL = 1e308

_ALLOWED = (
    "use parameter names, numbers, + - * / // % **, abs/min/max/log/exp/sqrt, "
    "comparisons, and/or/not"
)

_Fn = Callable[[Mapping[str, Any]], Any]


def _num(value: Any) -> float:
    """Arithmetic operands as floats; a string or other value makes a TypeError."""
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return float(value)  # OverflowError for an int beyond the float range
    raise TypeError(f"{value!r} is not a number")


def _pow(base: float, exponent: float) -> float:
    result: float | complex = base**exponent
    if isinstance(result, complex):  # (-8.0) ** (1/3) is complex in Python
        raise ValueError("negative base with a fractional exponent")
    return result


def _truth(value: Any) -> bool:
    """A bare name used as a condition must hold a bool; 0.5 is not 'true'."""
    if isinstance(value, bool):
        return value
    raise TypeError(f"{value!r} is not a bool")


_BINOPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _pow,
}
_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
#: name -> (function, fewest arguments, most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    "abs": (abs, 1, 1),
    "min": (min, 2, 100),
    "max": (max, 2, 100),
    "log": (math.log, 1, 2),
    "exp": (math.exp, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
}
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}
_FORBIDDEN: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting",
    ast.Slice: "slicing",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "the walrus operator (:=)",
    ast.IfExp: "a conditional expression (x if c else y)",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Starred: "a starred argument (*x)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


def _symbol(op: ast.AST) -> str:
    return _SYMBOLS.get(type(op), type(op).__name__)


def _constant_number(node: ast.AST) -> float | None:
    """The value of a literal number, signs included (``-5000``), else ``None``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant_number(node.operand)
        return None if inner is None else abs(inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return abs(float(node.value)) if abs(node.value) <= MAX_LITERAL else math.inf
    return None


def _check_size(tree: ast.AST) -> str | None:
    """Why the tree is too big to accept; iterative, so no depth can recurse here."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            return f"the expression is too large (more than {MAX_NODES} syntax nodes)"
        if depth > MAX_DEPTH:
            return f"the expression is nested too deeply (more than {MAX_DEPTH} levels)"
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return None


class _Compiler:
    """Turns a parsed, size-checked expression into closures, refusing what is not
    whitelisted. ``condition`` compiles nodes in a boolean position, ``value`` the rest."""

    def __init__(self, expr: str, names: frozenset[str]) -> None:
        self.expr = expr
        self.names = names
        self.used: dict[str, None] = {}  # insertion-ordered set

    def error(self, why: str) -> ConstraintError:
        return ConstraintError(f"constraint {self.expr!r}: {why}")

    def condition(self, node: ast.AST) -> _Fn:
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda c: all(p(c) for p in parts)
            return lambda c: any(p(c) for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand)
            return lambda c: not inner(c)
        if isinstance(node, ast.Name):
            get = self.value(node)
            return lambda c: _truth(get(c))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            const = node.value
            return lambda c: const
        self.value(node)  # a forbidden construct inside is the more useful message
        raise self.error(
            "must be a condition that is true or false, such as 'a * 2 < b', not a "
            f"number; combine comparisons with and/or/not ({_ALLOWED})"
        )

    def compare(self, node: ast.Compare) -> _Fn:
        ops: list[Callable[[Any, Any], Any]] = []
        for op in node.ops:
            fn = _COMPARISONS.get(type(op))
            if fn is None:
                raise self.error(
                    f"the comparison {_symbol(op)!r} is not allowed; use == != < <= > >="
                )
            ops.append(fn)
        first = self.value(node.left)
        rest = list(zip(ops, [self.value(c) for c in node.comparators], strict=True))

        def run(config: Mapping[str, Any]) -> bool:
            left = first(config)
            for op, get_right in rest:  # chained: a < b <= c is a < b and b <= c
                right = get_right(config)
                if not op(left, right):
                    return False
                left = right
            return True

        return run

    def value(self, node: ast.AST) -> _Fn:
        if isinstance(node, ast.Compare | ast.BoolOp) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            return self.condition(node)
        if isinstance(node, ast.Constant):
            return self.constant(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.value(node.operand)
            if isinstance(node.op, ast.USub):
                return lambda c: -_num(inner(c))
            return lambda c: _num(inner(c))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.UnaryOp | ast.BinOp):
            raise self.error(f"the operator {_symbol(node.op)!r} is not allowed; {_ALLOWED}")
        what = _FORBIDDEN.get(type(node), type(node).__name__)
        raise self.error(f"{what} is not allowed; {_ALLOWED}")

    def constant(self, value: Any) -> _Fn:
        if isinstance(value, bool | str):
            return lambda c: value
        if isinstance(value, int | float):
            if abs(value) > MAX_LITERAL or math.isnan(value):
                raise self.error(f"the number {value!r} is too large (limit {MAX_LITERAL:g})")
            as_float = float(value)
            return lambda c: as_float
        raise self.error(f"the literal {value!r} is not allowed; use numbers and strings")

    def name(self, name: str) -> _Fn:
        if name not in self.names:
            hint = f" ({name}() is a function; call it)" if name in _FUNCTIONS else ""
            params = ", ".join(sorted(self.names)) or "none"
            raise self.error(f"unknown name {name!r}{hint}; the parameters are: {params}")
        self.used[name] = None
        return lambda c: c[name]

    def binop(self, node: ast.BinOp) -> _Fn:
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise self.error(f"the operator {_symbol(node.op)!r} is not allowed; {_ALLOWED}")
        if isinstance(node.op, ast.Pow):
            exponent = _constant_number(node.right)
            if exponent is not None and exponent > MAX_EXPONENT:
                raise self.error(f"the exponent is too large (|exponent| <= {MAX_EXPONENT})")
        left, right = self.value(node.left), self.value(node.right)
        return lambda c: fn(_num(left(c)), _num(right(c)))

    def call(self, node: ast.Call) -> _Fn:
        funcs = ", ".join(_FUNCTIONS)
        if not isinstance(node.func, ast.Name):
            self.value(node.func)  # names what is wrong inside, e.g. attribute access
            raise self.error(f"calling an expression is not allowed; the functions are: {funcs}")
        if node.func.id not in _FUNCTIONS:
            raise self.error(f"calling {node.func.id!r} is not allowed; the functions are: {funcs}")
        name = node.func.id
        if node.keywords:
            raise self.error(f"{name}() takes no keyword arguments")
        fn, fewest, most = _FUNCTIONS[name]
        args = [self.value(a) for a in node.args]
        if not fewest <= len(args) <= most:
            count = str(fewest) if fewest == most else f"{fewest} or more"
            count = "1 or 2" if name == "log" else count
            raise self.error(f"{name}() takes {count} arguments, got {len(args)}")
        return lambda c: fn(*[_num(a(c)) for a in args])


class Constraint:
    """One compiled condition over parameter values.

    Args:
        expr: the condition, e.g. ``"batch * layers <= 4096"`` or ``"act == 'relu' or lr < 0.01"``.
        names: the names the expression may use (the space's parameters).

    Raises:
        ConstraintError: at once, for anything outside the whitelist.
    """

    __slots__ = ("_allowed", "_fn", "expr", "names")

    def __init__(self, expr: str, names: Collection[str]) -> None:
        if not isinstance(expr, str):
            raise ConstraintError(f"a constraint must be a string, got {expr!r}")
        if len(expr) > MAX_LENGTH:
            raise ConstraintError(
                f"constraint {expr[:40]!r}...: too long "
                f"({len(expr)} characters, limit {MAX_LENGTH})"
            )
        self._allowed = frozenset(names)
        compiler = _Compiler(expr, self._allowed)
        if not expr.strip():
            raise compiler.error("is empty")
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError as exc:
            raise compiler.error(f"is not valid syntax ({exc.msg})") from None
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, deep nesting
            raise compiler.error(f"cannot be parsed ({type(exc).__name__})") from None
        if (why := _check_size(tree)) is not None:
            raise compiler.error(why)
        self._fn = compiler.condition(tree.body)
        #: The expression as given.
        self.expr: str = expr
        #: The parameter names it uses, in order of first use.
        self.names: tuple[str, ...] = tuple(compiler.used)

    def evaluate(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` satisfies the condition.

        Arithmetic that has no answer (division by zero, overflow, ``log`` of a
        negative, comparing a string with a number) makes the config infeasible
        rather than failing the experiment: the condition cannot be shown to hold,
        and a searcher can simply propose another point.

        Raises:
            ConstraintError: if ``config`` lacks a parameter the expression uses.
        """
        try:
            return bool(self._fn(config))
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            return False
        except KeyError as exc:
            raise ConstraintError(
                f"constraint {self.expr!r}: the config has no parameter {exc.args[0]!r}"
            ) from None

    def __repr__(self) -> str:
        return f"Constraint({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Constraint):
            return NotImplemented
        return self.expr == other.expr and self._allowed == other._allowed

    def __hash__(self) -> int:
        return hash((self.expr, self._allowed))

    def __reduce__(self) -> tuple[type[Constraint], tuple[str, tuple[str, ...]]]:
        # Closures do not pickle; recompiling from the text does, and is cheap.
        return (Constraint, (self.expr, tuple(sorted(self._allowed))))

    def linear(self) -> tuple[LinearInequality, ...] | None:
        """The condition as linear inequalities over parameters, all of which must
        hold, or ``None`` when it is not one (e.g. ``"x + 2*y <= 3"`` gives one,
        ``"0 < a <= b"`` two, ``"a * b <= 1"`` or ``"a != b"`` none); the rules are
        those of :mod:`raysweep.sweep.space.linear`. Libraries that search inside
        linear constraints (Ax) take these; raysweep still checks every config.

        Example:
            >>> [str(p) for p in Constraint("a - b >= 0", ["a", "b"]).linear()]
            ['-a + b <= 0']
        """
        from raysweep.sweep.space.linear import linear_form  # only adapters need it

        return linear_form(self.expr)


class ConstraintSet:
    """All constraints of an experiment, compiled against its search space.

    A constraint that names a conditional parameter absent from a configuration
    (inactive there) holds vacuously for it: it speaks about a branch the
    configuration is not in. A configuration missing any other parameter it
    names is still an error (:meth:`Constraint.evaluate`).

    Example:
        >>> from raysweep.sweep.space import SearchSpace, uniform
        >>> cs = ConstraintSet(["a < b"], SearchSpace({"a": uniform(0, 1), "b": uniform(0, 1)}))
        >>> cs.is_feasible({"a": 0.2, "b": 0.5}), cs.violated({"a": 0.7, "b": 0.5})
        (True, ['a < b'])
    """

    __slots__ = ("_conditional", "_constraints")

    def __init__(self, exprs: Sequence[str] | None, space: SearchSpace) -> None:
        if exprs is None:
            exprs = ()
        if isinstance(exprs, str | bytes) or not isinstance(exprs, Sequence):
            raise ConstraintError(f"constraints must be a list of strings, got {exprs!r}")
        for i, expr in enumerate(exprs):
            if not isinstance(expr, str):
                raise ConstraintError(f"constraint #{i} must be a string, got {expr!r}")
        names = tuple(space)
        self._constraints = tuple(Constraint(expr, names) for expr in exprs)
        self._conditional = frozenset(n for n in names if space.condition(n) is not None)

    def _holds(self, constraint: Constraint, config: Mapping[str, Any]) -> bool:
        # A config of the space (SearchSpace.problems is empty) lacks a conditional
        # parameter exactly when it is inactive; then the constraint does not apply.
        if any(n in self._conditional and n not in config for n in constraint.names):
            return True
        return constraint.evaluate(config)

    def is_feasible(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` satisfies every constraint (true when there are none)."""
        return all(self._holds(c, config) for c in self._constraints)

    def violated(self, config: Mapping[str, Any]) -> list[str]:
        """The expressions ``config`` does not satisfy, in the order given."""
        return [c.expr for c in self._constraints if not self._holds(c, config)]

    def to_json(self) -> list[str]:
        """The expressions as given, for the store."""
        return [c.expr for c in self._constraints]

    def __iter__(self) -> Iterator[Constraint]:
        return iter(self._constraints)

    def __len__(self) -> int:
        return len(self._constraints)

    def __repr__(self) -> str:
        return f"ConstraintSet({self.to_json()!r})"
