"""Shared by the store tests: the v1 fixtures and fingerprints of a folder's files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def v1_experiment(tmp_path: Path, kind: str) -> Path:
    """A copy of the v1 fixture of ``kind`` ("sweep" or "gradient") as ``runs/v1-<kind>``."""
    folder = tmp_path / "runs" / f"v1-{kind}"
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURES / f"v1-{kind}.db", folder / "experiment.db")
    return folder


def fingerprint(folder: Path) -> dict[str, str]:
    """``{file name: sha256}`` of every file in ``folder`` (-wal and -shm included)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
