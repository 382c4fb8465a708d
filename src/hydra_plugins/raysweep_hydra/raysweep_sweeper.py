"""``hydra/sweeper=raysweep``: the config node and the plugin class Hydra finds."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from raysweep.hydra import sweeper as _impl

__all__ = ["RaysweepSweeper"]


class RaysweepSweeper(_impl.RaysweepSweeper):
    """The jobs of a multirun as trials of one raysweep experiment (see docs/hydra.md)."""


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="raysweep",
    node=_impl.config_node(f"{__name__}.RaysweepSweeper", _impl.NODE_DEFAULTS),
    provider="raysweep",
)
