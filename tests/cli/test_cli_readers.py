"""``raysweep status`` and ``export`` on bad experiment files: exit 2, one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from raysweep.cli import cli
from tests.store.broken import BROKEN, good
from tests.store.helpers import fingerprint, v1_experiment

COMMANDS = (["status"], ["export", "--format", "json"], ["export", "--format", "csv"])


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_experiment_file_is_one_line_and_exit_2(
    tmp_path: Path, case: str, command: list[str]
) -> None:
    """A damaged, empty, foreign or hand-edited experiment gives one line naming the file."""
    make, fragment = BROKEN[case]
    folder = tmp_path / "runs" / "exp"
    make(folder)
    before = fingerprint(folder)
    result = CliRunner().invoke(cli, [command[0], str(folder), *command[1:]])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert str(folder / "experiment.db") in lines[0]
    assert fragment in lines[0]
    assert fingerprint(folder) == before


def test_status_of_a_v1_experiment(tmp_path: Path) -> None:
    """An experiment written by raysweep v1 shows its status; its folder is left byte-identical."""
    folder = v1_experiment(tmp_path, "sweep")
    before = fingerprint(folder)
    result = CliRunner().invoke(cli, ["status", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("v1-sweep (sweep): completed")
    assert "6 of 6: 3 completed, 3 failed" in result.stdout
    assert fingerprint(folder) == before


def test_export_of_a_v1_experiment_has_queued_at(tmp_path: Path) -> None:
    """The JSON export of a v1 experiment carries queued_at, backfilled with started_at."""
    import json

    folder = v1_experiment(tmp_path, "sweep")
    result = CliRunner().invoke(cli, ["export", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    trials = json.loads(result.stdout)["trials"]
    assert all(t["queued_at"] == t["started_at"] is not None for t in trials)


def test_status_reads_a_finished_experiment_without_creating_files(tmp_path: Path) -> None:
    """Reading a finished experiment leaves no -wal or -shm beside it."""
    folder = tmp_path / "runs" / "exp"
    good(folder)
    before = fingerprint(folder)
    for command in COMMANDS:
        result = CliRunner().invoke(cli, [command[0], str(folder), *command[1:]])
        assert result.exit_code == 0, result.output
    assert fingerprint(folder) == before
    assert list(before) == ["experiment.db"]


def test_status_by_file_url(tmp_path: Path) -> None:
    """status accepts the experiment as a file:// URL."""
    folder = tmp_path / "runs" / "exp"
    good(folder)
    result = CliRunner().invoke(cli, ["status", folder.as_uri()])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("exp (sweep): completed")
