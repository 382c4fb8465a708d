"""A real multi-node Ray cluster on this one machine: a head and a worker node, each
started with ``ray start ... --block`` as a process of its own.

Every node gets ports and a temporary folder of its own, so the cluster never
meets the session's local Ray (``ray_session``) or Ray instances other people
run on the machine: GCS, dashboard, Ray Client, agents, node manager, object
manager and a worker-port range outside Ray's defaults (10002-19999) and the
kernel's ephemeral range. Each node has a custom resource of its own
(:data:`HEAD_RESOURCE`; ``rs_test_worker0``, ``rs_test_worker1``... for the worker
nodes, one per ``ray start``), by which its record is found. Both nodes have the
same IP here; tests tell them apart by their Ray node ids (:attr:`RayNode.node_id`).

Every process of the cluster, and every driver or CLI that joins it, gets the
same environment (:meth:`LocalRayCluster.env`): ``RAY_AUTH_MODE=disabled`` (with
``~/.ray/auth_token`` present and the variable unset, ``ray start --head`` would
turn token auth on while joining processes would not), no ``RAY_ADDRESS``, and
a GCS health check that declares a dead node dead in about 3 s instead of 30.

Readiness and node deaths are read from the head dashboard's state API (plain
HTTP), so the test process never connects to the cluster as a Ray driver: it
may already be connected to the session's local Ray. A node is stopped with
SIGTERM to its ``ray start --block`` process, which stops the node's daemons;
whatever of the node's process group is still there afterwards is killed. Only
processes this module started, found by their process group, are signalled;
never ``ray stop``, which would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

#: The custom resource only the head node has (100 units).
HEAD_RESOURCE = "rs_test_head"
#: The custom resource of a worker node: this, then the number of the worker node.
WORKER_RESOURCE = "rs_test_worker"
#: CPUs each node declares.
NODE_CPUS = 2
#: How long a node may take to join (a bound on a hang: the head took 8 s here, loaded).
START_S = 120.0
#: How long a stopped node's processes get to exit before they are killed.
STOP_S = 30.0
#: The GCS declares a node dead after 3 failed checks 1 s apart (default: ~30 s).
HEALTH_ENV = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
#: Worker-port ranges are taken from here: above Ray's default worker ports
#: (10002-19999), below the kernel's ephemeral ports (32768-60999).
_PORT_RANGE = (20000, 32000)
_WORKER_PORTS = 100


class ClusterError(RuntimeError):
    """The cluster did not come up (or a node did not go) as expected."""


def cannot_run_reason() -> str | None:
    """Why this machine cannot run a local Ray cluster, or ``None`` if it can."""
    if shutil.which("ray") is None:
        return "the `ray` command is not installed"
    if not os.path.isdir("/proc/self"):
        return "needs Linux's /proc to find the processes each node started"
    try:  # the dashboard and the Jobs API come with ray[default]
        importlib.import_module("aiohttp")
        importlib.import_module("ray.dashboard.modules.job.sdk")
    except ImportError as exc:
        return f"ray[default] (dashboard, Jobs API) is not installed: {exc}"
    return None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the session and process group ``pgid``, which a
    node's ``ray start`` leads (it was started in a session of its own)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        # stat[0] state, [2] process group, [3] session
        if stat is not None and stat[0] != "Z" and int(stat[2]) == pgid and int(stat[3]) == pgid:
            members.append(int(entry))
    return members


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and int(stat[1]) == pid:
                out.append(int(entry))
    return out


def _exe_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            first = fh.read().split(b"\0", 1)[0].decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return os.path.basename(first)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


class _Ports:
    """Ports nobody listens on now, each handed out once."""

    def __init__(self) -> None:
        self._given: set[int] = set()
        self._rng = random.Random()

    def one(self) -> int:
        while True:
            port = self._rng.randrange(*_PORT_RANGE)
            if port not in self._given and _port_free(port):
                self._given.add(port)
                return port

    def block(self, size: int) -> tuple[int, int]:
        """A range of ``size`` free ports (for a node's workers)."""
        while True:
            low = self._rng.randrange(_PORT_RANGE[0], _PORT_RANGE[1] - size)
            span = range(low, low + size)
            if not self._given.intersection(span) and all(_port_free(p) for p in span):
                self._given.update(span)
                return low, low + size - 1


class RayNode:
    """One ``ray start --block`` process and what belongs to it."""

    def __init__(self, name: str, resource: str, process: subprocess.Popen[bytes], log: Path):
        self.name = name
        self.resource = resource
        self.process = process
        self.log = log
        self.node_id: str | None = None  # Ray's id of the node, once it joined

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def raylet_pid(self) -> int | None:
        """The node's raylet (a child of its ``ray start`` process), if it runs."""
        for pid in children(self.pid):
            if _exe_name(pid) == "raylet":
                return pid
        return None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """SIGTERM the ``ray start`` process, wait for its group, SIGKILL what is left."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_S)
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()
        deadline = time.monotonic() + STOP_S
        while group_members(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in group_members(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class LocalRayCluster:
    """A head and worker nodes started with ``ray start`` on this machine.

    Example:
        >>> cluster = LocalRayCluster()  # doctest: +SKIP
        >>> cluster.start_head(); cluster.start_worker()  # doctest: +SKIP
        >>> cluster.address, cluster.dashboard_url  # doctest: +SKIP
        ('192.0.2.2:26379', 'http://127.0.0.1:28265')
    """

    def __init__(self) -> None:
        # Short: Ray puts Unix sockets in it (paths of at most 107 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="rs-cl-", dir="/tmp"))
        self._ports = _Ports()
        self.port = self._ports.one()
        self.dashboard_port = self._ports.one()
        self.client_port = self._ports.one()
        self.head: RayNode | None = None
        self.workers: list[RayNode] = []
        self.host: str | None = None  # the head's node IP, once it runs

    # -- addresses and environment -------------------------------------------------
    @property
    def address(self) -> str:
        """The head's GCS address, ``host:port`` (what ``rs.run(address=...)`` takes)."""
        if self.host is None:
            raise ClusterError("the head node has not started")
        return f"{self.host}:{self.port}"

    @property
    def dashboard_url(self) -> str:
        """The head's dashboard (Jobs API): ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for every process of, or joining, this cluster."""
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(HEALTH_ENV)
        env["RAY_AUTH_MODE"] = "disabled"
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
        env.update(extra)
        return env

    # -- nodes ----------------------------------------------------------------------
    def _node_args(self, resource: str) -> list[str]:
        low, high = self._ports.block(_WORKER_PORTS)
        return [
            f"--num-cpus={NODE_CPUS}",
            "--num-gpus=0",
            f"--resources={json.dumps({resource: 100})}",
            "--object-store-memory=100000000",
            f"--node-manager-port={self._ports.one()}",
            f"--object-manager-port={self._ports.one()}",
            f"--dashboard-agent-listen-port={self._ports.one()}",
            f"--dashboard-agent-grpc-port={self._ports.one()}",
            f"--metrics-export-port={self._ports.one()}",
            f"--runtime-env-agent-port={self._ports.one()}",
            f"--min-worker-port={low}",
            f"--max-worker-port={high}",
            "--disable-usage-stats",
            "--log-style=record",
            "--block",
        ]

    def _spawn(self, name: str, resource: str, args: list[str]) -> RayNode:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["ray", "start", *args, *self._node_args(resource)],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one
            )
        return RayNode(name, resource, process, log)

    def start_head(self) -> RayNode:
        """Start the head (GCS, dashboard, Jobs API) and wait until it is a live node."""
        self.head = self._spawn(
            "head",
            HEAD_RESOURCE,
            [
                "--head",
                f"--port={self.port}",
                f"--ray-client-server-port={self.client_port}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--temp-dir={self.root / 'head'}",
            ],
        )
        node = self.wait_for_node(self.head)
        self.host = str(node["node_ip"])
        return self.head

    def start_worker(self) -> RayNode:
        """Start a worker node joining the head; wait until it is a live node."""
        index = len(self.workers)
        worker = self._spawn(
            f"worker{index}",
            f"{WORKER_RESOURCE}{index}",
            [f"--address={self.address}", f"--temp-dir={self.root / f'worker{index}'}"],
        )
        self.workers.append(worker)
        self.wait_for_node(worker)
        return worker

    @property
    def worker(self) -> RayNode:
        """The newest worker node."""
        if not self.workers:
            raise ClusterError("no worker node was started")
        return self.workers[-1]

    # -- what the head says ------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes as the head's state API lists them (``[]`` while the
        dashboard does not answer)."""
        url = f"{self.dashboard_url}/api/v0/nodes?limit=100&detail=true"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except (OSError, ValueError):
            return []
        result = (body.get("data") or {}).get("result") or {}
        return list(result.get("result") or [])

    def node_of(self, node: RayNode) -> dict[str, Any] | None:
        """The head's record of ``node`` (found by its custom resource), if any."""
        for record in self.nodes():
            if node.resource in (record.get("resources_total") or {}):
                return record
        return None

    def state_of(self, node: RayNode) -> str | None:
        """``ALIVE`` or ``DEAD`` as the head sees ``node`` (``None``: not seen)."""
        record = self.node_of(node)
        return None if record is None else str(record.get("state"))

    def wait_for_node(self, node: RayNode) -> dict[str, Any]:
        """Wait until ``node`` is an ALIVE node of the cluster; its record."""
        found: dict[str, Any] | None = None

        def joined() -> bool:
            nonlocal found
            if not node.running():
                raise ClusterError(
                    f"`ray start` of the {node.name} node exited ({node.process.returncode}):\n"
                    f"{node.log_tail()}"
                )
            record = self.node_of(node)
            found = record if record is not None and record.get("state") == "ALIVE" else None
            return found is not None

        _wait(joined, f"the {node.name} node to join", START_S, node)
        assert found is not None
        node.node_id = str(found["node_id"])
        return found

    def wait_until_dead(self, node: RayNode) -> None:
        """Wait until the head has declared ``node`` dead (about 3 s after its raylet
        went), so that no task is sent to it any more."""
        _wait(
            lambda: self.state_of(node) == "DEAD", f"the {node.name} node to be dead", START_S, node
        )

    def kill_raylet(self, node: RayNode) -> int:
        """SIGKILL ``node``'s raylet, as a machine failure would; its pid."""
        pid = node.raylet_pid()
        if pid is None:
            raise ClusterError(f"the {node.name} node has no raylet to kill")
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        """Stop every node this cluster started (workers first), then remove its files."""
        for node in [*reversed(self.workers), *([self.head] if self.head else [])]:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait(condition: Callable[[], bool], what: str, timeout_s: float, node: RayNode) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"waited {timeout_s:g} s for {what}:\n{node.log_tail()}")
        time.sleep(0.1)
