"""Two Slurm nodes on this host: the daemons, their config, and questions to them.

Debian's Slurm is built with ``MULTIPLE_SLURMD``, so two ``slurmd`` named n1
and n2 run on this one host, each on its own port, beside one ``slurmctld`` and
a private ``munged`` (its own key and socket, so a system munge is never
touched). Everything lives in one temp folder: the config, state, spools and
logs. :func:`start` starts the four daemons and records their PIDs;
:func:`stop` cancels what is left of the cluster's jobs and stops exactly
those PIDs. Used by the ``slurm_cluster`` fixture (``conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import process_ended, wait_until

#: The daemons and commands the tests need, and the Debian packages that hold them.
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
#: Job states after which a job runs no more.
ENDED = frozenset(
    [
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    ]
)
NODES = ("n1", "n2")


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


@dataclass
class SlurmCluster:
    """The running cluster: its folder, config and daemons, and a way to ask it things."""

    folder: Path
    #: CPUs of each node (what slurmd finds on this host).
    cpus: int
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: Ids of the jobs the tests submitted (their Ray temp dirs are removed at the end).
    jobs: list[str] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """This process's environment pointed at the cluster (no RAY_ADDRESS:
        a job must never find the test session's Ray)."""
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["SLURM_CONF"] = str(self.conf)
        return env

    @property
    def daemon_pids(self) -> set[int]:
        return {proc.pid for proc in self.daemons.values()}

    def command(self, *args: str) -> str:
        """A Slurm command against this cluster; its stdout (it must succeed)."""
        done = _run(list(args), self.env)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def check_daemons(self) -> None:
        """Fail the test, with the daemons' logs, if one of them has exited."""
        for name, proc in self.daemons.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited ({proc.returncode}):\n{tail(self.folder / 'log')}")

    def nodes_idle(self) -> bool:
        self.check_daemons()
        out = _run(["sinfo", "-h", "-N", "-o", "%N %t"], self.env).stdout
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(node) == "idle" for node in NODES)

    def queue_empty(self) -> bool:
        return not _run(["squeue", "-h"], self.env).stdout.strip()

    def job_state(self, job_id: str) -> str:
        out = self.command("scontrol", "show", "job", "-o", job_id)
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        return fields.get("JobState", "UNKNOWN")

    def wait_for_end(self, job_id: str, log: Path, timeout_s: float = 180.0) -> str:
        """Wait until the job has ended; return its state (its log is shown on a hang)."""
        state = ""

        def ended() -> bool:
            nonlocal state
            self.check_daemons()
            state = self.job_state(job_id)
            return state in ENDED

        try:
            wait_until(ended, f"job {job_id} to end", timeout_s=timeout_s, poll_s=0.2)
        except pytest.fail.Exception:
            pytest.fail(f"job {job_id} still {state} after {timeout_s:g} s; log:\n{tail(log)}")
        return state


def tail(path: Path, lines: int = 40) -> str:
    """The end of a file, or of every file in a folder."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    out = []
    for file in files:
        with contextlib.suppress(OSError):
            out.append(f"--- {file.name}\n" + "\n".join(file.read_text().splitlines()[-lines:]))
    return "\n".join(out) or f"(no {path})"


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _cpus() -> int:
    """The CPUs slurmd finds on this host: what a node may claim without being drained."""
    out = _run(["slurmd", "-C"]).stdout
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    return int(fields.get("CPUs", os.cpu_count() or 1))


def _config(folder: Path, cpus: int) -> str:
    """The slurm.conf. Job ids start at a random number: jobs of two test sessions on one
    host must not share the per-job Ray temp dirs the batch script names after the id."""
    host = socket.gethostname().split(".")[0]
    ctld, default_port, *node_ports = _free_ports(2 + len(NODES))
    nodes = "\n".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
        "State=UNKNOWN"
        for name, port in zip(NODES, node_ports, strict=True)
    )
    return f"""\
ClusterName=raysweeptest
FirstJobId={random.randint(10_000, 50_000_000)}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={default_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge-socket/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd-%n.log
# No cgroups: process groups track a job's processes (Ray's included).
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
{nodes}
PartitionName=test Nodes={",".join(NODES)} Default=YES MaxTime=INFINITE State=UP
"""


def _spawn(cluster: SlurmCluster, name: str, args: list[str]) -> None:
    with (cluster.folder / "log" / f"{name}.out").open("wb") as out:
        cluster.daemons[name] = subprocess.Popen(
            args, env=cluster.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def start() -> SlurmCluster:
    """Write the config and start munged, slurmctld and both slurmd; wait until both
    nodes are idle. On failure the daemons already started are stopped."""
    # Not under pytest's 0700 tmp folder: munged wants its socket's folders open to all.
    folder = Path(tempfile.mkdtemp(prefix="rs-slurm-"))
    folder.chmod(0o755)
    for sub in ("state", "spool", "log", "munge", "munge-socket"):
        (folder / sub).mkdir(mode=0o700 if sub == "munge" else 0o755)
    munge = folder / "munge"
    (munge / "munge.key").write_bytes(os.urandom(1024))
    (munge / "munge.key").chmod(0o600)
    cluster = SlurmCluster(folder=folder, cpus=_cpus())
    cluster.conf.write_text(_config(folder, cluster.cpus))
    munge_socket = folder / "munge-socket" / "munge.socket"

    def munge_ready() -> bool:
        cluster.check_daemons()
        return munge_socket.exists()

    try:
        # --foreground keeps the PID ours (the daemon would fork away from it).
        _spawn(cluster, "munged", [
            "munged", "--foreground", f"--key-file={munge}/munge.key",
            f"--socket={munge_socket}", f"--pid-file={munge}/munged.pid",
            f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed",
        ])  # fmt: skip
        wait_until(munge_ready, "munged's socket", timeout_s=60)
        _spawn(cluster, "slurmctld", ["slurmctld", "-D"])
        for node in NODES:
            _spawn(cluster, f"slurmd-{node}", ["slurmd", "-D", "-N", node])
        wait_until(cluster.nodes_idle, "both Slurm nodes idle", timeout_s=90, poll_s=0.2)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: SlurmCluster) -> None:
    """Cancel the cluster's remaining jobs, stop its daemons by PID, remove its folder."""
    ctld = cluster.daemons.get("slurmctld")
    if ctld is not None and ctld.poll() is None:
        _run(["scancel", "--user", str(os.getuid())], cluster.env)
        with contextlib.suppress(pytest.fail.Exception):
            wait_until(cluster.queue_empty, "the test cluster's jobs to end", timeout_s=60)
    for proc in reversed(cluster.daemons.values()):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        assert process_ended(proc.pid)
    shutil.rmtree(cluster.folder, ignore_errors=True)
    for job in cluster.jobs:  # the Ray temp dirs the batch script made (/tmp/rs-JOB-NODE)
        for node in NODES:
            shutil.rmtree(f"/tmp/rs-{job}-{node}", ignore_errors=True)
