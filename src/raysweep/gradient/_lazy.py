"""Lazy imports of the optional ``jax`` extra (JAX and optax).

``import raysweep.gradient`` must work, and stay fast, without them; the first
feature that needs one imports it here, and a missing one is a
:class:`~raysweep.errors.MissingExtraError` naming ``pip install "raysweep[jax]"``.
"""

from __future__ import annotations

import importlib
from typing import Any

from raysweep.errors import MissingExtraError

__all__ = ["require_jax", "require_optax"]


def _require(module: str, feature: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, "jax", feature) from exc


def require_jax(feature: str) -> Any:
    """The ``jax`` module, or ``MissingExtraError`` naming ``feature``."""
    jax = _require("jax", feature)
    _require("jax.numpy", feature)
    return jax


def require_optax(feature: str) -> Any:
    """The ``optax`` module, or ``MissingExtraError`` naming ``feature``."""
    return _require("optax", feature)
