"""trainlab's benchmarks: whole commands and loops timed on this machine, results kept as JSON.

Usage:
    python benchmarks/bench.py [--repeats N] [--only NAME ...]

Each measurement runs ``--repeats`` times (alternating with its peer, where it has one); the
median, min and max go into ``benchmarks/results/<date>-<host>.json`` with the commit, and the
table in ``benchmarks/README.md`` between the BEGIN/END markers is rewritten from them.
Timings are never asserted in tests: they live here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TRAINLAB = [sys.executable, "-m", "trainlab"]


def run(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed, proc


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def bench_make_train(repeats: int) -> dict:
    """`trainlab train` (the default run of `make train`) from process start to exit.

    cold: an empty data root, so MNIST comes through the package-index route (no mirrors here);
    warm: MNIST already in the data root. The venv set-up of a first `make train` is not counted.
    """
    out: dict[str, dict] = {}
    for mode in ("cold", "warm"):
        seconds, accuracy = [], []
        warm_root = Path(tempfile.mkdtemp(prefix="bench-data-"))
        for i in range(repeats):
            root = Path(tempfile.mkdtemp(prefix="bench-data-")) if mode == "cold" else warm_root
            runs = Path(tempfile.mkdtemp(prefix="bench-runs-"))
            if mode == "warm" and i == 0:
                run([*TRAINLAB, "data", "fetch", "mnist", "--data-dir", str(root)])
            elapsed, proc = run(
                [*TRAINLAB, "train", "--json", "--runs-dir", str(runs)],
                env={"TRAINLAB_DATA": str(root)},
            )
            result = json.loads(proc.stdout)
            seconds.append(round(elapsed, 2))
            accuracy.append(result["final"]["test_acc"])
            shutil.rmtree(runs)
            if mode == "cold":
                shutil.rmtree(root)
        shutil.rmtree(warm_root)
        out[mode] = {"seconds": summary(seconds), "test_acc": summary(accuracy)}
    return out


BENCHES = {"make-train": bench_make_train}


def git_commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


def machine() -> dict:
    import torch

    return {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def render_table(results: dict) -> str:
    lines = ["| measurement | median | min – max | runs | note |", "|---|---:|---:|---:|---|"]
    train = results.get("make-train")
    if train:
        for mode, text in (
            ("cold", "empty data root: MNIST from the package index"),
            ("warm", "MNIST already in the data root"),
        ):
            s, acc = train[mode]["seconds"], train[mode]["test_acc"]
            lines.append(
                f"| `trainlab train` ({mode}) | {s['median']:.1f} s | {s['min']:.1f} – "
                f"{s['max']:.1f} s | {len(s['runs'])} | {text}; test acc median "
                f"{100 * acc['median']:.2f}% (min {100 * acc['min']:.2f}%) |"
            )
    return "\n".join(lines)


def update_readme(results: dict, meta: dict) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    block = (
        f"<!-- BEGIN RESULTS -->\nLatest: {meta['date']} on `{meta['machine']['host']}` "
        f"({meta['machine']['cpu_count']} CPUs, torch {meta['machine']['torch']}), commit "
        f"`{meta['commit']}`; raw data in `{meta['file']}`.\n\n{render_table(results)}\n"
        "<!-- END RESULTS -->"
    )
    text = re.sub(
        r"<!-- BEGIN RESULTS -->.*<!-- END RESULTS -->", lambda _: block, text, flags=re.S
    )
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default: 3)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    names = args.only or list(BENCHES)
    results = {}
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        results[name] = BENCHES[name](args.repeats)
        print(json.dumps(results[name], indent=1), file=sys.stderr, flush=True)
    date = time.strftime("%Y-%m-%d")
    path = RESULTS / f"{date}-{platform.node()}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    meta = {
        "date": date,
        "commit": git_commit(),
        "machine": machine(),
        "file": str(path.relative_to(ROOT)),
    }
    merged = {**previous.get("results", {}), **results}
    RESULTS.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**meta, "results": merged}, indent=1))
    os.replace(tmp, path)
    update_readme(merged, meta)
    print(render_table(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
