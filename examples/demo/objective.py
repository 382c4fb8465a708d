"""Demo objective: fit a random-Fourier-feature regressor by gradient descent.

A small but real learning problem, so the hyperparameters interact the way they
do in practice: the learning rate and momentum trade speed for stability, the
lengthscale sets how wiggly the fit can be, weight decay fights overfitting of
the noisy training set, and more features cost time but add capacity. Each
trial takes a few tens of milliseconds of numpy work.

Run it with ``raysweep run examples/demo/sweep.yaml``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import raysweep

#: Gradient-descent iterations per trial, and how often the validation loss is reported.
N_ITERATIONS = 1000
REPORT_EVERY = 200


def _dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A noisy 1-D curve; the same for every trial, so trials are comparable."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, size=600)
    y = np.sin(2.0 * x) + 0.3 * x**2 - 0.5 + rng.normal(0.0, 0.2, size=x.size)
    return x[:400], y[:400], x[400:], y[400:]


def _features(x: np.ndarray, weights: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Random Fourier features of an RBF kernel (Rahimi & Recht, 2007)."""
    scale = math.sqrt(2.0 / weights.size)
    return scale * np.cos(np.outer(x, weights) + phases)


def train(config: dict[str, Any]) -> dict[str, float]:
    """Train with heavy-ball gradient descent; return the validation and training MSE."""
    x_train, y_train, x_val, y_val = _dataset()
    rng = np.random.default_rng(config["feature_seed"])
    n_features = int(config["n_features"])
    weights = rng.normal(0.0, 1.0 / config["lengthscale"], size=n_features)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=n_features)
    phi_train = _features(x_train, weights, phases)
    phi_val = _features(x_val, weights, phases)
    # A bias column keeps the features' job to the shape of the curve.
    phi_train = np.hstack([phi_train, np.ones((phi_train.shape[0], 1))])
    phi_val = np.hstack([phi_val, np.ones((phi_val.shape[0], 1))])

    theta = np.zeros(phi_train.shape[1])
    velocity = np.zeros_like(theta)
    lr, momentum, decay = config["lr"], config["momentum"], config["weight_decay"]
    val_loss = float("nan")
    for step in range(1, N_ITERATIONS + 1):
        residual = phi_train @ theta - y_train
        grad = 2.0 * phi_train.T @ residual / residual.size + 2.0 * decay * theta
        velocity = momentum * velocity - lr * grad
        theta = theta + velocity
        if step % REPORT_EVERY == 0:
            val_loss = float(np.mean((phi_val @ theta - y_val) ** 2))
            if not math.isfinite(val_loss):
                raise FloatingPointError(
                    f"training diverged by step {step} (lr={lr:.3g}, momentum={momentum:.2f})"
                )
            raysweep.report(step=step, loss=val_loss)
    train_loss = float(np.mean((phi_train @ theta - y_train) ** 2))
    return {"loss": val_loss, "train_loss": train_loss}


def train_epochs(config: dict[str, Any]) -> dict[str, float]:
    """The same model in ``config["epochs"]`` epochs of 100 iterations, for early
    stopping: the validation loss is reported after each epoch (a scheduler may
    prune the trial there), and a checkpoint before it lets a trial that is run
    again (a lost worker, a resumed sweep) go on from its last epoch."""
    x_train, y_train, x_val, y_val = _dataset()
    rng = np.random.default_rng(config["feature_seed"])
    n_features = int(config["n_features"])
    weights = rng.normal(0.0, 1.0 / config["lengthscale"], size=n_features)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=n_features)
    phi_train = np.hstack([_features(x_train, weights, phases), np.ones((x_train.size, 1))])
    phi_val = np.hstack([_features(x_val, weights, phases), np.ones((x_val.size, 1))])
    state = raysweep.load_checkpoint() or {
        "epoch": 0,
        "theta": np.zeros(phi_train.shape[1]),
        "velocity": np.zeros(phi_train.shape[1]),
    }
    theta, velocity = state["theta"], state["velocity"]
    lr, momentum, decay = config["lr"], config["momentum"], config["weight_decay"]
    val_loss = float("nan")
    for epoch in range(state["epoch"], int(config["epochs"])):
        for _ in range(100):
            residual = phi_train @ theta - y_train
            grad = 2.0 * phi_train.T @ residual / residual.size + 2.0 * decay * theta
            velocity = momentum * velocity - lr * grad
            theta = theta + velocity
        val_loss = float(np.mean((phi_val @ theta - y_val) ** 2))
        if not math.isfinite(val_loss):
            raise FloatingPointError(f"training diverged in epoch {epoch} (lr={lr:.3g})")
        raysweep.save_checkpoint({"epoch": epoch + 1, "theta": theta, "velocity": velocity})
        raysweep.report(step=epoch, loss=val_loss)
    return {"loss": val_loss}
