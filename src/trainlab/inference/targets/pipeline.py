"""``trainlab export RUN --format onnx,onnx-int8,openvino,pt2``: every target asked, each
scored on the run's test split beside the checkpoint, kept or refused, and listed in
``exports.json`` beside the run.

Example:
    >>> result = export_targets("runs/<id>", "onnx,onnx-int8")
    >>> [(t["target"], t["status"], t["agreement"]) for t in result["targets"]]
    [('onnx', 'kept', 100.0), ('onnx-int8', 'kept', 99.83)]

Each target is written in a work folder beside its final place and moved there only when it
passes, so a refused target leaves no file, and none is left half-written.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.fsutil import atomic_write_text
from trainlab.inference.export import ExportError, parity
from trainlab.inference.targets import TARGETS, parse_formats
from trainlab.inference.targets.context import Context
from trainlab.inference.targets.scoring import decisions, latency_ms, metric, run_split, score
from trainlab.inference.targets.scoring import verdict as gate

MAX_DROP = 0.5  # points of the test metric a target may lose before it is refused
PARITY_IMAGES = 256


def destinations(checkpoint_path: Path, targets, output: str | Path | None) -> dict[str, Path]:
    """Where each target goes: ``output`` itself for one target, files named ``model.*`` in
    the folder ``output`` for several, and beside the checkpoint (``best.onnx``) by default."""
    if output is not None and len(targets) == 1:
        return {targets[0].name: Path(output)}
    if output is not None:
        return {t.name: Path(output) / f"model{t.suffix}" for t in targets}
    return {t.name: checkpoint_path.with_name(checkpoint_path.stem + t.suffix) for t in targets}


def export_targets(
    checkpoint: str | Path,
    formats: str | list[str] = "onnx",
    output: str | Path | None = None,
    *,
    max_drop: float = MAX_DROP,
    force: bool = False,
    verify: bool = True,
    data_dir: str | None = None,
    trust_code: bool = False,
) -> dict[str, Any]:
    """Build, score and keep (or refuse) each target asked.

    Returns:
        A dict: ``targets`` (one record per target: path, size_bytes, metric, drop_points,
        agreement, latency_ms, status kept/forced/refused/unverified and why), ``checkpoint``
        (its own figures), ``exports_json`` (where the table was written) and ``refused``.
    """
    targets = parse_formats(formats)
    if max_drop < 0:
        raise ExportError(f"--max-drop is in points and cannot be negative; got {max_drop:g}")
    context = Context(checkpoint, data_dir, trust_code)
    places = destinations(Path(context.predictor.path), targets, output)
    first = next(iter(places.values())).parent
    first.mkdir(parents=True, exist_ok=True)
    context.workdir = workdir = Path(tempfile.mkdtemp(prefix=".export-", dir=first))
    try:
        reference = _reference(context) if verify else None
        records = [
            _one_target(context, target, places[target.name], reference, max_drop, force)
            for target in targets
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "checkpoint": str(context.predictor.path),
        "metadata": context.metadata,
        "max_drop": max_drop,
        "reference": None if reference is None else _public(reference),
        "targets": records,
        "refused": [r["target"] for r in records if r["status"] == "refused"],
    }
    result["exports_json"] = str(_write_table(context, result))
    return result


def _reference(context: Context) -> dict[str, Any]:
    """The checkpoint's own figures on the test split (float32 on the CPU, as the graph)."""
    x, y = context.test_split()
    model = context.model

    def run(images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            got = model(torch.from_numpy(images))
        return [t.numpy() for t in (got if isinstance(got, tuple | list) else [got])]

    outputs = run_split(run, x)
    answers = decisions(context.predictor, outputs[0])
    name, value = metric(context.predictor, answers, y)
    return {
        "x": x,
        "y": y,
        "outputs": outputs,
        "answers": answers,
        "metric": name,
        "value": value,
        "test_inputs": len(x),
        "latency_ms": latency_ms(run, x),
    }


def _public(reference: dict) -> dict[str, Any]:
    value = reference["value"]
    return {
        "metric": reference["metric"],
        "value": None if value is None else round(value, 4),
        "test_inputs": reference["test_inputs"],
        "latency_ms": reference["latency_ms"],
        "runtime": f"PyTorch {torch.__version__}, float32, CPU",
    }


def _one_target(context, target, place: Path, reference, max_drop, force) -> dict[str, Any]:
    """Build one target in the work folder, score it, and move it into place or refuse it."""
    temp = context.workdir / f"{target.name}{target.suffix}"
    record: dict[str, Any] = {"target": target.name, "needs": target.needs}
    record.update(target.build(context, temp))
    record["size_bytes"] = sum(_size(p) for p in target.files(temp))
    reason = None
    if reference is not None:
        runner = target.load(temp)
        if target.exact:  # float32 as the checkpoint: to the last bits, not only the answers
            images = torch.from_numpy(reference["x"][:PARITY_IMAGES])
            checked = parity(lambda x: runner(x.numpy()), context.model, images,
                             context.predictor.thresholds, target.name)  # fmt: skip
            record["parity"] = {**checked, "inputs": "test images"}
        record.update(score(context.predictor, runner, reference["x"], reference["y"], reference))
        if target.quantized:
            record["float32"] = _against_float(context, reference, record)
        reason = gate(target, record, max_drop)
    record["status"] = ("forced" if force else "refused") if reason else "kept"
    if reference is None:
        record["status"] = "unverified"
    if reason:
        record["refused_because"] = reason
    if record["status"] == "refused":
        record["path"] = None
        for file in target.files(temp):
            _remove(file)
        context.made.pop(target.name, None)
        return record
    for src, dst in zip(target.files(temp), target.files(place), strict=True):
        _move(src, dst)
    context.made[target.name] = place  # a later target may start from it (web from int8)
    record["path"] = str(place)
    record["files"] = [str(p) for p in target.files(place)]
    return record


def _against_float(context: Context, reference: dict, record: dict) -> dict[str, Any]:
    """The float32 ONNX file's latency in the same run, and whether the quantized is faster."""
    float_ms = latency_ms(TARGETS["onnx"].load(context.float_onnx()), reference["x"])
    mine = record["latency_ms"]
    return {"latency_ms": float_ms, "faster_at_64": mine["64"] < float_ms["64"]}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_dir():  # a folder target made again: the new one replaces it whole
        shutil.rmtree(dst)
    os.replace(src, dst)


def _write_table(context: Context, result: dict[str, Any]) -> Path:
    """exports.json beside the run: this export's targets replace earlier entries of theirs."""
    from trainlab import __version__

    path = context.run_dir / "exports.json"
    table: dict[str, Any] = {}
    if path.exists():
        try:
            table = json.loads(path.read_text())
        except ValueError:
            table = {}
    entries = table.get("targets") if isinstance(table.get("targets"), dict) else {}
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for record in result["targets"]:
        entries[record["target"]] = {**record, "exported_at": when}
    table = {
        "checkpoint": result["checkpoint"],
        "trainlab_version": __version__,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_threads": os.cpu_count(),
            "platform": platform.platform(),
        },  # fmt: skip
        "max_drop": result["max_drop"],
        "reference": result["reference"] or table.get("reference"),
        "targets": entries,
    }
    atomic_write_text(path, json.dumps(table, indent=2) + "\n")
    return path
