"""``raysweep slurm CONFIG --nodes N``: the batch script for a sweep (or a Python
script such as a gradient fit), and its submission.

Errors follow the CLI's policy: a bad option or sweep file, or no ``sbatch`` to
submit with, is one line and exit 2, with nothing queued; ``sbatch`` refusing
the script is exit 1 with sbatch's reason.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from raysweep.errors import RaysweepError, SpecError

__all__ = ["slurm_command"]

_EXIT_INPUT = 2
_EXIT_FAILED = 1


class _Failed(click.ClickException):
    """One line and an exit code: printed the same by the ``raysweep`` group and by
    this command run on its own."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


@click.command("slurm")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- SCRIPT_ARGS...]")
@click.option(
    "-N",
    "--nodes",
    type=int,
    default=1,
    show_default=True,
    help="Slurm nodes; one Ray node on each (the first is the head).",
)
@click.option(
    "--gpus-per-node",
    metavar="G|TYPE:G",
    help="GPUs per node (--gpus-per-node); each Ray node offers them.",
)
@click.option(
    "--cpus-per-node",
    type=int,
    metavar="C",
    help="CPUs per node (--cpus-per-task); default: whole nodes (--exclusive).",
)
@click.option("-t", "--time", metavar="T", help="Time limit: MINUTES, HH:MM:SS, D-HH:MM:SS ...")
@click.option("-p", "--partition", help="Slurm partition.")
@click.option("-A", "--account", help="Slurm account to charge.")
@click.option("--mem", metavar="M", help="Memory per node, e.g. 64G (--mem).")
@click.option(
    "--setup",
    multiple=True,
    metavar="LINE",
    help="A shell line run first in the job, e.g. 'module load cuda'; repeatable.",
)
@click.option(
    "--requeue",
    is_flag=True,
    help="Let Slurm requeue the job after preemption or a node failure; it resumes.",
)
@click.option("-J", "--job-name", help="Job name (default: raysweep-<experiment name>).")
@click.option(
    "--storage",
    help="Folder for the experiment, overriding the file's "
    "(relative to the current directory); on a shared filesystem.",
)
@click.option(
    "--python",
    "python",
    metavar="PATH",
    help="Python that runs Ray and raysweep in the job (default: this one; 'python': "
    "the one --setup puts on PATH).",
)
@click.option(
    "--sbatch",
    "sbatch_options",
    multiple=True,
    metavar="OPTION",
    help="One more #SBATCH option, e.g. --sbatch=--qos=high; repeatable.",
)
@click.option(
    "--ready-timeout",
    type=float,
    metavar="SECONDS",
    help="How long the Ray cluster may take to come up in the job (default 300).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write the script (default: <config>.slurm.sh next to CONFIG).",
)
@click.option("--dry-run", is_flag=True, help="Print the script instead of writing it.")
@click.option("--submit", is_flag=True, help="Submit it with sbatch and print the job id.")
def slurm_command(
    config: Path,
    script_args: tuple[str, ...],
    nodes: int,
    gpus_per_node: str | None,
    cpus_per_node: int | None,
    time: str | None,
    partition: str | None,
    account: str | None,
    mem: str | None,
    setup: tuple[str, ...],
    requeue: bool,
    job_name: str | None,
    storage: str | None,
    python: str | None,
    sbatch_options: tuple[str, ...],
    ready_timeout: float | None,
    output: Path | None,
    dry_run: bool,
    submit: bool,
) -> None:
    """Write a Slurm batch script that runs the sweep in CONFIG on a Ray cluster
    across the job's nodes; print its path (or, with --submit, the job id).

    \b
    The job starts Ray on every node, waits until all are up, and runs
    `raysweep run CONFIG` there. Submitting the script again continues the
    experiment (after a cancel, the time limit, a failure).

    \b
    CONFIG may also be a Python script (a gradient fit with RayOptimizer, or
    any Ray program): the job runs `python CONFIG SCRIPT_ARGS...` with
    RAY_ADDRESS set to the job's cluster, e.g.
      raysweep slurm fit.py -N 4 --submit -- --steps 500
    """
    import raysweep.slurm as slurm

    if dry_run and submit:
        raise _Failed(
            "--dry-run prints the script and writes nothing; --submit submits it: give one of them",
            _EXIT_INPUT,
        )
    try:
        text = slurm.render(
            config,
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            cpus_per_node=cpus_per_node,
            time=time,
            partition=partition,
            account=account,
            mem=mem,
            setup=list(setup),
            requeue=requeue,
            job_name=job_name,
            storage=storage,
            sbatch_options=list(sbatch_options),
            python=python or sys.executable,
            ready_timeout_s=slurm.READY_TIMEOUT_S if ready_timeout is None else ready_timeout,
            script_args=list(script_args),
        )
    except SpecError as exc:
        raise _Failed(str(exc), _EXIT_INPUT) from None
    if dry_run:
        click.echo(text, nl=False)
        return
    path = output if output is not None else slurm.default_script_path(config)
    try:
        slurm.write_script(text, path)
    except OSError as exc:
        raise _Failed(f"cannot write {path}: {exc.strerror or exc}", _EXIT_FAILED) from None
    if not submit:
        click.echo(str(path))
        click.echo(f"submit it with: sbatch {path}", err=True)
        return
    if shutil.which("sbatch") is None:
        raise _Failed(
            f"sbatch was not found on PATH, so nothing was submitted; the script is in "
            f"{path}: submit it from the cluster with `sbatch {path}`",
            _EXIT_INPUT,
        )
    try:
        job_id = slurm.submit(path)
    except SpecError as exc:
        raise _Failed(str(exc), _EXIT_INPUT) from None
    except RaysweepError as exc:
        raise _Failed(str(exc), _EXIT_FAILED) from None
    click.echo(f"submitted {path} as job {job_id}", err=True)
    click.echo(job_id)
