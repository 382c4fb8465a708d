"""Hydra's plugins from raysweep: ``hydra/sweeper=raysweep`` and ``hydra/launcher=raysweep``.

Hydra imports every module of the ``hydra_plugins`` namespace package; these
modules register the config nodes and name the plugin classes, whose
implementation is in :mod:`raysweep.hydra`.
"""
