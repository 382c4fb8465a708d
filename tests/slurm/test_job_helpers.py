"""The steps the batch script runs inside the job (``raysweep.slurm._job``).

Waits end on the event or fail with one line saying what was missing; a watched
process (a Ray node's srun) that ended fails the wait at once. The waits on a
real two-node cluster run in ``test_slurm_cluster.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from raysweep.slurm._job import NotReady, free_ports, main, wait_nodes, wait_port


@pytest.fixture
def listening() -> Iterator[str]:
    """host:port of a socket that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def closed() -> str:
    """host:port where nothing listens (a port that was free a moment ago)."""
    return f"127.0.0.1:{free_ports(1)[0]}"


@pytest.fixture
def ended_pid() -> int:
    """The PID of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_free_ports_are_distinct_and_free() -> None:
    """The ports differ from each other and can be bound right away."""
    ports = free_ports(4)
    assert len(set(ports)) == 4
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("", port))


def test_wait_port_returns_once_it_answers(listening: str) -> None:
    """A port that accepts connections ends the wait."""
    assert wait_port(listening, timeout_s=30) >= 0


def test_wait_port_times_out_with_the_reason(closed: str) -> None:
    """Nothing listening: after the time-out, one line naming the address and why."""
    with pytest.raises(NotReady, match=r"the Ray head at 127\.0\.0\.1:\d+ did not accept "):
        wait_port(closed, timeout_s=0.1)


def test_a_watched_process_that_ended_fails_the_wait_at_once(closed: str, ended_pid: int) -> None:
    """A Ray node's srun that has ended is reported instead of waiting out the time-out."""
    with pytest.raises(NotReady, match=rf"the Ray head's srun \(pid {ended_pid}\) ended"):
        wait_port(closed, timeout_s=600, watch=[("the Ray head's srun", ended_pid)])
    with pytest.raises(NotReady, match="ended before the Ray cluster was up"):
        wait_nodes(closed, 2, timeout_s=600, watch=[("the Ray head's srun", ended_pid)])


@pytest.mark.ray
def test_wait_nodes_counts_alive_nodes(ray_session: None) -> None:
    """The count of alive Ray nodes ends the wait; too few after the time-out is one
    line with the count (the session's Ray has one node)."""
    import ray

    address = ray.get_runtime_context().gcs_address
    assert wait_nodes(address, 1, timeout_s=60) == 1
    with pytest.raises(NotReady, match=r"^1 of 2 Ray nodes alive after 0\.5 s"):
        wait_nodes(address, 2, timeout_s=0.5)
    assert ray.is_initialized()  # the session's Ray is left as it was


def test_main_prints_and_exits(
    listening: str, closed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands print their result, or one `error:` line and exit 1."""
    assert main(["free-ports", "3"]) == 0
    assert len(capsys.readouterr().out.split()) == 3
    assert main(["wait-port", listening, "--timeout", "30"]) == 0
    assert f"the Ray head answers at {listening}" in capsys.readouterr().out
    assert main(["wait-port", closed, "--timeout", "0.1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Ray head at ")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit, match="--watch: expected WHAT=PID"):
        main(["wait-port", closed, "--timeout", "1", "--watch", "nopid"])
