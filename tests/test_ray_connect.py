"""Reaching Ray (``raysweep._ray.connect``): an address where nothing listens fails within
the connect time-out with one line naming it. Each case runs in its own process, so the
shared test Ray is never touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raysweep._ray import CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S, connect_timeout
from raysweep.errors import SpecError
from tests.conftest import REPO_ROOT

#: A bound on the whole child process (Python and Ray imports included). Ray on its own
#: keeps trying such an address for many minutes.
CHILD_S = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (free when it was picked)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sweep_file(folder: Path) -> Path:
    (folder / "objective.py").write_text("def train(config):\n    return config['x']\n")
    doc = {
        "name": "unreachable",
        "objective": "objective:train",
        "num_trials": 1,
        "storage": "runs",
        "space": {"x": {"type": "uniform", "low": 0.0, "high": 1.0}},
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_cli(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``raysweep run sweep.yaml ARGS`` in a child with a 2 s connect time-out and no Ray
    address but what ``env`` adds."""
    base = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    base["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), base.get("PYTHONPATH", "")])
    base[CONNECT_TIMEOUT_ENV] = "2"
    return subprocess.run(
        [sys.executable, "-m", "raysweep.cli", "run", str(sweep_file(folder)), *args],
        cwd=folder,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=CHILD_S,
    )


@pytest.mark.parametrize("scheme", ["", "ray://"], ids=["gcs", "ray-client"])
def test_an_address_where_nothing_listens_fails_in_one_line(tmp_path: Path, scheme: str) -> None:
    """--address host:port or ray://host:port with nothing listening: exit 1 after the
    connect time-out, one line on stderr naming the address, nothing stored."""
    address = f"{scheme}127.0.0.1:{free_port()}"
    out = run_cli(tmp_path, "--address", address, env={})
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: cannot connect to Ray at {scheme}")
    assert f":{address.rsplit(':', 1)[1]}: nothing answered within 2 s" in lines[0]
    assert "RAYSWEEP_CONNECT_TIMEOUT_S" in lines[0]
    assert not (tmp_path / "runs" / "unreachable").exists()


def test_ray_address_from_the_environment_is_named_as_such(tmp_path: Path) -> None:
    """An unreachable RAY_ADDRESS fails the same way and says where the address came from."""
    port = free_port()
    out = run_cli(tmp_path, env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"at 127.0.0.1:{port} (from RAY_ADDRESS): nothing answered within 2 s" in lines[0]


def test_a_malformed_address_is_bad_input(tmp_path: Path) -> None:
    """An address without a port is refused at once as bad input (exit 2), naming it."""
    out = run_cli(tmp_path, "--address", "headnode", env={})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "error: address: 'headnode' is not a Ray address; expected host:port (the head's GCS "
        "port, 6379 by default), ray://host:port (Ray Client, 10001 by default) or 'auto'"
    )


def test_connect_timeout_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The time-out given wins; else RAYSWEEP_CONNECT_TIMEOUT_S; else the default."""
    monkeypatch.delenv(CONNECT_TIMEOUT_ENV, raising=False)
    assert connect_timeout() == DEFAULT_CONNECT_TIMEOUT_S
    monkeypatch.setenv(CONNECT_TIMEOUT_ENV, "7.5")
    assert connect_timeout() == 7.5
    assert connect_timeout(3) == 3.0


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_bad_connect_timeout_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A time-out that is not a number of seconds > 0 is refused naming where it came from."""
    monkeypatch.setenv(CONNECT_TIMEOUT_ENV, value)
    with pytest.raises(SpecError, match=f"^{CONNECT_TIMEOUT_ENV}: expected a number of seconds"):
        connect_timeout()
    with pytest.raises(SpecError, match=r"^connect_timeout_s: expected"):
        connect_timeout(0.0)
