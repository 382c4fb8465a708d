"""``raysweep run`` end to end on the shared local Ray: a YAML sweep runs, its
objective ships from a folder workers do not have, and status, export and
``--resume --num-trials`` work on what it stored."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from raysweep.cli import cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

OBJECTIVE = """
import raysweep

def train(config):
    loss = (config["x"] - 1.0) ** 2 + config["offset"]
    for step in range(3):
        raysweep.report(step=step, loss=loss + 1.0 / (step + 1))
    return {"loss": loss, "double": 2 * loss}
"""


def sweep_folder(folder: Path, **fields: Any) -> Path:
    """objective.py and sweep.yaml in ``folder`` (not on the workers' path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(textwrap.dedent(OBJECTIVE))
    doc: dict[str, Any] = {
        "name": "cli",
        "objective": "objective:train",
        "metric": "loss",
        "mode": "min",
        "searcher": {"name": "sobol"},
        "num_trials": 4,
        "max_concurrent": 2,
        "seed": 1,
        "storage": "runs",
        "space": {"x": {"type": "uniform", "low": 0.0, "high": 2.0}, "offset": 0.5},
        "constraints": ["x * 2 <= 3.5"],
    }
    doc.update(fields)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_run_then_status_and_export(ray_session: None, tmp_path: Path) -> None:
    """A YAML sweep runs to the end; status and both exports describe the stored trials."""
    config = sweep_folder(tmp_path / "sweep")
    output = invoke("run", str(config))
    directory = tmp_path / "sweep" / "runs" / "cli"
    assert "best trial" in output
    assert "offset = 0.5" in output
    assert f"raysweep status {directory}" in output

    status = invoke("status", str(directory))
    assert "cli (sweep): completed" in status
    assert "4 of 4: 4 completed" in status

    frame = pd.read_csv(io.StringIO(invoke("export", str(directory), "--format", "csv")))
    assert len(frame) == 4
    assert (frame["state"] == "COMPLETED").all()
    assert (frame["config/x"] * 2 <= 3.5).all()
    assert (frame["metrics/double"] == 2 * frame["metrics/loss"]).all()

    data = json.loads(invoke("export", str(directory), "--format", "json"))
    assert data["experiment"]["status"] == "completed"
    assert data["experiment"]["searcher"]["name"] == "sobol"
    assert len(data["trials"]) == 4
    assert [r["step"] for r in data["trials"][0]["intermediate"]] == [0, 1, 2]


def test_resume_with_more_trials_extends(ray_session: None, tmp_path: Path) -> None:
    """--resume --num-trials N continues the stored experiment up to N trials in all."""
    config = sweep_folder(tmp_path / "sweep", num_trials=2, searcher="random")
    storage = tmp_path / "elsewhere"
    invoke("run", str(config), "--storage", str(storage), "--name", "ext")
    invoke(
        "run",
        str(config),
        "--storage",
        str(storage),
        "--name",
        "ext",
        "--resume",
        "--num-trials",
        "5",
    )
    status = invoke("status", str(storage / "ext"))
    assert "5 of 5: 5 completed" in status
    data = json.loads(invoke("export", str(storage / "ext")))
    assert [t["trial_id"] for t in data["trials"]] == [0, 1, 2, 3, 4]
    assert not (tmp_path / "sweep" / "runs").exists()


def _cli_in_a_fresh_process(folder: Path, *, terminal: bool) -> str:
    """Run ``raysweep run sweep.yaml`` in its own process (its own Ray); return what it
    printed. With ``terminal``, its output is a pseudo-terminal, as for a user."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    env.update(COLUMNS="120", TERM="xterm")
    command = [sys.executable, "-m", "raysweep.cli", "run", str(folder / "sweep.yaml")]
    if not terminal:
        proc = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=240
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=240) == 0
    return b"".join(chunks).decode(errors="replace")


def test_output_says_what_happens_from_the_start_in_logs(tmp_path: Path) -> None:
    """In a log, the first line says Ray is starting, then plain progress lines, then the best."""
    sweep_folder(tmp_path / "sweep")
    lines = _cli_in_a_fresh_process(tmp_path / "sweep", terminal=False).splitlines()
    assert lines[0].startswith("starting Ray (")
    assert lines[1].startswith("experiment cli: 4 trials, 2 at a time, minimizing loss")
    assert any("completed loss=" in line for line in lines)
    assert any(line.startswith("best trial ") for line in lines)


def test_output_on_a_terminal_is_the_live_display(tmp_path: Path) -> None:
    """On a terminal the notes come first and the live display draws counts and the best."""
    sweep_folder(tmp_path / "sweep")
    text = _cli_in_a_fresh_process(tmp_path / "sweep", terminal=True)
    assert text.index("starting Ray (") < text.index("best ")
    assert "running" in text
    assert "completed 4" in text
    assert "\x1b[" in text  # the display redraws with terminal control sequences
