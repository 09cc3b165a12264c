"""Export targets, one module and one registry entry each (see ``registry``).

Adding a target: a module with ``build``, ``load`` and a ``TARGET = Target(...)``, and one
line below. Its place in the list is the order targets are built in: one made from another's
file (``context.float_onnx()``, or ``context.made[name]``) comes after it.
"""

from trainlab.inference.targets import onnx_float, onnx_int8, openvino_ir, pt2
from trainlab.inference.targets.registry import TARGETS, Target, parse_formats, register

for _module in (onnx_float, onnx_int8, openvino_ir, pt2):
    register(_module.TARGET)

__all__ = ["TARGETS", "Target", "parse_formats", "register"]
