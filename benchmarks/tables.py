"""Tables against scikit-learn: breast cancer and wine (classification), diabetes (regression).

Usage (from bench.py):
    python benchmarks/bench.py --only tables

Each data set is written as a CSV file with an added categorical column ("colour", three values)
and 3% of its cells emptied, as the acceptance tests write them (tests/helpers.py). trainlab trains
on the file (``trainlab train --dataset FILE.csv --target target``, in-process, the CSV's reading
and encoding included in its seconds); the peers fit on the same split, encoded by the same rules
(the run's recorded encoding: median imputation with indicators, standardisation, one-hot), so
only the model differs: ``LogisticRegression``/``Ridge`` and ``HistGradientBoostingClassifier``/
``Regressor``. Test accuracy (R² for diabetes) and seconds (median over the repeats, A B A B …).
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TABLES = {"breast_cancer": "classification", "wine": "classification", "diabetes": "regression"}
# the acceptance tests' settings: few epochs, Adam, to the last epoch (a small table's
# validation split chooses by chance)
SETTINGS = ["--epochs", "40", "--optimizer", "adam", "--lr", "0.003", "--val-split", "0"]
SETTINGS += ["--device", "cpu", "--quiet"]


def write_table(name: str, path: Path, seed: int = 0, missing: float = 0.03) -> Path:
    """scikit-learn's table ``name`` as a CSV with a categorical column and empty cells."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    rng = np.random.default_rng(seed)
    columns = [str(c).replace(" ", "_") for c in bunch.feature_names]
    colour = rng.choice(["red", "green", "blue"], size=len(bunch.target))
    rows = [[*columns, "colour", "target"]]
    for i, (x, y) in enumerate(zip(bunch.data, bunch.target, strict=True)):
        cells = ["" if rng.random() < missing else repr(float(v)) for v in x]
        label = repr(float(y)) if name == "diabetes" else str(bunch.target_names[y])
        rows.append([*cells, str(colour[i]), label])
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _trainlab(path: Path, runs: Path, name: str) -> dict:
    from trainlab.cli import main
    from trainlab.workflow import evaluate_checkpoint

    began = time.perf_counter()
    argv = ["train", "--dataset", str(path), "--target", "target", *SETTINGS]
    assert main([*argv, "--runs-dir", str(runs), "--run-name", name]) == 0
    seconds = time.perf_counter() - began
    report = evaluate_checkpoint(runs / name, device="cpu")
    score = report.accuracy if report.accuracy is not None else report.r2
    return {"score": score, "seconds": seconds}


def _peer(model, data) -> dict:
    began = time.perf_counter()
    model.fit(data.train_x.numpy(), data.train_y.numpy().ravel())
    score = model.score(data.test_x.numpy(), data.test_y.numpy().ravel())
    return {"score": float(score), "seconds": time.perf_counter() - began}


def measure(repeats: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    from trainlab.data import load_dataset

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, task in TABLES.items():
            path = write_table(name, folder / f"{name}.csv")
            data = load_dataset(str(path), target="target")  # the run's split and encoding
            linear, boosted = (
                (LogisticRegression(max_iter=5000), HistGradientBoostingClassifier())
                if task == "classification"
                else (Ridge(), HistGradientBoostingRegressor())
            )
            runs: dict[str, list[dict]] = {"trainlab": [], "linear": [], "boosting": []}
            for i in range(repeats):
                runs["trainlab"].append(_trainlab(path, folder / "runs", f"{name}-{i}"))
                runs["linear"].append(_peer(linear, data))
                runs["boosting"].append(_peer(boosted, data))
            out[name] = {
                "task": task,
                "metric": "test accuracy" if task == "classification" else "test R²",
                "rows": len(data.train_y) + len(data.test_y),
                "features": int(data.input_shape[0]),
                "peers": {"linear": type(linear).__name__, "boosting": type(boosted).__name__},
                **{
                    who: {
                        "score": statistics.median(r["score"] for r in results),
                        "seconds": statistics.median(r["seconds"] for r in results),
                        "scores": [r["score"] for r in results],
                    }
                    for who, results in runs.items()
                },
            }
    return out


def rows(result: dict) -> list[str]:
    """The README table's rows: one per data set."""
    lines = []
    for name, r in result.items():
        if not isinstance(r, dict) or "trainlab" not in r:
            continue

        def shown(who: str, r=r) -> str:
            score = r[who]["score"]
            figure = f"{100 * score:.2f}%" if r["task"] == "classification" else f"{score:.3f}"
            return f"{figure} ({r[who]['seconds']:.2f} s)"

        lines.append(
            f"| table: {name.replace('_', ' ')} ({r['rows']} rows, {r['features']} features), "
            f"{r['metric']} (seconds) | {shown('trainlab')} | {r['peers']['linear']} "
            f"{shown('linear')}; {r['peers']['boosting']} {shown('boosting')} | | |"
        )
    return lines


if __name__ == "__main__":
    print(json.dumps(measure(1), indent=1))
