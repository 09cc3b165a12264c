"""The report's figures of how far to trust a run's answers: the reliability diagram (test
split, before and after the temperature) and the energy score's histogram on the validation
split with the "none of these" threshold. Both come from the run's ``[calibration]`` record
(config.toml), which holds the numbers, so the report needs no model for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.report.live import pyplot


def reliability_figure(record: dict[str, Any]):
    """Accuracy against confidence per bin, before and after the temperature; the diagonal is
    a model whose probabilities mean what they say. Bars below it: over-confident."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    bins = len(record["reliability_before"]["count"])
    centres = (np.arange(bins) + 0.5) / bins
    for ax, when in zip(axes, ("before", "after"), strict=True):
        numbers = record[f"reliability_{when}"]
        count = np.asarray(numbers["count"])
        shown = count > 0
        ax.bar(
            centres[shown], np.asarray(numbers["accuracy"])[shown], width=1 / bins,
            edgecolor="black", color="tab:blue", alpha=0.8, label="accuracy",
        )  # fmt: skip
        ax.plot(
            np.asarray(numbers["confidence"])[shown], np.asarray(numbers["accuracy"])[shown],
            "o", color="tab:orange", markersize=3, label="mean confidence",
        )  # fmt: skip
        for x, n in zip(centres[shown], count[shown], strict=True):  # how much each bar weighs
            ax.text(x, 0.02, str(n), ha="center", va="bottom", fontsize=6, rotation=90)
        ax.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
        title = "before" if when == "before" else f"after (T = {_temperature(record)})"
        ax.set_title(f"{title}: ECE {100 * record[f'ece_{when}']:.2f}%")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"accuracy ({record['ece_split']} split)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _temperature(record: dict[str, Any]) -> str:
    if "temperature" in record:
        return f"{record['temperature']:.3f}"
    return "one per label"


def energy_figure(record: dict[str, Any]):
    """The validation split's energy scores with the threshold: right of the line is
    "none of these" (the share kept is the threshold's purpose)."""
    plt = pyplot()
    histogram = record["reject_histogram"]
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:green", alpha=0.8)
    threshold = record["reject_threshold"]
    kept = 100 * record.get("reject_kept_on_val", record.get("reject_keep", 0))
    ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("energy score (-logsumexp of the logits; high: unlike the training data)")
    ax.set_ylabel("validation images")
    ax.set_title(f"validation split: {kept:.1f}% kept, the rest would be 'none of these'")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def trust_parts(record: dict[str, Any] | None, run_dir) -> dict[str, Any]:
    """The figures (written beside the run) and the lines the page shows about calibration and
    "none of these"; empty for a run without a record (no validation split)."""
    from trainlab.report.figures import save_png

    if not record:
        return {"figures": {}, "calibration": [], "rejection": []}
    figures, calibration, rejection = {}, [], []
    if "reliability_before" in record:
        figures["reliability"] = save_png(reliability_figure(record), run_dir / "reliability.png")
    if "ece_before" in record:
        calibration.append(
            f"temperature {_temperature(record)} fitted on the validation split; expected "
            f"calibration error on the {record['ece_split']} split "
            f"{100 * record['ece_before']:.2f}% before, {100 * record['ece_after']:.2f}% after"
        )
    if record.get("uncalibrated_labels"):
        calibration.append(
            "left at temperature 1.0 (the validation split holds only one side of them): "
            + ", ".join(record["uncalibrated_labels"])
        )
    if "reject_histogram" in record:
        figures["energy"] = save_png(energy_figure(record), run_dir / "energy.png")
    if "reject_threshold" in record:
        rejection.append(
            f"energy threshold {record['reject_threshold']:.3f}: keeps "
            f"{100 * record.get('reject_kept_on_val', record['reject_keep']):.1f}% of the "
            "validation split (predict --reject and serve ?reject=1 answer 'none of these' "
            "above it)"
        )
    return {"figures": figures, "calibration": calibration, "rejection": rejection}
