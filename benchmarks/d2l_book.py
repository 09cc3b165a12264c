"""`make d2l-book`: the book's chapter programs at the book's own epochs, beside its figures.

Runs tests/d2l_book/<chapter>.py unchanged (only the import line differs from the book) on the
real Fashion-MNIST, REPEATS times each (the programs are not seeded, as in the book), and writes
benchmarks/results/d2l-book-<date>.json plus a Markdown table on stdout: final training loss,
training accuracy and test accuracy, mean and spread, against the book's recorded figures.

    python benchmarks/d2l_book.py                       # softmax (both), MLP, LeNet, 3 runs each
    python benchmarks/d2l_book.py --repeats 1 ch7_5_batch_norm
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "tests" / "d2l_book"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT = [
    "ch3_7_softmax_regression_concise",
    "ch4_3_mlp_concise",
    "ch6_6_lenet",
]
# zh.d2l.ai (PyTorch) recorded output, where the chapter prints one
BOOK_FIGURES = {"ch6_6_lenet": (0.469, 0.823, 0.779)}
PATTERN = re.compile(r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)")


def run(name: str, data_root: str) -> dict:
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(BOOK / f"{name}.py")],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "TRAINLAB_DATA": data_root, "MPLBACKEND": "Agg"},
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    found = PATTERN.findall(proc.stdout)
    loss, train_acc, test_acc = (float(v) for v in found[-1])
    return {
        "loss": loss,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_root = os.environ.get("TRAINLAB_DATA") or tempfile.mkdtemp(prefix="d2l-book-data-")
    results = {}
    for name in args.chapters:
        runs = []
        for i in range(args.repeats):
            runs.append(run(name, data_root))
            print(f"{name} {i + 1}/{args.repeats}: {runs[-1]}", file=sys.stderr, flush=True)
        results[name] = {
            "runs": runs,
            **{
                key: {
                    "mean": round(statistics.mean(r[key] for r in runs), 4),
                    "min": min(r[key] for r in runs),
                    "max": max(r[key] for r in runs),
                }
                for key in ("loss", "train_acc", "test_acc")
            },
            "book": BOOK_FIGURES.get(name),
        }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"d2l-book-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print("| chapter | loss | train acc | test acc | the book's (loss, train, test) |")
    print("|---|---:|---:|---:|---|")
    for name, r in results.items():
        cells = [
            f"{r[k]['mean']:.3f} ({r[k]['min']:.3f}–{r[k]['max']:.3f})"
            for k in ("loss", "train_acc", "test_acc")
        ]
        book = ", ".join(f"{v:.3f}" for v in r["book"]) if r["book"] else "plot only"
        print(f"| {name} | {' | '.join(cells)} | {book} |")
    print(f"\nraw: {path.relative_to(ROOT)}", file=sys.stderr)
    write_doc(results, args.repeats)
    return 0


def write_doc(results: dict, repeats: int) -> None:
    """The table into docs/recipes.md, between markers (`make recipes-doc` keeps the block)."""
    import platform

    rows = []
    for name, r in results.items():
        cells = [
            f"{r[k]['mean']:.3f} ({r[k]['min']:.3f}–{r[k]['max']:.3f})"
            for k in ("loss", "train_acc", "test_acc")
        ]
        book = " / ".join(f"{v:.3f}" for v in r["book"]) if r["book"] else "a plot only"
        rows.append(f"| `{name}` | {' | '.join(cells)} | {book} |")
    block = (
        "<!-- BEGIN D2L -->\n## The d2l book's chapters, at the book's epochs\n\n"
        f"`make d2l-book` on {time.strftime('%Y-%m-%d')}, `{platform.node()}` (CPU): each "
        f"chapter's code from tests/d2l_book/ run {repeats} time(s) as the book has it, only "
        "the import changed, on Fashion-MNIST; mean (min–max) of the final epoch's training "
        "loss, training accuracy and test accuracy, beside the figures the book printed.\n\n"
        "| chapter | loss | train acc | test acc | the book (loss / train / test) |\n"
        "|---|---:|---:|---:|---|\n" + "\n".join(rows) + "\n" + NOTES + "<!-- END D2L -->"
    )
    doc = ROOT / "docs" / "recipes.md"
    text = doc.read_text()
    if "<!-- BEGIN D2L -->" in text:
        text = re.sub(r"<!-- BEGIN D2L -->.*<!-- END D2L -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


NOTES = """
The book's runs are not seeded either, so a figure's spread over runs is the noise to compare
against. trainlab's `train_ch3`/`train_ch6` weight every figure by samples (the book's
`train_ch6` does too; its `Accumulator` pattern in chapter 3 does when the loss is unreduced), so
no correction applies there. The book prints figures only for `train_ch6` chapters (LeNet,
batch norm, the modern CNNs); `train_ch3` only plots, and trainlab's prints the same figures.
"""


if __name__ == "__main__":
    sys.exit(main())
