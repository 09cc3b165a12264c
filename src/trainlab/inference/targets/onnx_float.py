"""The float32 ONNX file: preprocessing, TTA and temperature inside, the "none of these" score
as a second output, the run's facts as metadata. Runs with ONNX Runtime (any language)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.inference.export import _write_onnx, need_export_extra, onnx_session
from trainlab.inference.targets.registry import Runner, Target


def build(context, path: Path) -> dict[str, Any]:
    need_export_extra()
    _write_onnx(context.model, context.example, context.batch, path, context.metadata,
                context.output_names)  # fmt: skip
    return {}


def load(path: Path) -> Runner:
    """ONNX Runtime on the CPU; shared by every target that is an ONNX file."""
    session = onnx_session(path)
    return lambda images: session.run(None, {"images": images})


TARGET = Target(
    "onnx",
    ".onnx",
    build=build,
    load=load,
    needs="onnxruntime (pip, or its C/C++, C#, Java, JavaScript packages)",
    exact=True,
)
