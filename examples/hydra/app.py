"""An example Hydra app swept by raysweep: a noisy linear fit by gradient descent.

    python app.py --multirun --config-name grid    # a grid over the optimizer group
    python app.py --multirun --config-name tpe     # a TPE search (raysweep[optuna])
    python app.py --multirun hydra/launcher=raysweep optimizer=sgd,adam   # Hydra's grid, on Ray
    raysweep status runs/grid

Each job returns its final loss, which raysweep stores as the trial's metric.
"""

from __future__ import annotations

import logging

import hydra
import numpy as np
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float:
    """Fit y = 2x - 1 with SGD with momentum, or Adam; return the mean squared error."""
    rng = np.random.default_rng(cfg.seed)
    x = rng.uniform(-1.0, 1.0, size=256)
    y = 2.0 * x - 1.0 + cfg.noise * rng.standard_normal(256)
    w = np.zeros(2)
    velocity, second = np.zeros(2), np.zeros(2)
    opt = cfg.optimizer
    for step in range(1, cfg.epochs + 1):
        error = w[0] * x + w[1] - y
        grad = np.array([np.mean(error * x), np.mean(error)]) * 2.0
        if opt.name == "adam":
            velocity = opt.momentum * velocity + (1.0 - opt.momentum) * grad
            second = 0.999 * second + 0.001 * grad**2
            v_hat = velocity / (1.0 - opt.momentum**step)
            s_hat = second / (1.0 - 0.999**step)
            w -= opt.lr * v_hat / (np.sqrt(s_hat) + 1e-8)
        else:
            velocity = opt.momentum * velocity + grad
            w -= opt.lr * velocity
    loss = float(np.mean((w[0] * x + w[1] - y) ** 2))
    log.info("optimizer=%s lr=%g loss=%.4f", opt.name, opt.lr, loss)
    return loss


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
