"""One self-contained HTML page for a run: images embedded, no network, no scripts.

The page is ``templates/report.html.j2`` (jinja2, autoescaped: a class name or setting that
holds markup shows as text). This module only turns a run's figures and numbers into the rows
the template lays out.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_TEMPLATES = Environment(
    loader=PackageLoader("trainlab.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a name missing from the page's data fails, never shows blank
    trim_blocks=True,
    lstrip_blocks=True,
)


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
    cooccurrence: list[list[int]] | None = None,
    gallery: dict[str, Any] | None = None,
    trust: dict[str, Any] | None = None,
) -> str:
    """The report page: summary, curves, per-epoch table, confusion matrix, per-class scores,
    mistakes (with their heat maps in ``gallery``), calibration and "none of these" (``trust``:
    report.trust.trust_parts) and the run's settings."""
    final = rows[-1] if rows else {}
    # "time" is the wall clock at each epoch's end (for timing from outside), not a metric
    metric_keys = [
        k for k in final if k not in ("epoch", "time") and not isinstance(final[k], list | dict)
    ]
    return _TEMPLATES.get_template("report.html.j2").render(
        run=run_dir.name,
        accuracy=accuracy,
        checkpoint=checkpoint,
        summary=_summary(config.get("run", {}), rows),
        images={
            name: base64.b64encode(path.read_bytes()).decode("ascii")
            for name, path in figures.items()
        },
        epochs={
            "header": ["epoch", *metric_keys],
            "rows": [[r["epoch"], *[_number(r.get(k, "")) for k in metric_keys]] for r in rows],
        },
        confusion={
            "header": ["true \\ predicted", *classes],
            "rows": [[classes[i], *row] for i, row in enumerate(confusion)],
        },
        per_class=_class_table(per_class, classes, config.get("data", {})),
        confused=[[c["true"], c["predicted"], c["count"]] for c in confused],
        cooccurrence={  # multi-label: test images holding both labels
            "header": ["label", *classes],
            "rows": [[classes[i], *row] for i, row in enumerate(cooccurrence or [])],
        },
        settings=_settings_sections(config),
        gallery=gallery or {"items": [], "note": ""},
        trust=trust or {"calibration": [], "rejection": []},
    )


def _number(value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _summary(run: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    final = rows[-1] if rows else {}
    summary = []
    if final:
        total = sum(r.get("seconds", 0) for r in rows)
        summary.append(f"{final['epoch']} epochs in {total:.1f} s of training and evaluation")
    if run.get("best_checkpoint_chosen_on"):
        summary.append(f"best.pt chosen on {run['best_checkpoint_chosen_on']}")
    return summary


def _class_table(per_class: dict[str, list], classes: list[str], data: dict) -> dict:
    """The counts beside the recall: a rare class's low recall shows as such. The training
    counts come from config.toml (runs before they were recorded show the test counts only)."""
    train = (data.get("class_counts") or {}).get("train")
    if train is not None and len(train) != len(classes):
        train = None
    header = ["class", *(["train count"] if train else []), "test count", "recall"]
    if not per_class:
        return {"header": [*header, "precision", "F1"], "rows": []}
    rows = [
        [
            c,
            *([train[i]] if train else []),
            per_class["support"][i],
            f"{per_class['recall'][i]:.4f}",
            f"{per_class['precision'][i]:.4f}",
            f"{per_class['f1'][i]:.4f}",
        ]
        for i, c in enumerate(classes)
    ]
    return {"header": [*header, "precision", "F1"], "rows": rows}


def _settings_sections(config: dict[str, Any]) -> list[tuple[str, list[list]]]:
    data_and_model = {
        **config.get("data", {}),
        **{f"model.{k}": v for k, v in config.get("model", {}).items()},
    }
    return [
        ("Configuration", _kv(_settings(config.get("config", {})))),
        ("Data and model", _kv(data_and_model)),
        ("Environment", _kv(config.get("environment", {}))),
    ]


def _kv(mapping: dict[str, Any]) -> list[list]:
    return [[k, json.dumps(v) if isinstance(v, list | dict) else v] for k, v in mapping.items()]


def _settings(config: dict) -> dict:
    """The config's settings, a model's or dataset's options as rows of their own."""
    flat = {k: v for k, v in config.items() if k not in ("model_options", "data_options")}
    for table in ("model_options", "data_options"):
        flat.update(config.get(table) or {})
    return flat
