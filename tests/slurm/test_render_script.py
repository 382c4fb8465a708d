"""``render`` for a Python script (a gradient fit): ``python SCRIPT ARGS`` with
``RAY_ADDRESS``, checked on the login node like a sweep file."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raysweep.errors import SpecError
from raysweep.slurm import render
from tests.slurm.helpers import code_lines, first_index, sbatch_lines, sweep_folder


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "my fit" / "fit.py"
    path.parent.mkdir()
    path.write_text("import sys\nprint(sys.argv)\n")
    return path


def test_script_runs_with_ray_address_after_the_cluster_is_up(script: Path) -> None:
    """The driver is the script, run with its arguments once every node is alive,
    pointed at the job's head through RAY_ADDRESS; no `raysweep run`."""
    text = render(script, nodes=2, script_args=["--lr", "0.1 x", "$HOME"])
    lines = code_lines(text)
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert f"SCRIPT={shlex.quote(str(script))}" in lines
    assert "SCRIPT_ARGS=(--lr '0.1 x' '$HOME')" in lines
    ready = first_index(lines, "wait-nodes")
    assert first_index(lines, r'^export RAY_ADDRESS="\$ADDRESS"$') > ready
    assert first_index(lines, r'^"\$PYTHON" "\$SCRIPT" ') > ready
    assert "raysweep.cli" not in text
    assert "--resume auto" not in "\n".join(lines)


def test_script_args_survive_bash_as_given(script: Path, tmp_path: Path) -> None:
    """The arguments reach the script exactly (blanks, quotes, `$`), and none at all works
    under `set -u`."""
    for args in (["a b", "it's", "$HOME", "--x=1"], []):
        text = render(script, script_args=args)
        settings = [line for line in code_lines(text) if line.startswith("SCRIPT_ARGS=")]
        show = shlex.join([sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv))"])
        probe = f'set -u\n{settings[0]}\n{show} ${{SCRIPT_ARGS[@]+"${{SCRIPT_ARGS[@]}}"}}'
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == ["-c", *args]


def test_log_and_job_name_come_from_the_script(script: Path) -> None:
    lines = sbatch_lines(render(script))
    assert f'--output="{script.parent}/fit.slurm-%j.log"' in lines
    assert "--job-name=raysweep-fit" in lines


def refused(path: Path, **options: Any) -> str:
    with pytest.raises(SpecError) as info:
        render(path, **options)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_bad_scripts_are_refused_before_the_queue(tmp_path: Path, script: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    assert refused(bad).startswith(f"config: {str(bad)!r} is not valid Python: ")
    assert "(line 1)" in refused(bad)
    missing = tmp_path / "nope.py"
    assert refused(missing) == f"config: no such Python script: {str(missing)!r}"
    folder = tmp_path / "folder.py"
    folder.mkdir()
    assert refused(folder).startswith(f"config: cannot read {str(folder)!r}")
    assert refused(script, storage="/shared/runs").startswith(
        "storage: a Python script names its own storage"
    )
    assert refused(script, script_args="--lr 1").startswith("script_args: expected a list")
    assert refused(script, nodes=0).startswith("nodes: expected a positive integer")


def test_a_sweep_file_takes_no_script_args(tmp_path: Path) -> None:
    config = sweep_folder(tmp_path / "sweep")
    assert refused(config, script_args=["--lr", "1"]).startswith(
        "script_args: arguments go to a Python script (.py)"
    )
