"""A sweep's results: the trials by state and the best ones, ``best.toml`` (the best trial's
settings, to retrain it) and ``sweep.html`` (Optuna's plots, embedded)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from trainlab.fsutil import atomic_write_text
from trainlab.tune.settings import Sweep
from trainlab.tune.space import decode
from trainlab.tune.study import open_study


def summary(sweep: Sweep) -> dict[str, Any]:
    """The study's trials by state, the best ones, and the best trial's settings file."""
    study = open_study(sweep)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    reverse = sweep.direction == "maximize"
    ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
    states: dict[str, int] = {}
    for t in trials:
        key = t.state.name.lower()
        if key == "fail" and "error" not in t.user_attrs:
            key = "failed_worker_died"
        states[key] = states.get(key, 0) + 1
    out = {
        "sweep": str(sweep.directory),
        "storage": sweep.storage,
        "monitor": sweep.monitor,
        "direction": sweep.direction,
        "trials": sweep.trials,
        "counted": sum(sweep.counted(t) for t in trials),
        "states": states,
        "best": [
            {
                "trial": t.number,
                "value": t.value,
                "params": decode(t.params),
                "run_dir": t.user_attrs.get("run_dir"),
            }
            for t in ranked[:5]
        ],
    }
    if ranked:
        out["best_toml"] = str(write_best(sweep, ranked[0]))
        out["html"] = str(write_html(sweep, study, out))
    return out


def write_best(sweep: Sweep, trial) -> Path:
    """``best.toml``: the best trial's whole config, for ``trainlab train --config best.toml``."""
    import tomllib

    import tomli_w

    config = tomllib.loads((Path(trial.user_attrs["run_dir"]) / "config.toml").read_text())
    settings = {k: v for k, v in config["config"].items() if k not in ("runs_dir", "run_name")}
    header = (
        f"# The best trial of sweep {sweep.directory} (trial {trial.number}, {sweep.monitor} "
        f"{trial.value:.6g}).\n"
        f"# Retrain it: trainlab train --config {sweep.directory / 'best.toml'}\n"
    )
    return atomic_write_text(sweep.directory / "best.toml", header + tomli_w.dumps(settings))


def write_html(sweep: Sweep, study, result: dict[str, Any]) -> Path:
    """``sweep.html``: the best trials, and Optuna's matplotlib plots embedded (no network)."""
    import base64
    import html
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    complete = result["states"].get("complete", 0)
    figures = []
    for title, plot, note in (
        ("Optimisation history", vis.plot_optimization_history, ""),
        (
            "Parameter importances",
            vis.plot_param_importances,
            f"<p>From the {complete} completed trials (a pruned or failed trial has no final "
            "figure).</p>",
        ),
        ("Parallel coordinates", vis.plot_parallel_coordinate, ""),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.set_size_inches(8, 4.5)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
            plt.close(figure)
            encoded = base64.b64encode(buffer.getvalue()).decode()
            figures.append(
                f'<h2>{title}</h2>{note}<img alt="{title}" src="data:image/png;base64,{encoded}">'
            )
        except Exception as e:  # noqa: BLE001 - too few trials for a plot: say so
            figures.append(f"<h2>{title}</h2><p>not drawn: {html.escape(str(e))}</p>")
    rows = "".join(
        f"<tr><td>{b['trial']}</td><td>{b['value']:.4f}</td><td>{html.escape(json.dumps(b['params']))}"
        f"</td><td>{html.escape(str(b['run_dir']))}</td></tr>"
        for b in result["best"]
    )
    states = ", ".join(f"{k} {v}" for k, v in result["states"].items())
    page = (
        "<!doctype html><meta charset=utf-8><title>sweep "
        f"{html.escape(sweep.study_name)}</title><style>body{{font:14px sans-serif;margin:2em;"
        "max-width:60em}td,th{padding:2px 8px;text-align:left}</style>"
        f"<h1>Sweep {html.escape(sweep.study_name)}</h1><p>{sweep.monitor} ({sweep.direction}), "
        f"{result['counted']} of {sweep.trials} trials: {html.escape(states)}</p>"
        f"<table><tr><th>trial</th><th>{sweep.monitor}</th><th>parameters</th><th>run</th></tr>"
        f"{rows}</table>" + "".join(figures)
    )
    return atomic_write_text(sweep.directory / "sweep.html", page)
