"""The ``raysweep`` command line: ``run``, ``status``, ``export``, ``slurm`` and ``submit``.

The CLI is the only part of raysweep that prints or configures logging; the
library reports through return values, exceptions and callbacks.
"""

from __future__ import annotations

from raysweep.cli.main import cli, main
from raysweep.sweep.progress import ProgressCallback

__all__ = ["ProgressCallback", "cli", "main"]
