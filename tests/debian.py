"""Installing the Debian packages a test package needs (Slurm, chromium), once.

The test set-up installs what it runs against, so a clean machine runs every
test; it skips, saying why, only where it cannot install (no apt-get, not root).
Two test runs at once (a busy machine) would race for dpkg's lock: apt waits for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

__all__ = ["apt_install", "missing"]

#: How long apt waits for another apt to let go of dpkg's lock.
LOCK_WAIT_S = 600


def missing(commands: Sequence[str]) -> list[str]:
    """The ``commands`` not on PATH."""
    return [c for c in commands if shutil.which(c) is None]


def apt_install(what: str, packages: Sequence[str], commands: Sequence[str]) -> str | None:
    """Install ``packages`` with apt-get unless every one of ``commands`` is on PATH.

    Returns ``None`` once the commands are there, or why they are not (to skip with).
    """
    absent = missing(commands)
    if not absent:
        return None
    if shutil.which("apt-get") is None:
        return f"{what} is not installed ({', '.join(absent)} missing) and there is no apt-get"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{what} is not installed ({', '.join(absent)} missing) and installing needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = f"DPkg::Lock::Timeout={LOCK_WAIT_S}"
    for step, args in (
        ("apt-get update", ["apt-get", "-o", lock, "update"]),
        (
            "apt-get install",
            ["apt-get", "-o", lock, "install", "-y", "--no-install-recommends", *packages],
        ),
    ):
        done = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"cannot install {what}: {step} failed: {last}"
    absent = missing(commands)
    return f"{what} installed, but {', '.join(absent)} still missing" if absent else None
