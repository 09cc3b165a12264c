"""Run directories: ``runs/<id>/`` with config.toml, metrics.jsonl, last.pt and best.pt.

Everything is written atomically (temp file + rename); metrics.jsonl is appended one flushed line
per epoch so a crash keeps every finished epoch.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from trainlab.errors import TrainlabError
from trainlab.fsutil import atomic_write_text


def new_run_dir(runs_dir: str | Path, name: str | None, model: str) -> Path:
    """Create a fresh run directory; an existing name gets a suffix (-2, -3, ...).

    ``mkdir`` without ``exist_ok`` is the claim: two processes asking for one name at the same
    moment get two directories, never one shared.
    """
    root = Path(runs_dir)
    base = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{short_name(model)}"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise TrainlabError(f"{root}: could not find a free run directory name for '{base}'.")


def short_name(model: str) -> str:
    """A model's name as a folder name: ``cnn``, ``torchvision-resnet18``, and for your own
    code the file's stem and the class (``small_resnet-SmallResNet``), never its path."""
    where, _, attr = model.rpartition(":")
    if where and not where.isidentifier():  # a file path or a package.module
        stem = Path(where).stem if where.endswith(".py") or "/" in where else where
        model = f"{stem.rsplit('.', 1)[-1]}-{attr}"
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")
    return model[:60] or "model"


