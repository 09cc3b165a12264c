"""Export a checkpoint's model for deployment: ONNX (default) or a ``torch.export`` program.

Example:
    >>> from trainlab.inference.export import export_model
    >>> info = export_model("runs/<id>", "model.onnx")
    >>> info["parity"]["max_abs_logit_diff"] < 1e-4
    True

The exported graph takes float32 images in [0, 1], N×C×H×W as the data is (N×1×28×28 for
MNIST), with a dynamic batch dimension, and returns the model's outputs (logits divided by the
run's temperature, or log-probabilities for a log-softmax model) and, for a classifier with
logits, a second output ``score``: the energy -logsumexp of the logits before the temperature,
which the metadata's ``reject_threshold`` turns into "none of these" as ``predict --reject``
does. Normalisation, and for AlexNet the resize and the channel repeat, are inside the graph,
so a user needs nothing of trainlab to run it.

A multi-label model's graph returns each label's probability (the sigmoid is in the graph), and
its metadata holds the thresholds its run recorded (``thresholds``, one per class): the labels
at or over them are the answer, as ``trainlab predict`` gives it; the check after export
compares those label sets with ONNX Runtime's.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.data.kinds import get_kind
from trainlab.errors import TrainlabError
from trainlab.fsutil import atomic_write

FORMATS = ("onnx", "pt2")
EXTRA = "pip install 'trainlab[export]'  (onnx, onnxscript, onnxruntime)"


class ExportError(TrainlabError):
    """The model could not be exported, or the exported file does not match the model."""


class Deployable(nn.Module):
    """The model with its preprocessing: float images in [0, 1] in, model outputs out."""

    def __init__(
        self,
        model: nn.Module,
        transform,
        temperature: float | torch.Tensor = 1.0,
        probabilities: bool = False,
        dims: int = 4,
        score: bool = False,
    ):
        super().__init__()
        self.model = model
        if isinstance(temperature, torch.Tensor):  # per label: a buffer of the graph
            self.register_buffer("temperature", temperature.clone())
        else:
            self.temperature = temperature  # the run's calibration: outputs divided by it
        self.probabilities = probabilities  # multi-label: a sigmoid per label, in the graph
        # a second output: the energy score of the logits before the temperature, as
        # predict --reject computes it (engine.calibration.energy)
        self.score = score
        channels = transform.channels
        self.size = tuple(transform.size) if transform.size else None
        self.channels = channels
        mean = torch.tensor(transform.mean or [0.0], dtype=torch.float32)
        std = torch.tensor(transform.std or [1.0], dtype=torch.float32)
        shape = (1, -1) + (1,) * (dims - 2)  # per channel of images, per feature of rows
        self.register_buffer("mean", mean.view(shape))
        self.register_buffer("std", std.view(shape))

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = images
        if self.size is not None:
            x = nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.channels is not None and self.channels != x.shape[1]:
            x = x.expand(-1, self.channels, -1, -1)
        outputs = self.model((x - self.mean) / self.std)
        if self.probabilities:  # a multi-label run's temperatures: one per label
            return (outputs / self.temperature).sigmoid()
        scaled = outputs / self.temperature if self.temperature != 1.0 else outputs
        if self.score:
            return scaled, -torch.logsumexp(outputs.float(), dim=1)
        return scaled


def need_export_extra() -> None:
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(
            f"export to ONNX needs {', '.join(missing)}, which are not installed. Install the "
            f"extra: {EXTRA}."
        )


def _load(checkpoint, trust_code: bool = False):
    from trainlab.inference import Predictor

    # the graph computes in float32: its parity is checked against the model in float32
    predictor = Predictor(checkpoint, device="cpu", trust_code=trust_code, amp="off")
    deployable = Deployable(
        predictor.model.float(),
        predictor.transform,
        predictor.temperature
        if predictor.label_temperatures is None
        else predictor.label_temperatures,
        probabilities=predictor.multi_label,
        dims=1 + len(predictor.input_shape),
        score=has_score(predictor),
    ).eval()
    deployable.to(memory_format=torch.contiguous_format)
    return predictor, deployable


def has_score(predictor) -> bool:
    """Whether the graph has the "none of these" score: single-label logits only (a regression's
    value, label probabilities and log-probabilities carry no energy to score)."""
    return not (predictor.regression or predictor.multi_label or predictor.output == "log_probs")


def output_names(predictor) -> list[str]:
    return ["outputs", "score"] if has_score(predictor) else ["outputs"]


def metadata(predictor) -> dict[str, str]:
    """What a user of the file needs to know, as ONNX metadata_props (strings)."""
    from trainlab import __version__

    transform = predictor.transform
    data = predictor.checkpoint["data"]
    return {
        "trainlab_version": __version__,
        "run_id": Path(predictor.path).parent.name,
        "checkpoint": Path(predictor.path).name,
        "model": str(predictor.checkpoint["model"].get("name")),
        "dataset": predictor.dataset,
        "classes": json.dumps(predictor.classes),
        "input": get_kind(predictor.kind).graph_input(data),
        "output": _output_words(predictor),
        "temperature": f"{predictor.temperature:g}",
        **(
            {"temperatures": json.dumps(predictor.label_temperatures.tolist())}
            if predictor.label_temperatures is not None
            else {}
        ),
        **(
            {"thresholds": json.dumps(predictor.thresholds)}
            if predictor.thresholds is not None
            else {}
        ),
        **_score_words(predictor),
        "normalisation": json.dumps({"mean": transform.mean, "std": transform.std}),
        # how a table's rows become the graph's input (predict encodes them so), or how
        # images were resized
        **(
            {
                ("encoding" if predictor.takes_rows else "resize_policy"): json.dumps(
                    data["preprocess"]
                )
            }
            if data.get("preprocess")
            else {}
        ),
        "preprocessing_in_graph": "normalisation"
        + (", bilinear resize" if transform.size else "")
        + (", channel repeat" if transform.channels else ""),
    }


def _score_words(predictor) -> dict[str, str]:
    """The second output and the run's rule for it: "none of these" over the threshold."""
    if not has_score(predictor):
        return {}
    words = {
        "score": "output 'score': the energy -logsumexp(logits) of the logits before the "
        "temperature; high for inputs unlike the training data"
    }
    if predictor.reject_threshold is not None:
        words["reject_threshold"] = repr(float(predictor.reject_threshold))
        words["reject_rule"] = "none of these when score > reject_threshold (predict --reject)"
    return words


