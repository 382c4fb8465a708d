"""Lazy imports of the optional ``jax`` extra (JAX and optax).

``import raysweep.gradient`` must work, and stay fast, without them; the first
feature that needs one imports it here, and a missing one is a
:class:`~raysweep.errors.MissingExtraError` naming ``pip install "raysweep[jax]"``.
"""

from __future__ import annotations

from typing import Any

from raysweep._extras import require

__all__ = ["require_jax", "require_optax"]


def require_jax(feature: str) -> Any:
    """The ``jax`` module, or ``MissingExtraError`` naming ``feature``."""
    jax = require("jax", "jax", feature)
    require("jax.numpy", "jax", feature)
    return jax


def require_optax(feature: str) -> Any:
    """The ``optax`` module, or ``MissingExtraError`` naming ``feature``."""
    return require("optax", "jax", feature)
