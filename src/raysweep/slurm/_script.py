"""The batch script: a Ray cluster across the job's nodes, then the driver.

The script is meant to be read (and edited) by the person who submits it, so it
is plain bash with a comment on each part. Only the parts that depend on the
options are generated; the rest is :data:`_BODY`, the same for every job, and
one of two drivers: :data:`_SWEEP` for a sweep file, :data:`_SCRIPT` for a
Python script (a gradient fit, or any Ray program).

What it does, in order: the ``#SBATCH`` lines; the user's setup lines; one
``srun`` starting the Ray head on the batch host (the job's first node), a wait
until it answers; one ``srun`` starting a Ray worker on every other node; a
bounded wait until every node is alive in Ray; then ``raysweep run CONFIG
--address HEAD --resume auto`` (resuming when the experiment exists, so
submitting the same script again continues it), or ``python SCRIPT`` with
``RAY_ADDRESS=HEAD``. An EXIT trap stops, by PID, what the
script started (never ``ray stop``, which stops every Ray of the user on the
host). Each Ray node picks its ports and temp dir itself, on its own host, so
several nodes of the job, or of other jobs, can share a host.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from raysweep import __version__
from raysweep.errors import SpecError
from raysweep.slurm._options import JobOptions

__all__ = ["LOG_NAME", "ScriptDriver", "SweepDriver", "script_text"]

#: The job's log, in the storage folder next to the experiment (%j: the job id).
LOG_NAME = "{name}.slurm-%j.log"

#: Everything after the settings up to the driver: the same for every job.
_BODY = r"""
say() { echo "[$(date +%H:%M:%S)] $*"; }
say "job $SLURM_JOB_ID: $NODES node(s) ($SLURM_JOB_NODELIST), head on $HEAD"

# -- stop what this script started, however it ends --------------------------------
# By PID, newest first: the driver, then the workers' and the head's srun (srun
# passes SIGTERM to its Ray node, whose `ray start --block` stops its own Ray
# processes). Never `ray stop`: it kills every Ray process of this user on the
# host, other jobs' included.
STARTED=""
stop_started() {
  trap - TERM INT
  say "stopping what this job started"
  for pid in $STARTED; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $STARTED; do wait "$pid" 2>/dev/null || true; done
}
trap stop_started EXIT
# scancel, the time limit and preemption send SIGTERM (to every process of the
# job: Ray's driver may print a stack trace for it). Exit, which runs the trap.
trap 'say "got SIGTERM (scancel, the time limit or preemption)"; exit 143' TERM
trap 'say "got SIGINT"; exit 130' INT

# -- one Ray node per Slurm node -----------------------------------------------------
# Runs through srun on its node. Ports and the temp dir are chosen there, so Ray
# nodes sharing a host (other jobs', or several of this job's) never collide; the
# temp dir is short because Ray's socket paths must stay under 108 characters.
# Ray's logs stay in it, for a look after a failure. No dashboard: `raysweep status`
# shows the sweep, from any host that sees the experiment folder.
ray_node() {
  local role=$1 dir="/tmp/rs-$SLURM_JOB_ID-$SLURMD_NODENAME" ports agent_port client_port
  ports=$("$PYTHON" -m raysweep.slurm._job free-ports 2) || return 1
  read -r agent_port client_port <<<"$ports"
  local args=(--block --temp-dir="$dir" --num-cpus="${RAY_NUM_CPUS:-$SLURM_CPUS_ON_NODE}"
    --dashboard-agent-listen-port="$agent_port" --min-worker-port=0 --max-worker-port=0
    --disable-usage-stats@NUM_GPUS@)
  echo "ray $role on $SLURMD_NODENAME ($(hostname)): logs in $dir"
  if [ "$role" = head ]; then
    exec "$PYTHON" -m ray.scripts.scripts start --head --node-ip-address="$HEAD_IP" \
      --port="$GCS_PORT" --ray-client-server-port="$client_port" \
      --include-dashboard=false "${args[@]}"
  fi
  exec "$PYTHON" -m ray.scripts.scripts start --address="$HEAD_IP:$GCS_PORT" "${args[@]}"
}
export -f ray_node
export PYTHON RAY_NUM_CPUS

# The batch script runs on the job's first node, which becomes the head.
HEAD_ADDRESS=$("$PYTHON" -m raysweep.slurm._job head-address)
read -r HEAD_IP GCS_PORT <<<"$HEAD_ADDRESS"
export HEAD_IP GCS_PORT
ADDRESS="$HEAD_IP:$GCS_PORT"

# --overlap: other steps (an srun inside a trial, say) may share the nodes.
say "starting the Ray head on $HEAD at $ADDRESS"
srun --nodes=1 --ntasks=1 --overlap@SRUN_GPUS@ -w "$HEAD" bash -c 'ray_node head' &
HEAD_PID=$!
STARTED="$HEAD_PID $STARTED"
"$PYTHON" -m raysweep.slurm._job wait-port "$ADDRESS" --timeout "$READY_TIMEOUT_S" \
  --watch "the Ray head's srun=$HEAD_PID"

