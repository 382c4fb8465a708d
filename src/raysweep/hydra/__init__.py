"""raysweep as Hydra's sweeper and launcher (``pip install "raysweep[hydra]"``).

``python app.py --multirun hydra/sweeper=raysweep ...`` turns Hydra's sweep
overrides into a raysweep search space and runs every job as a trial of one
stored experiment; ``hydra/launcher=raysweep`` runs the jobs another sweeper
chose as raysweep trials on Ray. See docs/hydra.md.

Hydra finds the plugins in the ``hydra_plugins.raysweep_hydra`` package shipped
with raysweep; the implementation lives here. Nothing here is imported by
``import raysweep``, so Hydra is only loaded by a Hydra app.

Modules:
    overrides: Hydra override strings <-> raysweep parameters and configurations.
    job: the picklable objective that runs one Hydra job in a worker.
    sweeper: the ``raysweep`` sweeper.
    launcher: the ``raysweep`` launcher.
"""
