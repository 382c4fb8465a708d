"""A trial's own folder: checkpoints, files it writes, its captured output.

``<experiment folder>/trials/<trial id>/`` is created only when a trial uses it
(a checkpoint, :func:`raysweep.trial_dir`, captured output), so a sweep of
thousands of trials that use none of it leaves no file per trial. Inside:

``checkpoints/ckpt-000007/``
    one checkpoint: ``meta.json`` and either ``object.pkl`` (an object given to
    :func:`raysweep.save_checkpoint`) or ``files/`` (a copy of a folder given to
    it). It is written under a ``.tmp-*`` name and renamed into place, so a
    checkpoint either exists whole or not at all, whatever kills the worker;
    ``meta.json`` is written last inside it. The newest ``keep`` are kept.
``files/``
    what :func:`raysweep.trial_dir` hands the trial, for its own outputs.
``output.log``
    the trial's stdout and stderr, when ``log_output`` asks for it (capped).

Pure Python (no Ray): the worker, the simulated backend and the runner (which
copies a checkpoint from one trial to another for population-based training)
share it.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from raysweep.errors import RaysweepError

__all__ = ["DEFAULT_KEEP", "TrialFiles", "is_folder", "trials_root"]

#: Checkpoints kept per trial unless ``keep_checkpoints`` says otherwise.
DEFAULT_KEEP = 2
_PREFIX = "ckpt-"


def is_folder(value: Any) -> bool:
    """Whether ``save_checkpoint(value)`` copies a folder (a path object, or a string
    naming an existing folder) rather than pickling ``value``."""
    return isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isdir(value))


def trials_root(experiment_dir: Path | str) -> Path:
    """The folder holding every trial's folder."""
    return Path(experiment_dir) / "trials"


class TrialFiles:
    """The folder of one trial; nothing is created until something is written.

    Args:
        root: the experiment's ``trials`` folder (:func:`trials_root`).
        trial_id: whose folder.
        keep: checkpoints kept (the newest); at least 1.
    """

    def __init__(self, root: Path | str, trial_id: int, keep: int = DEFAULT_KEEP) -> None:
        self.path = Path(root) / str(trial_id)
        self.trial_id = trial_id
        self.keep = max(1, int(keep))

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def files_dir(self) -> Path:
        """``files/``, created now: where the trial writes its own outputs."""
        folder = self.path / "files"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- checkpoints -----------------------------------------------------------------
    def saved(self) -> list[Path]:
        """Complete checkpoints, oldest first (half-written ones are never listed)."""
        if not self.checkpoints.is_dir():
            return []
        found = [
            p
            for p in self.checkpoints.iterdir()
            if p.name.startswith(_PREFIX) and (p / "meta.json").is_file()
        ]
        return sorted(found, key=lambda p: p.name)

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or ``None``."""
        saved = self.saved()
        return saved[-1] if saved else None

    def save(self, value: Any, *, step: int | None = None) -> Path:
        """Store ``value`` (any picklable object, or a folder path to copy) as the
        newest checkpoint, atomically; drop all but the newest ``keep``.

        Raises:
            RaysweepError: ``value`` cannot be pickled (naming its type), or the
                folder given does not exist.
        """
        tmp = self._tmp()
        tmp.mkdir()
        try:
            kind = self._write(tmp, value)
            meta = {"kind": kind, "step": step, "time": time.time()}
            _write_synced(tmp / "meta.json", json.dumps(meta).encode())
            return self._place(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _tmp(self) -> Path:
        """A fresh name for a checkpoint being written (never listed by :meth:`saved`)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self.checkpoints / f".tmp-{uuid.uuid4().hex}"

    def _place(self, tmp: Path) -> Path:
        """Rename the complete checkpoint folder ``tmp`` into place as the newest, and
        drop all but the newest ``keep``."""
        latest = self.latest()
        number = int(latest.name[len(_PREFIX) :]) + 1 if latest is not None else 0
        final = self.checkpoints / f"{_PREFIX}{number:06d}"
        os.replace(tmp, final)
        for old in self.saved()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def _write(folder: Path, value: Any) -> str:
        if is_folder(value):
            source = Path(value)
            if not source.is_dir():
                raise RaysweepError(
                    f"save_checkpoint({str(source)!r}): a path must be an existing folder; "
                    f"to store an object, pass the object itself"
                )
            shutil.copytree(source, folder / "files")
            return "dir"
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise RaysweepError(
                f"save_checkpoint: a {type(value).__name__} cannot be pickled ({exc}); store "
                f"plain data (dicts, arrays, state_dict()s) or write files to a folder and "
                f"pass its path"
            ) from None
        _write_synced(folder / "object.pkl", data)
        return "object"

    def load(self) -> Any:
        """The newest checkpoint: the object saved, or the path of the saved folder's
        copy; ``None`` when there is none."""
        latest = self.latest()
        if latest is None:
            return None
        meta = json.loads((latest / "meta.json").read_text())
        if meta.get("kind") == "dir":
            return latest / "files"
        with open(latest / "object.pkl", "rb") as handle:
            return pickle.load(handle)

    def copy_latest_from(self, donor: TrialFiles) -> Path | None:
        """Make ``donor``'s newest checkpoint this trial's newest (population-based
        training's exploit); ``None`` when the donor has none."""
        source = donor.latest()
        if source is None:
            return None
        tmp = self._tmp()
        try:
            shutil.copytree(source, tmp)
            return self._place(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
