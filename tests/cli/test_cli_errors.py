"""The CLI's error policy, checked on the real command in a subprocess: bad input is
one ``error: ...`` line on stderr naming the field, exit code 2, no traceback, and
nothing written to the storage folder or to an existing experiment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from raysweep.errors import (
    InfeasibleSpaceError,
    MissingExtraError,
    RaysweepError,
    StoreWriteError,
    TooManyFailuresError,
)
from raysweep.store import SQLiteStore

SRC = Path(__file__).resolve().parents[2] / "src"

OBJECTIVE = """
def train(config):
    return (config["x"] - 1.0) ** 2
"""


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m raysweep.cli ARGS`` as a user would."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.pop("RAYSWEEP_DEBUG", None)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "raysweep.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sweep_folder(folder: Path, source: str = OBJECTIVE, **fields: Any) -> Path:
    """A sweep folder: objective.py and sweep.yaml (a valid sweep updated with ``fields``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(textwrap.dedent(source))
    doc: dict[str, Any] = {
        "name": "demo",
        "objective": "objective:train",
        "num_trials": 3,
        "storage": "runs",
        "space": {"x": {"type": "uniform", "low": 0.0, "high": 2.0}},
    }
    doc.update(fields)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], code: int, *fragments: str
) -> str:
    """Exit ``code``, exactly one ``error:`` line on stderr containing ``fragments``."""
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert proc.returncode == code, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("fields", "source", "fragments"),
    [
        ({"max_concurent": 2}, OBJECTIVE, ("max_concurent", "did you mean 'max_concurrent'")),
        ({"num_trials": 0}, OBJECTIVE, ("num_trials", "positive integer", "got 0")),
        ({"mode": "best"}, OBJECTIVE, ("mode", "'best'")),
        ({"objective": "objective:fit"}, OBJECTIVE, ("objective", "'fit'")),
        ({}, "import math\nboom = 1 / 0\n", ("objective", "objective.py:2", "ZeroDivisionError")),
        ({"space": {"x": {"type": "uniform", "low": 3, "high": 1}}}, OBJECTIVE, ("space", "'x'")),
        ({"constraints": ["x + z <= 1"]}, OBJECTIVE, ("constraints", "'z'")),
        ({"searcher": "hyperopt"}, OBJECTIVE, ("searcher", "'hyperopt'")),
        ({"resources": {"gpus": 1}}, OBJECTIVE, ("resources", "'gpus'")),
        ({"name": "a\nb"}, OBJECTIVE, ("name", "folder name")),
        ({"name": "x" * 300}, OBJECTIVE, ("name", "at most 200")),
        (
            {"resources": {"custom": {"ray": {"num_gpu": 1}}}},
            OBJECTIVE,
            ("resources.custom.ray", "'num_gpu'", "did you mean 'num_gpus'"),
        ),
        (
            {"runtime_env": {"working_dir": "no_such_dir"}},
            OBJECTIVE,
            ("runtime_env.working_dir", "no such folder"),
        ),
        ({"timeout_s": float("inf")}, OBJECTIVE, ("timeout_s", "inf")),
        ({"space": {"µ": {"type": "uniform", "low": 0, "high": 1}}}, OBJECTIVE, ("'µ'", "'μ'")),
        (
            {"space": {"x": {"type": "uniform", "low": -1e308, "high": 1e308}}},
            OBJECTIVE,
            ("space", "'x'", "overflows"),
        ),
    ],
)
def test_bad_sweep_file(
    tmp_path: Path, fields: dict[str, Any], source: str, fragments: tuple[str, ...]
) -> None:
    """Each kind of bad sweep file exits 2 with one line naming the field; nothing is stored."""
    config = sweep_folder(tmp_path, source, **fields)
    proc = cli("run", config, cwd=tmp_path)
    message = assert_one_line_error(proc, 2, *fragments)
    assert str(config.name) in message
    assert not (tmp_path / "runs").exists()


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error exits 2 with the line number."""
    config = sweep_folder(tmp_path)
    config.write_text("objective: objective:train\nspace: {x: [1, 2}\n")
    assert_one_line_error(cli("run", config, cwd=tmp_path), 2, "invalid YAML", "line 2")
    assert not (tmp_path / "runs").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    """A sweep file that does not exist exits 2 naming it."""
    assert_one_line_error(cli("run", "nope.yaml", cwd=tmp_path), 2, "nope.yaml")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("run", "sweep.yaml", "--num-trials", "0"), ("--num-trials", "0")),
        (("run", "sweep.yaml", "--num-trials", "many"), ("--num-trials", "many")),
        (("run", "sweep.yaml", "--num-trial", "5"), ("--num-trial", "--num-trials")),
        (("run",), ("CONFIG",)),
        (("runn", "sweep.yaml"), ("runn",)),
        (("run", "sweep.yaml", "--force"), ("--force", "--resume")),
        (("export", "runs/demo", "--format", "xml"), ("--format", "xml")),
    ],
)
def test_bad_usage(tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    """Bad command-line usage exits 2 with one line naming the option; nothing is stored."""
    sweep_folder(tmp_path)
    assert_one_line_error(cli(*args, cwd=tmp_path), 2, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["status", "export"])
def test_reading_a_missing_experiment(tmp_path: Path, command: str) -> None:
    """status and export of a folder without an experiment exit 2 naming the folder."""
    assert_one_line_error(cli(command, "runs/nothing", cwd=tmp_path), 2, "runs/nothing")
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_missing_experiment(tmp_path: Path) -> None:
    """--resume without a stored experiment exits 2 and creates nothing."""
    config = sweep_folder(tmp_path)
    assert_one_line_error(cli("run", config, "--resume", cwd=tmp_path), 2, "runs/demo")
    assert not (tmp_path / "runs" / "demo" / "experiment.db").exists()


def _existing_experiment(tmp_path: Path) -> Path:
    """A stored experiment of 3 trials (x in [0, 2]), run in-process without Ray."""
    from raysweep.sweep.api import run
    from raysweep.sweep.execution import InProcessBackend

    run(
        lambda config: (config["x"] - 1.0) ** 2,
        {"x": {"type": "uniform", "low": 0.0, "high": 2.0}},
        num_trials=3,
        name="demo",
        storage=tmp_path / "runs",
        seed=0,
        backend=InProcessBackend(),
    )
    return tmp_path / "runs" / "demo"


def _snapshot(directory: Path) -> tuple[bytes, list[dict[str, Any]], dict[str, Any]]:
    store = SQLiteStore.open(directory, readonly=True)
    try:
        trials = [t.to_dict() for t in store.trials()]
        spec = store.read_spec()
    finally:
        store.close()
    return (directory / "experiment.db").read_bytes(), trials, spec


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"num_trials": -5}, ("num_trials",)),
        ({"space": {"x": {"type": "uniform", "low": 0.0, "high": 5.0}}}, ("space", "--force")),
        ({"metric": "accuracy"}, ("metric", "--force")),
    ],
)
def test_bad_resume_leaves_the_experiment_untouched(
    tmp_path: Path, fields: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    """A --resume with a bad file or a changed space/metric exits 2; the db is byte-identical."""
    directory = _existing_experiment(tmp_path)
    before = _snapshot(directory)
    config = sweep_folder(tmp_path, **fields)
    assert_one_line_error(cli("run", config, "--resume", cwd=tmp_path), 2, *fragments)
    assert _snapshot(directory) == before


def test_new_run_over_an_existing_experiment(tmp_path: Path) -> None:
    """Running again without --resume exits 2, says how to resume, and changes nothing."""
    directory = _existing_experiment(tmp_path)
    before = _snapshot(directory)
    config = sweep_folder(tmp_path)
    assert_one_line_error(cli("run", config, cwd=tmp_path), 2, "already exists", "--resume")
    assert _snapshot(directory) == before


def test_debug_env_shows_the_traceback(tmp_path: Path) -> None:
    """RAYSWEEP_DEBUG=1 adds the traceback of an expected error; the exit code stays 2."""
    config = sweep_folder(tmp_path, num_trials=0)
    env = dict(os.environ, PYTHONPATH=str(SRC), RAYSWEEP_DEBUG="1")
    proc = subprocess.run(
        [sys.executable, "-m", "raysweep.cli", "run", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


# -- failures while running: run() replaced in-process, no Ray ------------------------


def _invoke_with_run_raising(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException, create: bool = False
) -> Any:
    """Invoke ``raysweep run`` in-process with raysweep.sweep.api.execute raising ``exc``."""
    from click.testing import CliRunner

    import raysweep.sweep.api
    from raysweep.cli import cli
    from raysweep.sweep.config import SweepConfig

    def failing_execute(config: SweepConfig) -> None:
        if create:
            SQLiteStore.create(config.directory, {"name": "demo"}).close()
        raise exc

    monkeypatch.setattr(raysweep.sweep.api, "execute", failing_execute)
    monkeypatch.chdir(tmp_path)
    config = sweep_folder(tmp_path)
    return CliRunner().invoke(cli, ["run", config.name, "--storage", "out"])


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (TooManyFailuresError("3 trials failed, more than max_failures=2"), "raysweep status"),
        (InfeasibleSpaceError("no feasible configuration in 1000 tries"), "1000 tries"),
        (RaysweepError("something raysweep knows about"), "knows about"),
        (PermissionError(13, "Permission denied", "out"), "Permission denied"),
        (StoreWriteError("runs/demo/experiment.db: cannot write: disk full"), "disk full"),
    ],
)
def test_failures_while_running_exit_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException, fragment: str
) -> None:
    """A run that starts and cannot finish exits 1 with one error line and no traceback."""
    result = _invoke_with_run_raising(monkeypatch, tmp_path, exc)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_interrupt_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ctrl-C after the experiment was created exits 130 with the command that resumes it."""
    result = _invoke_with_run_raising(monkeypatch, tmp_path, KeyboardInterrupt(), create=True)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert "stored in out/demo" in message
    assert "raysweep run sweep.yaml --resume --storage out" in message


