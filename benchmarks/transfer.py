"""Transfer learning on few images: pretrained EfficientNet-Lite0 against the default CNN from
scratch, on Fashion-MNIST (Debian's dataset-fashion-mnist), through the CLI.

Usage: python benchmarks/transfer.py [--quick]   (also `make bench`, as its "transfer" part)

Measured:
- 10 per class (``--subset 100``), the full test set (10,000): ``--recipe seed-transfer``
  (frozen backbone, features computed once) against ``--recipe seed-transfer-scratch``; the
  final epochs' test accuracy (``best.pt`` would be chosen on the test split: no validation
  split here). The feature cache: the first epoch (which computes the features) against the
  slowest of epochs 2..N.
- ``--recipe best-few-images`` (EfficientNet-Lite1 frozen at 240×240) beside them, at both
  sizes: its gain over ``seed-transfer`` at 10 per class.
- 50 per class (``--subset 500``), the first 2,000 test images: frozen, fine-tuned (the whole
  network, the backbone at a tenth of the head's learning rate, a stated number of epochs) and
  scratch, each with its wall time (the CPU budget).

Writes benchmarks/results/transfer-<date>.json and the "Transfer learning" section of
docs/recipes.md (between its markers).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FINE_TUNE = [
    "--no-freeze-features",
    "--backbone-lr-mult",
    "0.1",
    "--lr",
    "1e-3",
    "--epochs",
    "8",
]


def run(runs: Path, name: str, data_root: str, *flags: str) -> dict:
    """One `trainlab train` process; its final epoch, first and later epochs' seconds, wall."""
    began = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "trainlab",
        "train",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        data_root,
        "--device",
        "cpu",
        "--runs-dir",
        str(runs),
        "--run-name",
        name,
        "--quiet",
        *flags,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=7200, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    wall = time.perf_counter() - began
    rows = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
    return {
        "flags": list(flags),
        "test_acc": rows[-1]["test_acc"],
        "test_n": rows[-1]["test_n"],
        "epochs": len(rows),
        "first_epoch_seconds": rows[0]["seconds"],
        "feature_seconds": rows[0].get("feature_seconds"),
        "later_epoch_seconds_max": max((r["seconds"] for r in rows[1:]), default=None),
        "wall_seconds": round(wall, 1),
    }


