"""``raysweep submit``: run a sweep file on a Ray cluster as a job (see :mod:`raysweep.jobs`).

Exit codes follow the ``raysweep`` group's policy: 2 for a bad file, option or
storage (nothing was sent), 1 when the cluster cannot be reached, refuses the
job, or (``--follow``) the job does not succeed, 130 when interrupted while
following (the job goes on).
"""

from __future__ import annotations

import importlib
import logging
import shlex
from pathlib import Path

import click

__all__ = ["JobFailed", "submit_command"]


#: Ray's loggers that say INFO on every submission (the upload, the log stream's end).
_RAY_SDK_LOGGERS = (
    "ray.dashboard.modules.dashboard_sdk",
    "ray.dashboard.modules.job.sdk",
    "ray._private.runtime_env.packaging",
)


def _quiet_ray_sdk() -> None:
    """Keep Ray's INFO lines out of the output unless ``raysweep -v`` asked for them.

    Ray's SDK modules set their loggers to INFO when imported, so they are
    imported first.
    """
    if logging.getLogger("raysweep").getEffectiveLevel() <= logging.INFO:
        return
    importlib.import_module("ray.job_submission")
    for name in _RAY_SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class JobFailed(click.ClickException):
    """The followed job ended without success: exit 1."""

    exit_code = 1


@click.command("submit")
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "--address",
    envvar="RAY_API_SERVER_ADDRESS",
    required=True,
    help="The head's dashboard (Jobs API), http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS).",
)
@click.option(
    "--storage",
    help="Absolute folder on the cluster that holds experiment folders, on a disk all its "
    "nodes share, or a store URL (file:///shared/runs); overrides the file's. Required "
    "unless the file's storage is absolute: a relative one would be inside the job's "
    "temporary working_dir, deleted with it.",
)
@click.option("--name", help="Experiment name (default: the file's, else the file's name).")
@click.option(
    "--resume",
    is_flag=True,
    help="The experiment must already be stored (without it: continued if stored, else started).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Print the job's output as it comes and exit with its outcome: 0 when it "
    "succeeded, 1 otherwise.",
)
@click.option(
    "--connect-timeout-s",
    type=float,
    default=None,
    help="Seconds to wait for the dashboard to answer (default: RAYSWEEP_CONNECT_TIMEOUT_S, "
    "else 30).",
)
def submit_command(
    config: Path,
    address: str,
    storage: str | None,
    name: str | None,
    resume: bool,
    follow: bool,
    connect_timeout_s: float | None,
) -> None:
    """Run the sweep in CONFIG on a Ray cluster as a job; print the job's id.

    The file is checked here first, as `raysweep run` checks it. Its folder is
    uploaded as the job's working_dir (the objective module and space files next
    to it travel along; files outside it do not), its runtime_env applies to the
    job and its trials, and the job runs `raysweep run CONFIG --name NAME
    --storage STORAGE --resume auto` on the head, where raysweep must be
    installed (or come with the runtime_env's pip): submitting the same file
    again after a failed or stopped job continues the experiment.

    \b
    The experiment must outlive the job, so its storage must be absolute:
      raysweep submit sweep.yaml --address http://head:8265 --storage /shared/runs
    Then, on a machine that sees /shared:
      raysweep status /shared/runs/NAME
    """
    from raysweep import jobs

    _quiet_ray_sdk()
    plan = jobs.plan_job(config, storage=storage, name=name, resume=True if resume else "auto")
    client = jobs.open_client(address, connect_timeout_s)
    job_id = jobs.submit(client, plan)
    click.echo(job_id)
    url = jobs.dashboard_url(address)
    if not follow:
        click.echo(
            f"submitted; the experiment is {plan.experiment} on the cluster; follow the "
            f"job with: ray job logs --address {shlex.quote(url)} --follow {job_id}",
            err=True,
        )
        return
    try:
        status, message = jobs.follow(client, job_id, lambda text: click.echo(text, nl=False))
    except KeyboardInterrupt:
        from raysweep.cli.main import Interrupted  # not at the top: main imports this module

        raise Interrupted(
            f"stopped following; job {job_id} goes on (stop it with: ray job stop "
            f"--address {shlex.quote(url)} {job_id})"
        ) from None
    if status != "SUCCEEDED":
        # Ray's message goes on with the job's last output, already shown above.
        lines = message.split(", last available logs", 1)[0].strip().splitlines()
        reason = f": {lines[0]}" if lines else ""
        raise JobFailed(f"job {job_id} {status}{reason} (experiment {plan.experiment})")
    click.echo(f"job {job_id} SUCCEEDED; the experiment is {plan.experiment}", err=True)
