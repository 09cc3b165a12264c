"""A busy neighbour: one epoch of `trainlab train` on an idle machine and beside one CPU hog.

Usage:
    python benchmarks/busy.py [--repeats N] [--subset N] [--folder-images N] [--compare SRC ...]
    python benchmarks/bench.py --only busy                                (part of make bench)

The hog is one single-threaded process (``python -c 'while 1: pass'``), as a neighbour's job
would be. Two runs: the default run (MNIST, cnn) and a folder of images (MNIST digits written
as PNGs, trained at 32×32 RGB, decoded once into trainlab's cache before timing). Idle and hog
runs alternate (A B A B ...) so both see the same machine; the figure is the median epoch's
training seconds, and the ratio hog / idle (target: at most 1.6, a neighbour costs its share).
``--compare SRC`` measures another checkout's ``src`` (e.g. main before a change) in the same
session, interleaved too. Each run's thread choice and the load average before it are kept.
Results go to ``benchmarks/results/busy-<date>-<host>.json`` with machine, date and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
HOG = [sys.executable, "-c", "while 1: pass"]


def make_folder(root: Path, data_root: str, train: int, test: int) -> Path:
    """MNIST digits as PNGs in ImageFolder's layout (``train/3/00012.png``)."""
    from PIL import Image

    from trainlab.data import load_dataset

    data = load_dataset("mnist", data_root, sources=("local",)).subset(train, test)
    for split, xs, ys in (
        ("train", data.train_x, data.train_y),
        ("test", data.test_x, data.test_y),
    ):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            folder = root / split / str(int(y))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i:05d}.png")
    return root


def one_epoch(src: Path, args: list[str], runs: Path, hog: bool) -> dict:
    """One `trainlab train --epochs 1` process with ``src`` first on the path; its epoch."""
    from trainlab.engine.threads import environment_as_given

    # as a user would start it: without the wait policy this process's `import trainlab` set
    env = environment_as_given()
    env["PYTHONPATH"] = os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])
    load = os.getloadavg()[0]
    neighbour = subprocess.Popen(HOG) if hog else None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "trainlab", "train", *args, "--epochs", "1", "--device", "cpu",
             "--runs-dir", str(runs), "--json", "--quiet"],
            capture_output=True, text=True, env=env, timeout=3600, check=False,
        )  # fmt: skip
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"trainlab train failed: {proc.stderr[-2000:]}")
    run = Path(json.loads(proc.stdout)["run_dir"])
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    config = tomllib.loads((run / "config.toml").read_text())
    resolved = config.get("resolved", {})
    return {
        "train_seconds": row["train_seconds"],
        "test_acc": row.get("test_acc"),
        "load_before": round(load, 2),
        "threads": resolved.get("threads", config["environment"].get("torch_threads")),
        "threads_chosen": resolved.get("threads_chosen", "torch's default"),
        "omp_wait_policy": resolved.get("omp_wait_policy", "libgomp's default"),
    }


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def measure(
    root: str, repeats: int = 3, subset: int = 0, folder_images: int = 5000, compare=()
) -> dict:
    """Each checkout's (this one first) idle and beside-hog epochs, interleaved."""
    sources = {"this": ROOT / "src", **{str(Path(c)): Path(c).resolve() for c in compare}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = make_folder(tmp / "digits", root, folder_images, folder_images // 5)
        cache = tmp / "cache"
        cache.mkdir()
        workloads = {
            "default": ["--data-dir", root, *(["--subset", str(subset)] if subset else [])],
            "folder": ["--dataset", str(folder), "--image-size", "32", "--data-dir", str(cache)],
        }
        one_epoch(ROOT / "src", workloads["folder"], tmp / "runs", hog=False)  # decode, cache
        raw: dict = {s: {w: {"idle": [], "hog": []} for w in workloads} for s in sources}
        for i in range(repeats):
            for workload, args in workloads.items():
                for name, src in sources.items():
                    for condition in ("idle", "hog"):
                        print(f"  {name} {workload} {condition} {i + 1}/{repeats}", file=sys.stderr)
                        result = one_epoch(src, args, tmp / "runs", condition == "hog")
                        raw[name][workload][condition].append(result)
    out: dict = {"subset": subset or 60000, "folder_images": folder_images, "raw": raw}
    for name, workloads_ in raw.items():
        for workload, runs in workloads_.items():
            idle = _median([r["train_seconds"] for r in runs["idle"]])
            hog = _median([r["train_seconds"] for r in runs["hog"]])
            out[f"{name}/{workload}"] = {
                "idle_seconds": idle,
                "hog_seconds": hog,
                "hog_over_idle": round(hog / idle, 2),
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure (default: 3)")
    parser.add_argument("--subset", type=int, default=0, help="MNIST train images (default: all)")
    parser.add_argument(
        "--folder-images", type=int, default=5000, help="images in the folder (default: 5000)"
    )
    parser.add_argument("--compare", nargs="*", default=[], help="other checkouts' src folders")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import bench

    root = bench.data_root()
    result = measure(root, args.repeats, args.subset, args.folder_images, args.compare)
    date = time.strftime("%Y-%m-%d")
    path = RESULTS / f"busy-{date}-{platform.node()}.json"
    meta = {"date": date, "commit": bench.git_commit(), "machine": bench.machine()}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps({**meta, "repeats": args.repeats, "results": result}, indent=1))
    print(json.dumps({k: v for k, v in result.items() if "/" in k}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
