"""A trained model back from its checkpoint, for eval, predict, export and serve.

Example:
    >>> from trainlab.engine.loading import load_model
    >>> model, checkpoint = load_model("runs/<id>")          # best.pt, weights loaded
    >>> model, checkpoint = load_model("runs/<id>", trust_code=True)   # a model of your own code

It needs the model registry and the checkpoint reader, nothing of training: inference and the
server import this, never the trainer. Version-1 checkpoints (trainlab before the registries)
load the same way; their records name a built-in and its options.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from trainlab.engine.checkpoint import load_checkpoint, load_weights
from trainlab.engine.probe import materialize
from trainlab.errors import CheckpointError


def model_from_record(
    record: dict[str, Any], *, trust_code: bool = False, what: str = ""
) -> nn.Module:
    """Build the (untrained) model a checkpoint's record describes."""
    from trainlab.models import build_model

    name = record.get("name")
    if not name:
        why = record.get("why") or (
            f"the model ({record.get('class', 'a custom nn.Module')}) was not built by "
            "trainlab.build_model"
        )
        raise CheckpointError(
            f"{what}: this model cannot be rebuilt from the checkpoint: {why}. The weights are in "
            "checkpoint['state_dict'] for a model you build yourself."
        )
    source = record.get("source") or {"kind": "builtin"}
    if source["kind"] in ("file", "module"):
        from trainlab.models.usercode import reference_spec

        reference_spec(
            name,
            trust_code=trust_code,
            expected_sha256=source.get("sha256"),
            what=what,
        )
    return build_model(
        name,
        input_shape=tuple(record["input_shape"]),
        outputs=record["outputs"],
        init=record.get("init", "default"),
        **record.get("options", {}),
    )


def model_input_shape(record: dict[str, Any]) -> tuple[int, ...]:
    """The shape one input has when it reaches the model (after resize and channel repeat)."""
    shape = tuple(record["input_shape"])
    if len(shape) == 3 and (record.get("size") or record.get("channels")):
        size = tuple(record.get("size") or shape[1:])
        shape = (record.get("channels") or shape[0], *size)
    return shape


def load_model(
    checkpoint: str | Path | dict[str, Any],
    *,
    trust_code: bool = False,
    model: nn.Module | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a checkpoint's model and load its weights: (model, checkpoint payload).

    ``model``: an untrained instance to load the weights into, for a model trainlab cannot
    rebuild from its record (an ``nn.Sequential`` built in code); it is not modified.
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    record = ckpt.get("model") or {}
    if model is None:
        model = model_from_record(record, trust_code=trust_code, what=ckpt["path"])
    else:
        model = copy.deepcopy(model)
    shape_of = record if "input_shape" in record else ckpt["data"]  # your own model: the data's
    materialize(model, model_input_shape(shape_of))  # lazy modules take their shapes first
    load_weights(model, ckpt["state_dict"], ckpt["path"], record.get("name") or record.get("class"))
    return model, ckpt
