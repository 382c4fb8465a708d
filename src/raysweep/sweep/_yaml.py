"""Reading YAML that users write: PyYAML's safe loader with its traps removed.

Used for sweep files and for space files named in them, so both read numbers,
duplicate keys and syntax errors the same way, and both fail with one line
naming the file, the line and the problem.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from raysweep.errors import SpecError

__all__ = ["first_line", "parse_yaml"]


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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_yaml(text: str, where: str) -> Any:
    """The document in ``text``; a :class:`SpecError` naming ``where`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{where}: invalid YAML{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: invalid YAML: {first_line(exc)}") from None
