"""raysweep ls: one line per experiment under a storage folder; junk skipped, damage listed."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from raysweep.cli import cli
from tests.cli.test_cli_status import gradient_store
from tests.store.broken import BROKEN
from tests.view.helpers import make_sweep, make_two_metric_sweep


def test_ls_lists_every_kind_skips_junk_and_names_damage(storage: Path) -> None:
    """Sweeps, a two-metric sweep and a gradient run are listed by name; a folder without an
    experiment and a stray file are skipped; a damaged store is listed with its problem."""
    make_sweep(storage, name="alpha")
    make_two_metric_sweep(storage, name="beta")
    gradient_store(storage / "grad")
    (storage / "notes").mkdir()
    (storage / "notes" / "readme.txt").write_text("not an experiment")
    (storage / "stray.txt").write_text("junk")
    make, fragment = BROKEN["empty"]
    make(storage / "delta")
    result = CliRunner().invoke(cli, ["ls", str(storage)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "kind", "status", "trials/steps", "best", "last", "change"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["alpha", "beta", "delta", "grad"]
    alpha, beta, delta, grad = lines[1:]
    assert "sweep" in alpha
    assert "completed" in alpha
    assert "6/6: " in alpha
    assert "loss=" in alpha
    assert "pareto front of " in beta
    assert "unreadable" in delta
    assert fragment in delta
    assert "gradient" in grad
    assert "3/10 steps" in grad
    assert "loss=0.3333" in grad


def test_ls_defaults_to_the_default_storage(tmp_path: Path) -> None:
    """Without STORAGE, ls lists ./runs, the default storage of a sweep."""
    make_sweep(tmp_path / "runs", name="here")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(cli, ["ls"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("here ")


def test_ls_of_a_missing_folder_is_exit_2(tmp_path: Path) -> None:
    """A storage folder that does not exist is one line, exit 2."""
    result = CliRunner().invoke(cli, ["ls", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: storage: there is no folder {tmp_path / 'nope'}"


def test_ls_of_an_empty_folder_says_so(tmp_path: Path) -> None:
    """A folder without experiments says there are none."""
    result = CliRunner().invoke(cli, ["ls", tmp_path.as_uri()])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no experiments in ")
