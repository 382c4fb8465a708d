"""Writing a batch script to disk and handing it to ``sbatch``."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from raysweep.errors import RaysweepError, SpecError

__all__ = ["SlurmError", "prepare_log_folder", "submit", "write_script"]

_OUTPUT = re.compile(r"^#SBATCH\s+(?:--output=|-o\s*)(.+?)\s*$", re.MULTILINE)


class SlurmError(RaysweepError):
    """Raised by :func:`submit` when ``sbatch`` is not installed or refuses the
    script (an unknown partition, the controller unreachable); the message is
    one line with sbatch's own reason. Nothing was queued."""


def prepare_log_folder(text: str, cwd: Path | None = None) -> Path | None:
    """Create the folder of the script's ``#SBATCH --output`` log; return it.

    Slurm opens the log before the script runs, and a job whose log folder is
    missing fails without a word; the folder is the storage folder, which
    ``raysweep run`` would create only later, inside the job.
    """
    match = _OUTPUT.search(text)
    if match is None:
        return None
    try:
        words = shlex.split(match.group(1))
    except ValueError:
        return None
    if not words:
        return None
    log = Path(words[0].replace("%%", "%"))
    folder = (cwd or Path.cwd()) / log.parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_script(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` to ``path`` (executable), and create its log folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(0o755)
    prepare_log_folder(text)
    return target


def submit(script_path: str | os.PathLike[str], *, sbatch: str = "sbatch") -> str:
    """Queue a batch script with ``sbatch --parsable``; return the job id.

    Its log folder is created first (see :func:`prepare_log_folder`). Submitting
    the same script again after the job ended continues the experiment.

    Args:
        script_path: a script from :func:`raysweep.slurm.render`, or any batch script.
        sbatch: the ``sbatch`` command to run.

    Raises:
        SpecError: the script does not exist.
        SlurmError: ``sbatch`` is not on ``PATH``, or it refused the script.

    Example:
        >>> job_id = submit("runs/demo.slurm.sh")  # doctest: +SKIP
        >>> job_id  # doctest: +SKIP
        '4242'
    """
    path = Path(script_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such batch script") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the batch script: {exc}") from None
    command = shutil.which(sbatch)
    if command is None:
        raise SlurmError(
            f"{sbatch!r} was not found on PATH: submit from a machine of the Slurm "
            f"cluster (a login node), e.g. `sbatch {path}`"
        )
    prepare_log_folder(text)
    done = subprocess.run(
        [command, "--parsable", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    if done.returncode != 0:
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise SlurmError(f"sbatch refused {path}: {reason}")
    # --parsable prints "jobid" or "jobid;cluster".
    job_id = done.stdout.strip().split(";", 1)[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id for {path}: {done.stdout.strip()!r}")
    return job_id
