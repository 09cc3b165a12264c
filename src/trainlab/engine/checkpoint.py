"""Checkpoints: plain dicts of tensors and primitives, written atomically, loaded with
``weights_only=True`` so a file carrying code is refused instead of run.

A checkpoint holds what it takes to rebuild, evaluate and resume a run: the model's registry name
and options, weights, optimizer state, RNG state, position (epoch, batch), the resolved config,
the data's classes and preprocessing, and the best-so-far record.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.errors import CheckpointError, ConfigError
from trainlab.fsutil import atomic_write

_LOG = logging.getLogger(__name__)

FORMAT = "trainlab-checkpoint"
VERSION = 2  # 2: model records with a source and options as data; 1 still loads


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` through a temp file and a rename.

    A failed write (disk full, a file-size limit, the folder gone) raises ``CheckpointError``
    and leaves the previous file at ``path`` as it was.
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    if not path.parent.is_dir():
        raise CheckpointError(
            f"{path.parent}: the run directory is gone (deleted or moved while training), so "
            f"{path.name} cannot be written. Start a new run, or restore the directory and resume."
        )
    try:
        return atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except (OSError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        kept = "the previous one is kept" if path.exists() else "no earlier one existed"
        raise CheckpointError(
            f"{path}: could not be written ({first}): the disk may be full, a file-size limit "
            f"reached or the folder not writable; {kept}. Free space (or fix the folder) and "
            "resume with `trainlab train --resume`."
        ) from None


def find_checkpoint(path: str | Path, which: str = "best") -> Path:
    """The checkpoint file a path names: the file itself, or in a run directory ``best.pt``
    (falling back to ``last.pt`` before any epoch finished) for ``which="best"``, ``last.pt``
    for ``which="last"`` (what a resume continues from)."""
    path = Path(path)
    if path.is_dir():
        names = ["best.pt", "last.pt"] if which == "best" else ["last.pt"]
        for name in names:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(
            f"{path}: no {' or '.join(names)} in this directory. Give a run directory made by "
            "`trainlab train` (after at least one epoch or an interrupt) or a .pt file."
        )
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file. Give a .pt file or a run directory."
        )
    return path


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (a truncated one still starts with its local header);
    older files start with a pickle protocol byte."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith((b"PK\x03\x04", b"\x80"))


def load_checkpoint(path: str | Path, which: str = "best") -> dict[str, Any]:
    """Read a trainlab checkpoint safely (tensors and plain values only).

    ``path`` is a .pt file or a run directory (see ``find_checkpoint``).
    """
    path = find_checkpoint(path, which)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: an empty file, not a checkpoint.")
    if not _looks_like_torch_file(path):
        raise CheckpointError(
            f"{path}: this is not a checkpoint (not a PyTorch file). Give a .pt file written by "
            "`trainlab train`, or a run directory."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only" not in str(e).lower():
            raise CheckpointError(
                f"{path}: not a readable checkpoint ({first[:200]}). It may be truncated or "
                "corrupt; use another checkpoint of the run (last.pt / best.pt)."
            ) from None
        raise CheckpointError(
            f"{path}: refused. It holds objects other than tensors and plain values, which could "
            f"run code when loaded ({first}). Only load it with torch.load(weights_only=False) if "
            "you trust its author; trainlab never does."
        ) from None
    except MemoryError:
        raise CheckpointError(f"{path}: too large to load into memory.") from None
    except Exception as e:  # noqa: BLE001 - torch.load raises many kinds on damaged files
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {first}). "
            "It may be truncated or corrupt; use another checkpoint of the run (last.pt / best.pt)."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a PyTorch file but not a trainlab checkpoint (no '{FORMAT}' marker). "
            "To use bare weights, load them with torch.load and model.load_state_dict."
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload['version']} is newer than this trainlab "
            f"reads ({VERSION}). Upgrade trainlab."
        )
    payload["path"] = str(path)
    validate_payload(payload)
    return payload


# What every checkpoint holds, and what a resume needs besides.
REQUIRED = {"state_dict": dict, "config": dict, "model": dict, "data": dict}
FOR_RESUME = {"optimizer": dict, "rng": dict, "best": dict, "epoch": int, "batch": int}


def validate_payload(payload: dict[str, Any], resume: bool = False) -> None:
    """Check what a loaded checkpoint holds before anything uses it; name what is wrong."""
    path = payload["path"]
    wanted = {**REQUIRED, **(FOR_RESUME if resume else {})}
    problems = [
        f"'{key}' is missing" if key not in payload else f"'{key}' is not a {kind.__name__}"
        for key, kind in wanted.items()
        if not isinstance(payload.get(key), kind) or isinstance(payload.get(key), bool)
    ]
    state = payload.get("state_dict")
    if isinstance(state, dict):
        bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
        if bad:
            problems.append(f"state_dict entries that are not tensors: {bad[:3]}")
    data = payload.get("data")
    if isinstance(data, dict) and not isinstance(data.get("classes", []), list):
        problems.append("'data.classes' is not a list")
    rng = payload.get("rng")
    if resume and isinstance(rng, dict) and not torch.is_tensor(rng.get("torch")):
        problems.append("'rng.torch' is not a tensor")
    for key in ("epoch", "batch"):
        value = payload.get(key)
        if isinstance(value, int) and value < 0:
            problems.append(f"'{key}' is negative")
    if problems:
        raise CheckpointError(
            f"{path}: not a usable trainlab checkpoint: {'; '.join(problems)}. Use another "
            "checkpoint of the run (last.pt / best.pt), or train again."
        )
    if isinstance(payload.get("config"), dict):
        from trainlab.config import TrainConfig
        from trainlab.models.shorthand import fold_options

        try:  # a version-1 config names its model's options at the top level: fold them once
            payload["config"] = fold_options(payload["config"], f"{path} (its config)")
            TrainConfig.from_dict(payload["config"], source=f"{path} (its config)")
        except ConfigError as e:
            raise CheckpointError(
                f"{path}: its config is not valid ({e}). Use another checkpoint of the run."
            ) from None


def load_weights(
    model: nn.Module, state_dict: dict[str, torch.Tensor], source: str, model_name: str
) -> None:
    """Load weights, turning a mismatch into an error that names what differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape
    )
    wrong_dtype = sorted(
        k
        for k in set(own) & set(state_dict)
        if k not in mismatched and own[k].dtype != state_dict[k].dtype
    )
    if missing or unexpected or mismatched or wrong_dtype:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(
                f"unexpected {', '.join(unexpected[:4])}{' …' if len(unexpected) > 4 else ''}"
            )
        for k in mismatched[:4]:
            parts.append(
                f"{k}: {tuple(state_dict[k].shape)} in the file, {tuple(own[k].shape)} in the model"
            )
        for k in wrong_dtype[:4]:
            parts.append(f"{k}: {state_dict[k].dtype} in the file, {own[k].dtype} in the model")
        raise CheckpointError(
            f"{source}: its weights do not fit model '{model_name}' ({'; '.join(parts)}). The "
            "checkpoint was made for another model or other data; use the matching --model, or "
            "start a new run."
        )
    model.load_state_dict(state_dict)


