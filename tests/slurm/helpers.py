"""A small valid sweep folder, and a reader of the script's parts, for the Slurm tests."""

from __future__ import annotations

import re

from tests.cli.test_cli_errors import sweep_folder

# The same small valid sweep as the CLI tests use.
__all__ = ["code_lines", "first_index", "sbatch_lines", "sweep_folder"]


def sbatch_lines(script: str) -> list[str]:
    """The ``#SBATCH`` options, in order (``--nodes=2``...)."""
    return [line.split(None, 1)[1] for line in script.splitlines() if line.startswith("#SBATCH")]


def code_lines(script: str) -> list[str]:
    """The lines bash runs: no comments, no blanks (a crude but sufficient reading)."""
    lines = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(stripped)
    return lines


def first_index(lines: list[str], pattern: str) -> int:
    """Index of the first line matching ``pattern`` (a regex); fails if none does."""
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no line matches {pattern!r}")
