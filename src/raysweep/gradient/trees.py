"""Pytree helpers: gradient aggregation, finiteness checks and JSON round trips.

Gradients and parameters are pytrees. When JAX is loaded its ``tree_util`` does
the walking (so registered custom nodes work); without JAX a small recursive
walker handles dicts, lists, tuples and NumPy arrays, which is all a NumPy-only
objective produces. JAX is never imported here just to add two dicts.

Checkpoints are JSON, never pickle: an array becomes
``{"dtype": "float32", "shape": [2], "data": [1.0, 2.0]}`` and a tree is stored
as the list of its leaves in tree order; reading it back needs a template with
the right structure (the user's initial parameters, or ``optimizer.init(params)``
for the optimizer state), which keeps the format independent of Python classes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from raysweep.errors import RaysweepError, SpecError

__all__ = [
    "NonFiniteGradientError",
    "decode_array",
    "decode_value",
    "describe_shapes",
    "encode_array",
    "encode_value",
    "global_norm",
    "grads_fit_params",
    "has_nonfinite",
    "to_readable_json",
    "tree_leaves",
    "tree_map",
    "tree_mean",
    "tree_weighted",
]


class NonFiniteGradientError(RaysweepError, RuntimeError):
    """Raised when the aggregated gradient holds NaN or Inf; names the step and the
    objective(s) whose gradient had them (``aggregate_grad_fn`` when none did).

    A subclass of ``RuntimeError`` because that is what the mythos optimizer raised
    and what existing code catches. Usual causes: a learning rate that is too
    high, or float32 overflow (set ``JAX_ENABLE_X64`` through ``runtime_env``).
    """


def _jax_tree_util() -> Any:
    # Only when the caller already uses JAX: importing it costs a second or more.
    jax = sys.modules.get("jax")
    return None if jax is None else jax.tree_util


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in tree order (``None`` counts as an empty subtree)."""
    tu = _jax_tree_util()
    if tu is not None:
        return list(tu.tree_leaves(tree))
    out: list[Any] = []

    def walk(node: Any) -> None:
        if node is None:
            return
        if isinstance(node, Mapping):
            for key in sorted(node):
                walk(node[key])
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)
        else:
            out.append(node)

    walk(tree)
    return out


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leaf-wise to trees of the same structure."""
    tu = _jax_tree_util()
    if tu is not None:
        return tu.tree_map(fn, tree, *rest)

    def walk(node: Any, others: tuple[Any, ...]) -> Any:
        if node is None:
            return None
        if isinstance(node, Mapping):
            for other in others:
                if not isinstance(other, Mapping) or set(other) != set(node):
                    raise ValueError(f"tree structures differ: {node!r} vs {other!r}")
            mapped = {k: walk(node[k], tuple(o[k] for o in others)) for k in node}
            return mapped if type(node) is dict else type(node)(mapped)  # type: ignore[call-arg]
        if isinstance(node, list | tuple):
            for other in others:
                if not isinstance(other, list | tuple) or len(other) != len(node):
                    raise ValueError(f"tree structures differ: {node!r} vs {other!r}")
            items = [walk(x, tuple(o[i] for o in others)) for i, x in enumerate(node)]
            if _is_namedtuple(node):
                return type(node)(*items)
            return type(node)(items)
        return fn(node, *others)

    return walk(tree, rest)


def tree_mean(grads: Sequence[Any]) -> Any:
    """Leaf-wise mean of gradient pytrees: equal weight for every objective.

    Example:
        >>> import numpy as np
        >>> tree_mean([{"a": np.array(1.0)}, {"a": np.array(3.0)}])["a"]
        np.float64(2.0)
    """
    grads = list(grads)
    if not grads:
        raise SpecError("tree_mean needs at least one gradient")
    n = len(grads)
    return tree_map(lambda *xs: sum(xs[1:], xs[0]) / n, grads[0], *grads[1:])


def tree_weighted(weights: Sequence[float]) -> Callable[[Sequence[Any]], Any]:
    """An ``aggregate_grad_fn`` that sums gradients with fixed weights.

    Args:
        weights: one finite weight per objective, in the order of ``objectives``.

    Example:
        >>> import numpy as np
        >>> agg = tree_weighted([0.75, 0.25])
        >>> float(agg([{"a": np.array(4.0)}, {"a": np.array(8.0)}])["a"])
        5.0
    """
    ws = [float(w) for w in weights]
    if not ws or not all(math.isfinite(w) for w in ws):
        raise SpecError(f"tree_weighted needs a non-empty list of finite weights, got {weights!r}")

    def aggregate(grads: Sequence[Any]) -> Any:
        grads = list(grads)
        if len(grads) != len(ws):
            raise SpecError(
                f"tree_weighted got {len(grads)} gradients for {len(ws)} weights; "
                f"give one weight per objective"
            )
        return tree_map(
            lambda *xs: sum((w * x for w, x in zip(ws, xs, strict=True)), 0.0 * xs[0]),
            grads[0],
            *grads[1:],
        )

    aggregate.__name__ = f"tree_weighted({ws})"
    return aggregate


def has_nonfinite(tree: Any) -> bool:
    """Whether any inexact leaf of ``tree`` holds NaN or Inf."""
    for leaf in tree_leaves(tree):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not bool(np.all(np.isfinite(arr))):
            return True
    return False


def global_norm(tree: Any) -> float:
    """The L2 norm of all leaves together, in float64."""
    total = 0.0
    for leaf in tree_leaves(tree):
        arr = np.asarray(leaf, dtype=np.float64)
        total += float(np.sum(arr * arr))
    return math.sqrt(total)


class _Shape:
    """A leaf shown as its dtype and shape, ``float32[3]``, in a tree's repr."""

    __slots__ = ("text",)

    def __init__(self, leaf: Any) -> None:
        arr = np.asarray(leaf)
        self.text = f"{arr.dtype}[{','.join(map(str, arr.shape))}]"

    def __repr__(self) -> str:
        return self.text


