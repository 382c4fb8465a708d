"""Sweep files: every kind of bad input is a one-line SpecError naming the field;
a good file becomes the keyword arguments of ``raysweep.run``. No Ray is started."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from raysweep.errors import SpecError
from raysweep.resources import SchedulerHints
from raysweep.sweep.space import SearchSpace
from raysweep.sweep.stopping import Stop
from raysweep.sweep.sweepfile import SWEEP_KEYS, load_sweep_file

REPO_ROOT = Path(__file__).resolve().parents[2]

OBJECTIVE = """
def train(config):
    return {"loss": (config["x"] - 1.0) ** 2 + config["y"]}
"""

BASE: dict[str, Any] = {
    "name": "unit",
    "objective": "objective:train",
    "metric": "loss",
    "mode": "min",
    "searcher": "random",
    "num_trials": 5,
    "space": {"x": {"type": "uniform", "low": -2.0, "high": 2.0}, "y": 0.5},
}


def write_sweep(
    folder: Path,
    doc: dict[str, Any] | None = None,
    *,
    drop: tuple[str, ...] = (),
    source: str = OBJECTIVE,
    **fields: Any,
) -> Path:
    """Write ``source`` as objective.py and BASE updated with ``fields`` as sweep.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(textwrap.dedent(source))
    content = dict(BASE if doc is None else doc)
    content.update(fields)
    for key in drop:
        content.pop(key, None)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def load_error(path: Path) -> str:
    """The message of the SpecError that loading ``path`` raises, checked to be one line."""
    with pytest.raises(SpecError) as info:
        load_sweep_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


# -- good files -----------------------------------------------------------------------


def test_good_file_becomes_a_config(tmp_path: Path) -> None:
    """Every field of a complete file reaches the matching option, validated."""
    path = write_sweep(
        tmp_path,
        searcher={"name": "sobol", "scramble": False},
        max_concurrent=2,
        seed=3,
        resources={"cpu": 1},
        constraints=["x + y <= 2"],
        runtime_env={"env_vars": {"A": "1"}},
        storage="out",
        max_failures=4,
        stop={"patience": 10},
        timeout_s=30,
    )
    config = load_sweep_file(path)
    assert config.objective.fn({"x": 1.0, "y": 0.5}) == {"loss": 0.5}
    assert config.objective.ref == "objective:train"
    assert isinstance(config.space, SearchSpace)
    assert list(config.space) == ["x", "y"]
    assert (config.searcher.name, config.searcher.options) == ("sobol", {"scramble": False})
    assert config.resources == SchedulerHints(num_cpus=1)
    assert config.stop == Stop(patience=10)
    assert config.storage == tmp_path.resolve() / "out"
    assert (config.name, config.num_trials, config.max_concurrent) == ("unit", 5, 2)
    assert (config.seed, config.max_failures, config.timeout_s) == (3, 4, 30.0)
    assert config.constraints.to_json() == ["x + y <= 2"]
    assert config.runtime_env == {"env_vars": {"A": "1"}}


def test_defaults_name_from_file_and_storage_next_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without name and storage the experiment is <yaml folder>/runs/<yaml stem>, from any cwd."""
    write_sweep(tmp_path / "conf", drop=("name",))
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep_file(Path("conf/sweep.yaml"))
    assert sweep.name == "sweep"
    assert sweep.storage == (tmp_path / "conf" / "runs").resolve()
    assert (sweep.searcher.name, sweep.objectives.metric, sweep.objectives.mode) == (
        "random",
        "loss",
        "min",
    )


def test_default_name_is_made_a_folder_name(tmp_path: Path) -> None:
    """A file called 'my sweep (v2).yaml' gets the experiment name 'my_sweep__v2_'."""
    path = write_sweep(tmp_path, drop=("name",))
    renamed = path.rename(tmp_path / "my sweep (v2).yaml")
    assert load_sweep_file(renamed).name == "my_sweep__v2_"


def test_overrides_win_and_none_keeps_the_file_value(tmp_path: Path) -> None:
    """CLI overrides replace file values; an override of None leaves the file's value."""
    sweep = load_sweep_file(write_sweep(tmp_path))
    config = sweep.replace(num_trials=50, name=None, resume=True, address="auto")
    assert (config.num_trials, config.name) == (50, "unit")
    assert (config.resume, config.address) == (True, "auto")


def test_overrides_go_through_the_same_checks(tmp_path: Path) -> None:
    """An override is checked like the file's value, with the same message."""
    sweep = load_sweep_file(write_sweep(tmp_path))
    with pytest.raises(SpecError, match=r"num_trials: expected a positive integer, got 0"):
        sweep.replace(num_trials=0)


