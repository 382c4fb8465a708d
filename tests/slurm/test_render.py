"""``raysweep.slurm.render``: the batch script's parts, and inputs refused before the queue.

The script itself runs in the ``cluster`` tests (``test_slurm_cluster.py``); here
its text is checked: valid bash, the ``#SBATCH`` lines, setup first, every Ray
process under one auth mode, a bounded readiness wait, an EXIT trap that stops
only what the script started, and one-line errors for bad options or sweep files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raysweep.slurm import default_script_path, render
from tests.slurm.helpers import code_lines, first_index, sbatch_lines, sweep_folder

FULL: dict[str, Any] = {
    "nodes": 3,
    "cpus_per_node": 8,
    "gpus_per_node": "a100:2",
    "time": "1-12:00:00",
    "partition": "gpu",
    "account": "proj-42",
    "mem": "64G",
    "requeue": True,
    "setup": "module load cuda/12\nsource /opt/venv/bin/activate",
    "sbatch_options": ["--qos=high"],
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return sweep_folder(tmp_path / "sweep")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash to parse the script")
@pytest.mark.parametrize("options", [{}, FULL], ids=["defaults", "every-option"])
def test_script_is_valid_bash(config: Path, options: dict[str, Any]) -> None:
    """The script parses as bash, with the defaults and with every option."""
    script = render(config, **options)
    done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert script.startswith("#!/bin/bash\n")


def test_sbatch_lines_hold_every_option(config: Path) -> None:
    """Each option becomes its #SBATCH line, and the log goes next to the experiment."""
    script = render(config, **FULL)
    assert sbatch_lines(script) == [
        "--job-name=raysweep-demo",
        "--nodes=3",
        "--ntasks-per-node=1",
        "--cpus-per-task=8",
        "--gpus-per-node=a100:2",
        "--time=1-12:00:00",
        "--partition=gpu",
        "--account=proj-42",
        "--mem=64G",
        "--requeue",
        f"--output={config.parent / 'runs'}/demo.slurm-%j.log",
        "--qos=high",
    ]


