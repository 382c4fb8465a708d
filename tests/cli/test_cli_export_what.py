"""raysweep export --what trials|reports|steps, in JSON and CSV, with ISO-8601 UTC times."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from raysweep.cli import cli
from tests.cli.test_cli_status import gradient_store, sweep_store
from tests.view.helpers import make_sweep

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_trial_times_are_iso_utc(tmp_path: Path) -> None:
    """Trial times (JSON and CSV) and report times are ISO-8601 UTC text with milliseconds."""
    store = sweep_store(tmp_path / "hand")
    started = store.get_trial(0).started_at
    store.close()
    data = json.loads(invoke(str(tmp_path / "hand")))
    first = data["trials"][0]
    assert started is not None
    assert first["started_at"] == datetime.fromtimestamp(started, tz=UTC).isoformat(
        timespec="milliseconds"
    )
    assert all(ISO.match(first[k]) for k in ("created_at", "ended_at"))
    assert ISO.match(data["experiment"]["started_at"])
    assert ISO.match(data["trials"][2]["intermediate"][0]["time"])
    assert data["trials"][2]["ended_at"] is None
    frame = pd.read_csv(io.StringIO(invoke(str(tmp_path / "hand"), "--format", "csv")))
    assert frame.loc[0, "started_at"] == first["started_at"]
    assert pd.isna(frame.loc[2, "ended_at"])


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_reports_are_a_long_table(storage: Path, fmt: str) -> None:
    """--what reports: one row per trial, step and metric, with ISO times."""
    folder = make_sweep(storage)
    text = invoke(str(folder), "--what", "reports", "--format", fmt)
    if fmt == "json":
        rows = json.loads(text)["reports"]
    else:
        rows = pd.read_csv(io.StringIO(text)).to_dict("records")
    assert len(rows) == 6 * 3
    assert set(rows[0]) == {"trial_id", "step", "metric", "value", "time", "time_total_s"}
    assert [(r["trial_id"], r["step"], r["metric"]) for r in rows[:3]] == [
        (0, 0, "loss"),
        (0, 1, "loss"),
        (0, 2, "loss"),
    ]
    assert all(ISO.match(r["time"]) for r in rows)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_steps_of_a_gradient_run(tmp_path: Path, fmt: str) -> None:
    """--what steps (a gradient run's default) has one row per step, with ISO times."""
    gradient_store(tmp_path / "grad")
    text = invoke(str(tmp_path / "grad"), "--what", "steps", "--format", fmt)
    assert text == invoke(str(tmp_path / "grad"), "--format", fmt)
    if fmt == "json":
        rows = json.loads(text)["steps"]
    else:
        rows = pd.read_csv(io.StringIO(text)).to_dict("records")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(ISO.match(r["time"]) for r in rows)


@pytest.mark.parametrize(
    ("kind", "what", "fragment"),
    [
        (
            "sweep",
            "steps",
            "--what steps: 'hand' is a sweep, which has no steps; "
            "use --what trials or --what reports",
        ),
        (
            "gradient",
            "reports",
            "--what reports: 'grad' is a gradient run, which has no reports; use --what steps",
        ),
        ("gradient", "trials", "which has no trials; use --what steps"),
    ],
)
def test_a_table_the_experiment_lacks_is_exit_2(
    tmp_path: Path, kind: str, what: str, fragment: str
) -> None:
    """Steps of a sweep, or reports/trials of a gradient run: one line, exit 2."""
    if kind == "sweep":
        sweep_store(tmp_path / "x").close()
    else:
        gradient_store(tmp_path / "x")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "x"), "--what", what])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: --what ")
    assert fragment in lines[0]
