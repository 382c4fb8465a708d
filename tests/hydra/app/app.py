"""A small Hydra app for the plugin tests: a loss of two numbers and a config group."""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Fail when FAIL_ON_X names this job's x; else return a loss."""
    if os.environ.get("FAIL_ON_X") == str(cfg.x):
        raise RuntimeError(f"told to fail on x={cfg.x}")
    return float((cfg.x - 1.0) ** 2 + cfg.model.size * cfg.lr)


if __name__ == "__main__":
    main()
