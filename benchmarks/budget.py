"""The best model in a time budget: full Fashion-MNIST, `--budget 2m/5m/10m` with the recipe
`best-small-images`, beside today's default `cnn` given the same 10 minutes, through the CLI.

Usage: python benchmarks/budget.py [--quick]   (also `make bench`, as its "budget" part)

Measured for each run: the test accuracy of best.pt on the full test set (no validation split:
the budget's last epoch is best.pt), the epochs the budget planned and ran, the seconds from the
process's start to its exit (what the budget promises), and every epoch's test accuracy against
the seconds since the process started (the plot on the docs' budget page).
Run one after the other on a quiet machine: each is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "best-small-images"
RUNS = {  # name: (budget, flags)
    "recipe-10m": ("10m", ["--recipe", RECIPE]),
    "cnn-10m": ("10m", ["--model", "cnn"]),
    "recipe-5m": ("5m", ["--recipe", RECIPE]),
    "recipe-2m": ("2m", ["--recipe", RECIPE]),
}
QUICK = {"recipe-1m": ("1m", ["--recipe", RECIPE, "--subset", "6000"])}


def run(runs: Path, name: str, root: str, budget: str, flags: list[str]) -> dict:
    command = [sys.executable, "-m", "trainlab", "train", "--dataset", "fashion-mnist"]
    command += ["--data-dir", root, "--device", "cpu", "--runs-dir", str(runs)]
    command += ["--run-name", name, "--budget", budget, *flags]
    began = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=7200, check=False)
    wall = time.time() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
    record = (runs / name / "config.toml").read_text()
    planned = next(
        int(line.split("=")[1]) for line in record.splitlines() if line.startswith("epochs =")
    )
    return {
        "flags": ["--budget", budget, *flags],
        "budget_seconds": {"m": 60, "s": 1, "h": 3600}[budget[-1]] * float(budget[:-1]),
        "model": next(
            line.split('"')[1] for line in record.splitlines() if line.startswith("model =")
        ),
        "test_acc": rows[-1]["test_acc"],
        "test_n": rows[-1]["test_n"],
        "epochs_planned": planned,
        "epochs_run": len(rows),
        "wall_seconds": round(wall, 1),
        "curve": [[round(r["time"] - began, 1), r["test_acc"]] for r in rows],
    }


def measure(root: str, quick: bool = False) -> dict:
    out = {"quick": quick, "recipe": RECIPE, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (budget, flags) in (QUICK if quick else RUNS).items():
            out["runs"][name] = run(Path(tmp), name, root, budget, flags)
            print(name, json.dumps({k: v for k, v in out["runs"][name].items() if k != "curve"}))
    return out


def plot(result: dict, path: Path) -> None:
    """Test accuracy against seconds from the process's start, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for name, r in result["runs"].items():
        xs = [t / 60 for t, _ in r["curve"]]
        ys = [100 * a for _, a in r["curve"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{name} ({100 * r['test_acc']:.2f}%)")
    ax.set_xlabel("minutes from the process's start")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(85, 96)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save(result: dict) -> Path:
    """results/budget-<date>.json, with the machine, date and commit."""
    from bench import git_commit, machine

    result.update(machine=machine(), date=time.strftime("%Y-%m-%d"), commit=git_commit())
    out = ROOT / "benchmarks" / "results" / f"budget-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def main() -> int:
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import fashion_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 1-minute run on 6,000 images")
    parser.add_argument("--data-dir", default=None, help="a data root (default: a temporary one)")
    args = parser.parse_args()
    with fashion_root(args.data_dir) as root:
        result = measure(root, args.quick)
    if not args.quick:
        save(result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
