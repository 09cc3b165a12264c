"""What every export target starts from, made once per ``trainlab export``: the checkpoint's
model with its preprocessing (float32, CPU), the graph's metadata, the float ONNX file that
int8, OpenVINO (and a web folder) are made from, and the run's own data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainlab.errors import TrainlabError
from trainlab.inference.export import (
    ExportError,
    _load,
    _write_onnx,
    metadata,
    need_export_extra,
    output_names,
)


class Context:
    """The export's shared state; targets read it, and the float ONNX file is written once.

    Args:
        checkpoint: a .pt file or a run directory.
        data_dir: the data root for the run's test split and calibration images.
        trust_code: import the model's code recorded in the checkpoint (its sha256 checked).
    """

    def __init__(self, checkpoint, data_dir=None, trust_code: bool = False):
        self.predictor, self.model = _load(checkpoint, trust_code)
        self.metadata = metadata(self.predictor)
        self.output_names = output_names(self.predictor)
        # where targets are written before they pass (beside their final place); set by the
        # export once it knows that place
        self.workdir = Path(".")
        self.data_dir = data_dir
        self.example = torch.rand(2, *self.predictor.input_shape)
        self.batch = torch.export.Dim("batch", min=1, max=65536)
        self.made: dict[str, Path] = {}  # target name -> its file, where it is now
        self._data = None

    @property
    def run_dir(self) -> Path:
        return Path(self.predictor.path).parent

    def float_onnx(self) -> Path:
        """The float32 ONNX file: the onnx target's when this export made it, else one of its
        own in the work folder (int8 and OpenVINO start from it)."""
        made = self.made.get("onnx")
        if made is not None and made.exists():
            return made
        path = self.workdir / "float32.onnx"
        if not path.exists():
            need_export_extra()
            _write_onnx(self.model, self.example, self.batch, path, self.metadata,
                        self.output_names)  # fmt: skip
        return path

    def dataset(self):
        """The run's dataset, loaded once from local files; refused by name when absent."""
        if self._data is None:
            from trainlab.data import load_dataset

            config = self.predictor.checkpoint.get("config", {})
            try:
                self._data = load_dataset(
                    self.predictor.dataset,
                    self.data_dir or config.get("data_dir"),
                    sources=("local",),
                    **(config.get("data_options") or {}),
                )
            except TrainlabError as e:
                raise ExportError(
                    f"scoring the export needs the run's data ({self.predictor.dataset}), which "
                    f"could not be loaded: {e}. Pass --data-dir, or --no-verify to skip scoring "
                    "(then nothing is checked and no target is refused)."
                ) from e
        return self._data

    def _as_input(self, x: torch.Tensor) -> np.ndarray:
        if tuple(x.shape[1:]) != tuple(self.predictor.input_shape):
            raise ExportError(
                f"the run's stored images are {tuple(x.shape[1:])}, the model takes "
                f"{tuple(self.predictor.input_shape)}; export with --no-verify."
            )
        return (x.float() / 255 if x.dtype == torch.uint8 else x.float()).numpy()

    def test_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split as the graph takes it (float [0, 1] images or feature rows), with its
        labels (class indices, label rows, or standardised targets)."""
        data = self.dataset()
        return self._as_input(data.test_x), data.test_y.numpy()

    def train_images(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` training inputs drawn at random (seeded), as the graph takes them."""
        data = self.dataset()
        generator = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(data.train_x), generator=generator)[:n]
        return self._as_input(data.train_x[pick])