WATCH=(--watch "the Ray head's srun=$HEAD_PID")
if [ "$NODES" -gt 1 ]; then
  say "starting $((NODES - 1)) Ray worker node(s)"
  srun --nodes=$((NODES - 1)) --ntasks=$((NODES - 1)) --ntasks-per-node=1 --overlap@SRUN_GPUS@ \
    --exclude="$HEAD" bash -c 'ray_node worker' &
  WORKERS_PID=$!
  STARTED="$WORKERS_PID $STARTED"
  WATCH+=(--watch "the Ray workers' srun=$WORKERS_PID")
fi

# Wait until every node is alive in Ray: a bounded poll of ray.nodes(); it fails
# with the count after READY_TIMEOUT_S, or at once if a Ray node's srun ended.
"$PYTHON" -m raysweep.slurm._job wait-nodes "$ADDRESS" --nodes "$NODES" \
  --timeout "$READY_TIMEOUT_S" "${WATCH[@]}"

@DRIVER@"""

#: The driver of a sweep file: ``raysweep run``, resuming the experiment if it exists.
_SWEEP = r"""# -- the sweep -----------------------------------------------------------------------
# --resume auto: continue the experiment if it exists, else start it, so a job
# submitted again (after a cancel, the time limit, a requeue) goes on from there.
say "running the sweep; the experiment is $STORE"
ARGS=(run "$CONFIG" --address "$ADDRESS" --resume auto@DRIVER_ARGS@)
# In the background, so that a SIGTERM reaches the trap while the sweep runs.
"$PYTHON" -m raysweep.cli "${ARGS[@]}" &
DRIVER_PID=$!
STARTED="$DRIVER_PID $STARTED"
STATUS=0
wait "$DRIVER_PID" || STATUS=$?
say "raysweep run ended with exit code $STATUS"
exit "$STATUS"
"""

#: The driver of a Python script (a gradient fit, or any Ray program): ``python SCRIPT``
#: with ``RAY_ADDRESS`` naming the job's cluster.
_SCRIPT = r"""# -- the script ----------------------------------------------------------------------
# RAY_ADDRESS points ray.init(), and raysweep's RayOptimizer, at this job's cluster.
# It runs in the folder the job was submitted from, as `python SCRIPT` would there.
# To go on after a cancel, the time limit or a requeue, the script must store its run
# on a shared filesystem and resume it: RayOptimizer(..., storage=..., resume="auto").
say "running $SCRIPT in $PWD"
export RAY_ADDRESS="$ADDRESS"
# In the background, so that a SIGTERM reaches the trap while the script runs.
"$PYTHON" "$SCRIPT" ${SCRIPT_ARGS[@]+"${SCRIPT_ARGS[@]}"} &
DRIVER_PID=$!
STARTED="$DRIVER_PID $STARTED"
STATUS=0
wait "$DRIVER_PID" || STATUS=$?
say "$(basename "$SCRIPT") ended with exit code $STATUS"
exit "$STATUS"
"""


@dataclass(frozen=True, slots=True)
class SweepDriver:
    """The job runs ``raysweep run CONFIG --resume auto``.

    Attributes:
        config: the sweep file, absolute.
        store: the experiment folder, absolute (named in the header).
        storage_flag: an absolute ``--storage`` for ``raysweep run``, if overridden.
    """

    config: Path
    store: Path
    storage_flag: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptDriver:
    """The job runs ``python SCRIPT ARGS...`` with ``RAY_ADDRESS`` set.

    Attributes:
        script: the Python file, absolute.
        args: its command-line arguments.
    """

    script: Path
    args: tuple[str, ...] = ()


def script_text(
    options: JobOptions, driver: SweepDriver | ScriptDriver, *, log: str, job_name: str
) -> str:
    """The whole script for checked ``options``, ending with ``driver``.

    Args:
        log: the ``--output`` path (with ``%j``).
        job_name: the Slurm job name.
    """
    q = shlex.quote
    parts = [
        _header(options, driver, log),
        "\n".join(_sbatch_lines(options, log, job_name)),
        "",
        "set -eo pipefail",
    ]
    if options.setup:
        parts += ["", "# -- setup (from --setup) " + "-" * 59, *options.setup]
    cpus = str(options.cpus_per_node) if options.cpus_per_node else '""'
    if isinstance(driver, SweepDriver):
        what = [f"CONFIG={q(str(driver.config))}", f"STORE={q(str(driver.store))}"]
        tail = _SWEEP.replace(
            "@DRIVER_ARGS@", f" --storage {q(driver.storage_flag)}" if driver.storage_flag else ""
        )
    else:
        what = [
            f"SCRIPT={q(str(driver.script))}",
            "# The script's arguments.",
            f"SCRIPT_ARGS=({' '.join(q(a) for a in driver.args)})",
        ]
        tail = _SCRIPT
    parts += [
        "",
        "# -- settings " + "-" * 71,
        ': "${SLURM_JOB_ID:?submit this script with sbatch}"',
        "set -u",
        f"PYTHON={q(options.python)}",
        *what,
        "# Seconds the Ray cluster may take to come up before the job gives up.",
        f"READY_TIMEOUT_S={options.ready_timeout_s:g}",
        "NODES=$SLURM_JOB_NUM_NODES",
        "HEAD=$SLURMD_NODENAME",
        "# CPUs each Ray node offers (empty: what Slurm gave the job on that node).",
        f"RAY_NUM_CPUS={cpus}",
        "# Every Ray process of the job must use the same auth mode: left unset, a head",
        "# started where ~/.ray/auth_token exists turns token auth on, and nodes, drivers",
        "# and `ray status` started without it are refused.",
        "export RAY_AUTH_MODE=disabled",
        "# A Ray node told to stop (SIGTERM) first drains: it waits, up to 30 s, for its",
        "# running tasks. The job's nodes stop with the job, past Slurm's KillWait, and an",
        "# interrupted trial is run again on resume anyway: stop at once.",
        "export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}",
    ]
    gpus = f" --num-gpus={options.gpu_count}" if options.gpu_count else ""
    srun_gpus = f" --gpus-per-node={options.gpus_per_node}" if options.gpus_per_node else ""
    body = (
        _BODY.replace("@NUM_GPUS@", gpus)
        .replace("@SRUN_GPUS@", srun_gpus)
        .replace("@DRIVER@", tail)
    )
    text = "\n".join(parts) + "\n" + body
    _check_syntax(text)
    return text


def _header(options: JobOptions, driver: SweepDriver | ScriptDriver, log: str) -> str:
    log_text = log.replace("%j", "<job id>").replace("%%", "%")
    if isinstance(driver, SweepDriver):
        what = [
            f"# A Ray cluster on {options.nodes} Slurm node(s) running one raysweep sweep.",
            f"# Written by raysweep {__version__} (`raysweep slurm`); edit it as you like.",
            "#",
            f"#   sweep file:  {driver.config}",
            f"#   experiment:  {driver.store}",
            "#                (on a filesystem every node of the job sees)",
            f"#   job log:     {log_text}",
            "#",
            "# Submit it with `sbatch THIS_FILE`. Submitting it again after a cancel, the",
            "# time limit or a failure resumes the experiment: completed trials are kept,",
            "# interrupted ones run again.",
        ]
    else:
        what = [
            f"# A Ray cluster on {options.nodes} Slurm node(s) running one Python script.",
            f"# Written by raysweep {__version__} (`raysweep slurm`); edit it as you like.",
            "#",
            f"#   script:      {driver.script}",
            f"#   job log:     {log_text}",
            "#",
            "# Submit it with `sbatch THIS_FILE` from the folder the script should run in.",
            "# Submitting it again after a cancel, the time limit or a failure resumes a",
            '# RayOptimizer(..., storage=..., resume="auto") from its last stored step.',
        ]
    return "\n".join(["#!/bin/bash", *what, "#"])


def _sbatch_lines(options: JobOptions, log: str, job_name: str) -> list[str]:
    lines = [
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --nodes={options.nodes}",
        "# One task per node: the task is that node's Ray node.",
        "#SBATCH --ntasks-per-node=1",
    ]
    if options.cpus_per_node:
        lines.append(f"#SBATCH --cpus-per-task={options.cpus_per_node}")
    else:
        lines += [
            "# Whole nodes: each Ray node offers every CPU of its node.",
            "#SBATCH --exclusive",
        ]
    if options.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    for flag, value in (
        ("time", options.time),
        ("partition", options.partition),
        ("account", options.account),
        ("mem", options.mem),
    ):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    if options.requeue:
        lines += [
            "# Requeued after a node failure or preemption; the new run resumes.",
            "#SBATCH --requeue",
        ]
    lines.append(f"#SBATCH --output={_sbatch_quoted(log)}")
    lines += [f"#SBATCH {extra}" for extra in options.sbatch_options]
    return lines


def _sbatch_quoted(value: str) -> str:
    """A value as an ``#SBATCH`` line holds it: in double quotes if it has blanks."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def _check_syntax(text: str) -> None:
    """Refuse a script bash cannot parse: only the setup lines can make it so."""
    bash = shutil.which("bash")
    if bash is None:
        return
    done = subprocess.run(
        [bash, "-n"], input=text, capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        detail = lines[0] if lines else f"bash -n exited with {done.returncode}"
        raise SpecError(f"setup: the script is not valid bash with these lines: {detail}")
