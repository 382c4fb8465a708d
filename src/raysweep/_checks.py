"""Primitive value checks shared by every validator in raysweep.

Each returns the value in its normal form or raises :class:`SpecError` with a
message of the shape ``"expected <what>, got <value>"``, never naming a field:
the caller that knows the field (the sweep configuration, a resource mapping, a
stop condition) prefixes it. Keeping the wording here means a seed, a count or a
duration is described the same way wherever it is given.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from raysweep.errors import SpecError

__all__ = [
    "describe",
    "did_you_mean",
    "expect_int",
    "expect_mapping",
    "expect_number",
    "expect_seed",
    "expect_str",
    "is_int",
    "is_number",
]

#: Seeds are handed to NumPy, SciPy and the searcher libraries; all take this range.
SEED_MAX = 2**63


def describe(value: Any) -> str:
    """A value as shown in messages: its repr, with the type when that is ambiguous
    (``'3' (str)``), cut to a readable length."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    if isinstance(value, str):
        return f"{text} (str)"
    return text


def is_int(value: Any) -> bool:
    """A whole number that is not a bool (``True`` as a count is a bug)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def expect_int(value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum)``."""
    if (
        not is_int(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value >= maximum)
    ):
        if minimum == 1 and maximum is None:
            what = "a positive integer"
        elif maximum is None:
            what = f"an integer >= {minimum}" if minimum is not None else "an integer"
        else:
            what = f"an integer in [{minimum}, {_power(maximum)})"
        raise SpecError(f"expected {what}, got {describe(value)}")
    return int(value)


def _power(n: int) -> str:
    return "2**63" if n == SEED_MAX else str(n)


def expect_seed(value: Any) -> int | None:
    """A seed: ``None`` (not reproducible) or an int in ``[0, 2**63)``."""
    return None if value is None else expect_int(value, minimum=0, maximum=SEED_MAX)


def expect_number(value: Any, *, positive: bool = False, what: str = "a number") -> float:
    """``value`` as a finite float (strictly positive with ``positive``)."""
    if not is_number(value) or (positive and not value > 0):
        qualifier = "a positive finite number" if positive else "a finite number"
        shown = qualifier if what == "a number" else f"{qualifier} of {what}"
        raise SpecError(f"expected {shown}, got {describe(value)}")
    return float(value)


def expect_bool(value: Any) -> bool:
    """``value`` as a bool; ``1``, ``"yes"`` and other truthy stand-ins are refused."""
    if not isinstance(value, bool):
        raise SpecError(f"expected True or False, got {describe(value)}")
    return value


def expect_str(value: Any, *, what: str = "a non-empty string") -> str:
    """``value`` as a string with something other than spaces in it."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"expected {what}, got {describe(value)}")
    return value


def expect_mapping(value: Any, example: str) -> Mapping[str, Any]:
    """``value`` as a mapping with string keys; ``example`` shows the expected shape."""
    if not isinstance(value, Mapping):
        raise SpecError(f"expected a mapping such as {example}, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(f"expected string keys in a mapping such as {example}, got {key!r}")
    return value


def did_you_mean(key: Any, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or an empty string."""
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
