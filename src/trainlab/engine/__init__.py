"""Training engine: plain loop functions, metrics as counts, checkpoints, and the Trainer."""

from trainlab.engine.loop import evaluate, predict, train_one_epoch
from trainlab.engine.trainer import Callback, FitResult, Trainer

__all__ = ["Callback", "FitResult", "Trainer", "evaluate", "predict", "train_one_epoch"]
