"""Stratified K-fold cross-validation: ``trainlab cv --folds K [train flags]``.

Example:
    $ trainlab cv --folds 5 --subset 5000 --epochs 2
    fold 1/5: val_acc 0.9720 ...
    val_acc 0.9712 ± 0.0031 (mean ± std over 5 folds); runs: runs/cv-5fold-cnn/fold-1 ...
    $ trainlab train --config runs/cv-5fold-cnn/fold-3/config.toml     # fold 3 again, exactly

The training split (after ``--subset``) is cut into K stratified folds (scikit-learn's
StratifiedKFold, shuffled with the data seed); fold i is the validation split of run i, the
other folds train it. Each fold is an ordinary run directory whose config records
``folds = K`` and ``fold = i``, so the same cut and the same run come back from its config.
The test split is left alone: it is still scored, never chosen on. ``cv.json`` beside the
folds holds each fold's figure and the mean and standard deviation (``ddof = 1``).
"""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.fsutil import atomic_write_text
from trainlab.logs import quiet

_LOG = logging.getLogger(__name__)


def cross_validate(
    given: dict[str, Any],
    folds: int,
    *,
    only: list[int] | None = None,
    config_file: str | None = None,
    callbacks_for=None,
    trust_code: bool = False,
) -> dict[str, Any]:
    """Train one run per fold; their monitored figures, mean and std. ``only`` reruns those
    folds (1-based) into the same folder."""
    from trainlab import runs
    from trainlab.resolve import plan_run
    from trainlab.workflow import train

    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least 2 folds.")
    given = dict(given)
    if given.get("val_split"):
        raise ConfigError(
            "--val-split with cv: each fold is the validation split of its run; drop --val-split."
        )
    for key in ("folds", "fold"):
        given.pop(key, None)
    base = plan_run({**given, "folds": folds, "fold": 1}, config_file=config_file, source="cv")
    cfg = base.config
    monitor = cfg.monitor or "val_acc"
    if not monitor.startswith("val_"):
        raise ConfigError(
            f"--monitor {monitor}: cross-validation scores each fold on its validation split; "
            "use val_acc or val_loss."
        )
    name = cfg.run_name or f"cv-{folds}fold-{cfg.model.replace(':', '-')}"
    root = Path(cfg.runs_dir) / name
    if only:
        bad = [i for i in only if not 1 <= i <= folds]
        if bad:
            raise ConfigError(f"--fold {bad[0]}: folds are numbered 1..{folds}.")
        if not root.is_dir():
            raise ConfigError(f"--fold: {root} does not exist; run all folds first.")
    else:
        root = runs.new_run_dir(cfg.runs_dir, name, cfg.model)
    results: dict[int, dict[str, Any]] = {}
    for fold in only or range(1, folds + 1):
        settings = {**given, "folds": folds, "fold": fold, "monitor": monitor}
        settings.update(runs_dir=str(root), run_name=f"fold-{fold}" + ("-again" if only else ""))
        plan = plan_run(settings, config_file=config_file, source=f"cv fold {fold}")
        with quiet():  # each fold's progress is the callbacks'; the summary is the result
            result = train(
                plan,
                callbacks=callbacks_for(fold) if callbacks_for else None,
                trust_code=trust_code,
            )
        if result.status == "interrupted":
            raise KeyboardInterrupt
        best = result.best
        results[fold] = {
            "fold": fold,
            "value": best["value"],
            "epoch": best["epoch"],
            "test": result.final.get("test_acc", result.final.get("test_loss")),
            "run_dir": str(result.run_dir),
        }
        _LOG.info(f"fold {fold}/{folds}: {monitor} {best['value']:.4f} ({result.run_dir})")
    values = [r["value"] for r in results.values()]
    out = {
        "folds": folds,
        "monitor": monitor,
        "results": list(results.values()),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "directory": str(root),
    }
    if not only:
        atomic_write_text(root / "cv.json", json.dumps(out, indent=2))
    return out
