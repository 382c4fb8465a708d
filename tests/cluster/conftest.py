"""The cluster fixture: a real two-node Ray cluster on this machine (see ``ray_nodes``).

It starts once for the ``tests/cluster`` package (a node takes several seconds
to join on a loaded machine) and stops when the package's last test is done.
:func:`two_nodes` hands each test a cluster with both nodes alive, starting a
new worker node first if an earlier test killed the last one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.ray_nodes import ClusterError, LocalRayCluster, cannot_run_reason


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """A head and one worker node, each its own ``ray start --block`` process."""
    reason = cannot_run_reason()
    if reason is not None:
        pytest.skip(f"cannot run a local Ray cluster here: {reason}")
    cluster = LocalRayCluster()
    try:
        cluster.start_head()
        cluster.start_worker()
    except ClusterError as exc:
        cluster.stop()
        pytest.fail(f"the test cluster did not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def two_nodes(ray_cluster: LocalRayCluster) -> LocalRayCluster:
    """The cluster with its head and a worker node alive.

    A worker node an earlier test killed is stopped, and the head is waited on to
    declare it dead (until then Ray may still send it tasks), before a new one starts.
    """
    worker = ray_cluster.worker
    if worker.raylet_pid() is None or ray_cluster.state_of(worker) != "ALIVE":
        worker.stop()
        ray_cluster.wait_until_dead(worker)
        ray_cluster.start_worker()
    return ray_cluster
