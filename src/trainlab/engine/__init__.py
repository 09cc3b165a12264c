"""Training engine: plain loop functions, metrics as counts, checkpoints, run setup, callbacks.

``trainlab.trainer.Trainer`` composes these; nothing here imports the presentation side
(``trainlab.report``).
"""

from trainlab.engine.callbacks import Callback, FitResult
from trainlab.engine.loop import evaluate, predict, train_one_epoch

__all__ = ["Callback", "FitResult", "evaluate", "predict", "train_one_epoch"]
