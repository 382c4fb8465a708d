"""``resume="auto"`` / ``--resume auto``: continue the experiment if it exists, else start
it, so a batch job that is preempted and requeued runs the same command every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import raysweep as rs
from raysweep.errors import SpecError
from raysweep.sweep.execution import SimulatedBackend, VirtualClock
from raysweep.trial import TrialState

SPACE = {"x": rs.uniform(0.0, 1.0)}


def _run(tmp_path: Path, **kwargs: Any) -> rs.Result:
    backend = SimulatedBackend(workers=2, duration=lambda c: 5.0, clock=VirtualClock(0.0))
    return rs.run(
        lambda c: c["x"], SPACE, storage=tmp_path, name="auto", backend=backend, seed=1,
        verbose=0, **kwargs,
    )  # fmt: skip


def test_auto_starts_then_continues(tmp_path: Path) -> None:
    first = _run(tmp_path, num_trials=4, resume="auto")
    assert first.count(TrialState.COMPLETED) == 4
    second = _run(tmp_path, num_trials=7, resume="AUTO")
    assert second.count(TrialState.COMPLETED) == 7
    assert second.trials[:4] == first.trials  # continued, not started afresh


def test_plain_resume_still_needs_the_experiment(tmp_path: Path) -> None:
    with pytest.raises(rs.ExperimentNotFoundError):
        _run(tmp_path, num_trials=2, resume=True)


def test_a_bad_resume_value_is_one_line() -> None:
    with pytest.raises(SpecError, match=r"^resume: expected true, false or 'auto', got "):
        rs.run(lambda c: c["x"], SPACE, num_trials=2, resume="maybe")


def test_cli_resume_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import raysweep.sweep.api
    from raysweep.cli import cli
    from raysweep.sweep.config import SweepConfig

    seen: list[Any] = []

    def execute(config: SweepConfig) -> None:
        seen.append(config.resume)
        raise KeyboardInterrupt

    monkeypatch.setattr(raysweep.sweep.api, "execute", execute)
    (tmp_path / "objective.py").write_text("def f(config):\n    return config['x']\n")
    (tmp_path / "s.yaml").write_text(
        "objective: objective:f\nnum_trials: 2\nspace:\n  x: {type: uniform, low: 0, high: 1}\n"
    )
    monkeypatch.chdir(tmp_path)
    for args in (["--resume", "auto"], ["--resume"], []):
        CliRunner().invoke(cli, ["run", "s.yaml", *args])
    assert seen == ["auto", True, False]
    bad = CliRunner().invoke(cli, ["run", "s.yaml", "--resume", "autoo"])
    assert bad.exit_code == 2
