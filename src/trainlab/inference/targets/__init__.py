"""Export targets, one module and one registry entry each (see ``registry``).

Adding a target: a module with ``build``, ``load`` and a ``TARGET = Target(...)``, and one
line below. Its place in the list is the order targets are built in: one made from another's
file comes after it. A web folder, say, is ``Target("web", "-web", build=..., load=...)`` with
``build(context, folder)`` writing index.html and the model from ``context.made.get("onnx-int8")``
(the int8 file when this export kept it) or ``context.float_onnx()``, ``load(folder)`` running
``folder / "model.onnx"`` with ONNX Runtime (``onnx_float.load``) to score it like the others, and
``files=lambda folder: [folder]``.
"""

from trainlab.inference.targets import onnx_float, onnx_int8, openvino_ir, pt2, web
from trainlab.inference.targets.registry import TARGETS, Target, parse_formats, register

for _module in (onnx_float, onnx_int8, web, openvino_ir, pt2):
    register(_module.TARGET)

__all__ = ["TARGETS", "Target", "parse_formats", "register"]