def test_interrupt_before_anything_was_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C before the experiment exists exits 130 and says nothing is stored."""
    result = _invoke_with_run_raising(monkeypatch, tmp_path, KeyboardInterrupt())
    assert result.exit_code == 130
    assert "nothing is stored" in result.stderr


def test_unexpected_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bug (an exception raysweep does not expect) shows its traceback and exits 1."""
    result = _invoke_with_run_raising(monkeypatch, tmp_path, ZeroDivisionError("bug"))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "ZeroDivisionError: bug" in result.stderr


def test_a_run_with_no_completed_trial_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run that ends with no COMPLETED trial exits 1 with one line: counts and last error."""
    from click.testing import CliRunner

    import raysweep.sweep.api
    from raysweep.cli import cli
    from raysweep.objectives import Objectives
    from raysweep.sweep.config import SweepConfig
    from raysweep.sweep.result import Result
    from raysweep.trial import Trial, TrialState

    def all_failed(config: SweepConfig) -> Result:
        trials = tuple(
            Trial(i, TrialState.FAILED, {"x": 0.5}, error=f"Traceback ...\nValueError: bad {i}")
            for i in range(3)
        )
        return Result("demo", config.directory, Objectives.single("loss"), trials, "done")

    monkeypatch.setattr(raysweep.sweep.api, "execute", all_failed)
    monkeypatch.chdir(tmp_path)
    config = sweep_folder(tmp_path)
    result = CliRunner().invoke(cli, ["run", config.name])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no trial completed (3 failed; done)")
    assert "last error (trial 2): ValueError: bad 2" in lines[0]


def test_help_documents_the_exit_codes() -> None:
    """raysweep --help lists what each exit code means."""
    from click.testing import CliRunner

    from raysweep.cli import cli

    text = CliRunner().invoke(cli, ["--help"]).output
    for line in ("0    done", "1    the run failed", "2    bad input", "130  interrupted"):
        assert line in text


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({"storage": "blocked"}, ("storage", "blocked")),
        ({"searcher": "grid"}, ("grid", "continuous")),
    ],
)
def test_bad_input_found_before_ray_starts(
    tmp_path: Path, fields: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    """Problems seen only when the run starts still exit 2 before Ray is reached.

    The address points at nothing: had raysweep tried to connect first, the error
    would be about the address instead.
    """
    (tmp_path / "blocked").write_text("a file where a folder should be")
    config = sweep_folder(tmp_path, **fields)
    proc = cli("run", config, "--address", "127.0.0.1:9", cwd=tmp_path)
    message = assert_one_line_error(proc, 2, *fragments)
    assert "127.0.0.1:9" not in message
    assert (tmp_path / "blocked").read_text() == "a file where a folder should be"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("target", "code", "fragment"),
    [
        ("out_dir", 2, "is a directory"),
        ("missing/out.json", 2, "No such file"),
        ("/dev/full", 1, "No space left"),
    ],
)
def test_export_to_a_target_that_cannot_be_written(
    tmp_path: Path, target: str, code: int, fragment: str
) -> None:
    """export -o names the file it cannot write, and leaves no partial file behind."""
    import shutil

    fixture = Path(__file__).resolve().parents[1] / "store" / "fixtures" / "v1-sweep.db"
    (tmp_path / "exp").mkdir()
    shutil.copyfile(fixture, tmp_path / "exp" / "experiment.db")
    (tmp_path / "out_dir").mkdir()
    proc = cli("export", "exp", "-o", target, cwd=tmp_path)
    assert_one_line_error(proc, code, "--output", target, fragment)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_missing_extra_is_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A command whose optional library is missing exits 2 with the pip line, like a
    searcher whose library is missing: found before anything ran."""
    from click.testing import CliRunner

    from raysweep.cli.main import cli as group
    from tests.view.helpers import make_sweep

    folder = make_sweep(tmp_path / "runs")

    def missing(*args: Any, **kwargs: Any) -> None:
        raise MissingExtraError("plotly", "report", "raysweep report")

    monkeypatch.setattr("raysweep.plots.write_report", missing)
    done = CliRunner().invoke(group, ["report", str(folder), "-o", str(tmp_path / "x.html")])
    assert done.exit_code == 2, done.output
    assert 'pip install "raysweep[report]"' in done.output
