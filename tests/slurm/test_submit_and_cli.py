"""``raysweep slurm`` and ``raysweep.slurm.submit`` with a stand-in ``sbatch``.

The real ``sbatch`` is exercised by the ``cluster`` tests; here a small script
in its place records how it was called and answers as sbatch does, so what the
command prints, writes and exits with is checked in a second.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from raysweep.cli.slurm import slurm_command
from raysweep.errors import SpecError
from raysweep.slurm import SlurmError, render, submit
from tests.slurm.helpers import sweep_folder

ANSWERS = {
    "ok": 'echo "$@" > "$(dirname "$0")/called"\necho "4242;testcluster"\n',
    "refuses": 'echo "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n',
}


def fake_sbatch(folder: Path, answer: str) -> Path:
    """An executable ``sbatch`` in ``folder`` that answers as ``ANSWERS[answer]``."""
    folder.mkdir(exist_ok=True)
    path = folder / "sbatch"
    path.write_text("#!/bin/sh\n" + ANSWERS[answer])
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return sweep_folder(tmp_path / "sweep")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(slurm_command, [str(a) for a in args])


def test_writes_the_script_next_to_the_config(config: Path) -> None:
    """Without -o the script is <config>.slurm.sh beside the YAML, executable; its path is
    printed; the storage folder (where Slurm opens the log) exists afterwards."""
    result = invoke(config, "--nodes", "2", "--time", "30")
    assert result.exit_code == 0, result.output
    path = config.parent / "sweep.slurm.sh"
    assert result.stdout.strip() == str(path)
    assert path.read_text() == render(config, nodes=2, time="30")
    assert os.access(path, os.X_OK)
    assert (config.parent / "runs").is_dir()


def test_output_flag_and_every_option(config: Path, tmp_path: Path) -> None:
    """-o chooses the path; every flag reaches the script."""
    out = tmp_path / "jobs" / "job.sh"
    result = invoke(
        config, "-N", "3", "--cpus-per-node", "4", "--gpus-per-node", "2", "-t", "1:00:00",
        "-p", "gpu", "-A", "proj", "--mem", "8G", "--setup", "module load x",
        "--setup", "echo ready", "--requeue", "-J", "myjob", "--sbatch=--qos=high",
        "--ready-timeout", "60", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for line in ("--nodes=3", "--cpus-per-task=4", "--gpus-per-node=2", "--time=1:00:00",
                 "--partition=gpu", "--account=proj", "--mem=8G", "--requeue",
                 "--job-name=myjob", "--qos=high"):  # fmt: skip
        assert f"#SBATCH {line}\n" in text
    assert "module load x\necho ready\n" in text
    assert "READY_TIMEOUT_S=60\n" in text


def test_dry_run_prints_and_writes_nothing(config: Path) -> None:
    """--dry-run prints the script and creates no file or folder."""
    before = sorted(config.parent.iterdir())
    result = invoke(config, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == render(config)
    assert sorted(config.parent.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "nodes: expected a positive integer, got 0"),
        (["--time", "1:5o"], "time: expected a time limit"),
        (["--dry-run", "--submit"], "--dry-run prints the script and writes nothing"),
    ],
)
def test_bad_flags_are_one_line_exit_2(config: Path, args: list[str], message: str) -> None:
    """A bad flag is one line on stderr, exit 2, and no script is written."""
    result = invoke(config, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (config.parent / "sweep.slurm.sh").exists()


def test_sweep_file_typo_is_one_line_exit_2(tmp_path: Path) -> None:
    """A typo in the YAML is one line naming it, exit 2, nothing written."""
    config = sweep_folder(tmp_path / "sweep", searchr="random")
    result = invoke(config)
    assert result.exit_code == 2
    assert "unknown option 'searchr'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (config.parent / "sweep.slurm.sh").exists()


def test_submit_prints_the_job_id(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--submit runs `sbatch --parsable SCRIPT` and prints only the job id on stdout."""
    fake = fake_sbatch(tmp_path / "bin", "ok")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    result = invoke(config, "--submit")
    assert result.exit_code == 0, result.output
    assert result.stdout == "4242\n"
    called = (fake.parent / "called").read_text().split()
    assert called == ["--parsable", str(config.parent / "sweep.slurm.sh")]


def test_submit_without_sbatch_is_one_line_exit_2(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no sbatch on PATH, --submit says so in one line, exit 2; the script is kept."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke(config, "--submit")
    assert result.exit_code == 2
    assert "sbatch was not found on PATH" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (config.parent / "sweep.slurm.sh").is_file()


def test_submit_refused_by_sbatch_is_exit_1(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch refusing the script is one line with sbatch's reason, exit 1."""
    fake = fake_sbatch(tmp_path / "bin", "refuses")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    result = invoke(config, "--submit")
    assert result.exit_code == 1
    assert "invalid partition specified: nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_submit_api(config: Path, tmp_path: Path) -> None:
    """submit() returns the id sbatch gave and first creates the log's folder."""
    script = tmp_path / "job.sh"
    script.write_text(render(config, storage=tmp_path / "not yet"))
    assert submit(script, sbatch=str(fake_sbatch(tmp_path / "bin", "ok"))) == "4242"
    assert (tmp_path / "not yet").is_dir()


def test_submit_api_errors(config: Path, tmp_path: Path) -> None:
    """A missing script, a missing sbatch and a refusal each raise with one line."""
    with pytest.raises(SpecError, match="no such batch script"):
        submit(tmp_path / "nope.sh")
    script = tmp_path / "job.sh"
    script.write_text(render(config))
    with pytest.raises(SlurmError, match="'no-such-sbatch' was not found on PATH"):
        submit(script, sbatch="no-such-sbatch")
    with pytest.raises(SlurmError, match=r"sbatch refused .*: sbatch: error: invalid partition"):
        submit(script, sbatch=str(fake_sbatch(tmp_path / "bin", "refuses")))
