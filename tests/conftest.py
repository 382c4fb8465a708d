"""Shared fixtures: one local Ray instance for the whole session, temp storage.

Ray starts once (about 2.5 s) with a small CPU count; tests that need it request
the ``ray_session`` fixture. Workers get the repository root on PYTHONPATH so
objectives defined in test modules import on them like user code would with a
``working_dir``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Logical CPUs of the shared test Ray instance (more than cores, tasks are tiny).
RAY_TEST_CPUS = 4


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