def measure(data_root: str, quick: bool = False) -> dict:
    few = ["--subset", "100"] + (["--test-subset", "1000"] if quick else [])
    fifty = ["--subset", "500", "--test-subset", "2000"]
    out: dict = {"quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        out["10_per_class"] = {
            "pretrained_frozen": run(runs, "f10", data_root, "--recipe", "seed-transfer", *few),
            "scratch": run(runs, "s10", data_root, "--recipe", "seed-transfer-scratch", *few),
            "best_few_images": run(runs, "b10", data_root, "--recipe", "best-few-images", *few),
        }
        if not quick:
            out["50_per_class"] = {
                "pretrained_frozen": run(
                    runs, "f50", data_root, "--recipe", "seed-transfer", *fifty
                ),
                "pretrained_fine_tuned": run(
                    runs, "t50", data_root, "--recipe", "seed-transfer", *fifty, *FINE_TUNE
                ),
                "scratch": run(runs, "s50", data_root, "--recipe", "seed-transfer-scratch", *fifty),
                "best_few_images": run(
                    runs, "b50", data_root, "--recipe", "best-few-images", *fifty
                ),
            }
    few = out["10_per_class"]
    frozen = few["pretrained_frozen"]
    out["gain_points_10_per_class"] = round(
        100 * (frozen["test_acc"] - few["scratch"]["test_acc"]), 2
    )
    out["best_gain_points_10_per_class"] = round(
        100 * (few["best_few_images"]["test_acc"] - frozen["test_acc"]), 2
    )
    out["later_epoch_fraction_of_first"] = round(
        frozen["later_epoch_seconds_max"] / frozen["first_epoch_seconds"], 5
    )
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def write_doc(r: dict, cpu: str) -> None:
    few = r["10_per_class"]
    f, s = few["pretrained_frozen"], few["scratch"]
    lines = [
        "<!-- BEGIN TRANSFER -->",
        "## Transfer learning: `seed-transfer` beside `seed-transfer-scratch`",
        "",
        f"`python benchmarks/transfer.py` (part of `make bench`) on {time.strftime('%Y-%m-%d')}, "
        f"`{platform.node()}` ({cpu}, CPU), one run each, Fashion-MNIST (grey clothes, far from "
        "ImageNet's photos). The final epoch's test accuracy (no validation split: `best.pt` "
        "would be chosen on the test split, so it is not the figure compared).",
        "",
        "| training images | test images | pretrained EfficientNet-Lite0, frozen | default `cnn` "
        "from scratch | gain |",
        "|---:|---:|---:|---:|---:|",
        f"| 10 per class (`--subset 100`) | {f['test_n']:,} | {_pct(f['test_acc'])} "
        f"({f['wall_seconds']:.0f} s) | {_pct(s['test_acc'])} ({s['wall_seconds']:.0f} s) | "
        f"+{r['gain_points_10_per_class']:.2f} points |",
    ]
    if "best_few_images" in few:
        b = few["best_few_images"]
        lines += [
            "",
            f"`--recipe best-few-images` (EfficientNet-Lite1, frozen at 240×240) on the same "
            f"images: {_pct(b['test_acc'])} ({b['wall_seconds']:.0f} s), "
            f"{r['best_gain_points_10_per_class']:+.2f} points over `seed-transfer`.",
        ]
    if "50_per_class" in r:
        g = r["50_per_class"]
        lines += [
            "",
            "At 50 per class, the first 2,000 test images, each with its wall time (the CPU "
            "budget):",
            "",
            "| 500 training images | test accuracy | epochs | wall time |",
            "|---|---:|---:|---:|",
        ]
        for label, key in (
            ("pretrained, frozen (features computed once)", "pretrained_frozen"),
            (
                "pretrained, fine-tuned (whole network, backbone lr ×0.1, AdamW 1e-3)",
                "pretrained_fine_tuned",
            ),
            ("default `cnn` from scratch", "scratch"),
            ("`--recipe best-few-images` (EfficientNet-Lite1, frozen, 240×240)", "best_few_images"),
        ):
            if key not in g:
                continue
            x = g[key]
            lines.append(
                f"| {label} | {_pct(x['test_acc'])} | {x['epochs']} | {x['wall_seconds']:.0f} s |"
            )
    lines += [
        "",
        "The feature cache: the first epoch of the frozen run took "
        f"{f['first_epoch_seconds']:.1f} s (computing {f['test_n'] + 100:,} images' features, "
        f"{f['feature_seconds']:.1f} s of it); "
        f"the slowest later epoch {f['later_epoch_seconds_max']:.3f} s "
        f"({r['later_epoch_fraction_of_first']:.5f} of the first).",
        "<!-- END TRANSFER -->",
    ]
    block = "\n".join(lines)
    doc = ROOT / "docs" / "recipes.md"
    text = doc.read_text()
    if "<!-- BEGIN TRANSFER -->" in text:
        text = re.sub(
            r"<!-- BEGIN TRANSFER -->.*<!-- END TRANSFER -->", lambda _: block, text, flags=re.S
        )
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import cpu_model, fashion_root  # the same machine description as the others

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 per class on 1,000 test images")
    parser.add_argument("--data-dir", default=None, help="a data root (default: a temporary one)")
    args = parser.parse_args()
    with fashion_root(args.data_dir) as root:
        result = measure(root, args.quick)
    cpu = cpu_model()
    result["machine"] = cpu
    out = ROOT / "benchmarks" / "results" / f"transfer-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quick:
        write_doc(result, cpu["cpu"])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
