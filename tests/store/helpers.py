"""Shared by the store tests: the old-schema fixtures and fingerprints of a folder's files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def old_experiment(tmp_path: Path, name: str) -> Path:
    """A copy of the fixture ``<name>.db`` (e.g. "v2-sweep") as the experiment ``runs/<name>``."""
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / f"{name}.db", folder / "experiment.db")
    return folder


def v1_experiment(tmp_path: Path, kind: str) -> Path:
    """A copy of the v1 fixture of ``kind`` ("sweep" or "gradient") as ``runs/v1-<kind>``."""
    return old_experiment(tmp_path, f"v1-{kind}")


def fingerprint(folder: Path) -> dict[str, str]:
    """``{file name: sha256}`` of every file in ``folder`` (-wal and -shm included)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
