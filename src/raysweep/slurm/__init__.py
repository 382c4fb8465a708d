"""Running a sweep or a gradient fit on a Slurm cluster: one batch job, one Ray
cluster, one driver.

:func:`render` writes the batch script: it starts a Ray head on the job's first
node and a Ray worker on each other node, waits until all are alive, and runs
the driver there: ``raysweep run CONFIG --address HEAD`` for a sweep file
(resuming when the experiment exists), or ``python SCRIPT`` with
``RAY_ADDRESS=HEAD`` for a Python script (a gradient fit with ``RayOptimizer``,
or any Ray program). :func:`submit` queues a script with ``sbatch``. The
``raysweep slurm`` command does both.

Everything that can be checked on the login node is checked by :func:`render`,
before the job waits in the queue: the sweep file (through the same loader as
``raysweep run``, so a typo fails now, not when the job starts) or the script
(it must compile), and every job option, with one line naming it.

Example:
    >>> from raysweep.slurm import render, submit
    >>> text = render("sweep.yaml", nodes=4, gpus_per_node=2, time="12:00:00")  # doctest: +SKIP
    >>> _ = Path("sweep.slurm.sh").write_text(text)  # doctest: +SKIP
    >>> submit("sweep.slurm.sh")  # doctest: +SKIP
    '4242'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from raysweep.errors import SpecError
from raysweep.slurm._options import JobOptions
from raysweep.slurm._script import LOG_NAME, ScriptDriver, SweepDriver, script_text
from raysweep.slurm._submit import SlurmError, prepare_log_folder, submit, write_script

__all__ = [
    "SlurmError",
    "default_script_path",
    "prepare_log_folder",
    "render",
    "submit",
    "write_script",
]

#: Seconds the Ray cluster may take to come up inside the job, by default.
READY_TIMEOUT_S = 300.0


def render(
    config_path: str | os.PathLike[str],
    *,
    nodes: int = 1,
    gpus_per_node: int | str | None = None,
    cpus_per_node: int | None = None,
    time: str | int | None = None,
    partition: str | None = None,
    account: str | None = None,
    mem: str | int | None = None,
    setup: str | Sequence[str] | None = None,
    requeue: bool = False,
    job_name: str | None = None,
    storage: str | os.PathLike[str] | None = None,
    python: str = sys.executable,
    sbatch_options: Sequence[str] = (),
    ready_timeout_s: float = READY_TIMEOUT_S,
    script_args: Sequence[str] = (),
) -> str:
    """The batch script that runs the sweep in ``config_path`` on ``nodes`` nodes,
    or the Python script ``config_path`` when it ends in ``.py``.

    The sweep file is loaded and checked as ``raysweep run`` would (its objective
    imported), so the script is only written for a sweep that would start.
    A Python script must compile; it runs in the folder the job is submitted
    from, with ``RAY_ADDRESS`` naming the job's Ray cluster, and its log is
    ``<script's folder>/<stem>.slurm-<job id>.log``. To continue after a cancel
    or a requeue it must resume its run: ``RayOptimizer(..., storage=...,
    resume="auto")`` with the storage on a shared filesystem.
    The experiment is ``<storage>/<name>`` as the file says (relative paths
    against the file's folder), or under ``storage`` when given (relative to the
    current directory, like ``raysweep run --storage``); it must be on a
    filesystem every node sees. The job's log is ``<storage>/<name>.slurm-<job
    id>.log``: create ``<storage>`` before an ``sbatch`` of your own
    (:func:`submit` and :func:`write_script` do).

    Args:
        config_path: the sweep YAML, or a Python script (``.py``).
        nodes: Slurm nodes, one Ray node on each; the first is the head and runs
            the driver too.
        gpus_per_node: GPUs per node, a count or ``TYPE:COUNT`` (``--gpus-per-node``);
            each Ray node offers that many.
        cpus_per_node: CPUs per node (``--cpus-per-task``); without it the job
            takes whole nodes (``--exclusive``) and Ray offers all their CPUs.
        time: the time limit in any of sbatch's forms (``"2:00:00"``,
            ``"1-00:00:00"``), or minutes.
        partition: ``--partition``.
        account: ``--account``.
        mem: memory per node, ``"64G"`` or megabytes (``--mem``).
        setup: shell lines run first on the head (``module load ...``, ``source
            venv/bin/activate``); srun passes the environment they make to the
            other nodes.
        requeue: ``--requeue``: after preemption or a node failure Slurm queues
            the job again, and the new run resumes the experiment.
        job_name: ``--job-name`` (default ``raysweep-<name>``).
        storage: overrides the sweep file's ``storage`` (sweep files only: a
            script names its own).
        python: the interpreter that runs Ray and raysweep in the job (by
            default this one; it must exist on the nodes). ``"python"`` takes
            the one on ``PATH`` after the setup lines (an activated venv).
        sbatch_options: more ``#SBATCH`` options, e.g. ``["--qos=high"]``; those
            the script sets itself are refused.
        ready_timeout_s: how long the Ray cluster may take to come up before
            the job fails, saying how many nodes were alive.
        script_args: the Python script's command-line arguments.

    Raises:
        SpecError: a bad option or a bad sweep file, in one line naming it.

    Example:
        >>> print(render("examples/demo/sweep.yaml", nodes=2))  # doctest: +SKIP
        #!/bin/bash
        ...
    """
    options = JobOptions.build(
        nodes=nodes,
        cpus_per_node=cpus_per_node,
        gpus_per_node=gpus_per_node,
        time=time,
        partition=partition,
        account=account,
        mem=mem,
        requeue=requeue,
        job_name=job_name,
        setup=setup,
        sbatch_options=sbatch_options,
        python=python,
        ready_timeout_s=ready_timeout_s,
    )
    target = Path(config_path)
    if "\n" in str(target.resolve()):
        raise SpecError(f"config: a path with a line break cannot go in a script: {str(target)!r}")
    if target.suffix == ".py":
        if storage is not None:
            raise SpecError(
                "storage: a Python script names its own storage (RayOptimizer(storage=...)); "
                "storage applies to sweep files only"
            )
        driver: SweepDriver | ScriptDriver = ScriptDriver(
            target.resolve(), _script_args(target, script_args)
        )
        folder, stem = str(target.resolve().parent), target.stem
    else:
        if script_args:
            raise SpecError(
                f"script_args: arguments go to a Python script (.py); the sweep file "
                f"{str(target)!r} takes none, got {list(script_args)!r}"
            )
        driver, stem = _sweep_driver(target, storage)
        folder = str(driver.store.parent)
    # Slurm reads "%" in --output as a pattern ("%j": the job id) and "%%" as "%", and
    # a backslash turns the patterns off; sbatch takes "..." around a path with blanks.
    if any(c in folder for c in '\\"\n'):
        raise SpecError(
            f"storage: Slurm's #SBATCH --output cannot name a folder holding a backslash, "
            f"a double quote or a line break, got {folder!r}"
        )
    log = folder.replace("%", "%%") + "/" + LOG_NAME.format(name=stem)
    return script_text(options, driver, log=log, job_name=options.job_name or f"raysweep-{stem}")


def _sweep_driver(config: Path, storage: str | os.PathLike[str] | None) -> tuple[SweepDriver, str]:
    """The sweep file, loaded and checked as ``raysweep run`` would, and its name."""
    from raysweep.sweep.sweepfile import load_sweep_file

    sweep = load_sweep_file(config)
    storage_flag = None
    if storage is not None:
        text = os.fspath(storage)
        storage_flag = text if "://" in text else str(Path(text).absolute())
        sweep = sweep.replace(storage=storage_flag)
    store = sweep.location.directory
    if store is None:
        raise SpecError(
            f"storage: a Slurm job needs its experiment in a folder on a shared filesystem, "
            f"got {str(sweep.storage)!r}"
        )
    return SweepDriver(config.resolve(), store.absolute(), storage_flag), sweep.name


def _script_args(script: Path, args: Sequence[str]) -> tuple[str, ...]:
    """Check that ``script`` is a Python file that compiles, and its arguments."""
    if isinstance(args, str) or not all(isinstance(a, str) and "\0" not in a for a in args):
        raise SpecError(
            f"script_args: expected a list of strings (the script's arguments), got {args!r}"
        )
    try:
        source = script.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"config: no such Python script: {str(script)!r}") from None
    except OSError as exc:
        raise SpecError(f"config: cannot read {str(script)!r}: {exc.strerror or exc}") from None
    try:
        compile(source, str(script), "exec")
    except SyntaxError as exc:
        raise SpecError(
            f"config: {str(script)!r} is not valid Python: {exc.msg} (line {exc.lineno})"
        ) from None
    except ValueError as exc:
        raise SpecError(f"config: {str(script)!r} is not valid Python: {exc}") from None
    return tuple(args)


def default_script_path(config_path: str | os.PathLike[str]) -> Path:
    """Where ``raysweep slurm`` writes the script by default: ``<config stem>.slurm.sh``
    next to the sweep file, so it sits beside what it runs."""
    config = Path(config_path)
    return config.with_name(f"{config.stem}.slurm.sh")
