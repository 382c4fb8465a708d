"""Shared fixtures: one local Ray instance for the whole session, temp storage.

Ray starts once (about 2.5 s) with a small CPU count; tests that need it request
the ``ray_session`` fixture. Workers get the repository root on PYTHONPATH so
objectives defined in test modules import on them like user code would with a
``working_dir``.

Tests never wait a fixed time for something to happen elsewhere (a worker, a
child process, the driver): they wait for the event itself with
:func:`wait_until`, whose deadline only bounds a hang, so a loaded machine makes
them slower, not red.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Logical CPUs of the shared test Ray instance (more than cores, tasks are tiny).
RAY_TEST_CPUS = 4
#: How long :func:`wait_until` waits by default (a bound on a hang, not a margin).
WAIT_S = 120.0


def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S, poll_s: float = 0.02
) -> None:
    """Poll ``condition`` until it is true; fail the test naming ``what`` after ``timeout_s``.

    ``condition`` may itself fail the test early (a child process that died, say).
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s:g} s for {what}")
        time.sleep(poll_s)


def run_python(
    code: str, *, cwd: Path = REPO_ROOT, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with the repository importable, as a user's
    script would run: its own local Ray (``RAY_ADDRESS`` removed), ``env`` added."""
    environ = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def process_ended(pid: int) -> bool:
    """Whether process ``pid`` is gone (or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Start (once) and share a local Ray instance; shut it down at session end."""
    import ray

    started = False
    if not ray.is_initialized():
        pythonpath = os.pathsep.join(
            p
            for p in (str(REPO_ROOT), str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", ""))
            if p
        )
        ray.init(
            address="local",  # always a private instance: never RAY_ADDRESS or another run's
            num_cpus=RAY_TEST_CPUS,
            num_gpus=1,  # a declared (not physical) GPU: fractional-GPU scheduling is testable
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "RAYSWEEP_TEST_ENV": "from-job"}},
        )
        started = True
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A fresh folder to hold experiments."""
    path = tmp_path / "runs"
    path.mkdir()
    return path
