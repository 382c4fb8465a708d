"""Small steps the generated batch script runs inside the job, on its nodes.

The script calls ``python -m raysweep.slurm._job COMMAND ...``. These are the
steps a shell does badly: picking ports that are free on *this* node (several
Ray nodes may share a host, and other jobs' Ray too), and waiting for the
cluster in bounded time, failing with one line that says what was missing. Each
prints its result on stdout and any failure on stderr (the job's log), exit 1.

* ``head-address``: this host's IP as Ray advertises it, and a free port for
  the head's GCS (the batch script runs on the head node);
* ``free-ports N``: N distinct ports free on this host right now;
* ``wait-port HOST:PORT``: until the head accepts connections;
* ``wait-nodes HOST:PORT --nodes N``: until N Ray nodes are alive.

The waits give up early when a watched process (the ``srun`` of a Ray node) has
ended: a head that failed to start is reported at once, not after the time-out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from collections.abc import Sequence

__all__ = ["free_ports", "main", "wait_nodes", "wait_port"]

#: Pause between two looks at the cluster while waiting (a poll, not the wait itself).
POLL_S = 0.5


class NotReady(Exception):
    """The cluster did not come up; the message is the line the job's log shows."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that nothing on this host listens on.

    They are held open together while chosen, so they differ from each other;
    another process could still take one before Ray binds it, which on a
    compute node running one job per node is unlikely enough.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def head_address() -> tuple[str, int]:
    """This host's IP as Ray would advertise it, and a free port for the GCS."""
    import ray.util

    ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return str(ip), free_ports(1)[0]


def _ended(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _check_watched(watch: Sequence[tuple[str, int]]) -> None:
    for what, pid in watch:
        if _ended(pid):
            raise NotReady(f"{what} (pid {pid}) ended before the Ray cluster was up")


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NotReady(f"{address!r} is not host:port")
    return host, int(port)


def wait_port(address: str, timeout_s: float, watch: Sequence[tuple[str, int]] = ()) -> float:
    """Return the seconds waited once ``address`` accepts a TCP connection.

    Raises:
        NotReady: not within ``timeout_s``, or a watched process ended first.
    """
    host, port = _split(address)
    start = time.monotonic()
    while True:
        try:
            with socket.create_connection((host, port), timeout=POLL_S):
                return time.monotonic() - start
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        _check_watched(watch)
        if time.monotonic() - start > timeout_s:
            raise NotReady(
                f"the Ray head at {address} did not accept connections within "
                f"{timeout_s:g} s ({reason.lower()})"
            )
        time.sleep(POLL_S)


def wait_nodes(
    address: str, nodes: int, timeout_s: float, watch: Sequence[tuple[str, int]] = ()
) -> int:
    """Return the number of alive Ray nodes once it reaches ``nodes``.

    Connects to the cluster as a driver (``ray.nodes()`` is Ray's public view
    of node liveness), polls, and disconnects.

    Raises:
        NotReady: fewer than ``nodes`` alive after ``timeout_s`` (the message
            gives the count), a watched process ended, or no Ray answered.
    """
    import ray

    from raysweep._ray import connect
    from raysweep.errors import RaysweepError

    start = time.monotonic()
    wait_port(address, timeout_s, watch)
    try:
        joined = connect(address, None, timeout_s=max(timeout_s - (time.monotonic() - start), 1.0))
    except RaysweepError as exc:
        raise NotReady(str(exc)) from None
    try:
        while True:
            alive = len([n for n in ray.nodes() if n.get("Alive")])  # type: ignore[no-untyped-call]
            if alive >= nodes:
                return alive
            _check_watched(watch)
            if time.monotonic() - start > timeout_s:
                raise NotReady(
                    f"{alive} of {nodes} Ray nodes alive after {timeout_s:g} s; the missing "
                    f"nodes' Ray logs are in their --temp-dir (see ray_node in this script)"
                )
            time.sleep(POLL_S)
    finally:
        if joined:  # not a Ray this process had joined before
            ray.shutdown()


def _watch_list(values: Sequence[str]) -> list[tuple[str, int]]:
    """``what=pid`` pairs from ``--watch``."""
    pairs = []
    for value in values:
        what, _, pid = value.rpartition("=")
        if not pid.isdigit():
            raise SystemExit(f"--watch: expected WHAT=PID, got {value!r}")
        pairs.append((what or "a watched process", int(pid)))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step (see the module docstring); the exit code is the script's to test."""
    parser = argparse.ArgumentParser(prog="python -m raysweep.slurm._job")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("head-address")
    ports = commands.add_parser("free-ports")
    ports.add_argument("count", type=int)
    for name in ("wait-port", "wait-nodes"):
        wait = commands.add_parser(name)
        wait.add_argument("address")
        wait.add_argument("--timeout", type=float, required=True)
        wait.add_argument("--watch", action="append", default=[], metavar="WHAT=PID")
        if name == "wait-nodes":
            wait.add_argument("--nodes", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "head-address":
            print(*head_address())
        elif args.command == "free-ports":
            print(*free_ports(args.count))
        elif args.command == "wait-port":
            waited = wait_port(args.address, args.timeout, _watch_list(args.watch))
            print(f"the Ray head answers at {args.address} ({waited:.1f} s)")
        else:
            start = time.monotonic()
            alive = wait_nodes(args.address, args.nodes, args.timeout, _watch_list(args.watch))
            took = time.monotonic() - start
            print(f"Ray is up: {alive} of {args.nodes} nodes alive ({took:.1f} s)")
    except NotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
