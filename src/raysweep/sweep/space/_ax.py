"""Ax ``parameters`` lists read as raysweep domains, unchanged.

Users bring the list they gave Ax's ``create_experiment`` (``name``, ``type``
range / choice / fixed, ``bounds`` / ``values`` / ``value``, ``value_type``,
``log_scale``, ``digits``, ...); :func:`space_from_ax` maps each entry to the
domain that yields the same values, refusing lossy casts and unknown keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raysweep.errors import SpecError
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

__all__ = ["space_from_ax", "unknown_key"]

_AX_REQUIRED = {"range": "bounds", "choice": "values", "fixed": "value"}
#: Optional Ax keys: ``digits`` and ``sort_values`` are honoured, the rest only say
#: how Ax models a parameter and change nothing about the values tried.
_AX_OPTIONAL = (
    "value_type",
    "log_scale",
    "digits",
    "sort_values",
    "is_ordered",
    "is_task",
    "is_fidelity",
    "target_value",
)
_AX_VALUE_TYPES = ("int", "float", "str", "bool")


def unknown_key(where: str, key: Any, expected: Sequence[str]) -> SpecError:
    close = difflib.get_close_matches(str(key), expected, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(f"{where}: unknown key {key!r}{hint}; expected keys: {', '.join(expected)}")


def _ax_cast(where: str, value: Any, value_type: str | None) -> Any:
    """Convert one value the way Ax's ``value_type`` asks, refusing lossy casts."""
    if value_type is None:
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "int": number and value == int(value),
        "float": number,
        "str": isinstance(value, str | int | float),
        "bool": isinstance(value, bool),
    }[value_type]
    if not ok:
        raise SpecError(f"{where}: value {value!r} is not a valid {value_type}")
    return {"int": int, "float": float, "str": str, "bool": bool}[value_type](value)


def _ax_domain(name: str, item: Mapping[str, Any]) -> Domain:
    kind = item["type"]
    where = f"Ax parameter {name!r} ({kind})"
    value_type = item.get("value_type")
    if value_type is not None and value_type not in _AX_VALUE_TYPES:
        raise SpecError(f"{where}: value_type {value_type!r} must be one of: int, float, str, bool")
    if kind == "fixed":
        return Fixed(_ax_cast(where, item["value"], value_type))
    if kind == "choice":
        values = item["values"]
        if not isinstance(values, list | tuple):
            raise SpecError(f"{where}: 'values' must be a list, got {values!r}")
        cast = [_ax_cast(where, v, value_type) for v in values]
        if item.get("sort_values"):
            try:
                cast.sort()
            except TypeError:
                raise SpecError(
                    f"{where}: sort_values is set but {values!r} cannot be sorted"
                ) from None
        return Choice(tuple(cast))
    bounds = item["bounds"]
    if not isinstance(bounds, list | tuple) or len(bounds) != 2:
        raise SpecError(f"{where}: 'bounds' must be a list [low, high], got {bounds!r}")
    if value_type in ("str", "bool"):
        raise SpecError(f"{where}: a range needs value_type int or float, got {value_type!r}")
    low, high = (v.item() if isinstance(v, np.generic) else v for v in bounds)
    log = bool(item.get("log_scale", False))
    both_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
    if value_type == "int" or (value_type is None and both_int):
        low, high = _ax_cast(where, low, "int"), _ax_cast(where, high, "int")
        return LogRandInt(low, high) if log else RandInt(low, high)
    low, high = _ax_cast(where, low, "float"), _ax_cast(where, high, "float")
    digits = item.get("digits")
    if digits is None or log:
        # Rounding a log-scaled value to fixed decimals would collapse its small end
        # to zero, so `digits` is only honoured on linear ranges.
        return LogUniform(low, high) if log else Uniform(low, high)
    if not isinstance(digits, int) or isinstance(digits, bool):
        raise SpecError(f"{where}: digits={digits!r} must be an integer")
    # Ax rounds values (and bounds) to `digits` decimals: the same set as this grid.
    return QUniform(round(low, digits), round(high, digits), 10.0**-digits)


def space_from_ax(items: Sequence[Mapping[str, Any]]) -> dict[str, Domain]:
    params: dict[str, Domain] = {}
    for i, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str):
            raise SpecError(f"Ax parameter #{i} needs a 'name' string, got {item!r}")
        if name in params:
            raise SpecError(f"Ax parameter {name!r} is listed twice")
        kind = item.get("type")
        if kind not in _AX_REQUIRED:
            raise SpecError(
                f"Ax parameter {name!r}: type {kind!r} must be one of: range, choice, fixed"
            )
        expected = ("name", "type", _AX_REQUIRED[kind], *_AX_OPTIONAL)
        for key in item:
            if key not in expected:
                raise unknown_key(f"Ax parameter {name!r} ({kind})", key, expected)
        if _AX_REQUIRED[kind] not in item:
            raise SpecError(f"Ax parameter {name!r} ({kind}): missing key {_AX_REQUIRED[kind]!r}")
        params[name] = _ax_domain(name, item)
    return params
