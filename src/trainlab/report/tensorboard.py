"""TensorBoard event files for a run (``--tensorboard``): ``tensorboard --logdir runs``."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from trainlab.engine.callbacks import Callback

SCALARS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "lr",
    "seconds",
    "images_per_s",
    "samples_per_s",
    "b_error",
)


class TensorBoardLogger(Callback):
    """Scalars per epoch (and every ``log_every`` batches), lr, confusion image, hparams -> RUN/tb.

    ``tensorboard --logdir runs`` shows every run side by side.
    """

    def __init__(self, log_every: int = 0):
        self.log_every = log_every
        self.writer = None
        self.steps = 0

    @override
    def on_fit_start(self, trainer, info: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(info["run_dir"] / "tb"))
        self.steps = info["steps_per_epoch"]

    @override
    def on_batch_end(self, trainer, state, loss_sum, num_batches: int) -> None:
        if self.log_every and state.batch % self.log_every == 0:
            n = max(1, min(trainer.config.batch_size, state.counts.n))
            self.writer.add_scalar(
                "batch/train_loss", float(loss_sum) / n, state.epoch * self.steps + state.batch
            )

    @override
    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        for key in SCALARS:
            if key in row:
                self.writer.add_scalar(key, row[key], row["epoch"])
        self.writer.flush()

    @override
    def on_fit_end(self, trainer, result) -> None:
        if self.writer is None:
            return
        if result.history:
            self._confusion_image(result)
            config = trainer.config.to_dict()
            hparams = {
                k: v
                for k, v in config.items()
                if isinstance(v, int | float | str | bool) and v is not None
            }
            final = {
                f"hparam/{k}": v
                for k, v in result.history[-1].items()
                if k in SCALARS and isinstance(v, float)
            }
            self.writer.add_hparams(hparams, final, run_name="hparams")
        self.writer.close()

    def _confusion_image(self, result) -> None:
        from trainlab.engine.metrics import confusion_matrix
        from trainlab.engine.predictions import load_predictions
        from trainlab.report.figures import confusion_figure

        path = result.run_dir / "predictions.npz"
        if not path.exists():
            return
        pred = load_predictions(path)
        if pred["labels"].ndim == 2:  # label sets: the report shows their co-occurrence
            return
        matrix = confusion_matrix(pred["labels"], pred["pred"], len(pred["classes"])).numpy()
        figure = confusion_figure(matrix, [str(c) for c in pred["classes"]])
        self.writer.add_figure("confusion_matrix", figure, result.history[-1]["epoch"])
