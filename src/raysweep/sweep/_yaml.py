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


#: Deepest nesting accepted; sweep files need a handful of levels, and PyYAML's
#: recursive composer would otherwise end in a RecursionError near 1000.
MAX_DEPTH = 100
#: Most nodes a document may hold once its aliases are expanded: a 10,000-parameter
#: space is ~50,000; a 500-byte "billion laughs" file expands to ~10**9.
MAX_NODES = 2_000_000


#: libyaml's parser when PyYAML was built with it: ten times faster on large spaces.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader with its traps removed.

    Duplicate keys are an error (PyYAML silently keeps the last one), ``1e-3`` is
    a float (YAML 1.1 wants ``1.0e-3`` and otherwise reads a string, which would
    surface later as a baffling "low='1e-3' must be a number"), and the composed
    document is measured before anything is built from it: nesting is bounded
    (construction is recursive) and so is its size with aliases expanded (an
    alias bomb is refused before anything walks it).
    """

    def construct_document(self, node: yaml.Node) -> Any:
        depth, size = _measure(node)
        if depth > MAX_DEPTH:
            raise yaml.constructor.ConstructorError(
                None, None, f"nesting is deeper than {MAX_DEPTH} levels", node.start_mark
            )
        if size > MAX_NODES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the document expands to more than {MAX_NODES:,} values through its "
                f"aliases (&anchor / *alias); write the values out or use fewer aliases",
                node.start_mark,
            )
        return super().construct_document(node)


def _measure(root: yaml.Node) -> tuple[int, int]:
    """Depth and node count of the document with every alias expanded, computed
    without expanding (each shared node is measured once) and without recursion."""
    measured: dict[int, tuple[int, int]] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in measured:
            continue
        children = _children(node)
        if children_done or not children:
            parts = [measured[id(c)] for c in children]
            depth = 1 + max((d for d, _ in parts), default=0)
            size = 1 + sum(n for _, n in parts)
            if depth > MAX_DEPTH or size > MAX_NODES:
                return depth, size
            measured[id(node)] = (depth, size)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in measured)
    return measured[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


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
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


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
