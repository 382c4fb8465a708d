"""The ported mythos script in examples/mythos runs as a user would run it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT, run_python

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCRIPT = REPO_ROOT / "examples" / "mythos" / "fit_gaussian_mean.py"


def test_mythos_example_converges_refreshing_only_the_stale_simulator() -> None:
    """The script's own step loop converges, and some step re-ran only one simulator."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{str(SCRIPT)!r}, '--steps', '30']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"converged after \d+ steps: mu=\d\.\d{3}", lines[-1])
    assert any(re.search(r"simulated=\['gauss\.\d'\]", line) for line in lines)
