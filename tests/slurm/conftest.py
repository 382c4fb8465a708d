"""The ``slurm_cluster`` fixture: two real Slurm nodes on this host (``slurm_daemons``).

It starts once for the ``tests/slurm`` package (munged, slurmctld and two
slurmd take a few seconds) and stops when the package's last test is done.
Where Slurm is missing it is installed from Debian's packages; where that is
impossible (not root, no apt) the tests are skipped, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.debian import apt_install
from tests.slurm import slurm_daemons
from tests.slurm.slurm_daemons import SlurmCluster


@pytest.fixture(scope="package")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Two Slurm nodes (n1, n2) with a controller and a munge of their own."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("the Slurm tests run slurmd, which starts jobs as their user: needs root")
    reason = apt_install("Slurm", slurm_daemons.PACKAGES, slurm_daemons.BINARIES)
    if reason is not None:
        pytest.skip(reason)
    cluster = slurm_daemons.start()
    yield cluster
    slurm_daemons.stop(cluster)
