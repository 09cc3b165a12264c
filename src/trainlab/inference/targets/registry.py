"""The registry of export targets: one entry each, refused when its name is taken.

A target says how it writes its files from the export's shared state (``Context``: the model
with its preprocessing, the float ONNX file, the run's data), how its files are run on CPU to
score them, and what a user needs at their end. ``trainlab export --format a,b`` builds the
targets asked, in the registry's order, so one that starts from another's file (int8 and
OpenVINO from the float ONNX file) finds it made.

Example:
    >>> register(Target("tflite", ".tflite", build=..., load=..., needs="tflite-runtime"))
    >>> [t.name for t in parse_formats("onnx,pt2")]
    ['onnx', 'pt2']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.inference.export import ExportError

# images (float32 N×C×H×W in [0, 1], or a table's feature rows) -> the file's outputs: the
# model's outputs first, then the "none of these" score where the graph has one
Runner = Callable[[np.ndarray], list[np.ndarray]]


def _one_file(path: Path) -> list[Path]:
    return [path]


@dataclass(frozen=True)
class Target:
    """One export target.

    Attributes:
        name: the name ``--format`` takes (``onnx-int8``).
        suffix: how its file's name ends after the checkpoint's stem (``.int8.onnx``; a folder
            target's suffix has no dot).
        build: ``build(context, path) -> dict`` writes the target at ``path`` (a temp place the
            export moves into place once the target passes) and returns what to record with it
            (an int8 file's calibration, say).
        load: ``load(path) -> Runner``: the written target, ready to run on this machine's CPU.
        needs: what a user needs at their end to run it.
        exact: float32 arithmetic as the checkpoint's: checked to 1e-4 of the logits, not only
            by its agreement.
        quantized: an approximation (int8): held to the metric only, not to agreeing on each
            close call, and its latency is compared with the float32 ONNX file's.
        files: every file the target writes at ``path`` (OpenVINO's .xml and .bin).
    """

    name: str
    suffix: str
    build: Callable[[Any, Path], dict[str, Any]]
    load: Callable[[Path], Runner]
    needs: str
    exact: bool = False
    quantized: bool = False
    files: Callable[[Path], list[Path]] = field(default=_one_file)


TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    """Add a target; a name already taken is refused (a second entry would hide the first)."""
    if target.name in TARGETS:
        raise ValueError(f"export target '{target.name}' is already registered")
    TARGETS[target.name] = target
    return target


def parse_formats(formats: str | list[str] | tuple[str, ...]) -> list[Target]:
    """The targets named in ``"onnx,onnx-int8"`` (or a list), in the registry's order."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise ExportError(
            f"unknown export format {', '.join(repr(n) for n in unknown) or '(none given)'}; "
            f"choose any of {', '.join(TARGETS)}, separated by commas (--format onnx,onnx-int8)"
        )
    return [t for name, t in TARGETS.items() if name in names]
