"""int8 ONNX: ONNX Runtime's static quantization (QDQ, per-channel weights, int8 activations)
of the float ONNX file, its activation ranges calibrated on the run's own training images.

The calibration is recorded with the target (images, how they were drawn, the method), so the
file can be made again; ONNX Runtime's pre-processing (shape inference, folding) runs first, as
its documentation advises.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.inference.export import need_export_extra
from trainlab.inference.targets import onnx_float
from trainlab.inference.targets.registry import Target

CALIBRATION_IMAGES = 300  # enough for stable min/max ranges of a small network, quick to run
CALIBRATION_BATCH = 32


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantizer warns on the root logger for every 1-D weight (batch norm's) that has no
    channel axis to quantize along; those stay per-tensor, which is what we want."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def build(context, path: Path) -> dict[str, Any]:
    need_export_extra()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    images = context.train_images(CALIBRATION_IMAGES, seed=0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(
                {"images": images[i : i + CALIBRATION_BATCH]}
                for i in range(0, len(images), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    prepared = context.workdir / "int8-prepared.onnx"
    with _quiet_quantizer():
        quant_pre_process(str(context.float_onnx()), str(prepared))
        quantize_static(
            str(prepared),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    prepared.unlink()
    return {
        "calibration": {
            "images": len(images),
            "split": "train",
            "drawn": "at random, seed 0",
            "method": "min/max",
            "format": "QDQ",
            "weights": "int8, per channel",
            "activations": "int8, per tensor",
        }
    }


TARGET = Target(
    "onnx-int8",
    ".int8.onnx",
    build=build,
    load=onnx_float.load,
    needs="onnxruntime, as the float file; fastest on CPUs with VNNI (AVX-512 VNNI or AVX-VNNI)",
    quantized=True,
)
