"""A folder's decoded images as rows: in memory with a per-file cache, or, past the memory
budget, in a memory-mapped file (``trainlab.data.folder`` lists the files and cuts the splits).

Example:
    >>> rows = Rows(folder, policy, data_dir, files, budget_mb=0, say=print)
    >>> train_x, test_x = rows.take([train_rows, test_rows])

Each file is keyed by its path, size and modification time: a second run decodes only what
changed. A file that cannot be decoded is reported as (path, reason), never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from trainlab.data.images import ResizePolicy, read_for

STATS: dict[str, tuple[str, int, int]] = {}  # what the folder's last scan saw of each file


def file_key(path: Path) -> tuple[str, int, int]:
    """A file's cache key: (path, size, mtime), from the scan's own stat where it made one."""
    known = STATS.get(str(path))
    if known is not None:
        return known
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


class Cache:
    """Decoded images of one folder and policy, kept under the data root, row per file."""

    @staticmethod
    def where(folder: Path, policy: ResizePolicy, data_dir) -> Path:
        """The cache's path (without suffix) for this folder and policy, under the data root."""
        from trainlab.data.root import default_root, resolve_root

        root = resolve_root(data_dir) if data_dir or os.environ.get("TRAINLAB_DATA") else None
        if root is None or not os.access(root, os.W_OK):
            root = default_root()
        digest = hashlib.sha256(json.dumps([str(folder), policy.to_dict()]).encode()).hexdigest()
        return root / "folder-cache" / digest[:24]

    def __init__(self, folder: Path, policy: ResizePolicy, data_dir):
        self.path = self.where(folder, policy, data_dir).with_suffix(".pt")
        self.rows: dict[tuple, np.ndarray] = {}
        if self.path.is_file():
            try:
                saved = torch.load(self.path, weights_only=True)
                images = saved["images"].numpy()
                keys = json.loads(saved["keys"])
                self.rows = {tuple(key): images[i] for i, key in enumerate(keys)}
            except Exception:  # noqa: BLE001 - a damaged cache is only a cache: decode again
                self.rows = {}

    def save(self, keys: list[tuple], images: list[np.ndarray]) -> None:
        from trainlab.fsutil import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"keys": json.dumps(keys), "images": torch.from_numpy(np.stack(images))}
        atomic_write(self.path, lambda tmp: torch.save(payload, tmp))


def _decode_one(policy: ResizePolicy, path) -> tuple[np.ndarray | None, tuple[str, str] | None]:
    """One file's row, or (file, why it cannot be read): an unreadable file is not fatal."""
    try:
        return read_for(policy, path), None
    except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many kinds on bad data
        message, label = str(e), f"{path}: "
        return None, (str(path), "unreadable: " + message.removeprefix(label))


def _decode_all(paths, policy, cache: Cache, say) -> tuple[list, list[tuple[str, str]], int]:
    """Every file through ``policy`` (from the cache where unchanged), in parallel."""
    from tqdm import tqdm

    keys = [file_key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache.rows]
    images: list[np.ndarray | None] = [cache.rows.get(k) for k in keys]
    problems: list[tuple[str, str]] = []

    def decode(i: int):
        return (i, *_decode_one(policy, paths[i]))

    if todo:
        bar = tqdm(
            total=len(todo),
            desc="decoding",
            unit="img",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        )
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, image, problem in pool.map(decode, todo):
                images[i] = image
                if problem:
                    problems.append(problem)
                bar.update()
        bar.close()
    good = [i for i, im in enumerate(images) if im is not None]
    if todo:
        cache.save([keys[i] for i in good], [images[i] for i in good])
    say(f"decoded {len(todo)} of {len(paths)} images ({len(paths) - len(todo)} from the cache)")
    return images, problems, len(todo)


class Rows:
    """Every file's decoded row: in memory (with the per-file cache), or past the memory
    budget in a memory-mapped file (estimated first, and said)."""

    def __init__(self, folder, policy, data_dir, files, budget_mb: int, say):
        estimate = len(files) * policy.channels * policy.size[0] * policy.size[1]
        budget = budget_mb * 1_000_000 if budget_mb else _default_budget()
        self.mapped, self.policy = estimate > budget, policy
        say(
            f"decoded size {estimate / 1e6:,.0f} MB: "
            + (
                f"over the memory budget ({budget / 1e6:,.0f} MB): kept in a memory-mapped "
                "cache file"
                if self.mapped
                else f"in memory (budget {budget / 1e6:,.0f} MB)"
            )
        )
        if self.mapped:
            self.store = Mapped(folder, policy, data_dir, files)
            self.readable, self.problems = self.store.fill(policy, say)
        else:
            cache = Cache(folder, policy, data_dir)
            self.images, self.problems, _ = _decode_all(files, policy, cache, say)
            self.readable = [im is not None for im in self.images]

    def take(self, parts: list[np.ndarray]) -> list[torch.Tensor]:
        """The rows of each part, as tensors (views of one file when memory-mapped)."""
        if self.mapped:
            return self.store.ordered(parts)
        return [_stack([self.images[i] for i in part], self.policy) for part in parts]


