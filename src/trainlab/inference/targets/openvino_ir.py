"""OpenVINO IR (.xml graph + .bin weights) converted from the float ONNX file, weights kept in
float32 (OpenVINO's save compresses them to float16 unless told not to), run on the CPU in
float32 (a CPU with bfloat16 would otherwise be used in bfloat16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainlab.inference.export import ExportError
from trainlab.inference.targets.registry import Runner, Target

EXTRA = "pip install 'trainlab[openvino]'  (openvino)"


def _openvino():
    try:
        import openvino
    except ImportError as e:
        raise ExportError(
            f"the openvino target needs the openvino package, which is not installed. Install "
            f"the extra: {EXTRA}."
        ) from e
    return openvino


def files(path: Path) -> list[Path]:
    return [path, path.with_suffix(".bin")]


def build(context, path: Path) -> dict[str, Any]:
    ov = _openvino()
    model = ov.convert_model(str(context.float_onnx()))
    for key, value in context.metadata.items():  # the ONNX file's metadata, as rt_info
        model.set_rt_info(value, ["trainlab", key])
    ov.save_model(model, str(path), compress_to_fp16=False)
    return {"inference_precision": "f32", "device": "CPU"}


def load(path: Path) -> Runner:
    ov = _openvino()
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()

    def run(images: np.ndarray) -> list[np.ndarray]:
        results = request.infer({0: images})
        return [np.array(results[output]) for output in compiled.outputs]

    return run


TARGET = Target(
    "openvino",
    ".openvino.xml",
    build=build,
    load=load,
    needs="openvino (pip; C++ runtime); CPU (x86 or ARM), Intel GPU or NPU",
    files=files,
)
