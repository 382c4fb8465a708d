"""``hydra/sweeper=raysweep``: Hydra's multirun as one stored raysweep experiment.

The sweep overrides of the command line and the ``hydra.sweeper.params`` block
become a raysweep search space (see :mod:`raysweep.hydra.overrides`); every
other key of ``hydra.sweeper`` is an option of :func:`raysweep.run` and is
checked by raysweep's configuration (:class:`~raysweep.sweep.config.SweepConfig`),
so a typo is refused before anything runs, with a did-you-mean. The jobs run as
trials on Ray, each through Hydra's ``run_job`` (:class:`~raysweep.hydra.job.HydraJob`);
the sweeper does not use ``hydra.launcher``.

The experiment is ``<storage>/<name>`` (default ``runs/<job name>``) and
``resume: auto`` is the default: the same command run again continues it,
running only the jobs not completed yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper

from raysweep.errors import RaysweepError, SpecError
from raysweep.hydra._errors import HydraRaysweepError
from raysweep.hydra.job import HydraJob
from raysweep.hydra.overrides import Param, from_overrides, space_of, to_overrides

if TYPE_CHECKING:
    from hydra.types import HydraContext, TaskFunction
    from omegaconf import DictConfig

    from raysweep.sweep.config import SweepConfig
    from raysweep.sweep.result import Result

__all__ = ["NODE_DEFAULTS", "RaysweepSweeper", "config_node", "plain"]

#: The keys ``hydra.sweeper`` shows by default (``--cfg hydra``); any other option
#: of raysweep.run may be added (``hydra.sweeper.timeout_s=600``). ``None``: unset.
NODE_DEFAULTS: dict[str, Any] = {
    "searcher": None,  # grid when every parameter is discrete and num_trials unset, else auto
    "num_trials": None,
    "max_concurrent": None,
    "metric": "loss",
    "mode": "min",
    "scheduler": None,
    "seed": None,
    "resources": None,
    "storage": None,
    "name": None,  # default: hydra.job.name
    "resume": "auto",
    "address": None,
    "verbose": None,
    "params": {},
}
#: Options of raysweep.run that are not the sweeper's to take: Hydra supplies them.
_SUPPLIED = {
    "objective": "the objective is the Hydra task function",
    "space": "the space comes from the sweep overrides and hydra.sweeper.params",
}
#: Options of this invocation a Hydra config may set besides the sweep-file keys.
_INVOCATION = ("address", "connect_timeout_s", "resume", "force", "verbose")


def config_node(target: str, defaults: Mapping[str, Any]) -> Any:
    """The ConfigStore node of a plugin: open (not struct), so that a misspelled
    key reaches raysweep's own check and its did-you-mean instead of Hydra's."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"_target_": target, **defaults}, flags={"struct": False})


def plain(value: Any) -> Any:
    """An OmegaConf container as plain Python (resolved); anything else as is."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


class RaysweepSweeper(Sweeper):
    """Hydra's sweeper plugin: the jobs of a multirun as trials of one experiment.

    Args:
        params: ``hydra.sweeper.params``: Hydra key -> sweep (``interval(0, 1)``,
            ``a,b``, ``tag(log, interval(1e-4, 1))``), list, or raysweep domain mapping.
        **options: options of :func:`raysweep.run` (``searcher``, ``num_trials``,
            ``max_concurrent``, ``metric``, ``mode``, ``scheduler``, ``storage``,
            ``name``, ``resume``, ``resources``, ``address``, ...).
    """

    def __init__(self, params: Any = None, **options: Any) -> None:
        super().__init__()
        self.params: dict[str, Any] = dict(plain(params) or {})
        self.options = {key: plain(value) for key, value in options.items()}
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config

    def sweep(self, arguments: list[str]) -> Result:
        """Run the sweep the overrides describe; return the raysweep Result."""
        from omegaconf import OmegaConf

        from raysweep.sweep.api import execute

        try:
            config = self.sweep_config(arguments)
        except RaysweepError as exc:
            raise HydraRaysweepError(f"hydra.sweeper: {exc}") from None
        assert self.config is not None  # sweep_config checked
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        try:
            return execute(config)
        except RaysweepError as exc:
            raise HydraRaysweepError(str(exc)) from exc

    def sweep_config(self, arguments: list[str]) -> SweepConfig:
        """The checked raysweep configuration of this multirun (nothing runs)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from raysweep.sweep.config import SweepConfig

        if self.hydra_context is None or self.config is None or self.task_function is None:
            raise RuntimeError("RaysweepSweeper.setup() must be called before sweep()")
        for key, why in _SUPPLIED.items():
            if key in self.options:
                raise SpecError(f"{key!r} cannot be set: {why}")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = from_overrides(self.params, arguments, parser)
        if not params:
            raise SpecError(
                "nothing to sweep: give sweep overrides (lr=interval(1e-4,1) model=a,b) "
                "or hydra.sweeper.params"
            )
        space = space_of(params)
        values = {key: value for key, value in self.options.items() if value is not None}
        values.setdefault("name", str(self.config.hydra.job.name))
        if "searcher" not in values:
            discrete = all(d.cardinality() is not None for d in space.values())
            values["searcher"] = "grid" if discrete and "num_trials" not in values else "auto"
        # Resolved now, on the driver: ${now:...} in the sweep folder must name one
        # folder for every job (the resolver's cache travels with the config).
        str(self.config.hydra.sweep.dir)
        job = HydraJob(
            task_function=self.task_function,
            hydra_context=self.hydra_context,
            config=self.config,
            params=params,
        )
        keys = (*SweepConfig.file_keys(), *_INVOCATION)
        config = SweepConfig.build({**values, "objective": job, "space": space}, keys=keys)
        self._check_composes(params, config)
        return config

    def _check_composes(self, params: list[Param], config: SweepConfig) -> None:
        """Compose one job's config now, so a bad key fails before anything runs."""
        probe = {name: domain.from_unit(0.0) for name, domain in config.space.items()}
        self.validate_batch_is_legal([to_overrides(params, probe)])
