"""The command line of ``trainlab sweep``, ``trainlab lr-find`` and ``trainlab cv``: each takes
the train flags (the same settings as ``trainlab train``; the CLI passes them in as ``given``)
and adds its own."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from typing import Any

from trainlab.errors import ConfigError

SWEEP_EXAMPLE = """\
example space.toml:
  [space]
  lr = { low = 0.01, high = 0.5, log = true }
  weight_decay = { low = 1e-5, high = 1e-2, log = true }
  hidden = { choices = [[64], [128], [256, 128]] }
  epochs = 2            # a fixed value

  trainlab sweep space.toml --model mlp --subset 5000 --trials 20 --workers 2
  trainlab sweep space.toml --storage postgresql://me@db/sweeps --trials 100   # on each machine
  trainlab train --config sweeps/space/best.toml
"""


def add_parsers(sub, add_config_flags, trust_flag) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="search hyperparameters with Optuna; writes sweeps/<name>/",
        description="Search the settings in SPACE.toml with Optuna (TPE, pruning), each trial "
        "an ordinary run directory, chosen on a validation split. Re-running the same command "
        "continues the sweep; several processes or machines can work on one study.",
        epilog=SWEEP_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("space", metavar="SPACE.toml", help="the search space ([space] table)")
    sweep.add_argument("--trials", type=int, default=20, help="trials in all (default: 20)")
    sweep.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="start no new trial after this many seconds (a running one finishes)",
    )  # fmt: skip
    sweep.add_argument(
        "--workers", type=int, default=1, metavar="K",
        help="worker processes on this machine, each with its share of the cores (default: 1)",
    )  # fmt: skip
    sweep.add_argument(
        "--storage", metavar="URL",
        help="the study's storage: an RDB URL Optuna supports (postgresql://..., sqlite:///...) "
        "or a journal file (journal:PATH); default: sqlite in the sweep's folder",
    )  # fmt: skip
    sweep.add_argument("--sweeps-dir", default="sweeps", help="where sweeps go (default: sweeps)")
    sweep.add_argument(
        "--sweep-name", help="the sweep's folder and study name (default: the space file's name)"
    )
    sweep.add_argument(
        "--pruner", default="median", choices=("median", "halving", "none"),
        help="stops poor trials early from their per-epoch figures (default: median)",
    )  # fmt: skip
    sweep.add_argument("--config", metavar="FILE.toml", help="train settings to start from")
    sweep.add_argument("--json", action="store_true", help="print the summary as JSON")
    sweep.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    trust_flag(sweep, "import the model's code if it is your own file (FILE.py:Class)")
    add_config_flags(sweep)

    lr = sub.add_parser(
        "lr-find",
        help="the learning-rate range test: a suggested --lr and lr_find.png",
        description="Grow the learning rate exponentially over about 100 steps of the run's "
        "model, data and optimizer, with the loss smoothed, until the loss diverges; suggest "
        "the learning rate of steepest descent. No weights are kept.",
    )
    lr.add_argument("--start-lr", type=float, default=1e-5, help="first lr (default: 1e-5)")
    lr.add_argument("--end-lr", type=float, default=10.0, help="last lr (default: 10)")
    lr.add_argument("--steps", type=int, default=100, help="optimizer steps (default: 100)")
    lr.add_argument(
        "--output", default="lr_find.png", metavar="PNG", help="the curve (default: lr_find.png)"
    )
    lr.add_argument("--config", metavar="FILE.toml", help="train settings to start from")
    lr.add_argument("--json", action="store_true", help="print the result as JSON")
    trust_flag(lr)
    add_config_flags(lr)

    cv = sub.add_parser(
        "cv",
        help="stratified K-fold cross-validation: one run per fold, mean ± std",
        description="Cut the training split into K stratified folds; train one run per fold "
        "with that fold as its validation split; report the monitored validation figure's mean "
        "± std. Each fold's config records its fold, so it can be rerun exactly.",
    )
    cv.add_argument("--folds", type=int, required=True, metavar="K", help="number of folds")
    cv.add_argument(
        "--only-fold", type=int, action="append", metavar="I",
        help="rerun fold I (1..K) of an existing cv folder (--run-name names it)",
    )  # fmt: skip
    cv.add_argument("--config", metavar="FILE.toml", help="train settings to start from")
    cv.add_argument("--json", action="store_true", help="print the result as JSON")
    trust_flag(cv)
    add_config_flags(cv)


def _err(line: str) -> None:
    logging.getLogger(__name__).info(line)


def _checked(given: dict[str, Any]) -> dict[str, Any]:
    if given.get("lr") == "auto":
        raise ConfigError(
            "--lr auto is for trainlab train; lr-find suggests, and a sweep searches lr."
        )
    return given


def cmd_sweep(args: argparse.Namespace, argv: list[str], given: dict[str, Any]) -> int:
    from trainlab.tune.settings import prepare
    from trainlab.tune.space import shown

    given = _checked(given)
    setup = prepare(
        args.space,
        given,
        config_file=args.config,
        trials=args.trials,
        sweeps_dir=args.sweeps_dir,
        sweep_name=args.sweep_name,
        storage=args.storage,
        pruner=args.pruner,
        trust_code=args.trust_code,
    )
    # Optuna's modules load here, after prepare has said how to install it if it is missing
    from trainlab.tune import sweep as sw
    from trainlab.tune.results import summary
    from trainlab.tune.study import open_study

    if args.worker_index is not None:  # one of --workers K: run trials, say nothing more
        sw.work(setup, args.worker_index, args.timeout)
        return 0
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more.")
    _err(
        f"sweep {setup.directory}: {setup.trials} trials, {setup.monitor} ({setup.direction}), "
        f"storage {setup.storage}"
    )
    if args.workers == 1:
        sw.work(setup, 0, args.timeout)
    else:
        open_study(setup)  # the tables and the study exist before the workers race to them
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "trainlab", "sweep", *argv, "--worker-index", str(i)],
                env=env,
            )
            for i in range(args.workers)
        ]
        try:
            codes = [child.wait() for child in children]
        except KeyboardInterrupt:
            for child in children:
                child.wait()
            raise
        if any(codes):
            _err(f"note: worker exit codes {codes}; re-run the command to continue the sweep")
    result = summary(setup)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        states = ", ".join(f"{k} {v}" for k, v in result["states"].items())
        print(f"{result['counted']} of {setup.trials} trials ({states}); best {setup.monitor}:")
        for b in result["best"]:
            params = shown(b["params"])
            print(f"  trial {b['trial']:>4}  {b['value']:.4f}  {params}  {b['run_dir']}")
        if "best_toml" in result:
            print(
                f"best settings: {result['best_toml']} "
                f"(trainlab train --config {result['best_toml']})"
            )
            print(f"report: {result['html']}")
    if result["counted"] < setup.trials:
        print("the sweep is not finished: run the same command again to continue it")
    # --timeout ends a sweep early by choice; otherwise a short count means workers failed
    return 0 if result["counted"] >= setup.trials or args.timeout else 1


def cmd_lr_find(args: argparse.Namespace, _argv: list[str], given: dict[str, Any]) -> int:
    from trainlab.tune.lrfind import RULE, plot, range_test

    result = range_test(
        _checked(given),
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        steps=args.steps,
        config_file=args.config,
    )
    path = plot(result, args.output)
    info = {**result.to_dict(), "png": str(path)}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"suggested --lr {result.suggestion:.3g} ({RULE}, {info['min_loss_lr']:.3g}; the "
            f"steepest descent was at {result.steepest:.3g}; {result.stopped}); curve: {path}"
        )
    return 0


def cmd_cv(args: argparse.Namespace, _argv: list[str], given: dict[str, Any]) -> int:
    from trainlab.report.console import ConsoleLogger
    from trainlab.tune.cv import cross_validate

    result = cross_validate(
        _checked(given),
        args.folds,
        only=args.only_fold,
        config_file=args.config,
        callbacks_for=lambda _fold: [ConsoleLogger(1 << 31, quiet=True)],
        trust_code=args.trust_code,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        figures = ", ".join(f"{r['value']:.4f}" for r in result["results"])
        print(
            f"{result['monitor']} {result['mean']:.4f} ± {result['std']:.4f} (mean ± std over "
            f"{len(result['results'])} fold(s): {figures}); runs in {result['directory']}"
        )
    return 0
