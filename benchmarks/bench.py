"""trainlab's benchmarks: trainlab and its peers measured alternately in one session.

Usage:
    python benchmarks/bench.py [--repeats N] [--only NAME ...]     (make bench)
    python benchmarks/bench.py --only accuracy                       (the long accuracy track)

Each comparison runs A B A B … (``--repeats`` times each, default 3) so both see the same
machine state; the median, min and max go into ``benchmarks/results/<date>-<host>.json`` with the
commit, and every trainlab figure is also given as a ratio to its peer from the same session.
The table between the BEGIN/END markers of ``benchmarks/README.md`` is rewritten from the results.
Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import measures  # noqa: E402


def stats(values: list[float | None]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": round(statistics.median(values), 4),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def alternate(repeats: int, **runners) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name: [] for name in runners}
    for i in range(repeats):
        for name, run in runners.items():
            print(f"  {name} {i + 1}/{repeats}", file=sys.stderr, flush=True)
            out[name].append(run())
    return out


def versus(runs: dict[str, list[dict]], key: str, peer: tuple[str, str]) -> dict:
    """trainlab against one peer on a seconds measure: both medians and how many times faster."""
    runner, label = peer
    ours = stats([r[key] for r in runs["trainlab"]])
    theirs = stats([r[key] for r in runs[runner]])
    both = ours["median"] and theirs["median"]
    return {
        "trainlab": ours,
        label: theirs,
        "raw": runs,
        "speedup": round(theirs["median"] / ours["median"], 2) if both else None,
    }


def data_root() -> str:
    from trainlab.data.mnist_family import ensure_files
    from trainlab.data.root import resolve_root

    root = resolve_root()
    ensure_files("mnist", root)
    return str(root)


def bench_time_to_99(repeats: int, root: str) -> dict:
    """Default `trainlab train` (seed i on its i-th run) against PyTorch's MNIST example,
    alternating: seconds from process start to the end of the first epoch at >= 99.0%."""
    seeds = iter(range(repeats))
    runs = alternate(
        repeats,
        trainlab=lambda: measures.trainlab_time_to_99(root, ["--seed", str(next(seeds))]),
        example=lambda: measures.example_time_to_99(root),
    )
    return {
        **versus(runs, "time_to_99", peer=("example", "pytorch_example")),
        "peak_rss_mib": stats([r["peak_rss_mib"] for r in runs["trainlab"]]),
        "seed_acc": [r["final_acc"] for r in runs["trainlab"]],
    }


def bench_default_seeds(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """The default run on seeds 0-4: every one must reach 99.0% test accuracy."""
    runs = [measures.trainlab_time_to_99(root, ["--seed", str(seed)]) for seed in range(5)]
    accs = [r["final_acc"] for r in runs]
    return {
        "seed_acc": accs,
        "min_acc": min(accs),
        "mean_acc": round(statistics.mean(accs), 5),
        "all_reach_99": all(a >= 0.99 for a in accs),
        "time_to_99": stats([r["time_to_99"] for r in runs]),
    }


def bench_seed_mlp(repeats: int, root: str) -> dict:
    runs = alternate(
        repeats,
        trainlab=lambda: measures.trainlab_seed_mlp_epoch(root),
        seed=lambda: measures.peer_seed_mlp_epoch(root),
    )
    return versus(runs, "epoch_seconds", peer=("seed", "seed_pipeline"))


def bench_engine(repeats: int, root: str) -> dict:
    runs, lightning = [], []
    for _ in range(repeats):  # alternate, so Lightning sees the same machine state
        runs.append(measures.engine_overhead(root))
        lightning.append(measures.lightning_epoch(root))
    out = {
        "bare": stats([r["bare"] for r in runs]),
        "trainer": stats([r["trainer"] for r in runs]),
        "overhead": stats([r["overhead"] for r in runs]),
        "raw": runs,
    }
    if lightning[0] is not None:
        out["lightning"] = stats([r["lightning"] for r in lightning])
    return out


def bench_throughput(repeats: int, root: str) -> dict:
    peak = measures.matmul_peak()
    out: dict = {"matmul_peak_gflops": peak}
    for name in measures.MODELS:
        runs = [measures.throughput(root, name) for _ in range(repeats)]
        out[name] = {
            key: stats([r[key] for r in runs])
            for key in ("train_images_per_s", "eval_images_per_s", "train_gflops", "eval_gflops")
        }
        out[name].update(
            {k: runs[0][k] for k in ("forward_mflop_per_image", "precision", "batch_size")}
        )
        out[name]["train_fraction_of_peak"] = round(out[name]["train_gflops"]["median"] / peak, 3)
    peer = [measures.peer_alexnet(root)["images_per_s"] for _ in range(repeats)]
    out["alexnet"]["seed_pipeline_images_per_s"] = stats(peer)
    out["alexnet"]["speedup"] = round(
        out["alexnet"]["train_images_per_s"]["median"] / statistics.median(peer), 2
    )
    return out


def bench_make_train(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """`trainlab train` (what `make train` runs) from an empty data root: MNIST from the index."""
    import shutil
    import tempfile

    seconds, accuracy = [], []
    for _ in range(repeats):
        empty = tempfile.mkdtemp(prefix="bench-data-")
        runs = tempfile.mkdtemp(prefix="bench-runs-")
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "trainlab", "train", "--json", "--quiet", "--runs-dir", runs],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TRAINLAB_DATA": empty},
        )
        seconds.append(round(time.perf_counter() - started, 2))
        accuracy.append(json.loads(proc.stdout)["final"]["test_acc"])
        shutil.rmtree(empty)
        shutil.rmtree(runs)
    return {"seconds": stats(seconds), "test_acc": stats(accuracy)}


def bench_accuracy(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """The best single-model accuracy in under 10 minutes: the `best-10min` recipe, 3 seeds."""
    runs = []
    for seed in range(3):
        result = measures.trainlab_recipe(root, "best-10min", ["--seed", str(seed)])
        runs.append(result)
        print(f"  seed {seed}: {result}", file=sys.stderr, flush=True)
    accs = [r["test_acc"] for r in runs]
    return {
        "test_acc_mean": round(statistics.mean(accs), 5),
        "test_acc_std": round(statistics.stdev(accs), 5) if len(accs) > 1 else 0.0,
        "seconds": stats([r["seconds"] for r in runs]),
        "raw": runs,
    }


def bench_predict(repeats: int, root: str) -> dict:
    """`trainlab predict` on a folder of 1,000 PNGs (decoding included), and ONNX Runtime
    against PyTorch for the exported default model at batch 1 and 256 (alternating)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        run_dir, folder = measures.predict_fixture(root, Path(tmp))
        folder_runs = alternate(repeats, trainlab=lambda: measures.predict_folder(run_dir, folder))
        onnx_path = Path(tmp) / "model.onnx"
        latency = measures.inference_latency(run_dir, onnx_path, repeats)
    return {
        "images": 1000,
        "images_per_s": stats([r["images_per_s"] for r in folder_runs["trainlab"]]),
        "command_seconds": stats([r["command_seconds"] for r in folder_runs["trainlab"]]),
        **latency,
    }