def _output_words(predictor) -> str:
    if predictor.regression:
        return "the target, standardised: value = output * std + mean (the encoding's target)"
    if predictor.multi_label:
        return (
            "probabilities, one per label (sigmoid); a label is given when its probability is "
            "at or over its threshold (metadata 'thresholds', in class order)"
        )
    words = "log-probabilities" if predictor.output == "log_probs" else "logits"
    if predictor.temperature != 1.0:
        words += (
            f" divided by the calibrated temperature {predictor.temperature:g}; softmax gives "
            "the probabilities trainlab shows"
        )
    return words


def export_model(
    checkpoint: str | Path,
    output: str | Path | None = None,
    *,
    format: str = "onnx",
    verify: bool = True,
    data_dir: str | None = None,
    parity_images: int = 256,
    trust_code: bool = False,
) -> dict[str, Any]:
    """Write the model as one file and, unless ``verify`` is False, check it on real images.

    Returns:
        A dict: path, format, size_bytes, metadata and (when verified) parity figures.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format '{format}'; choose from {', '.join(FORMATS)}")
    if format == "onnx":
        need_export_extra()
    predictor, deployable = _load(checkpoint, trust_code)
    if output is None:
        output = Path(predictor.path).with_suffix(".onnx" if format == "onnx" else ".pt2")
    output = Path(output)
    example = torch.rand(2, *predictor.input_shape)
    batch = torch.export.Dim("batch", min=1, max=65536)
    if format == "onnx":
        _write_onnx(
            deployable, example, batch, output, metadata(predictor), output_names(predictor)
        )
    else:
        _write_pt2(deployable, example, batch, output)
    info: dict[str, Any] = {
        "path": str(output),
        "format": format,
        "size_bytes": output.stat().st_size,
        "metadata": metadata(predictor),
    }
    if verify:
        images, source = _real_images(predictor, data_dir, parity_images)
        parity = check_parity(output, format, deployable, images, predictor.thresholds)
        info["parity"] = {**parity, "inputs": source}
    return info


def _quietly(function, *args, **kwargs):
    """Run an exporter without its progress prints (stdout is for the result); they are shown
    on stderr only when the export fails."""
    import contextlib
    import io
    import sys

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            return function(*args, **kwargs)
    except Exception:
        sys.stderr.write(captured.getvalue())
        raise


def _write_onnx(
    model, example, batch, output: Path, meta: dict[str, str], names: list[str]
) -> None:
    import onnx

    try:
        program = _quietly(
            torch.onnx.export,
            model,
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=names,
            dynamic_shapes={"images": {0: batch}},
            external_data=False,
        )
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; name it for people
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from e
    proto = program.model_proto
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    atomic_write(output, lambda tmp: onnx.save_model(proto, str(tmp)))


def _write_pt2(model, example, batch, output: Path) -> None:
    import io

    from trainlab.fsutil import atomic_write_bytes

    try:
        program = _quietly(
            torch.export.export, model, (example,), dynamic_shapes={"images": {0: batch}}
        )
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"torch.export failed: {type(e).__name__}: {e}") from e
    buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer, not a temp name
    torch.export.save(program, buffer)
    atomic_write_bytes(output, buffer.getvalue())


def _real_images(predictor, data_dir, n: int) -> tuple[torch.Tensor, str]:
    """The first ``n`` test images of the run's dataset as float [0, 1], and what they are;
    random inputs when the data is not at hand (the parity check is about arithmetic, not
    accuracy, but the result says which it used)."""
    from trainlab.data import load_dataset

    config = predictor.checkpoint.get("config", {})
    try:
        data = load_dataset(
            predictor.dataset,
            data_dir or config.get("data_dir"),
            sources=("local",),
            **(config.get("data_options") or {}),
        )
        x = data.test_x[:n]
        if x.dtype == torch.uint8 and tuple(x.shape[1:]) == tuple(predictor.input_shape):
            return x.float() / 255, "test images"
        if x.dtype.is_floating_point and tuple(x.shape[1:]) == tuple(predictor.input_shape):
            return x.float(), "test rows (features as the graph takes them)"
    except TrainlabError:
        pass
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(n, *predictor.input_shape, generator=generator)
    return inputs, "random inputs (the run's data could not be loaded)"


def onnx_session(path: str | Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_all(path: str | Path, format: str, images: torch.Tensor, session=None) -> list[np.ndarray]:
    """Every output of the exported file (the outputs, then the score where the graph has it)."""
    if format == "onnx":
        session = session or onnx_session(path)
        return session.run(None, {"images": images.numpy()})
    program = torch.export.load(str(path))
    with torch.inference_mode():
        got = program.module()(images)
    return [t.numpy() for t in (got if isinstance(got, tuple | list) else [got])]


def run_exported(path: str | Path, format: str, images: torch.Tensor, session=None) -> np.ndarray:
    """The exported file's first output: logits (or what the metadata's 'output' says)."""
    return run_all(path, format, images, session)[0]


def model_outputs(model: nn.Module, images: torch.Tensor) -> list[np.ndarray]:
    """The deployable model's outputs as the exported file gives them (a list)."""
    with torch.inference_mode():
        got = model(images)
    return [t.numpy() for t in (got if isinstance(got, tuple | list) else [got])]


