"""Tests of linear forms of constraints (Constraint.linear, space/linear.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from raysweep.sweep.space.constraints import Constraint
from raysweep.sweep.space.linear import LinearInequality, linear_form

NAMES = ["a", "b", "x", "y", "act"]


def parts(expr: str) -> list[str] | None:
    form = Constraint(expr, NAMES).linear()
    return None if form is None else [str(p) for p in form]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x + 2*y <= 3", ["x + 2*y <= 3"]),
        ("a - b >= 0", ["-a + b <= 0"]),
        ("0.5*x <= y", ["0.5*x - y <= 0"]),
        ("x > 1", ["-x < -1"]),
        ("-(x - 3*y) / 2 > -1", ["0.5*x - 1.5*y < 1"]),
        ("x * 4 + 2 * (y - x) <= 10 - a", ["2*x + 2*y + a <= 10"]),
        ("x <= 2**10 / 4", ["x <= 256"]),
        ("+x <= 7 % 4", ["x <= 3"]),
    ],
)
def test_single_comparisons_give_one_inequality(expr: str, expected: list[str]) -> None:
    """A comparison of affine expressions moves everything left: terms <= bound."""
    assert parts(expr) == expected


def test_chains_and_conjunctions_give_one_inequality_per_link() -> None:
    """'0 < a <= b' and 'p and q' are several inequalities that must all hold."""
    assert parts("0 < a <= b") == ["-a < 0", "a - b <= 0"]
    assert parts("0 <= x <= 1 and y >= 0.2") == ["-x <= 0", "x <= 1", "-y <= -0.2"]
    assert parts("(a <= 1 and b <= 1) and x < y") == ["a <= 1", "b <= 1", "x - y < 0"]


@pytest.mark.parametrize(
    "expr",
    [
        "a * b <= 1",  # product of parameters
        "x / y <= 1",  # quotient of parameters
        "x ** 2 <= 1",  # power of a parameter
        "abs(x) <= 1",  # function of a parameter
        "log(2) <= x",  # functions are not folded
        "a == b",  # equality: a region without volume
        "a != b",
        "a <= 1 or b <= 1",
        "not a <= 1",
        "0 < a <= b and act == 'relu'",  # one part is not linear
        "act != 'relu'",
        "x < True",  # a bool is not a number
        "x <= 1e308 * 10",  # overflows
        "x <= 1 / 0",
        "x <= (-8) ** 0.5",  # complex
        "x",  # not a comparison
    ],
)
def test_other_constraints_have_no_linear_form(expr: str) -> None:
    """Anything but a conjunction of linear inequalities gives None."""
    assert Constraint(expr, NAMES).linear() is None


def test_terms_keep_order_of_use_and_cancel() -> None:
    """Terms appear in order of first use, repeated names add up and zero terms vanish."""
    (form,) = linear_form("y + x - y + 3*x <= 2 + b - b") or ()
    assert form == LinearInequality((("x", 4.0),), 2.0, strict=False)
    assert form.coefficients == {"x": 4.0}
    (constant,) = linear_form("x - x < 1") or ()
    assert constant.terms == ()
    assert str(constant) == "0 < 1"


def test_linear_form_agrees_with_the_constraint() -> None:
    """On random points the inequalities hold exactly where the constraint does."""
    rng = np.random.default_rng(0)
    exprs = ["x + 2*y <= 3", "0 < a <= 2*b - 0.5", "-(x - 3*y) / 2 > -1 and a >= b / 4"]
    for expr in exprs:
        constraint = Constraint(expr, NAMES)
        form = constraint.linear()
        assert form is not None
        for point in rng.uniform(-3, 3, size=(200, 4)):
            config = dict(zip(["a", "b", "x", "y"], point.tolist(), strict=True))
            assert all(p.holds(config) for p in form) == constraint.evaluate(config)


def test_linear_is_available_after_pickling() -> None:
    """A constraint that crossed a process boundary still has its linear form."""
    constraint = pickle.loads(pickle.dumps(Constraint("a - b >= 0", NAMES)))
    assert [str(p) for p in constraint.linear() or ()] == ["-a + b <= 0"]


def test_unparsable_text_is_not_linear() -> None:
    """linear_form never raises: text that does not parse simply has no linear form."""
    assert linear_form("x <=") is None
    assert linear_form("x <= 1\0") is None