def describe_shapes(tree: Any) -> str:
    """The tree on one line with leaves as ``dtype[shape]``, for error messages.

    Example:
        >>> import numpy as np
        >>> describe_shapes({"w": np.zeros(3, np.float32)})
        "{'w': float32[3]}"
    """
    return repr(tree_map(_Shape, tree)).replace("\n", " ")


def grads_fit_params(grads: Any, params: Any) -> bool:
    """Whether ``grads`` has the structure of ``params`` and the same leaf shapes.

    A gradient of another shape could even broadcast through the update and
    silently change the shape of a parameter, so shapes count too.
    """
    tu = _jax_tree_util()
    if tu is not None:
        if tu.tree_structure(grads) != tu.tree_structure(params):
            return False
        pairs = zip(tu.tree_leaves(grads), tu.tree_leaves(params), strict=True)
    else:
        try:
            tree_map(lambda *_: None, params, grads)  # raises where containers differ
        except ValueError:
            return False
        leaves = tree_leaves(grads), tree_leaves(params)
        if len(leaves[0]) != len(leaves[1]):
            return False
        pairs = zip(*leaves, strict=True)
    return all(np.shape(g) == np.shape(p) for g, p in pairs)


# -- JSON -------------------------------------------------------------------------------
def encode_array(value: Any) -> dict[str, Any]:
    """An array (or scalar) as ``{"dtype", "shape", "data"}``; exact for float32/64."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise TypeError(f"cannot store an array of dtype {arr.dtype} as JSON")
    data = arr.tolist()
    if arr.dtype.kind == "c":
        data = [[z.real, z.imag] for z in np.ravel(arr).tolist()]
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": data}


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray[Any, Any]:
    """Inverse of :func:`encode_array`."""
    dtype = np.dtype(encoded["dtype"])
    shape = tuple(encoded["shape"])
    if dtype.kind == "c":
        flat = [complex(re, im) for re, im in encoded["data"]]
        return np.asarray(flat, dtype=dtype).reshape(shape)
    return np.asarray(encoded["data"], dtype=dtype).reshape(shape)


_TAGS = ("$array", "$tuple", "$dict")


def encode_value(value: Any) -> Any:
    """Encode plain data (None, numbers, strings, arrays, dicts, lists, tuples) as JSON.

    Raises:
        TypeError: anything else (a user object, a JAX typed PRNG key); the caller
            decides what to do, e.g. store nothing and reset the state on resume.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and not isinstance(value, np.generic):
        return value
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and k not in _TAGS for k in value):
            return {k: encode_value(v) for k, v in value.items()}
        raise TypeError("only dicts with string keys can be stored as JSON")
    if isinstance(value, tuple) and not _is_namedtuple(value):
        return {"$tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, np.ndarray | np.generic) or hasattr(value, "__array__"):
        return {"$array": encode_array(value)}
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def decode_value(encoded: Any) -> Any:
    """Inverse of :func:`encode_value` (arrays come back as NumPy arrays)."""
    if isinstance(encoded, list):
        return [decode_value(v) for v in encoded]
    if isinstance(encoded, dict):
        if len(encoded) == 1 and "$array" in encoded:
            return decode_array(encoded["$array"])
        if len(encoded) == 1 and "$tuple" in encoded:
            return tuple(decode_value(v) for v in encoded["$tuple"])
        return {k: decode_value(v) for k, v in encoded.items()}
    return encoded


def to_readable_json(tree: Any) -> Any:
    """A pytree as plain JSON for people: nested dicts/lists, arrays as (nested) lists.

    Not meant to be read back (checkpoints use exact leaf encodings); custom pytree
    nodes become ``{"path": value}`` when JAX is loaded, else their ``repr``.
    """
    if tree is None or isinstance(tree, bool | str):
        return tree
    if isinstance(tree, Mapping):
        return {str(k): to_readable_json(v) for k, v in tree.items()}
    if _is_namedtuple(tree):
        return {k: to_readable_json(v) for k, v in zip(tree._fields, tree, strict=True)}
    if isinstance(tree, list | tuple):
        return [to_readable_json(v) for v in tree]
    try:
        arr = np.asarray(tree)
    except Exception:  # any failure means "not an array"; fall through to the walkers
        arr = None
    if arr is not None and arr.dtype.kind in "biuf":
        return arr.tolist()
    tu = _jax_tree_util()
    if tu is not None:
        flat, _ = tu.tree_flatten_with_path(tree)
        if flat and not (len(flat) == 1 and flat[0][1] is tree):
            return {tu.keystr(path): to_readable_json(leaf) for path, leaf in flat}
    return repr(tree)