def _stack(images: list[np.ndarray], policy: ResizePolicy) -> torch.Tensor:
    if not images:
        return torch.zeros(0, policy.channels, *policy.size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(images))


def _default_budget() -> int:
    """Half the memory available now (Linux), else 4 GB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 4_000_000_000


def chunked_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std on the [0, 1] scale, as ``channel_stats``, a chunk of
    images at a time (a memory-mapped folder is never read into memory whole)."""
    channels = images.shape[1]
    hist = torch.zeros(channels, 256, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        for c in range(channels):
            values = part[:, c].reshape(-1).to(torch.int32)
            hist[c] += torch.bincount(values, minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(channels):
        total = hist[c].sum().clamp(min=1)
        mean = (hist[c] * levels).sum() / total
        var = (hist[c] * (levels - mean) ** 2).sum() / total
        means.append(round(float(mean), 6))
        stds.append(round(float(var.sqrt()), 6))
    return means, stds


class Mapped:
    """Decoded images in a file, memory-mapped: the rows are read as batches ask for them.

    ``FOLDER-KEY.u8`` holds every file's row in the folder's order, ``.json`` the files' keys
    (a second run with the same files decodes nothing); ``.ordered.u8`` the rows of the splits,
    one after the other, so each split is a view into the file."""

    def __init__(self, folder: Path, policy: ResizePolicy, data_dir, files: list[Path]):
        base = Cache.where(folder, policy, data_dir)
        self.path, self.keys_path = base.with_suffix(".u8"), base.with_suffix(".json")
        self.files, self.shape = files, (len(files), policy.channels, *policy.size)

    def fill(self, policy: ResizePolicy, say) -> tuple[list[bool], list[tuple[str, str]]]:
        keys = [list(file_key(f)) for f in self.files]
        if self.keys_path.is_file() and self.path.is_file():
            saved = json.loads(self.keys_path.read_text())
            problems = saved.get("problems", [])
            if (
                saved["keys"] == keys
                and saved["shape"] == list(self.shape)
                and all(isinstance(p, list) for p in problems)  # (file, why); not older text
            ):
                say(f"decoded 0 of {len(keys)} images (all from the memory-mapped cache)")
                return saved["readable"], [(path, why) for path, why in problems]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.uint8, shape=self.shape)
        readable, problems = [False] * len(keys), []

        def decode(i: int):
            return (i, *_decode_one(policy, self.files[i]))

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, image, problem in pool.map(decode, range(len(keys))):
                if image is None:
                    problems.append(problem)
                else:
                    rows[i], readable[i] = image, True
        rows.flush()
        del rows
        state = {
            "keys": keys,
            "shape": list(self.shape),
            "readable": readable,
            "problems": problems,
        }
        self.keys_path.write_text(json.dumps(state))
        say(f"decoded {len(keys)} of {len(keys)} images into {self.path}")
        return readable, problems

    def ordered(self, parts: list[np.ndarray]) -> list[torch.Tensor]:
        """The splits' rows copied, a chunk at a time, into one file; a view of it per split."""
        rows = np.load(self.path, mmap_mode="r")
        total = sum(len(p) for p in parts)
        out_path = self.path.with_suffix(".ordered.u8")
        out = np.lib.format.open_memmap(
            out_path, mode="w+", dtype=np.uint8, shape=(total, *self.shape[1:])
        )
        at = 0
        for part in parts:
            for start in range(0, len(part), 4096):
                chunk = part[start : start + 4096]
                out[at : at + len(chunk)] = rows[chunk]
                at += len(chunk)
        out.flush()
        del out, rows
        mapped = torch.from_numpy(np.load(out_path, mmap_mode="r+"))
        views, at = [], 0
        for part in parts:
            views.append(mapped[at : at + len(part)])
            at += len(part)
        return views
