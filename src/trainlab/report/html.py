"""One self-contained HTML page for a run: images embedded, no network, no scripts."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _number(value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _kv(mapping: dict[str, Any]) -> str:
    rows = [[k, json.dumps(v) if isinstance(v, list | dict) else v] for k, v in mapping.items()]
    return _table(["setting", "value"], rows, "kv")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } table.kv td:first-child { text-align: left; font-weight: 600; }
img { max-width: 100%; } .summary { font-size: 1.05rem; } .cols { display: flex; gap: 2rem; }
"""


def render(
    run_dir: Path,
    *,
    config: dict[str, Any],
    rows: list[dict[str, Any]],
    figures: dict[str, Path],
    per_class: dict[str, list],
    classes: list[str],
    confused: list[dict[str, Any]],
    confusion: list[list[int]],
    accuracy: float | None,
    checkpoint: str,
) -> str:
    final = rows[-1] if rows else {}
    summary = _summary(config.get("run", {}), rows, accuracy, checkpoint)
    # "time" is the wall clock at each epoch's end (for timing from outside), not a metric
    metric_keys = [
        k for k in final if k not in ("epoch", "time") and not isinstance(final[k], list | dict)
    ]
    epoch_rows = [[r["epoch"], *[_number(r.get(k, "")) for k in metric_keys]] for r in rows]
    confusion_rows = [[classes[i], *row] for i, row in enumerate(confusion)]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>trainlab report: {html.escape(run_dir.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Run {html.escape(run_dir.name)}</h1>",
        f"<p class='summary'>{' · '.join(summary)}</p>",
        "<h2>Curves</h2>",
        _img(figures["curves"], "loss and accuracy per epoch"),
        "<h2>Per epoch</h2>",
        _table(["epoch", *metric_keys], epoch_rows, "epochs"),
    ]
    if "confusion" in figures:
        parts += [
            "<h2>Confusion matrix</h2>",
            _img(figures["confusion"], "confusion matrix"),
            _table(["true \\ predicted", *classes], confusion_rows, "confusion"),
            "<h2>Per class</h2>",
            "<div class='cols'>",
            _table(
                ["class", "precision", "recall", "F1", "support"],
                _class_rows(per_class, classes),
                "per-class",
            ),
            _table(
                ["true", "predicted", "count"],
                [[c["true"], c["predicted"], c["count"]] for c in confused],
                "most-confused",
            ),
            "</div>",
        ]
    if "mistakes" in figures:
        parts += ["<h2>Most confident mistakes</h2>", _img(figures["mistakes"], "top mistakes")]
    return "\n".join(parts + _config_sections(config))


def _summary(run, rows, accuracy, checkpoint) -> list[str]:
    final = rows[-1] if rows else {}
    summary = []
    if accuracy is not None:
        summary.append(f"test accuracy <b>{100 * accuracy:.2f}%</b> ({checkpoint})")
    if final:
        total = sum(r.get("seconds", 0) for r in rows)
        summary.append(f"{final['epoch']} epochs in {total:.1f} s of training and evaluation")
    if run.get("best_checkpoint_chosen_on"):
        summary.append(f"best.pt chosen on {run['best_checkpoint_chosen_on']}")
    return summary


def _class_rows(per_class, classes) -> list[list]:
    if not per_class:
        return []
    return [
        [
            c,
            f"{per_class['precision'][i]:.4f}",
            f"{per_class['recall'][i]:.4f}",
            f"{per_class['f1'][i]:.4f}",
            per_class["support"][i],
        ]
        for i, c in enumerate(classes)
    ]


def _config_sections(config) -> list[str]:
    return [
        "<h2>Configuration</h2>",
        _kv(_settings(config.get("config", {}))),
        "<h2>Data and model</h2>",
        _kv(
            {
                **config.get("data", {}),
                **{f"model.{k}": v for k, v in config.get("model", {}).items()},
            }
        ),
        "<h2>Environment</h2>",
        _kv(config.get("environment", {})),
        "</body></html>",
    ]


def _settings(config: dict) -> dict:
    """The config's settings, a model's or dataset's options as rows of their own."""
    flat = {k: v for k, v in config.items() if k not in ("model_options", "data_options")}
    for table in ("model_options", "data_options"):
        flat.update(config.get(table) or {})
    return flat
