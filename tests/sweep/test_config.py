"""The one sweep configuration: every view (run() signature, YAML keys, CLI flags, stored
spec, resume diff) is derived from the option declarations, and each value is checked
by one rule with one message wherever it is given."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import raysweep as rs
from raysweep.errors import SpecError
from raysweep.sweep.config import OnResume, SweepConfig, UnknownOptionError
from raysweep.sweep.sweepfile import SWEEP_KEYS


def objective(config: dict[str, Any]) -> float:
    return float(config["x"])


BASE: dict[str, Any] = {
    "objective": objective,
    "space": {"x": rs.uniform(0.0, 1.0)},
    "num_trials": 4,
    "name": "cfg",
}


def build(**changes: Any) -> SweepConfig:
    return SweepConfig.build({**BASE, **changes})


def test_run_signature_lists_every_option() -> None:
    """help(raysweep.run) shows every option, in declaration order, with its default."""
    params = inspect.signature(rs.run).parameters
    assert list(params) == list(SweepConfig.options())
    assert params["metric"].default == "loss"
    assert params["storage"].default == "runs"
    assert all(f"    {key}: " in (rs.run.__doc__ or "") for key in SweepConfig.options())


def test_file_keys_are_the_options_marked_in_file() -> None:
    """Sweep-file keys are exactly the options declared as file keys."""
    options = SweepConfig.options()
    assert set(SWEEP_KEYS) == {k for k, o in options.items() if o.in_file}
    assert {"resume", "force", "callbacks", "backend", "clock"}.isdisjoint(SWEEP_KEYS)


def test_cli_flags_are_the_options_with_flag_help() -> None:
    """`raysweep run --help` offers one flag per option that declares one."""
    from raysweep.cli import cli

    text = CliRunner().invoke(cli, ["run", "--help"]).output
    for key, opt in SweepConfig.options().items():
        flag = f"--{key.replace('_', '-')}"
        assert (flag in text) is (opt.flag is not None), flag


def test_stored_spec_holds_the_stored_options_only() -> None:
    """to_spec has every stored option (in JSON form) and nothing of the invocation."""
    spec = build(resources={"cpu": 2}, constraints="x <= 0.9").to_spec()
    stored = {k for k, o in SweepConfig.options().items() if o.stored}
    assert set(spec) == stored | {"kind"}
    assert spec["resources"] == {"num_cpus": 2}
    assert spec["constraints"] == ["x <= 0.9"]
    assert spec["searcher"] == {"name": "auto", "options": {}}
    assert spec["objective"].endswith(":objective")


def test_resume_changes_split_refused_and_updated() -> None:
    """A changed space or mode is refused without force; a larger num_trials is an update."""
    stored = build().to_spec()
    changed = build(space={"x": rs.uniform(0.0, 2.0)}, mode="max", num_trials=9)
    refused, updated = changed.resume_changes(stored)
    assert "space x: uniform(0.0, 1.0) -> uniform(0.0, 2.0)" in refused
    assert "mode: 'min' -> 'max'" in refused
    assert updated == ["num_trials: 4 -> 9"]
    assert build().resume_changes(stored) == ([], [])


def test_keep_options_are_the_experiments_identity() -> None:
    """Exactly space, metric, mode and constraints define what the experiment is."""
    keep = {k for k, o in SweepConfig.options().items() if o.on_resume is OnResume.KEEP}
    assert keep == {"space", "metric", "mode", "constraints"}


def test_unknown_option_is_a_type_error_with_did_you_mean() -> None:
    """A misspelled option is both a SpecError and a TypeError, naming the closest option."""
    with pytest.raises(UnknownOptionError, match=r"'max_concurent' \(did you mean"):
        build(max_concurent=2)
    with pytest.raises(TypeError):
        build(searcher_option={})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_trials": 0}, "num_trials: expected a positive integer, got 0"),
        ({"timeout_s": float("inf")}, "timeout_s: expected a positive finite number of seconds"),
        ({"seed": 2**63}, "seed: expected an integer in [0, 2**63)"),
        ({"resources": {"cpu": -1}}, "resources.cpu: expected a finite number >= 0, got -1"),
        ({"stop": {"target": "low"}}, "stop.target: expected a finite number"),
        ({"name": "a\nb"}, "name: expected a folder name"),
        ({"name": "x" * 300}, "name: expected a folder name of at most 200"),
        ({"searcher": "sobel"}, "searcher: unknown searcher 'sobel'"),
        ({"scheduler": "ashaa"}, "scheduler: unknown scheduler 'ashaa' (did you mean 'asha'?)"),
        ({"callbacks": [object()]}, "callbacks: expected raysweep.Callback instances"),
        ({"force": True}, "force: only applies with resume=True"),
        ({"num_trials": None}, "num_trials: required"),
        ({"objective": None}, "missing required option 'objective'"),
        ({"objective": lambda: 1.0}, "must accept the configuration dict as its one argument"),
        ({"constraints": ["x <"]}, "constraints: constraint 'x <'"),
        (
            {"resources": {"custom": {"ray": {"num_gpu": 1}}}},
            "resources.custom.ray: unknown Ray task option 'num_gpu' (did you mean 'num_gpus'?)",
        ),
        ({"runtime_env": {"working_dir": "/no/such/dir"}}, "runtime_env.working_dir: no such"),
        ({"runtime_env": {"env_vars": {"A": 1}}}, "runtime_env.env_vars: expected a mapping"),
    ],
)
def test_each_bad_value_is_one_line_naming_the_option(
    changes: dict[str, Any], message: str
) -> None:
    """Every bad value raises one SpecError line that starts with what was wrong."""
    with pytest.raises(SpecError) as info:
        build(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_one_constraint_string_is_one_constraint() -> None:
    """constraints='x < 1' is one constraint in the API, as it is in a sweep file."""
    assert build(constraints="x <= 0.5").constraints.to_json() == ["x <= 0.5"]


def test_searcher_options_merge_into_the_searcher() -> None:
    """searcher_options reach a searcher given by name; a clash of values is refused."""
    config = build(searcher="sobol", searcher_options={"scramble": False})
    assert config.searcher.options == {"scramble": False}
    with pytest.raises(SpecError, match="given twice"):
        build(searcher={"name": "sobol", "scramble": True}, searcher_options={"scramble": False})


def test_replace_checks_again_and_keeps_the_rest() -> None:
    """replace() changes some options, checks them again, and keeps the others."""
    config = build(seed=3)
    wider = config.replace(num_trials=10, storage="elsewhere")
    assert (wider.num_trials, wider.seed, wider.storage) == (10, 3, Path("elsewhere"))
    with pytest.raises(SpecError, match="max_concurrent"):
        config.replace(max_concurrent=-2)


def test_objective_by_reference_from_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """objective='module:function' works from Python too, read against the working folder."""
    (tmp_path / "my_objective_mod.py").write_text("def f(config):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    config = build(objective="my_objective_mod:f")
    assert config.objective.fn({}) == 1.0
    assert config.to_spec()["objective"] == "my_objective_mod:f"


def test_default_name_comes_from_the_objective() -> None:
    """Without a name, the experiment is named after the objective and the time."""
    values = dict(BASE)
    del values["name"]
    assert SweepConfig.build(values).name.startswith("objective-")


def test_a_second_clock_beside_the_simulators_is_refused() -> None:
    """With a backend that has its own clock, another clock= is refused; its own is fine."""
    from raysweep.sweep.execution import FakeClock, SimulatedBackend

    backend = SimulatedBackend(workers=2, duration=lambda config: 1.0)
    with pytest.raises(SpecError, match="clock: the backend keeps its own time"):
        build(backend=backend, clock=FakeClock())
    assert build(backend=backend, clock=backend.clock()).clock is backend.clock()


def test_a_stored_spec_is_checked_by_the_same_rules() -> None:
    """Readers check a stored spec with the options' own checks, importing nothing."""
    spec = build(searcher="sobol", searcher_options={"scramble": False}, seed=2).to_spec()
    spec["objective"] = "module_that_does_not_exist:f"
    SweepConfig.check_stored(spec)  # a good spec passes; the objective is not imported
    with pytest.raises(SpecError, match=r"^stop\.patience: expected a positive integer"):
        SweepConfig.check_stored({**spec, "stop": {"patience": 0}})
    with pytest.raises(SpecError, match=r"^searcher: expected a mapping"):
        SweepConfig.check_stored({**spec, "searcher": ["sobol"]})


def test_stored_searchers_and_schedulers_are_read_without_being_built() -> None:
    """A reader accepts a user's own scheduler or searcher (a name not in the table), a
    searcher whose library is not installed where the store is read, and the bare
    scheduler name of schema-2 stores; only the stored form is checked."""
    spec = build(searcher="sobol").to_spec()
    SweepConfig.check_stored({**spec, "scheduler": {"name": "mine", "options": {}}})
    SweepConfig.check_stored({**spec, "searcher": {"name": "MySearcher", "options": {}}})
    SweepConfig.check_stored({**spec, "searcher": {"name": "hebo", "options": {"x": 1}}})
    SweepConfig.check_stored({**spec, "scheduler": "fifo"})
    with pytest.raises(SpecError, match=r"^scheduler: a stored plugin mapping needs a 'name'"):
        SweepConfig.check_stored({**spec, "scheduler": {"options": {}}})
    with pytest.raises(SpecError, match=r"^scheduler: expected a mapping"):
        SweepConfig.check_stored({**spec, "scheduler": {"name": "asha", "options": [1]}})