class BestCheckpoint:
    """Which epoch's weights best.pt holds, and why; its state lives in every checkpoint.

    Args:
        monitor: the metrics.jsonl key compared, e.g. "val_acc" or "val_loss"; "epoch" keeps
            the last epoch.
        mode: "max" or "min".
        why: what it is chosen on, in words, for config.toml and the report.
    """

    def __init__(self, monitor: str, mode: str, why: str):
        self.monitor, self.mode, self.why = monitor, mode, why
        self.value: float | None = None
        self.epoch: int | None = None

    @property
    def chooses(self) -> bool:
        """Does it choose among epochs (on a validation figure), or keep the last one?"""
        return self.monitor != "epoch"

    def update(self, row: dict[str, Any]) -> bool:
        """Record ``row`` if it beats the best so far; True when it does."""
        value = row[self.monitor]
        better = self.value is None or (
            value > self.value if self.mode == "max" else value < self.value
        )
        if better:
            self.value, self.epoch = value, row["epoch"]
        return better

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "why": self.why,
            "value": self.value,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if str(state["monitor"]).startswith("test_") and not self.monitor.startswith("test_"):
            # a run from before nothing was chosen on the test split: from this resume on,
            # best.pt follows this run's rule (the last epoch without a validation split)
            return
        self.monitor, self.mode = state["monitor"], state["mode"]
        self.why, self.value, self.epoch = state["why"], state["value"], state["epoch"]


LAST_EPOCH = (
    "the last epoch (no validation split, and nothing is chosen on the test split; "
    "--val-split holds one out)"
)


def best_checkpoint(monitor: str | None, has_val: bool, task: Any) -> BestCheckpoint:
    """What chooses best.pt (and what --early-stop watches): ``--monitor``, else the task's
    metric on the validation split; without one, best.pt is the last epoch. Nothing is ever
    chosen on the test split: its figure would no longer estimate unseen data."""
    if monitor is None:
        if not has_val:
            return BestCheckpoint("epoch", "max", LAST_EPOCH)
        mode = "max" if task.higher_is_better else "min"
        return BestCheckpoint(f"val_{task.metric}", mode, "the validation split")
    split, _, metric = monitor.partition("_")
    if split == "test":
        raise ConfigError(
            f"--monitor {monitor} would choose best.pt on the test split, and the test figure "
            "would then no longer estimate unseen data. Hold out a validation split "
            f"(--val-split 0.1) and monitor val_{metric}."
        )
    if split == "val" and not has_val:
        raise ConfigError(
            f"--monitor {monitor} needs a validation split, and this run has none. Hold "
            f"one out with --val-split 0.1, or monitor train_{metric}."
        )
    if metric not in task.metrics:
        raise ConfigError(
            f"--monitor {monitor}: a {task.name} run has no {metric}; monitor one of "
            + ", ".join(f"{split}_{m}" for m in task.metrics)
            + "."
        )
    why = {"val": "the validation split", "train": "the training set"}[split]
    higher = metric != "loss"  # accuracies, F1 and mAP grow as a model gets better
    return BestCheckpoint(monitor, "max" if higher else "min", why)


_NOTED: set[str] = set()


def recorded_amp(checkpoint: dict[str, Any]) -> str:
    """The ``--amp`` that scores a checkpoint as its run computed: the precision the run
    recorded (``resolved.precision``), so it evaluates to its recorded figures on any machine.
    A checkpoint written before that record scores in float32, unless its config chose bf16 (a
    note says so once per file)."""
    precision = (checkpoint.get("resolved") or {}).get("precision")
    if precision is not None:
        return "bf16" if precision == "bf16" else "off"
    amp = (checkpoint.get("config") or {}).get("amp", "auto")
    if amp in ("off", "bf16"):
        return amp
    path = str(checkpoint.get("path"))
    if path not in _NOTED:
        _NOTED.add(path)
        _LOG.info(
            f"note: {path} does not record the precision its run computed in (written before "
            "trainlab recorded it); scoring in float32 (--amp bf16 scores in bf16)."
        )
    return "off"
