"""trainlab: train and evaluate PyTorch classifiers, MNIST first.

Example:
    >>> from trainlab import load_dataset, build_model, Trainer
    >>> data = load_dataset("mnist")
    >>> model = build_model("lenet-relu", data)
    >>> result = Trainer(epochs=3, lr=0.1).fit(model, data)

Heavy modules (torch) are imported on first use, so ``trainlab --help`` stays quick.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "trainlab.data",
    "Dataset": "trainlab.data",
    "build_model": "trainlab.models",
    "Trainer": "trainlab.trainer",
    "Callback": "trainlab.engine.callbacks",
    "TrainConfig": "trainlab.config",
    "TrainlabError": "trainlab.errors",
    "evaluate_checkpoint": "trainlab.workflow",
    "train": "trainlab.workflow",
    "predict": "trainlab.inference",
    "Predictor": "trainlab.inference",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainlab' has no attribute '{name}'")
