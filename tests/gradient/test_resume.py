"""A gradient run killed with SIGKILL resumes from its last stored step."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optax
import pytest

from raysweep.gradient import RayOptimizer
from raysweep.store import SQLiteStore
from tests.conftest import REPO_ROOT, process_ended, wait_until
from tests.gradient.helpers import STALL_AFTER, TARGET, EchoSim, make_units

pytestmark = [pytest.mark.ray, pytest.mark.slow]

N_STEPS = 30
LR = 0.1


def _pids_using(path: str) -> list[int]:
    """Processes whose command line or open files mention ``path`` (our Ray's temp dir)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                if path.encode() in fh.read():
                    found.append(int(entry.name))
                    continue
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path).startswith(path):
                    found.append(int(entry.name))
                    break
        except OSError:  # gone, or not ours to read
            continue
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def _terminate(path: str) -> None:
    """SIGTERM, then SIGKILL what is left, exactly the processes of the Ray started
    under ``path``; return once they have all ended."""
    pids = _pids_using(path)
    _signal(pids, signal.SIGTERM)
    grace = time.monotonic() + 2.0  # for a clean exit; its agents ignore SIGTERM
    while not all(map(process_ended, pids)) and time.monotonic() < grace:
        time.sleep(0.05)
    pids = sorted(set(pids) | set(_pids_using(path)))
    _signal(pids, signal.SIGKILL)
    wait_until(lambda: all(map(process_ended, pids)), f"the child's Ray processes {pids} to end")


@pytest.fixture
def ray_temp_dir() -> Iterator[str]:
    """A short private temp dir for the child's Ray (socket paths must stay short)."""
    path = tempfile.mkdtemp(prefix="rsw")
    yield path
    _terminate(path)
    shutil.rmtree(path, ignore_errors=True)


def _stored_steps(directory: Path) -> int:
    if not SQLiteStore.exists(directory):
        return 0
    store = SQLiteStore.open(directory, readonly=True)
    try:
        return len(store.steps())
    except sqlite3.OperationalError:  # created but its tables not yet: nothing stored
        return 0
    finally:
        store.close()


def test_resume_after_sigkill_continues_from_the_stored_step(
    ray_session: None, storage: Path, ray_temp_dir: str
) -> None:
    """After SIGKILL mid-run, resume=True continues at the step after the last stored one."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.gradient.helpers", str(storage), ray_temp_dir, str(N_STEPS)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def two_steps_stored() -> bool:
        if child.poll() is not None:
            stderr = child.stderr.read().decode() if child.stderr else ""
            pytest.fail(f"the child exited ({child.returncode}) before the kill:\n{stderr}")
        return _stored_steps(storage / "crash") >= 2

    try:
        # Its simulators stall after STALL_AFTER runs, so the child cannot finish first.
        wait_until(two_steps_stored, "the child to store 2 steps")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        _terminate(ray_temp_dir)
    store = SQLiteStore.open(storage / "crash", readonly=True)
    stored = store.steps()
    assert 2 <= len(stored) <= STALL_AFTER < N_STEPS
    assert store.get_meta("status") == "running"  # killed: nobody wrote an end
    last = stored[-1].step

    sims, objs = make_units(2, EchoSim, name="slow")
    opt = RayOptimizer(sims, objs, optax.sgd(LR), name="crash", storage=storage, resume=True)
    out = opt.run({"a": np.asarray(0.0, dtype=np.float32)}, n_steps=N_STEPS)

    steps = SQLiteStore.open(storage / "crash", readonly=True).steps()
    assert [s.step for s in steps] == list(range(N_STEPS))
    assert [s.data for s in steps[: last + 1]] == [s.data for s in stored]
    # SGD on (a - 3)^2 from 0: a_k = 3 (1 - 0.8^k); continuous across the crash.
    expected = TARGET * (1 - (1 - 2 * LR) ** np.arange(N_STEPS + 1))
    np.testing.assert_allclose([s.data["params"]["a"] for s in steps], expected[:-1], atol=1e-5)
    np.testing.assert_allclose(float(out.params["a"]), expected[-1], atol=1e-5)
    resumed = store.events("resumed")
    assert [e["data"]["step"] for e in resumed] == [last + 1]
    assert store.get_meta("status") == "completed"