def test_sbatch_lines_come_before_any_command(config: Path) -> None:
    """sbatch reads #SBATCH lines only up to the first command: all of them are above it."""
    lines = render(config, **FULL).splitlines()
    last_sbatch = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    first_code = min(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    assert last_sbatch < first_code


def test_defaults_take_whole_nodes(config: Path) -> None:
    """Without CPUs per node the job takes whole nodes, Ray offers what Slurm gave,
    there is no GPU line, no requeue, and the job is named after the experiment."""
    script = render(config)
    options = sbatch_lines(script)
    assert "--exclusive" in options
    assert "--nodes=1" in options
    assert not any(
        o.startswith(("--cpus-per-task", "--gpus", "--time", "--requeue")) for o in options
    )
    assert 'RAY_NUM_CPUS=""' in script
    assert '--num-cpus="${RAY_NUM_CPUS:-$SLURM_CPUS_ON_NODE}"' in script
    assert "--num-gpus" not in script


def test_gpus_reach_srun_and_ray(config: Path) -> None:
    """GPUs per node are asked for by each Ray node's srun and offered by its Ray node."""
    script = render(config, nodes=2, gpus_per_node=4)
    assert "--num-gpus=4" in script
    assert sum("--gpus-per-node=4" in line for line in code_lines(script)) == 2


def test_setup_lines_run_first(config: Path) -> None:
    """The setup lines are in the script as given, before Ray or Python is started."""
    script = render(config, setup=["module load cuda/12", "export FOO='a b'"])
    lines = code_lines(script)
    setup = first_index(lines, r"^module load cuda/12$")
    assert lines[setup + 1] == "export FOO='a b'"
    assert setup < first_index(lines, r"^PYTHON=")
    assert setup < first_index(lines, r"^srun ")


def export_before_srun(lines: list[str], name: str) -> bool:
    """Whether ``name`` is exported before the first srun (srun passes it on)."""
    return first_index(lines, rf"^export {name}=") < first_index(lines, r"^srun ")


def test_auth_mode_is_set_for_every_ray_process(config: Path) -> None:
    """RAY_AUTH_MODE is exported before the first Ray process and driver start, so the
    head, the workers (srun passes the environment on) and the driver agree."""
    lines = code_lines(render(config, nodes=2))
    export = first_index(lines, r"^export RAY_AUTH_MODE=disabled$")
    assert export < first_index(lines, r"head-address")
    assert export < first_index(lines, r"^srun ")


def test_head_then_workers_then_readiness_then_driver(config: Path) -> None:
    """The head starts on the batch host, the job waits until it answers, starts a worker
    on every other node, waits until all nodes are alive, and only then runs the driver."""
    lines = code_lines(render(config, nodes=2))
    head = first_index(lines, r'^srun --nodes=1 --ntasks=1 .*-w "\$HEAD" .*ray_node head')
    head_port = first_index(lines, r"_job wait-port \"\$ADDRESS\"")
    workers = first_index(lines, r"^srun --nodes=\$\(\(NODES - 1\)\)")
    ready = first_index(lines, r"_job wait-nodes \"\$ADDRESS\" --nodes \"\$NODES\"")
    driver = first_index(lines, r'raysweep\.cli "\$\{ARGS\[@\]\}" &$')
    assert head < head_port < workers < ready < driver
    assert "--exclude=\"$HEAD\" bash -c 'ray_node worker' &" in lines[workers + 1]
    assert "--timeout" in lines[ready + 1]


def test_each_ray_node_has_its_own_ports_and_temp_dir(config: Path) -> None:
    """Ray nodes pick free ports and a temp dir of their own on their host, so several
    nodes (of this job or others) can share one; worker ports are left to the OS."""
    script = render(config, nodes=2)
    assert 'dir="/tmp/rs-$SLURM_JOB_ID-$SLURMD_NODENAME"' in script
    assert "_job free-ports 2" in script
    assert '--dashboard-agent-listen-port="$agent_port"' in script
    assert '--ray-client-server-port="$client_port"' in script
    assert "--min-worker-port=0 --max-worker-port=0" in script
    assert sum("--block" in line for line in code_lines(script)) == 1  # both kinds' args


def test_exit_trap_stops_only_what_the_script_started(config: Path) -> None:
    """An EXIT trap kills the PIDs the script recorded (driver, sruns); SIGTERM exits
    through it; no `ray stop` anywhere, which would stop other jobs' Ray too."""
    script = render(config, nodes=2)
    lines = code_lines(script)
    assert "trap stop_started EXIT" in lines
    assert any(line.startswith("trap ") and line.endswith("TERM") for line in lines)
    assert 'for pid in $STARTED; do kill -TERM "$pid"' in script
    for started in ("HEAD_PID", "WORKERS_PID", "DRIVER_PID"):
        assert f'STARTED="${started} $STARTED"' in lines
    assert not [line for line in lines if re.search(r"\bray\b.*\bstop\b", line)]
    assert not [line for line in lines if re.search(r"\b(pkill|killall)\b", line)]
    # Ray 2.60 drains a node on SIGTERM for up to 30 s: the job's nodes skip that.
    assert export_before_srun(lines, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S")


def test_no_fixed_sleep(config: Path) -> None:
    """Readiness is waited for by a bounded poll, never by a fixed `sleep`."""
    lines = code_lines(render(config, nodes=4))
    assert not [line for line in lines if re.search(r"\bsleep\b", line)]


def test_driver_resumes_when_the_experiment_exists(config: Path) -> None:
    """The driver joins the job's cluster and runs with --resume auto, so a resubmitted
    job continues the experiment."""
    script = render(config)
    assert 'ARGS=(run "$CONFIG" --address "$ADDRESS" --resume auto)' in script
    assert f"CONFIG={config.resolve()}" in script
    assert f"STORE={config.parent.resolve() / 'runs' / 'demo'}" in script
    assert f"PYTHON={sys.executable}" in script


def test_storage_override_is_absolute(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--storage is read against the current directory, as `raysweep run` reads it, and
    handed to the driver as an absolute path; the log follows it."""
    monkeypatch.chdir(tmp_path)
    script = render(config, storage="elsewhere")
    where = tmp_path / "elsewhere"
    assert f"--resume auto --storage {where})" in script
    assert f"STORE={where / 'demo'}" in script
    assert f"--output={where}/demo.slurm-%j.log" in sbatch_lines(script)


def test_paths_with_blanks_are_quoted(tmp_path: Path) -> None:
    """A sweep in a folder with a blank: shell-quoted in bash, double-quoted for sbatch."""
    config = sweep_folder(tmp_path / "my sweeps")
    script = render(config)
    runs = config.parent / "runs"
    assert f'--output="{runs}/demo.slurm-%j.log"' in sbatch_lines(script)
    assert f"CONFIG='{config}'" in script
    assert "'%'" not in script


def test_percent_in_the_log_folder_is_escaped(tmp_path: Path) -> None:
    """Slurm reads %x in --output as a pattern: a literal % in the folder is doubled."""
    config = sweep_folder(tmp_path / "100%")
    assert f"--output={tmp_path}/100%%/runs/demo.slurm-%j.log" in sbatch_lines(render(config))


def test_default_script_path_is_next_to_the_config(config: Path) -> None:
    """`raysweep slurm sweep.yaml` writes sweep.slurm.sh beside it."""
    assert default_script_path(config) == config.parent / "sweep.slurm.sh"
