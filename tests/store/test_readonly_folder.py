"""Someone else's experiment: status and export read a folder this user may not write.

Tests run as root here, and root writes anywhere, so the reader runs in a
subprocess that drops to the user ``nobody`` (after importing what it needs,
since the interpreter itself may live where ``nobody`` cannot read). Without
root, the folder is made read-only with chmod instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raysweep.store import ExperimentStore, NewTrial, TrialUpdate, locate
from raysweep.trial import TrialState
from tests.conftest import REPO_ROOT
from tests.store.helpers import FIXTURES, fingerprint

NOBODY = 65534

_READER = """
import json, os, sys
import click.testing
import raysweep.cli
from raysweep.errors import RaysweepError
from raysweep.store import locate

storage, name, warmup = sys.argv[1:4]
runner = click.testing.CliRunner()
commands = [["status"], ["export", "--format", "json"], ["export", "--format", "csv"]]
for args in commands:  # as root: load every module the commands import lazily
    runner.invoke(raysweep.cli.cli, [args[0], warmup, *args[1:]])
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid({uid})
    os.setuid({uid})
folder = os.path.join(storage, name)
out = {{}}
for args in commands:
    result = runner.invoke(raysweep.cli.cli, [args[0], folder, *args[1:]])
    out[" ".join(args)] = [result.exit_code, result.stdout, result.stderr]
for what, call in (
    ("open for writing", lambda: locate(storage, name).open().close()),
    ("check_writable", lambda: locate(storage, name).check_writable()),
):
    try:
        call()
        out[what] = "ok"
    except RaysweepError as exc:
        out[what] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(out))
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A storage folder others may read (under /tmp, since pytest's own is private)."""
    base = Path(tempfile.mkdtemp(prefix="raysweep-shared-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(base)


def _lock(folder: Path) -> None:
    """Make ``folder`` readable but not writable for the reader."""
    if os.geteuid() == 0:
        return  # the reader drops to nobody, who may read but not write root's 755/644
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(folder, os.W_OK):
        pytest.skip("chmod does not keep this user from writing (not root, but privileged)")


def _read_as_other_user(storage: Path, name: str, warmup: Path) -> dict[str, Any]:
    script = textwrap.dedent(_READER.format(uid=NOBODY))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(storage), name, str(warmup)],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def _sweep(storage: Path, name: str) -> ExperimentStore:
    store = locate(storage, name).create(
        {"kind": "sweep", "name": name, "metric": "loss", "mode": "min", "num_trials": 4}
    )
    store.commit(
        new=[NewTrial(i, {"x": float(i)}, TrialState.RUNNING, 1.0) for i in range(3)],
        updates=[
            TrialUpdate(i, state=TrialState.COMPLETED, metrics={"loss": float(i)}) for i in range(3)
        ],
        meta={"status": "completed"},
    )
    return store


_CRASH = """
import os, sys
from raysweep.store import NewTrial, locate
from raysweep.trial import TrialState
store = locate(sys.argv[1], sys.argv[2]).open()
store.commit(new=[NewTrial(3, {"x": 3.0}, TrialState.RUNNING, 1.0)])
os._exit(0)  # a killed driver: its -wal and -shm stay behind
"""


def _setup(case: str, storage: Path) -> ExperimentStore | None:
    """Build experiment ``exp`` for ``case``; returns a writer still holding it open."""
    if case == "v1 store":
        (storage / "exp").mkdir(parents=True)
        shutil.copyfile(FIXTURES / "v1-sweep.db", storage / "exp" / "experiment.db")
        return None
    store = _sweep(storage, "exp")
    if case == "live writer":
        return store  # its last commit is in the -wal, not yet in the database
    store.close()
    if case in ("crashed writer", "log without index"):
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_CRASH), str(storage), "exp"], check=True
        )
        assert (storage / "exp" / "experiment.db-wal").exists()
    if case == "log without index":
        # Copied without its -shm: SQLite would have to create one, which this
        # user may not, so the reader reads a private copy of the database and log.
        (storage / "exp" / "experiment.db-shm").unlink()
    return None


@pytest.mark.parametrize(
    "case", ["finished", "live writer", "crashed writer", "log without index", "v1 store"]
)
def test_reading_a_folder_this_user_may_not_write(shared: Path, case: str) -> None:
    """status and export read it, nothing in it changes, and writing is refused in one line."""
    storage = shared / "runs"
    storage.mkdir(mode=0o755)
    writer = _setup(case, storage)
    _sweep(shared / "warmup", "w").close()
    folder = storage / "exp"
    _lock(folder)
    before = fingerprint(folder)
    try:
        out = _read_as_other_user(storage, "exp", shared / "warmup" / "w")
        assert fingerprint(folder) == before
    finally:
        if writer is not None:
            writer.commit(meta={"status": "completed"})  # the writer goes on unharmed
            writer.close()
    code, text, err = out["status"]
    assert (code, err) == (0, ""), err
    assert "3 completed" in text
    code, text, err = out["export --format json"]
    assert (code, err) == (0, ""), err
    trials = json.loads(text)["trials"]
    expected = {"v1 store": 6, "crashed writer": 4, "log without index": 4}.get(case, 3)
    assert len(trials) == expected
    code, text, err = out["export --format csv"]
    assert (code, err) == (0, ""), err
    assert text.startswith("trial_id,")
    if os.geteuid() == 0:
        assert out["open for writing"].startswith("StoreError: cannot open")
        assert "status and export can still read it" in out["open for writing"]
        assert out["check_writable"].startswith("SpecError: storage: this user may not write")
