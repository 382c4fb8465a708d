"""``hydra/launcher=raysweep``: the config node and the plugin class Hydra finds."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from raysweep.hydra import launcher as _impl
from raysweep.hydra import sweeper as _sweeper

__all__ = ["RaysweepLauncher"]


class RaysweepLauncher(_impl.RaysweepLauncher):
    """Hydra's jobs as raysweep trials on Ray, locally or on a cluster (see docs/hydra.md)."""


ConfigStore.instance().store(
    group="hydra/launcher",
    name="raysweep",
    node=_sweeper.config_node(f"{__name__}.RaysweepLauncher", _impl.NODE_DEFAULTS),
    provider="raysweep",
)
