"""The driver judgement behind ``raysweep status``: interrupted, unresponsive or running."""

from __future__ import annotations

import os
import pickle
import socket

import pytest

from raysweep.store import DriverState, heartbeat, judge_driver, process_alive

HERE = "this-host"


def _beat(time: float, interval: float = 60.0, host: str = "node-7", pid: int = 4242) -> dict:
    return {"host": host, "pid": pid, "time": time, "interval_s": interval}


def _dead(pid: int) -> bool:
    return False


def _alive(pid: int) -> bool:
    return True


def test_fresh_heartbeat_is_running() -> None:
    """A heartbeat within three intervals means running, with its host, pid and time."""
    verdict = judge_driver(None, _beat(1000.0), now=1000.0 + 179.0, this_host=HERE)
    assert verdict.state is DriverState.RUNNING
    assert (verdict.host, verdict.pid, verdict.last_seen) == ("node-7", 4242, 1000.0)


def test_stale_heartbeat_is_unresponsive() -> None:
    """A heartbeat older than three intervals means an unresponsive driver."""
    verdict = judge_driver(None, _beat(1000.0), now=1000.0 + 181.0, this_host=HERE)
    assert verdict.state is DriverState.UNRESPONSIVE
    assert verdict.last_seen == 1000.0


def test_dead_pid_on_this_host_is_interrupted_before_any_heartbeat_check() -> None:
    """A driver on this host whose process is gone is interrupted, even with a fresh heartbeat."""
    driver = {"host": HERE, "pid": 77}
    verdict = judge_driver(
        driver, _beat(1000.0, host=HERE, pid=77), now=1001.0, this_host=HERE, alive=_dead
    )
    assert verdict.state is DriverState.INTERRUPTED
    assert verdict.pid == 77


def test_live_pid_with_a_stale_heartbeat_is_unresponsive() -> None:
    """A live (or reused) pid does not hide a heartbeat that stopped: the driver hangs."""
    driver = {"host": HERE, "pid": 77}
    beat = _beat(0.0, interval=10.0, host=HERE, pid=77)
    verdict = judge_driver(driver, beat, now=31.0, this_host=HERE, alive=_alive)
    assert verdict.state is DriverState.UNRESPONSIVE


def test_a_driver_elsewhere_is_never_checked_by_pid() -> None:
    """A pid on another host is not looked up here; without a heartbeat it counts as running."""
    verdict = judge_driver(
        {"host": "elsewhere", "pid": 1}, None, now=0.0, this_host=HERE, alive=_dead
    )
    assert verdict.state is DriverState.RUNNING


def test_heartbeat_alone_identifies_the_driver() -> None:
    """Without a driver record (gradient runs), the heartbeat's host and pid are checked."""
    verdict = judge_driver(None, _beat(5.0, host=HERE), now=6.0, this_host=HERE, alive=_dead)
    assert verdict.state is DriverState.INTERRUPTED


@pytest.mark.parametrize(
    "beat",
    [
        "garbage",
        {"time": "yesterday", "interval_s": 60.0},
        {"time": 0.0, "interval_s": 0.0},
        {"time": 0.0, "interval_s": float("nan")},
        {"time": True, "interval_s": 1.0},
        {"host": 5, "pid": "x"},
    ],
)
def test_a_malformed_heartbeat_is_ignored(beat: object) -> None:
    """A hand-edited or half-written heartbeat never fails status; it counts as none."""
    verdict = judge_driver(None, beat, now=10**9, this_host=HERE, alive=_dead)
    assert verdict.state is DriverState.RUNNING


def test_heartbeat_record_names_this_process() -> None:
    """heartbeat() stores this host, this pid, the time given and the promised interval."""
    beat = heartbeat(30.0, now=123.0)
    assert beat == {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": 123.0,
        "interval_s": 30.0,
    }
    assert (
        judge_driver(None, beat, now=124.0, this_host=socket.gethostname()).state
        is DriverState.RUNNING
    )


@pytest.mark.parametrize("interval", [0, -1.0, float("inf"), "60"])
def test_heartbeat_needs_a_positive_interval(interval: object) -> None:
    """An interval that could never go stale (or always would) is refused."""
    with pytest.raises(ValueError, match="interval_s"):
        heartbeat(interval)  # type: ignore[arg-type]


def test_process_alive_knows_this_process_and_a_reaped_one() -> None:
    """process_alive is true for this process and false for a child that has exited."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_alive(os.getpid())
    assert not process_alive(child.pid)


def test_verdict_pickles() -> None:
    """A verdict survives a pickle round trip."""
    verdict = judge_driver(None, _beat(0.0), now=1.0, this_host=HERE)
    assert pickle.loads(pickle.dumps(verdict)) == verdict
