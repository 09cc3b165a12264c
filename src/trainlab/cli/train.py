"""``trainlab train``: the flags generated from ``TrainConfig`` and the registries, the run,
and the summary printed at its end."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from trainlab.cli.common import err, out, trust_flag
from trainlab.cli.flags import add_config_flags, given_settings
from trainlab.logs import say


def add(sub) -> dict[str, argparse.ArgumentParser]:
    """`trainlab train`: the run flags generated from TrainConfig and the registries."""
    train = sub.add_parser(
        "train",
        help="train a model; writes runs/<id>/",
        description="Train a model and write runs/<id>/ (config.toml, "
        "metrics.jsonl, last.pt, best.pt). Ctrl-C saves a resumable checkpoint.",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its "
        "last.pt (flags given here change the saved config, e.g. --epochs)",
    )
    train.add_argument(
        "--config",
        metavar="FILE.toml",
        help="start from the settings in this file (a run's own config.toml works); flags "
        "given here override it",
    )
    trust_flag(train, "on --resume, import the run's model code if it is your own file")
    train.add_argument(
        "--json", action="store_true", help="print the final result as JSON on stdout"
    )
    train.add_argument("--quiet", action="store_true", help="print only the final summary")
    add_config_flags(train)
    train.set_defaults(func=cmd_train)
    return {"train": train}


def cmd_train(args: argparse.Namespace) -> int:
    from trainlab.engine.distributed import Dist
    from trainlab.report.console import ConsoleLogger
    from trainlab.resolve import plan_run
    from trainlab.workflow import train

    given = given_settings(args)
    main = Dist.from_env().main  # under torchrun, rank 0 speaks for the job
    note = None
    if given.get("lr") == "auto":
        given["lr"], note = _auto_lr(args, given)
    plan = plan_run(given, resume=args.resume, config_file=args.config, source="command line")
    if note:
        plan.notes["lr"] = note
    cfg = plan.config
    logger = ConsoleLogger(cfg.log_every, quiet=args.quiet)
    # the code a fresh run names on the command line is the user's own choice; a resume (or a
    # --config file naming code) imports it only with --trust-code
    trusted = args.trust_code or ("model" in given and args.resume is None)
    result = train(plan, callbacks=[logger], trust_code=trusted)
    Dist.from_env().leave()  # every rank together, after the last collective
    if not main:
        return 130 if result.status == "interrupted" else 0
    final = result.final
    if result.status == "interrupted":
        err(
            f"interrupted: checkpoint saved to {result.last_path}. "
            f"Resume with: {'torchrun ... -m ' if 'WORLD_SIZE' in os.environ else ''}"
            f"trainlab train --resume {result.run_dir}"
        )
    summary = {
        "run_dir": str(result.run_dir),
        "status": result.status,
        "best": result.best,
        "final": final,
        **({"best_checkpoint": at_best} if (at_best := _best_row(result)) else {}),
        "changed": {k: list(v) for k, v in plan.changed.items()},
        **({"stopped": result.stopped} if result.stopped else {}),
        **result.extra,
    }
    if args.json:
        out(json.dumps(summary, indent=2))
    elif final:
        out(_summary_line(result))
        if "sklearn_test_acc" in result.extra:
            out(
                "scikit-learn accuracy_score on the test predictions: "
                f"{result.extra['sklearn_test_acc']:.4f} (trainlab: {final['test_acc']:.4f})"
            )
    return 130 if result.status == "interrupted" else 0


def _auto_lr(args, given: dict[str, Any]) -> tuple[float, str]:
    """--lr auto: the range test (trainlab lr-find) on this run's settings, first."""
    from trainlab.errors import ConfigError
    from trainlab.tune.lrfind import RULE, range_test

    if args.resume:
        raise ConfigError("--lr auto with --resume: a resume keeps its run's learning rate.")
    say("--lr auto: running the learning-rate range test first (trainlab lr-find)")
    found = range_test(given, config_file=args.config)
    lr = float(f"{found.suggestion:.3g}")
    note = f"--lr auto: {lr:g} from the learning-rate range test ({RULE}; {found.stopped})"
    say(note)
    return lr, note


def _best_row(result) -> dict[str, Any] | None:
    """The metrics of the epoch best.pt holds (None if it is not in this run's history)."""
    epoch = result.best.get("epoch")
    return next((row for row in result.history if row.get("epoch") == epoch), None)


def _summary_line(result) -> str:
    """The last epoch's test figure, and best.pt's: the one `trainlab eval` (and predict,
    export, serve) will give, which is not the last epoch's when an earlier one was best."""
    final = result.final
    metric = next((m for m in ("test_acc", "test_micro_f1") if m in final), "test_loss")
    name = {"test_acc": "test accuracy", "test_micro_f1": "test micro-F1"}.get(
        metric, "test loss (MSE)"
    )

    def shown(row: dict[str, Any]) -> str:
        return f"{100 * row[metric]:.2f}%" if metric == "test_acc" else f"{row[metric]:.6f}"

    best = _best_row(result)
    at_best = ""
    if best is not None and result.best["monitor"] == "epoch":  # no validation split
        at_best = "; best.pt: the same, the last epoch (no validation split to choose on)"
    elif best is not None and metric in best:
        at_best = (
            f"; best.pt: epoch {best['epoch']} (best {result.best['monitor']}), "
            f"{name} {shown(best)}"
        )
    elif result.best.get("epoch") is not None:
        at_best = f"; best {result.best['monitor']} at epoch {result.best['epoch']}"
    return f"{name} {shown(final)} after {final['epoch']} epoch(s){at_best}; run: {result.run_dir}"
