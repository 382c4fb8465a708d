"""The store on a shared filesystem: one writer host, readers on other hosts.

A reader on another host must not use the writer's WAL index (shared memory
that a network filesystem does not keep coherent between hosts): it reads the
snapshot the writer publishes. "Another host" is a process with its own host
name (``RAYSWEEP_HOSTNAME`` in-process; a UTS + network + mount namespace with a
read-only bind mount of the folder for the real thing).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raysweep.errors import ExperimentExistsError
from raysweep.store import NewTrial, SQLiteStore
from raysweep.store import _shared as shared
from raysweep.trial import TrialState
from tests.conftest import REPO_ROOT


def _trials(n: int, start: int = 0) -> list[NewTrial]:
    return [
        NewTrial(i, {"x": i / 10}, TrialState.COMPLETED, created_at=float(i))
        for i in range(start, start + n)
    ]


def _publish_now(store: SQLiteStore) -> None:
    """Make the next commit publish (instead of waiting SNAPSHOT_S)."""
    assert store._publisher is not None
    store._publisher._next = 0.0


def test_a_writer_records_its_host_publishes_and_cleans_up(tmp_path: Path) -> None:
    store = SQLiteStore.create(tmp_path / "e", {"name": "e"})
    writer = json.loads((tmp_path / "e" / shared.WRITER_NAME).read_text())
    assert writer["host"] == shared.this_host()
    assert writer["pid"] == os.getpid()
    store.commit(_trials(3))
    assert (tmp_path / "e" / shared.SNAPSHOT_NAME).is_file()  # the first commit publishes
    store.close()
    # Closed: the database holds everything; no snapshot, no writer record remain.
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["experiment.db"]


def test_a_reader_on_another_host_reads_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SQLiteStore.create(tmp_path / "e", {"name": "e"})
    writer.commit(_trials(3))
    monkeypatch.setenv("RAYSWEEP_HOSTNAME", "login-node")
    reader = SQLiteStore.open(tmp_path / "e", readonly=True)
    assert reader.source == "snapshot"
    assert len(reader.trials()) == 3
    writer.commit(_trials(2, start=3))  # within SNAPSHOT_S: not published yet
    assert len(reader.trials()) == 3
    _publish_now(writer)
    writer.commit(_trials(1, start=5))
    assert len(reader.trials()) == 6  # a new snapshot: the reader reconnected
    writer.close()
    assert len(reader.trials()) == 6
    assert reader.source == "file"  # no writer any more: the database itself
    reader.close()


def test_a_reader_on_the_writers_host_reads_the_live_file(tmp_path: Path) -> None:
    writer = SQLiteStore.create(tmp_path / "e", {"name": "e"})
    writer.commit(_trials(2))
    reader = SQLiteStore.open(tmp_path / "e", readonly=True)
    assert reader.source == "live"
    writer.commit(_trials(1, start=2))
    assert len(reader.trials()) == 3  # no snapshot delay on the same host
    reader.close()
    writer.close()


def test_creating_a_store_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    SQLiteStore.create(tmp_path / "e", {"name": "e"}).close()
    with pytest.raises(ExperimentExistsError):
        SQLiteStore.create(tmp_path / "e", {"name": "again"})
    assert SQLiteStore.open(tmp_path / "e", readonly=True).read_spec() == {"name": "e"}
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["experiment.db"]


_WRITER = """
import sys, time
from pathlib import Path
from raysweep.store import NewTrial, SQLiteStore
from raysweep.trial import TrialState
folder, gate = Path(sys.argv[1]), Path(sys.argv[2])
store = SQLiteStore.create(folder, {"name": "shared"})
store.commit([NewTrial(i, {"x": i}, TrialState.COMPLETED, created_at=1.0) for i in range(4)])
(gate / "written").touch()
while not (gate / "done").exists():
    time.sleep(0.02)
store.commit([NewTrial(4, {"x": 4}, TrialState.RUNNING, created_at=2.0)])
store.close()
"""

_READER = """
import json, sys
from raysweep.store import SQLiteStore
store = SQLiteStore.open(sys.argv[1], readonly=True)
print(json.dumps({"source": store.source, "trials": len(store.trials())}))
"""


def _namespaces_work() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "--uts", "--mount", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return f"this machine does not allow new namespaces: {probe.stderr.decode().strip()}"
    return None


@pytest.mark.cluster
def test_status_from_another_host_while_a_run_writes(tmp_path: Path) -> None:
    """A reader in its own network, UTS and mount namespace, with the experiment
    folder bind-mounted read-only, reads the snapshot while the writer holds the
    database open, and writes nothing."""
    why = _namespaces_work()
    if why is not None:
        pytest.skip(why)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])}
    folder, gate = tmp_path / "shared", tmp_path / "gate"
    gate.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder), str(gate)], env=env, stderr=subprocess.PIPE
    )
    try:
        from tests.conftest import wait_until

        def written() -> bool:
            if writer.poll() is not None:
                pytest.fail(f"the writer exited: {writer.stderr.read().decode()}")  # type: ignore[union-attr]
            return (gate / "written").exists()

        wait_until(written, "the writer to commit")
        before = sorted(p.name for p in folder.iterdir())
        mount = tmp_path / "login-view"
        mount.mkdir()
        script = (
            f"hostname login-node && mount --bind {folder} {mount} && "
            f"mount -o remount,bind,ro {mount} && "
            f"{sys.executable} -c '{_READER}' {mount}"
        )
        proc = subprocess.run(
            ["unshare", "--net", "--uts", "--mount", "bash", "-c", script],
            env={k: v for k, v in env.items() if k != "RAYSWEEP_HOSTNAME"},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        assert seen == {"source": "snapshot", "trials": 4}
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
        (gate / "done").touch()
        assert writer.wait(timeout=120) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    reread = SQLiteStore.open(folder, readonly=True)
    assert (reread.source, len(reread.trials())) == ("file", 5)
    reread.close()
