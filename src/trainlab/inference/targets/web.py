"""A web folder: index.html (upload, camera, the drawing pad for digits), the model and
onnxruntime-web's files, which runs in a browser from any static file host with no server code
and no network (``trainlab.inference.web``). The model is the int8 file when this export kept
it (the gate passed), else the float32 one; the folder is scored by running its model.onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.inference.targets import onnx_float
from trainlab.inference.targets.registry import Runner, Target


def build(context, folder: Path) -> dict[str, Any]:
    from trainlab.inference.web import write_web_folder

    int8 = context.made.get("onnx-int8")
    source = int8 if int8 is not None and int8.exists() else context.float_onnx()
    write_web_folder(source, folder)
    return {"model": "int8" if source is int8 else "float32"}


def load(folder: Path) -> Runner:
    return onnx_float.load(folder / "model.onnx")


def _folder(folder: Path) -> list[Path]:
    return [folder]


TARGET = Target(
    "web",
    "-web",
    build=build,
    load=load,
    needs="a browser (any static file host serves the folder; no server code, no network)",
    files=_folder,
)