def test_unknown_override_is_a_type_error(tmp_path: Path) -> None:
    """A misspelled override is refused with a did-you-mean, never silently dropped."""
    sweep = load_sweep_file(write_sweep(tmp_path))
    with pytest.raises(TypeError, match=r"num_trails.*did you mean 'num_trials'"):
        sweep.replace(num_trails=3)


def test_exponent_notation_is_a_float(tmp_path: Path) -> None:
    """`1e-3` in YAML is the number 0.001, not the string '1e-3' of YAML 1.1."""
    path = write_sweep(tmp_path)
    path.write_text(path.read_text() + "timeout_s: 1e2\n")
    assert load_sweep_file(path).timeout_s == 100.0


def test_space_read_from_an_ax_json_file(tmp_path: Path) -> None:
    """`space: parameters.json` reads an Ax parameter list relative to the YAML."""
    params = [
        {"name": "x", "type": "range", "bounds": [-2.0, 2.0]},
        {"name": "y", "type": "fixed", "value": 0.5},
    ]
    (tmp_path / "parameters.json").write_text(json.dumps(params))
    sweep = load_sweep_file(write_sweep(tmp_path, space="parameters.json"))
    assert sweep.space.to_json()["x"] == {"type": "uniform", "low": -2.0, "high": 2.0}


def test_runtime_env_working_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    """A relative runtime_env.working_dir is resolved against the YAML folder."""
    sweep = load_sweep_file(write_sweep(tmp_path, runtime_env={"working_dir": "."}))
    assert sweep.runtime_env is not None
    assert Path(sweep.runtime_env["working_dir"]) == tmp_path.resolve()


@pytest.mark.parametrize("name", ["sweep.yaml", "sweep_ax_space.yaml"])
def test_demo_examples_load(name: str) -> None:
    """The shipped demo sweep files are valid."""
    sweep = load_sweep_file(REPO_ROOT / "examples" / "demo" / name)
    assert sweep.num_trials is not None
    assert sweep.constraints


# -- bad files ------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    """A misspelled key is an error with a did-you-mean and the list of valid keys."""
    message = load_error(write_sweep(tmp_path, max_concurent=2))
    assert "unknown option 'max_concurent' (did you mean 'max_concurrent'?)" in message
    assert all(key in message for key in SWEEP_KEYS)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is reported with its line number."""
    path = write_sweep(tmp_path)
    path.write_text("name: x\nspace: {x: [1, 2}\n")
    assert "line 2" in load_error(path)


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice is refused instead of the last one silently winning."""
    path = write_sweep(tmp_path)
    path.write_text(path.read_text() + "num_trials: 9\n")
    assert "duplicate key 'num_trials'" in load_error(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("- a\n- b\n", "got a list"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, fragment: str) -> None:
    """An empty file or a non-mapping document is refused with what was expected."""
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    assert fragment in load_error(path)


def test_missing_file(tmp_path: Path) -> None:
    """A sweep file that does not exist is a SpecError naming it."""
    assert "no such sweep file" in load_error(tmp_path / "nope.yaml")


@pytest.mark.parametrize("key", ["objective", "space"])
def test_required_keys(tmp_path: Path, key: str) -> None:
    """objective and space are required."""
    assert f"missing required option {key!r}" in load_error(write_sweep(tmp_path, drop=(key,)))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("num_trials", 0, "positive integer"),
        ("num_trials", "ten", "positive integer"),
        ("num_trials", True, "positive integer"),
        ("num_trials", 2.5, "positive integer"),
        ("max_concurrent", -1, "positive integer"),
        ("mode", "minimize", "'min' or 'max'"),
        ("metric", "", "non-empty string"),
        ("metric", 3, "non-empty string"),
        ("seed", -1, "integer"),
        ("seed", "abc", "integer"),
        ("max_failures", -1, ">= 0"),
        ("timeout_s", 0, "positive finite number"),
        ("timeout_s", "1h", "positive finite number"),
        ("name", "a/b", "folder name"),
        ("name", "my sweep", "folder name"),
        ("name", 12, "folder name"),
        ("storage", 5, "folder path"),
        ("resources", {"cpus": 1}, "unknown key"),
        ("resources", "big", "mapping"),
        ("stop", {"patience": 0}, "patience"),
        ("stop", {"budget": 1}, "unknown key"),
        ("runtime_env", ["x"], "mapping"),
        ("constraints", [1], "string"),
        ("constraints", {"a": 1}, "list"),
        ("constraints", ["z > 1"], "z"),
        ("constraints", ["x +* 1"], "x +* 1"),
        ("searcher", "bayes", "unknown searcher 'bayes'"),
        ("searcher", {"scramble": True}, "'name'"),
        ("searcher", {"name": "sobol", "scrambel": True}, "scrambel"),
        ("searcher", 3, "searcher name"),
        ("space", {"x": {"type": "uniform", "low": 1, "high": 0}}, "low < high"),
        ("space", {"x": {"type": "gaussian"}}, "gaussian"),
        ("space", "missing.json", "cannot read the space file"),
        ("space", 5, "expected a mapping of parameters"),
        ("objective", 5, "'module:function'"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, field: str, value: Any, fragment: str) -> None:
    """A bad value is one SpecError line naming the file, the field and the expectation."""
    message = load_error(write_sweep(tmp_path, **{field: value}))
    assert f"sweep.yaml: {field}" in message
    assert fragment in message


# -- the objective --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "source", "fragment"),
    [
        ("objective", OBJECTIVE, "expected 'module:function'"),
        ("objective:", OBJECTIVE, "expected 'module:function'"),
        ("nosuchmodule_xyz:train", OBJECTIVE, "cannot find module 'nosuchmodule_xyz'"),
        ("objective:fit", OBJECTIVE, "no attribute 'fit' in objective.py"),
        ("objective:VALUE", "VALUE = 3\n", "not callable"),
        ("objective:train", "def train(a, b):\n    return 0.0\n", "one argument"),
        ("objective:train", "import math\nx = 1 / 0\n", "objective.py:2): ZeroDivisionError"),
        ("objective:train", "def train(config)\n    return 1\n", "objective.py:1): SyntaxError"),
        ("objective:train", "import nosuchpackage_xyz\n", "ModuleNotFoundError"),
        ("objective:train", "raise SystemExit(3)\n", "SystemExit"),
    ],
)
def test_objective_errors_name_the_module(
    tmp_path: Path, ref: str, source: str, fragment: str
) -> None:
    """Import problems are one SpecError line naming the objective and where it failed."""
    message = load_error(write_sweep(tmp_path, source=source, objective=ref))
    assert "sweep.yaml: objective:" in message
    assert fragment in message


