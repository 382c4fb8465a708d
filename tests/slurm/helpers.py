"""A small valid sweep folder, and a reader of the script's parts, for the Slurm tests."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

OBJECTIVE = """
def train(config):
    return (config["x"] - 1.0) ** 2
"""


def sweep_folder(folder: Path, **fields: Any) -> Path:
    """``objective.py`` and ``sweep.yaml`` (a valid sweep updated with ``fields``); the YAML."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(textwrap.dedent(OBJECTIVE))
    doc: dict[str, Any] = {
        "name": "demo",
        "objective": "objective:train",
        "num_trials": 3,
        "storage": "runs",
        "space": {"x": {"type": "uniform", "low": 0.0, "high": 2.0}},
    }
    doc.update(fields)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


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