def bench_serve(repeats: int, root: str) -> dict:
    """`trainlab serve` under 1, 4 and 16 concurrent clients: requests/s and p50/p99 latency."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        run_dir, folder = measures.predict_fixture(root, Path(tmp))
        return measures.serve_load(run_dir, folder, repeats)


def bench_distributed(repeats: int, root: str) -> dict:
    """Training throughput on 1 and N processes under torchrun (alternating): on the CPU,
    2 processes of 1 thread against 1 process of 1 thread and 1 process of 2 threads; on a
    machine with several GPUs, one process per GPU against one GPU."""
    import torch

    gpus = torch.cuda.device_count()
    n = gpus if gpus >= 2 else 2
    threads = 1 if gpus < 2 else int(os.environ.get("OMP_NUM_THREADS", "4"))
    epoch = measures.distributed_epoch
    cases = {
        f"1 process x {threads} thread(s)": lambda: epoch(root, 1, threads),
        f"{n} processes x {threads} thread(s)": lambda: epoch(root, n, threads),
    }
    if gpus < 2:
        cases["1 process x 2 threads"] = lambda: epoch(root, 1, 2)
    runs = alternate(repeats, **cases)
    out = {
        name: {
            "images_per_s": stats([r["images_per_s"] for r in rs]),
            "test_acc": stats([r["test_acc"] for r in rs]),
        }
        for name, rs in runs.items()
    }
    one, many = (out[k]["images_per_s"]["median"] for k in list(cases)[:2])
    out["scaling"] = round(many / one, 2)
    if gpus < 2:
        out["vs_threads"] = round(many / out["1 process x 2 threads"]["images_per_s"]["median"], 2)
    out["processes"], out["device"] = n, runs[next(iter(cases))][0]["device"]
    return out


def bench_folder(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """The Fashion-MNIST folder at 32×32 RGB: trainlab (decode once, cache) against ImageFolder
    + transforms + DataLoader(num_workers=2), per epoch after the first."""
    import tempfile

    import folder_pipeline

    images = int(os.environ.get("TRAINLAB_BENCH_FOLDER_IMAGES", "10000"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fm_root = tmp / "fm"
        fm_root.mkdir()
        folder = folder_pipeline.make_folder(tmp / "clothes", str(fm_root), images, images // 5)
        first = folder_pipeline.trainlab_epochs(folder, tmp / "runs", tmp / "cache")
        again, unfused, peer, peer_tuned = [], [], [], []
        for _ in range(repeats):  # interleaved, so the machine's drift falls on all four
            again.append(folder_pipeline.trainlab_epochs(folder, tmp / "runs", tmp / "cache"))
            unfused.append(
                folder_pipeline.trainlab_epochs(folder, tmp / "runs", tmp / "cache", fused=False)
            )
            peer.append(folder_pipeline.imagefolder_epochs(folder))
            peer_tuned.append(folder_pipeline.imagefolder_epochs(folder, tuned=True))
    ours = stats([s for r in again for s in r["epoch_seconds"][1:]])
    ours_unfused = stats([s for r in unfused for s in r["epoch_seconds"][1:]])
    theirs = stats([s for r in peer for s in r["epoch_seconds"][1:]])
    theirs_tuned = stats([s for r in peer_tuned for s in r["epoch_seconds"][1:]])
    return {
        "images": images,
        "first_run_loading_seconds": first["loading_seconds"],
        "cached_run_loading_seconds": stats([r["loading_seconds"] for r in again]),
        "first_folder_load_seconds": first["folder_load_seconds"],
        "cached_folder_load_seconds": stats([r["folder_load_seconds"] for r in again]),
        "trainlab_epoch_seconds": ours,
        "trainlab_allocator": again[-1]["allocator"],
        "trainlab_stage_kernel": again[-1]["stage_kernel"],
        "trainlab_unfused_epoch_seconds": ours_unfused,
        "speedup_unfused": round(theirs["median"] / ours_unfused["median"], 2),
        "imagefolder_epoch_seconds": theirs,
        "speedup": round(theirs["median"] / ours["median"], 2),
        "imagefolder_tuned_malloc_epoch_seconds": theirs_tuned,
        "speedup_vs_tuned_malloc": round(theirs_tuned["median"] / ours["median"], 2),
        "trainlab_test_acc": again[-1]["test_acc"],
    }


@contextlib.contextmanager
def fashion_root(given: str | None = None) -> Iterator[str]:
    """A data root with Fashion-MNIST fetched into it (Debian's copy, else the mirrors): the
    one given, or a temporary one."""
    with tempfile.TemporaryDirectory() as tmp:
        root = given or tmp
        fetch = [sys.executable, "-m", "trainlab", "data", "fetch", "fashion-mnist"]
        subprocess.run([*fetch, "--data-dir", root], check=True, capture_output=True)
        yield root


def bench_transfer(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """Pretrained EfficientNet-Lite0 against the default CNN from scratch on few Fashion-MNIST
    images (benchmarks/transfer.py); also rewrites docs/recipes.md's transfer section."""
    import transfer

    with fashion_root() as fashion:
        result = transfer.measure(fashion)
    transfer.write_doc(result, cpu_model()["cpu"])
    return result


def bench_budget(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """Full Fashion-MNIST in 2, 5 and 10 minutes with `--recipe best-small-images`, beside the
    default cnn's 10 minutes (benchmarks/budget.py); also writes results/budget-<date>.json."""
    import budget

    with fashion_root() as fashion:
        result = budget.measure(fashion)
    budget.save(result)
    return result


def bench_busy(repeats: int, root: str) -> dict:
    """One epoch of the default run and of a folder run, idle and beside one CPU hog
    (benchmarks/busy.py): a busy neighbour should cost about its share (hog / idle <= 1.6)."""
    import busy

    subset = int(os.environ.get("TRAINLAB_BENCH_BUSY_SUBSET", "0"))
    return busy.measure(root, repeats, subset)


def bench_tables(repeats: int, root: str) -> dict:  # noqa: ARG001 - bench_* share (repeats, root)
    """scikit-learn's breast cancer, wine and diabetes as CSV files with a categorical column
    and empty cells: trainlab against LogisticRegression/Ridge and HistGradientBoosting on the
    same split and encoding (benchmarks/tables.py)."""
    import tables

    return tables.measure(repeats)


BENCHES = {
    "time-to-99": bench_time_to_99,
    "seed-mlp": bench_seed_mlp,
    "engine": bench_engine,
    "throughput": bench_throughput,
    "make-train": bench_make_train,
    "accuracy": bench_accuracy,
    "predict": bench_predict,
    "serve": bench_serve,
    "distributed": bench_distributed,
    "default-seeds": bench_default_seeds,
    "folder": bench_folder,
    "transfer": bench_transfer,
    "budget": bench_budget,
    "busy": bench_busy,
    "tables": bench_tables,
}
DEFAULT = [
    "time-to-99",
    "default-seeds",
    "seed-mlp",
    "engine",
    "throughput",
    "make-train",
    "predict",
    "serve",
    "distributed",
    "folder",
    "transfer",
    "budget",
    "busy",
    "tables",
]


def git_commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src", "benchmarks/*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (proc.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def cpu_model() -> dict:
    """The processor, and whether it computes bf16 natively (the timings depend on it)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "")
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    return {
        "cpu": name or platform.processor(),
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "avx2": "avx2" in flags,
    }


def machine() -> dict:
    import torch

    return {
        **cpu_model(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def _fmt(value, unit="", digits=1):
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def render_table(r: dict) -> str:
    lines = ["| measure | trainlab | peer | ratio | target |", "|---|---:|---:|---:|---|"]
    if "time-to-99" in r:
        t = r["time-to-99"]
        lines.append(
            f"| time to 99.0% test accuracy from process start (median, min–max) | "
            f"{_fmt(t['trainlab']['median'], ' s')} ({_fmt(t['trainlab']['min'])}–"
            f"{_fmt(t['trainlab']['max'])}) | {_fmt(t['pytorch_example']['median'], ' s')} "
            f"(PyTorch example) | {t['speedup']}x faster | >= 25x |"
        )
        if t.get("seed_acc"):
            lines.append(
                "| test accuracy of those runs (seeds 0, 1, 2...) | "
                + ", ".join(f"{100 * a:.2f}%" for a in t["seed_acc"])
                + " | | | each >= 99.0% |"
            )
    if "default-seeds" in r:
        d = r["default-seeds"]
        lines.append(
            "| default run on seeds 0-4: test accuracy (min, mean) | "
            f"{100 * d['min_acc']:.2f}%, {100 * d['mean_acc']:.2f}% ("
            + ", ".join(f"{100 * a:.2f}" for a in d["seed_acc"])
            + ") | | | each >= 99.0% |"
        )
        lines.append(
            f"| peak resident memory of a default run | "
            f"{_fmt(t['peak_rss_mib']['median'], ' MiB', 0)} | | | |"
        )
    if "seed-mlp" in r:
        m = r["seed-mlp"]
        lines.append(
            f"| seed-mlp recipe, seconds per epoch | {_fmt(m['trainlab']['median'], ' s', 2)}"
            f" | {_fmt(m['seed_pipeline']['median'], ' s', 2)} (seed's DataLoader) | "
            f"{m['speedup']}x faster | >= 4x |"
        )
    if "engine" in r:
        e = r["engine"]
        light = ""
        if e.get("lightning", {}).get("median"):
            slower = e["lightning"]["median"] / e["bare"]["median"] - 1
            light = f"; Lightning {_fmt(e['lightning']['median'], ' s', 3)} ({100 * slower:+.0f}%)"
        lines.append(
            f"| engine overhead: Trainer vs bare loop, MLP batch 512, s/epoch | "
            f"{_fmt(e['trainer']['median'], ' s', 3)} | {_fmt(e['bare']['median'], ' s', 3)} "
            f"(bare loop){light} | {100 * e['overhead']['median']:+.1f}% | < 5% |"
        )
    if "throughput" in r:
        t = r["throughput"]
        for name in measures.MODELS:
            m = t[name]
            peer = ""
            ratio = ""
            target = "mlp >= 50,000 img/s" if name == "mlp" else ""
            if name == "alexnet":
                seed_ips = m["seed_pipeline_images_per_s"]["median"]
                peer = f"{_fmt(seed_ips, ' img/s')} (seed PIL pipeline)"
                ratio, target = f"{m['speedup']}x", ">= 1.5x"
            lines.append(
                f"| {name} ({m['precision']}, batch {m['batch_size']}) training / evaluation "
                f"| {_fmt(m['train_images_per_s']['median'], '', 0)} / "
                f"{_fmt(m['eval_images_per_s']['median'], '', 0)} img/s; "
                f"{_fmt(m['train_gflops']['median'])} GFLOP/s = "
                f"{100 * m['train_fraction_of_peak']:.0f}% of matmul peak | {peer} | {ratio} | "
                f"{target} |"
            )
        lines.append(
            f"| float32 matmul peak (2048², this machine) | {t['matmul_peak_gflops']} GFLOP/s "
            "| | | |"
        )
    if "make-train" in r:
        m = r["make-train"]
        lines.append(
            f"| `trainlab train` from an empty data root (MNIST from the package index) | "
            f"{_fmt(m['seconds']['median'], ' s')}, {100 * m['test_acc']['min']:.2f}% min acc | "
            "| | < 60 s |"
        )
    if "predict" in r:
        p = r["predict"]
        lines.append(
            f"| `trainlab predict` on a folder of {p['images']:,} PNGs, decoding and "
            f"preprocessing included | {_fmt(p['images_per_s']['median'], ' img/s', 0)} "
            f"(whole command {_fmt(p['command_seconds']['median'], ' s')}) | | | |"
        )
        for batch in ("1", "256"):
            ort, pt = p["onnxruntime_ms"][batch], p["pytorch_ms"][batch]
            lines.append(
                f"| exported default model, batch {batch}: ONNX Runtime vs PyTorch, ms per call | "
                f"{_fmt(ort['median'], ' ms', 3)} | {_fmt(pt['median'], ' ms', 3)} (PyTorch) | "
                f"{pt['median'] / ort['median']:.2f}x | |"
            )
    if "serve" in r:
        for clients, m in r["serve"]["clients"].items():
            lines.append(
                f"| `trainlab serve`, {clients} concurrent client(s), POST /api/predict "
                f"({r['serve']['requests']} requests) | {_fmt(m['requests_per_s'], ' req/s', 0)}; "
                f"p50 {_fmt(m['p50_ms'], ' ms')}, p99 {_fmt(m['p99_ms'], ' ms')}; "
                f"{m['status_503']} × 503 | | | |"
            )
    if "distributed" in r:
        d = r["distributed"]
        names = [k for k in d if " x " in k]
        lines.append(
            f"| torchrun, default CNN training, img/s ({d['device']}): "
            + ", ".join(f"{k} {_fmt(d[k]['images_per_s']['median'], '', 0)}" for k in names)
            + f" | {d['scaling']}x ({d['processes']} processes vs 1) | "
            + (f"{d['vs_threads']}x vs 1 process of 2 threads" if "vs_threads" in d else "")
            + " | | |"
        )
    if "folder" in r:
        f = r["folder"]
        tuned = ""
        if "speedup_vs_tuned_malloc" in f:
            tuned = (
                f"; {f['speedup_vs_tuned_malloc']}x against it with trainlab's malloc thresholds "
                f"({_fmt(f['imagefolder_tuned_malloc_epoch_seconds']['median'], ' s', 2)})"
            )
        if "speedup_unfused" in f:
            tuned += (
                f"; without the fused stage kernel (TRAINLAB_FUSED=0) trainlab takes "
                f"{_fmt(f['trainlab_unfused_epoch_seconds']['median'], ' s', 2)}, "
                f"{f['speedup_unfused']}x"
            )
        lines.append(
            f"| a folder of {f['images']:,} training PNGs (Fashion-MNIST, 32×32 RGB), default "
            "CNN, s per epoch after the first | "
            f"{_fmt(f['trainlab_epoch_seconds']['median'], ' s', 2)} | "
            f"{_fmt(f['imagefolder_epoch_seconds']['median'], ' s', 2)} (ImageFolder + "
            f"DataLoader(num_workers=2)) | {f['speedup']}x{tuned} | >= 5x |"
        )
        share = f["cached_folder_load_seconds"]["median"] / f["first_folder_load_seconds"]
        lines.append(
            f"| the folder's decode: first run / cached run, s | "
            f"{_fmt(f['first_folder_load_seconds'], ' s', 2)} / "
            f"{_fmt(f['cached_folder_load_seconds']['median'], ' s', 2)} | | "
            f"{100 * share:.1f}% | < 5% |"
        )
    if "transfer" in r:
        t = r["transfer"]
        few = t["10_per_class"]
        lines.append(
            "| Fashion-MNIST, 10 per class, full test set: seed-transfer (pretrained, frozen) vs "
            f"seed-transfer-scratch | {100 * few['pretrained_frozen']['test_acc']:.2f}% | "
            f"{100 * few['scratch']['test_acc']:.2f}% (scratch) | "
            f"+{t['gain_points_10_per_class']:.2f} points | >= +4 points |"
        )
        lines.append(
            "| the feature cache: slowest later epoch / first epoch (frozen backbone) | "
            f"{t['later_epoch_fraction_of_first']:.5f} | | | <= 0.05 |"
        )
    if "busy" in r:
        for workload in ("default", "folder"):
            b = r["busy"][f"this/{workload}"]
            lines.append(
                f"| {workload} run, one epoch beside one CPU hog / idle | "
                f"{b['hog_seconds']:.2f} s / {b['idle_seconds']:.2f} s | | "
                f"{b['hog_over_idle']:.2f}x | <= 1.6x |"
            )
    if "tables" in r:
        import tables

        lines += tables.rows(r["tables"])
    if "accuracy" in r:
        a = r["accuracy"]
        lines.append(
            f"| best accuracy in < 10 min (best-10min recipe, 3 seeds) | "
            f"{100 * a['test_acc_mean']:.2f}% ± {100 * a['test_acc_std']:.2f} "
            f"({_fmt(a['seconds']['median'], ' s', 0)} each) | | | >= 99.6% |"
        )
    return "\n".join(lines)


def measured_when(results: dict) -> str:
    """Which rows come from which session and processor: ratios compare within one row only."""
    groups: dict[str, list[str]] = {}
    for name, r in results.items():
        when = (
            f"{r.get('date', '2026-11-22')} on {r.get('cpu', 'the earlier machine (AVX512-BF16)')}"
        )
        groups.setdefault(when, []).append(name)
    return "Measured: " + "; ".join(f"{', '.join(v)}: {k}" for k, v in groups.items()) + "."


def latest_results(folder: Path, host: str) -> Path | None:
    """The newest ``<date>-<host>.json`` in ``folder``: the file whose measures a new session
    keeps. Other files there (``transfer-<date>.json``, ``d2l-book-<date>.json``) belong to
    benchmarks of their own and hold no ``results`` to merge."""
    pattern = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}-{re.escape(host)}\.json")
    dated = sorted(p for p in folder.glob("*.json") if pattern.fullmatch(p.name))
    return dated[-1] if dated else None


def results_block(results: dict, meta: dict) -> str:
    """README.md's table between its markers (tests/test_docs.py checks it is current)."""
    return (
        f"<!-- BEGIN RESULTS -->\nLatest: {meta['date']} on `{meta['machine']['host']}` "
        f"({meta['machine'].get('cpu', '?')}, AVX-512 {meta['machine'].get('avx512')}, "
        f"AVX512-BF16 {meta['machine'].get('avx512_bf16')}, {meta['machine']['cpu_count']} "
        f"CPUs, {meta['machine']['threads']} threads, torch "
        f"{meta['machine']['torch']}), commit `{meta['commit']}`, {meta['repeats']} runs each; "
        f"raw data (with each measure's own commit) in `{meta['file']}`.\n\n"
        f"{render_table(results)}\n\n{measured_when(results)}\n<!-- END RESULTS -->"
    )


def update_readme(results: dict, meta: dict) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    block = results_block(results, meta)
    text = re.sub(
        r"<!-- BEGIN RESULTS -->.*<!-- END RESULTS -->", lambda _: block, text, flags=re.S
    )
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default: 3)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    root = data_root()
    results = {}
    for name in args.only or DEFAULT:
        print(f"== {name}", file=sys.stderr, flush=True)
        results[name] = {
            **BENCHES[name](args.repeats, root),
            "commit": git_commit(),
            "date": time.strftime("%Y-%m-%d"),
            "cpu": cpu_model()["cpu"],
        }
    date = time.strftime("%Y-%m-%d")
    path = RESULTS / f"{date}-{platform.node()}.json"
    # measures not run now keep their latest results (each with its own date and commit)
    latest = latest_results(RESULTS, platform.node())
    previous = json.loads(latest.read_text()) if latest else {}
    meta = {
        "date": date,
        "commit": git_commit(),
        "machine": machine(),
        "repeats": args.repeats,
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
