"""Inputs ``render`` refuses, each with one line naming it, before anything is queued.

A job that waits a day in the queue and then fails on a typo costs the day; so
the sweep file is loaded as ``raysweep run`` loads it, and every job option is
checked by sbatch's rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raysweep.errors import SpecError
from raysweep.slurm import render
from tests.slurm.helpers import sweep_folder


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return sweep_folder(tmp_path / "sweep")


def refused(config: Path, **options: Any) -> str:
    """The one-line message of the SpecError ``render`` raises."""
    with pytest.raises(SpecError) as info:
        render(config, **options)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("options", "start"),
    [
        ({"nodes": 0}, "nodes: expected a positive integer, got 0"),
        ({"nodes": "2"}, "nodes: expected a positive integer, got '2' (str)"),
        ({"nodes": True}, "nodes: expected a positive integer, got True"),
        ({"nodes": 1.5}, "nodes: expected a positive integer"),
        ({"cpus_per_node": 0}, "cpus_per_node: expected a positive integer"),
        ({"gpus_per_node": 0}, "gpus_per_node: expected a positive integer or TYPE:COUNT"),
        ({"gpus_per_node": "a100"}, "gpus_per_node: expected"),
        ({"time": "1:5o:00"}, "time: expected a time limit in one of sbatch's forms"),
        ({"time": "2h"}, "time: expected a time limit"),
        ({"time": "1:60:00"}, "time: minutes and seconds must be below 60"),
        ({"time": "1-24:00:00"}, "time: minutes and seconds must be below 60 and hours"),
        ({"time": "0:00:00"}, "time: expected a time limit above zero"),
        ({"time": 0}, "time: expected a time limit in one of sbatch's forms"),
        ({"mem": "64GB"}, "mem: expected memory per node as sbatch takes it"),
        ({"mem": -1}, "mem: expected memory per node"),
        ({"partition": "gpu queue"}, "partition: expected a Slurm partition name"),
        ({"account": "a;b"}, "account: expected a Slurm account name"),
        ({"job_name": "my job"}, "job_name: expected at most 200 letters"),
        ({"requeue": "yes"}, "requeue: expected True or False"),
        ({"setup": 3}, "setup: expected shell lines"),
        ({"setup": "if true; then"}, "setup: the script is not valid bash with these lines"),
        ({"sbatch_options": ["qos=high"]}, "sbatch_options: expected options such as"),
        ({"sbatch_options": ["--nodes=3"]}, "sbatch_options: '--nodes=3' is set by the script "
                                            "itself; use nodes"),
        ({"sbatch_options": ["-N3"]}, "sbatch_options: '-N3' is set by the script itself"),
        ({"sbatch_options": ["--output=x.log"]}, "sbatch_options: '--output=x.log' is set"),
        ({"python": ""}, "python: expected the path of the Python"),
        ({"ready_timeout_s": 0}, "ready_timeout_s: expected a number of seconds > 0"),
    ],
)  # fmt: skip
def test_bad_option_is_one_line(config: Path, options: dict[str, Any], start: str) -> None:
    """A bad job option fails at render time with one line that starts with its name."""
    assert refused(config, **options).startswith(start)


@pytest.mark.parametrize(
    "time", ["90", 90, "30:00", "2:00:00", "100:00:00", "1-0", "1-12", "1-12:30", "7-00:00:00"]
)
def test_every_sbatch_time_form_is_accepted(config: Path, time: Any) -> None:
    """Each of sbatch's time forms (and minutes as an int) is written as given."""
    assert f"#SBATCH --time={time}\n" in render(config, time=time)


def test_memory_and_gpu_forms(config: Path) -> None:
    """Memory in megabytes or with a unit, GPUs as a count or TYPE:COUNT."""
    assert "#SBATCH --mem=4000\n" in render(config, mem=4000)
    assert "#SBATCH --mem=16G\n" in render(config, mem="16g")
    assert "#SBATCH --gpus-per-node=h100:8\n" in render(config, gpus_per_node="h100:8")


def test_typo_in_the_sweep_file(tmp_path: Path) -> None:
    """A misspelled key fails at render time, naming the file and the likely key."""
    config = sweep_folder(tmp_path / "sweep", num_trails=4)
    message = refused(config)
    assert message.startswith(f"{config}: unknown option 'num_trails'")
    assert "num_trials" in message


def test_bad_value_in_the_sweep_file(tmp_path: Path) -> None:
    """A bad value in the sweep file fails as `raysweep run` would, before the queue."""
    config = sweep_folder(tmp_path / "sweep", resources={"cpu": -1})
    assert refused(config).startswith(f"{config}: resources.cpu: ")


def test_missing_objective_module(tmp_path: Path) -> None:
    """An objective that does not import fails now, not on the cluster."""
    config = sweep_folder(tmp_path / "sweep", objective="nowhere:train")
    assert "nowhere" in refused(config)


def test_missing_sweep_file(tmp_path: Path) -> None:
    """A sweep file that is not there is named."""
    assert refused(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such sweep file"


def test_log_folder_with_a_double_quote(tmp_path: Path) -> None:
    """A storage folder sbatch's --output cannot name is refused, naming storage."""
    config = sweep_folder(tmp_path / 'say "hi"')
    assert refused(config).startswith("storage: Slurm's #SBATCH --output cannot name a folder")
