"""Where the model looked, for a ``Predictor``'s answers: Grad-CAM heat maps (captum's
``LayerGradCam``) on the last convolution the model runs, or occlusion for a model without one
(the computation is ``trainlab.engine.explain``'s, shared with the report's mistakes gallery).

Example:
    >>> predictor = Predictor("runs/photos")
    >>> results = predictor.predict(["cat.jpg"])
    >>> maps = Explainer(predictor).heat_maps(results)      # one H×W array in [0, 1] each
    $ trainlab predict runs/photos cat.jpg --explain maps/    # maps/cat.png, the overlay

The map is for the predicted class, computed in float32 on a copy of the model, so the model
that scores and its answers are never touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.engine.explain import HeatMaps, overlay, overlay_png, resized, scaled, target_layer

__all__ = ["Explainer", "overlay", "overlay_png", "target_layer"]


class Explainer(HeatMaps):
    """Heat maps for a ``Predictor``'s answers."""

    def __init__(self, predictor: Any):
        super().__init__(
            predictor.model, predictor.transform, predictor.device, predictor.input_shape
        )

    def heat_maps(self, results: list[Any]) -> list[np.ndarray | None]:
        """For each answered prediction, its heat map at the preview's size, in [0, 1]."""
        answered = [i for i, r in enumerate(results) if r.ok and r.preview is not None]
        out: list[np.ndarray | None] = [None] * len(results)
        for start in range(0, len(answered), 32):
            chunk = answered[start : start + 32]
            previews = [results[i].preview for i in chunk]
            raw = self.raw_maps(previews, [results[i].index for i in chunk])
            for i, heat in zip(chunk, raw, strict=True):
                results[i].heat = scaled(heat).cpu().numpy()
                out[i] = resized(results[i].heat, results[i].preview.shape[-2:])
        return out
