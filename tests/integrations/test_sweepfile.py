"""Integrations named in a sweep file (``integrations:``) or by name in ``rs.run``:
built and checked when the file is read, folders read against the file's folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import raysweep as rs
from raysweep.errors import SpecError
from raysweep.integrations import MLflowCallback, TensorBoardCallback, WandbCallback
from raysweep.sweep.config import SweepConfig
from raysweep.sweep.sweepfile import load_sweep_file
from tests.integrations.helpers import sweep


def _file(folder: Path, integrations: str) -> Path:
    (folder / "objective.py").write_text("def f(config):\n    return config['x']\n")
    path = folder / "sweep.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            objective: objective:f
            space: {x: {type: uniform, low: 0, high: 1}}
            num_trials: 2
            """
        )
        + integrations
    )
    return path


def test_a_sweep_file_names_its_integrations(tmp_path: Path) -> None:
    """Names and {name: ..., <option>: ...} entries become integrations; a relative
    logdir is read against the file's folder."""
    path = _file(
        tmp_path,
        "integrations:\n"
        "  - {name: tb, logdir: tb-logs}\n"
        "  - {name: mlflow, tracking_uri: 'sqlite:///m.db', experiment_name: demo}\n"
        "  - {name: wandb, project: demo, dir: /abs/wandb}\n",
    )
    config = load_sweep_file(path)
    tb, ml, wb = config.integrations
    assert isinstance(tb, TensorBoardCallback)
    assert tb.logdir == tmp_path / "tb-logs"
    assert isinstance(ml, MLflowCallback)
    assert ml.experiment_name == "demo"
    assert isinstance(wb, WandbCallback)
    assert wb.dir == Path("/abs/wandb")
    assert wb.mode == "offline"
    assert "integrations" not in config.to_spec()  # what was logged where is not stored
    assert config.replace(num_trials=3).integrations == config.integrations


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("[mlflw]", "unknown logging integration 'mlflw' (did you mean 'mlflow'?)"),
        ("[tensorboard]", "logging integration 'tensorboard' needs the option 'logdir'"),
        ("[{name: tb, logdri: x}]", "unknown option(s) 'logdri' for logging integration"),
        ("[{mlflow: {}}]", "a logging integration mapping needs a 'name' key"),
        ("[{name: wandb, mode: online-ish}]", "mode: expected one of offline, online"),
    ],
)
def test_bad_entries_fail_when_the_file_is_read(tmp_path: Path, entry: str, message: str) -> None:
    """An unknown name, a missing or unknown option fails in one line naming the file."""
    path = _file(tmp_path, f"integrations: {entry}\n")
    with pytest.raises(SpecError) as caught:
        load_sweep_file(path)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert "integrations" in text
    assert message in text
    assert "\n" not in text


def test_run_takes_integrations_by_name(tmp_path: Path, storage: Path) -> None:
    """rs.run(integrations=[...]) logs like a callback does."""
    result = sweep(storage, [], num_trials=2, integrations=[{"name": "tb", "logdir": tmp_path}])
    assert result.count(rs.TrialState.COMPLETED) == 2
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["trial_0", "trial_1"]


def test_integrations_are_not_callbacks_of_another_kind() -> None:
    """Only integrations (or their names) are accepted."""
    with pytest.raises(SpecError, match="integrations: a logging integration is a name"):
        SweepConfig.build(
            {"objective": lambda c: 0.0, "space": {"x": [1]}, "integrations": [rs.Callback()]}
        )
