"""YAML that users write: alias bombs and deep nesting are refused with one line, and a
large space loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from raysweep.errors import SpecError
from raysweep.sweep._yaml import MAX_DEPTH, parse_yaml
from raysweep.sweep.sweepfile import load_sweep_file


def _bomb(levels: int = 9) -> str:
    """A 'billion laughs' document: each level repeats the previous one nine times."""
    lines = ["space:", "  a: {type: fixed, value: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]}"]
    previous = "a"
    for name in "bcdefghijk"[:levels]:
        items = ", ".join([f"*{previous}"] * 9)
        lines.append(f"  {name}: {{type: fixed, value: &{name} [{items}]}}")
        previous = name
    return "\n".join([*lines, "objective: o:f", "num_trials: 2", ""])


def test_alias_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    """A small file whose aliases expand to ~10**9 values is refused before it is walked."""
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())
    assert len(path.read_bytes()) < 1000
    with pytest.raises(SpecError) as info:
        load_sweep_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: invalid YAML")
    assert "aliases" in message


def test_aliases_that_expand_modestly_still_work() -> None:
    """Ordinary anchors and aliases (shared option blocks) load as usual."""
    doc = parse_yaml("base: &b {low: 0, high: 1}\nother: *b\n", "x.yaml")
    assert doc["other"] == {"low": 0, "high": 1}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_refused_in_one_line(tmp_path: Path, depth: int) -> None:
    """A list nested thousands deep is a one-line error, not a RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text(
        "objective: o:f\nspace: {x: {type: fixed, value: " + "[" * depth + "]" * depth + "}}\n"
    )
    with pytest.raises(SpecError) as info:
        load_sweep_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid YAML")
    assert "\n" not in message
    # Ours past MAX_DEPTH, or libyaml's own limit (newer builds stop near 1000).
    assert f"nesting is deeper than {MAX_DEPTH} levels" in message or "nesting depth" in message


def test_ten_thousand_parameters_load(tmp_path: Path) -> None:
    """A 10,000-parameter space loads into a config with every parameter."""
    (tmp_path / "o.py").write_text("def f(config):\n    return 0.0\n")
    params = [f"  p{i}: {{type: uniform, low: 0, high: 1}}" for i in range(10_000)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(["objective: o:f", "num_trials: 3", "space:", *params, ""]))
    assert len(load_sweep_file(path).space) == 10_000