def check_parity(
    path, format: str, model: nn.Module, images: torch.Tensor, thresholds=None
) -> dict[str, Any]:
    """Compare the file with the model at batch sizes 1, 7 and all; raise if they differ. With
    ``thresholds`` (a multi-label model's), the label sets must be the same, not the argmax.
    The score output, where there is one, is held to the same bound as the logits."""
    session = onnx_session(path) if format == "onnx" else None
    run = functools.partial(run_all, path, format, session=session)
    return parity(run, model, images, thresholds, str(path))


def parity(run, model: nn.Module, images: torch.Tensor, thresholds=None, name: str = "") -> dict:
    """``check_parity`` for any way of running the exported file: ``run(images)`` gives its
    outputs as a list of arrays."""
    expected = model_outputs(model, images)
    worst = 0.0
    for size in sorted({1, 7, len(images)}):
        got = run(images[:size])
        for mine, theirs in zip(got, expected, strict=True):
            worst = max(worst, float(np.abs(mine - theirs[:size]).max()))
    got = run(images)[0]
    expected = expected[0]
    if thresholds is not None:
        limits = np.asarray(thresholds, np.float32)
        same_argmax = bool(((got >= limits) == (expected >= limits)).all())
    else:
        same_argmax = bool((got.argmax(1) == expected.argmax(1)).all())
    # float32 kernels differ in their last bits, and deep networks add them up: the bound is
    # 1e-4 of the logits' scale (1e-4 absolute for logits within ±1)
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    if worst > tolerance or not same_argmax:
        raise ExportError(
            f"{name}: the exported model differs from the checkpoint's (max |logit diff| "
            f"{worst:.2e}, allowed {tolerance:.2e}, same "
            f"{'label sets' if thresholds is not None else 'argmax'}: {same_argmax}). Report this "
            "with the command you ran."
        )
    return {
        "images": len(images),
        "max_abs_logit_diff": worst,
        "tolerance": tolerance,
        "same_argmax": same_argmax,
        **({"same_label_sets": same_argmax} if thresholds is not None else {}),
    }
