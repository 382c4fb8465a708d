"""The dashboard's live experiment and its app, without a browser: versions, bounded
re-reads, ``since``, the served assets, and the CLI's refusals."""

from __future__ import annotations

import json
import socket
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from raysweep.cli import cli
from raysweep.dashboard import LiveExperiment, create_app, is_loopback
from raysweep.objectives import Objectives
from tests.report.helpers import make_sweep


class FakeExperiment:
    """A sweep held in memory whose ``refresh`` reports the changes a test made."""

    name = "fake"
    kind = "sweep"
    status = "running"
    spec: Mapping[str, Any] = {"num_trials": 5}
    objectives = Objectives.single("loss")
    best = None

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.pending = False
        self.reads = 0

    def add(self, trial_id: int, loss: float) -> None:
        self.rows.append(
            {"trial_id": trial_id, "state": "COMPLETED", "node": "n1", "config/x": loss,
             "metrics/loss": loss}
        )  # fmt: skip
        self.pending = True

    def refresh(self) -> bool:
        self.reads += 1
        changed, self.pending = self.pending, False
        return changed

    def trials_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def reports_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["trial_id", "step", "metric", "value"])

    def steps_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["step", "time"])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_store_is_read_at_most_once_per_interval_and_versions_follow_changes() -> None:
    """Polls within the interval do not touch the store; a change bumps the version once."""
    exp, clock = FakeExperiment(), Clock()
    live = LiveExperiment(lambda: exp, min_interval_s=1.0, clock=clock)
    exp.add(0, 0.5)
    assert live.poll() == 1
    assert exp.reads == 0
    clock.now = 1.0
    assert live.poll() == 2
    clock.now = 1.5
    assert live.poll() == 2
    assert exp.reads == 1
    clock.now = 3.0
    assert live.poll() == 2  # read, nothing changed
    assert exp.reads == 2


def test_since_the_current_version_answers_unchanged() -> None:
    """A client holding the current version gets ``changed: false`` and no payload."""
    exp = FakeExperiment()
    exp.add(0, 0.5)
    live = LiveExperiment(lambda: exp, min_interval_s=0.0)
    first = json.loads(live.trials_json(None))
    assert first["changed"] is True
    assert first["columns"][:3] == ["trial_id", "state", "node"]
    assert first["rows"] == [[0, "COMPLETED", "n1", 0.5, 0.5]]
    assert json.loads(live.trials_json(first["version"])) == {
        "version": first["version"],
        "changed": False,
    }
    exp.add(1, 0.25)
    later = json.loads(live.sections_json(first["version"]))
    assert later["changed"] is True
    history = next(s for s in later["sections"] if s["key"] == "history")
    assert history["figure"]["data"][1]["y"] == [0.5, 0.25]


def test_app_serves_its_own_scripts_and_the_json(tmp_path: Path) -> None:
    """The page loads plotly.js and its script from the app; the JSON has every section."""
    with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what is installed
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    client = TestClient(create_app(make_sweep(tmp_path), min_interval_s=0.0))
    page = client.get("/")
    assert page.status_code == 200
    assert 'src="static/plotly.min.js"' in page.text
    assert "http" not in page.text.split("<body")[0].replace("http-equiv", "")
    bundle = client.get("/static/plotly.min.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 1_000_000
    assert "Plotly" in client.get("/static/dashboard.js").text
    sections = client.get("/api/sections").json()
    assert [s["key"] for s in sections["sections"]] == [
        "history", "parallel", "importance", "slices", "contour", "intermediate", "timeline",
        "failed",
    ]  # fmt: skip
    trials = client.get("/api/trials").json()
    assert len(trials["rows"]) == 24
    again = client.get(f"/api/trials?since={trials['version']}").json()
    assert again == {"version": trials["version"], "changed": False}


def test_loopback_hosts() -> None:
    """Only loopback addresses count as private to this machine."""
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10")


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """No traceback when the port is in use: exit 2, naming the port and what to do."""
    directory = make_sweep(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["dashboard", str(directory), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dashboard_of_a_missing_experiment_is_exit_2(tmp_path: Path) -> None:
    """A wrong folder fails before anything listens."""
    result = CliRunner().invoke(cli, ["dashboard", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize("host", ["not a host name!"])
def test_an_unknown_host_is_exit_2(tmp_path: Path, host: str) -> None:
    """An interface that does not resolve is bad input."""
    result = CliRunner().invoke(cli, ["dashboard", str(make_sweep(tmp_path)), "--host", host])
    assert result.exit_code == 2
    assert "--host" in result.stderr