def find_launched_run(runs_dir: str | Path, run_id: str) -> Path | None:
    """The newest run directory a torchrun job with ``run_id`` wrote a last.pt into (how a job
    that torchrun restarted finds the run to continue)."""
    found = []
    for config in Path(runs_dir).glob("*/config.toml"):
        try:
            launch = tomllib.loads(config.read_text()).get("launch", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        last = config.parent / "last.pt"
        if launch.get("run_id") == run_id and last.is_file():
            found.append((last.stat().st_mtime, config.parent))
    return max(found)[1] if found else None


def run_config(cfg: Any, model: Any, data: Any) -> Any:
    """The config of what runs: ``cfg`` with the model's and the data's own description (so a
    model or dataset given to ``Trainer.fit`` is recorded as what it is)."""
    from trainlab.engine.setup import label_smoothing_for, loss_kind
    from trainlab.models import record_for

    record = record_for(model, data)
    changes: dict[str, Any] = {
        "dataset": data.name,
        "data_options": dict(data.options),
        "subset": data.origin["subset"],
        "test_subset": data.origin["test_subset"],
        "val_split": float(data.origin["val_split"]),
    }
    if "root" in data.info:  # recorded with the run, to find the files again
        changes["data_dir"] = data.info["root"]
    data_seed = data.info.get("settings", {}).get("data_seed", data.origin["seed"])
    changes["data_seed"] = None if data_seed in (None, cfg.seed) else data_seed
    if record.get("name") is None:
        changes.update(model=f"custom:{record['class']}", model_options={})
    else:
        changes.update(model=record["name"], model_options=dict(record.get("options", {})))
        changes.update({k: record[k] for k in ("init", "pretrained", "weights") if k in record})
        changes["freeze_features"] = bool(record.get("freeze_features", False))
    kind = loss_kind(cfg, model, data.kind_entry.task)
    changes["loss"] = kind  # record the loss that runs, not "auto"
    if cfg.label_smoothing is None:  # and the smoothing that runs, not "default"
        changes["label_smoothing"] = label_smoothing_for(cfg, kind)
    return cfg.replace(**changes)


def describe_run(cfg: Any, model: Any, data: Any, transform: Any) -> dict[str, Any]:
    """What ran, as plain values: the same description goes into config.toml and every
    checkpoint (the checkpoint adds weights and position, config.toml the environment)."""
    from trainlab.models import record_of

    record = record_of(model) or {"name": None, "class": type(model).__name__}
    return {
        "config": cfg.to_dict(),
        "model": {**record, "parameters": sum(p.numel() for p in model.parameters())},
        "data": {
            "name": data.name,
            "kind": data.kind,
            "task": data.task,
            "classes": list(data.classes),
            "input_shape": list(data.input_shape),
            "mean": list(data.mean),
            "std": list(data.std),
            "transform": transform.to_dict(),
            **({"root": data.info["root"]} if "root" in data.info else {}),
            # how people's images become inputs (a folder dataset's resize policy)
            **({"preprocess": data.info["preprocess"]} if "preprocess" in data.info else {}),
            # how the cuts were drawn, where it is not the usual (label combinations)
            **({"cuts": data.info["cuts"]} if "cuts" in data.info else {}),
        },
    }


def git_commit() -> str | None:
    """The commit of the trainlab source tree, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    from trainlab import __version__
    from trainlab.engine.allocator import allocator
    from trainlab.models.fused import describe as stage_kernel

    env = {
        "trainlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "allocator": allocator(),
        "device": device,
        "stage_kernel": stage_kernel() if device == "cpu" else "native (not on the CPU)",
        "hostname": platform.node(),
        "command": " ".join(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if "torchvision" in sys.modules:
        env["torchvision"] = sys.modules["torchvision"].__version__
    else:
        from importlib.metadata import PackageNotFoundError, version

        with contextlib.suppress(PackageNotFoundError):
            env["torchvision"] = version("torchvision")
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    commit = git_commit()
    if commit:
        env["git_commit"] = commit
    return env


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def write_config(
    run_dir: Path,
    description: dict[str, Any],
    *,
    counts: dict[str, int],
    best: Any,
    resumed: tuple[int, int] | None,
    device: str,
) -> Path:
    """config.toml: the run description plus the run's place, split sizes and environment."""
    run: dict[str, Any] = {
        "id": run_dir.name,
        "monitor": best.monitor,
        "best_checkpoint_chosen_on": best.why,
    }
    if resumed is not None:
        run["resumed_from"] = {"epoch": resumed[0], "batch": resumed[1]}
    sections = {
        "config": description["config"],
        "run": run,
        "data": {**description["data"], **counts},
        "model": description["model"],
        **{k: description[k] for k in ("resolved", "launch") if k in description},
        **({"notes": description["notes"]} if "notes" in description else {}),
        **{k: description[k] for k in ("features", "budget") if k in description},
        "environment": environment(device),
    }
    return atomic_write_text(run_dir / "config.toml", tomli_w.dumps(_drop_none(sections)))


def write_skipped(run_dir: Path, skipped: list) -> Path | None:
    """skipped_files.txt: every file the data left out and why (a folder's hidden files,
    non-images and unreadable images), one per line, so a note's "and N more" can be read."""
    if not skipped:
        return None
    lines = [f"{path}\t{why}" for path, why in skipped]
    return atomic_write_text(Path(run_dir) / "skipped_files.txt", "\n".join(lines) + "\n")


def record_stop(run_dir: Path, stopped: dict[str, Any]) -> Path:
    """Add why and when the run stopped early to its config.toml (a ``[stopped]`` table)."""
    path = Path(run_dir) / "config.toml"
    sections = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    sections["stopped"] = _drop_none(stopped)
    return atomic_write_text(path, tomli_w.dumps(sections))


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """One line per epoch, flushed and synced; a line is written whole or a clear error says
    why not."""
    if not Path(run_dir).is_dir():
        raise TrainlabError(
            f"{run_dir}: the run directory is gone (deleted or moved while training). Start a "
            "new run, or restore the directory and resume."
        )
    try:
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise TrainlabError(
            f"{run_dir / 'metrics.jsonl'}: could not be written ({e.strerror or e}): the disk "
            "may be full or the folder not writable. The checkpoints written so far are kept."
        ) from None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl; a last line cut short by a crash is left out."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # a write cut short; the checkpoint decides what counts
                break
            raise TrainlabError(
                f"{path}: line {i + 1} is not JSON; the file was edited or damaged."
            ) from None
    return rows


def restore_metrics(run_dir: Path, checkpoint: dict[str, Any], epochs: int) -> None:
    """On resume, metrics.jsonl as the checkpoint knows it: its own rows when it has them (a
    kill between writing last.pt and appending its row must not lose that row), else the
    file's rows of the first ``epochs`` epochs."""
    if isinstance(checkpoint.get("history"), list):
        write_metrics(run_dir, checkpoint["history"][:epochs])
    else:
        truncate_metrics(run_dir, epochs)


def truncate_metrics(run_dir: Path, epochs: int) -> None:
    """Keep the rows of the first ``epochs`` epochs (a resume drops rows past its checkpoint)."""
    write_metrics(run_dir, [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= epochs])


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Replace metrics.jsonl with ``rows`` (atomically)."""
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