def test_sys_path_is_left_as_it_was(tmp_path: Path) -> None:
    """Loading, successfully or not, leaves sys.path unchanged."""
    before = list(sys.path)
    load_sweep_file(write_sweep(tmp_path / "ok"))
    with pytest.raises(SpecError):
        load_sweep_file(write_sweep(tmp_path / "bad", source="1 / 0\n"))
    assert sys.path == before


def test_each_folder_gets_its_own_module(tmp_path: Path) -> None:
    """Two sweep folders with an objective.py each load their own file, not a cached one."""
    one = load_sweep_file(write_sweep(tmp_path / "a", source="def train(c):\n    return 1.0\n"))
    two = load_sweep_file(write_sweep(tmp_path / "b", source="def train(c):\n    return 2.0\n"))
    assert (one.objective.fn({}), two.objective.fn({})) == (1.0, 2.0)


def test_a_fixed_module_loads_after_an_error(tmp_path: Path) -> None:
    """After an import error, the corrected file is imported afresh (nothing half-cached)."""
    path = write_sweep(tmp_path, source="1 / 0\n")
    with pytest.raises(SpecError):
        load_sweep_file(path)
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    assert load_sweep_file(path).objective.fn({"x": 1.0, "y": 0.0}) == {"loss": 0.0}


def test_package_folder_and_installed_module(tmp_path: Path) -> None:
    """A package folder next to the YAML and an installed dotted module both resolve."""
    package = tmp_path / "mypkg_sweep"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("def fit(config):\n    return 4.0\n")
    local = load_sweep_file(write_sweep(tmp_path, objective="mypkg_sweep.models:fit"))
    assert local.objective.fn({}) == 4.0
    assert set(local.objective.modules) == {"mypkg_sweep", "mypkg_sweep.models"}
    installed = load_sweep_file(write_sweep(tmp_path / "other", objective="os.path:basename"))
    assert installed.objective.fn("a/b") == "b"
    assert installed.objective.modules == ()


def test_objective_travels_by_value(tmp_path: Path) -> None:
    """The objective and a helper module it imports unpickle in a process without the folder."""
    (tmp_path / "helpers_sweep.py").write_text("def square(v):\n    return v * v\n")
    source = "import helpers_sweep\n\ndef train(c):\n    return helpers_sweep.square(c['x'])\n"
    sweep = load_sweep_file(write_sweep(tmp_path, source=source))
    assert set(sweep.objective.modules) == {"objective", "helpers_sweep"}
    from ray import cloudpickle

    payload = cloudpickle.dumps(sweep.objective.fn)
    code = "import pickle, sys; f = pickle.loads(sys.stdin.buffer.read()); print(f({'x': 3}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=payload,
        capture_output=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=120,
    )
    assert out.stdout.decode().strip() == "9"
    assert pickle.loads(payload)({"x": 2}) == 4
