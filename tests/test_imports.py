"""``import raysweep`` stays light, and each half of raysweep imports without the other."""

from __future__ import annotations

import pytest

from tests.conftest import run_python

HEAVY = ("ray", "pandas", "scipy", "jax", "optax", "torch", "rich", "click")


def _modules_after(code: str) -> set[str]:
    """The module names loaded by a fresh interpreter after running ``code``."""
    proc = run_python(f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_import_raysweep_and_build_a_space_loads_nothing_heavy() -> None:
    """A space can be built without importing Ray, pandas, SciPy, JAX or the CLI stack."""
    loaded = _modules_after(
        "import raysweep as rs\n"
        "rs.uniform(0, 1)\n"
        "rs.SearchSpace.from_any({'lr': rs.loguniform(1e-4, 1e-1), 'n': rs.randint(1, 4)})"
    )
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    assert "raysweep.sweep.runner" not in loaded


def test_gradient_half_does_not_import_the_sweep_half() -> None:
    """import raysweep.gradient loads neither the runner, the study nor the searchers."""
    loaded = _modules_after("import raysweep.gradient")
    assert not {m for m in loaded if m.startswith("raysweep.sweep")}
    assert not {m for m in loaded if m.split(".")[0] in ("ray", "pandas", "jax")}


@pytest.mark.parametrize("name", ["run", "Resources", "SchedulerHints", "TrialState", "report"])
def test_public_names_resolve_lazily(name: str) -> None:
    """Every public name in raysweep.__all__ resolves on first use."""
    import raysweep

    assert getattr(raysweep, name) is not None
    assert set(raysweep.__all__) <= set(dir(raysweep)) | {"__version__"}


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A misspelled public name fails like any module attribute."""
    import raysweep

    with pytest.raises(AttributeError, match="no attribute 'rnu'"):
        raysweep.rnu  # noqa: B018 - the attribute access is the test


def test_scheduler_hints_is_resources() -> None:
    """The mythos name SchedulerHints keeps working: it is the same class as Resources."""
    import raysweep
    from raysweep.gradient import SchedulerHints

    assert SchedulerHints is raysweep.Resources is raysweep.SchedulerHints
