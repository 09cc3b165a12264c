"""The report's mistakes gallery: each of the most confident mistakes beside its heat map,
where the model looked when it gave the wrong answer (Grad-CAM on the checkpoint that made the
predictions, ``trainlab.engine.explain``, the same computation as ``predict --explain``).

A mistake whose heat sits on the background, not the object, shows a model that learned a cue
of the training photos instead of the class.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.errors import TrainlabError

GALLERY = 16  # mistakes with heat maps on the page (each is two embedded PNGs)


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def checkpoint_of(run_dir: Path, pred: dict[str, np.ndarray]) -> Path:
    """The checkpoint that made the predictions (``best.pt`` of the run, or eval's path)."""
    named = Path(str(pred.get("checkpoint", "best.pt")))
    return named if named.is_absolute() else run_dir / named


def mistakes_gallery(run_dir: Path, pred: dict[str, np.ndarray], top_k: int = GALLERY) -> dict:
    """``{"items": [...], "method": str, "note": str}``: per mistake (most confident first)
    its image, its overlay (base64 PNGs), the true and predicted class and the probability.
    Without the images or the checkpoint, or without captum, no items and a note why."""
    from trainlab.data.batches import InputTransform
    from trainlab.engine.explain import HeatMaps, overlay_png
    from trainlab.engine.loading import load_model

    images = pred.get("mistake_images")
    index = pred["mistakes"][: min(top_k, GALLERY)]
    if images is None or len(index) == 0:
        return {"items": [], "method": "", "note": ""}
    path = checkpoint_of(run_dir, pred)
    try:
        model, ckpt = load_model(path)
        transform = InputTransform.from_dict(ckpt["data"]["transform"])
        explainer = HeatMaps(model, transform, "cpu", images.shape[1:])
    except (TrainlabError, OSError, KeyError) as e:
        why = str(e) if str(e) else type(e).__name__
        return {"items": [], "method": "", "note": f"heat maps not drawn: {why}"}
    previews = [_preview(images[slot]) for slot in range(len(index))]
    targets = [int(pred["pred"][i]) for i in index]
    heats = explainer.maps(previews, targets)
    classes = [str(c) for c in pred["classes"]]
    items: list[dict[str, Any]] = []
    for preview, heat, i in zip(previews, heats, index, strict=True):
        items.append(
            {
                "image": _b64(overlay_png(preview, np.zeros_like(heat), alpha=0.0)),
                "overlay": _b64(overlay_png(preview, heat)),
                "true": classes[int(pred["labels"][i])],
                "predicted": classes[int(pred["pred"][i])],
                "probability": f"{float(pred['confidence'][i]):.2f}",
            }
        )
    note = f"heat maps by {explainer.method} of {path.name}, for the predicted class"
    return {"items": items, "method": explainer.method, "note": note}


def _preview(image: np.ndarray) -> np.ndarray:
    """A stored test image as the explainer takes it: H×W grey, C×H×W colour."""
    return image[0] if image.shape[0] == 1 else image
