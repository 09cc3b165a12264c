"""Hyperparameter sweeps on Optuna: ``trainlab sweep SPACE.toml [train flags]``.

Example:
    $ trainlab sweep space.toml --subset 5000 --trials 20 --workers 2
    $ trainlab sweep space.toml --storage postgresql://user@host/db --trials 100   # each machine
    $ trainlab train --config sweeps/space/best.toml

A sweep writes ``sweeps/<name>/`` (``--sweeps-dir``, ``--sweep-name``; the name defaults to the
space file's): ``study.db`` (Optuna's SQLite storage, unless ``--storage`` names another),
``sweep.json`` (what it searches), ``trials/trial-NNNN/`` (each trial an ordinary run
directory, with a ``trial.json`` saying its state), ``best.toml`` and ``sweep.html``.

What it guarantees:
- **The objective is a validation metric** (``--monitor``, default ``val_acc``); every trial
  holds out ``--val-split`` (default 0.1). A test-split metric is refused: choosing settings on
  the test set makes its figure an optimistic estimate.
- **Exactly ``--trials`` trials**, across processes and machines: a worker claims a trial under a
  lock (a file lock beside SQLite or a journal file, PostgreSQL's advisory lock), counting the
  trials that finished, were pruned or failed of their own error, and those in progress.
- **A killed worker loses nothing.** Each trial sends heartbeats (RDB storages); a trial whose
  heartbeats stopped is marked failed ("its worker stopped") and its parameters are queued again
  (Optuna's retry callback), so the next worker (or a re-run of the command) tries them, up to
  twice: parameters that kill their worker each time do not hold the sweep up. Such a trial is
  not counted. The journal storage has no heartbeats: there a killed trial stays "running" (use
  an RDB URL).
- TPE samples; trials report each epoch, so the pruner (``median``, ``halving``, ``none``) stops
  poor ones early. A trial that reaches its last epoch is complete: its figure counts for the
  sampler and the parameter importances.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from typing_extensions import override

from trainlab.engine.callbacks import Callback
from trainlab.errors import TrainlabError
from trainlab.logs import quiet
from trainlab.tune.settings import Sweep, import_optuna, write_trial
from trainlab.tune.space import shown
from trainlab.tune.study import claim, heartbeat, make_storage, open_study, requeue_interrupted

_LOG = logging.getLogger(__name__)


class _Reporter(Callback):
    """Reports the monitored metric each epoch; stops the run when the pruner says so."""

    def __init__(self, trial, monitor: str, pruner: str):
        self.trial, self.monitor, self.pruner = trial, monitor, pruner
        self.pruned_at: int | None = None

    @override
    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        self.trial.report(row[self.monitor], step=row["epoch"] - 1)  # steps count from 0
        # After its last epoch a trial has cost all it will: it completes, and its figure goes
        # to the sampler and the importances (a pruned trial gives them nothing).
        last = row["epoch"] >= trainer.config.epochs  # a --budget may have revised it
        if not last and self.trial.should_prune():
            self.pruned_at = row["epoch"]
            trainer.request_stop(
                f"pruned by the sweep's {self.pruner} pruner at epoch {row['epoch']} "
                f"({self.monitor} {row[self.monitor]:.4f})"
            )


def trial_settings(sweep: Sweep, params: dict[str, Any], number: int) -> dict[str, Any]:
    settings = dict(sweep.base)
    for name, value in params.items():
        owner, dot, option = name.partition(".")
        if dot:  # model_options.width = ...: an option of any model or dataset
            settings[owner] = {**settings.get(owner, {}), option: value}
        else:
            settings[name] = value
    settings.update(
        runs_dir=str(sweep.directory / "trials"),
        run_name=f"trial-{number:04d}",
        monitor=sweep.monitor,
    )
    return settings


def run_trial(sweep: Sweep, study, trial) -> str:
    """Train one trial's run and tell the study how it ended; returns the state's name."""
    optuna = import_optuna()
    from trainlab.report.console import ConsoleLogger
    from trainlab.resolve import plan_run
    from trainlab.workflow import train

    values = {name: p.suggest(trial) for name, p in sweep.space.items()}
    run_dir = sweep.directory / "trials" / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    searched = shown({k: v for k, v in values.items() if sweep.space[k].kind != "fixed"})
    began = time.perf_counter()
    reporter = _Reporter(trial, sweep.monitor, sweep.pruner)
    try:
        plan = plan_run(
            trial_settings(sweep, values, trial.number),
            config_file=sweep.config_file,
            source=f"trial {trial.number}",
        )
        with quiet():  # a trial's lines would drown the sweep's own
            result = train(
                plan,
                callbacks=[ConsoleLogger(plan.config.log_every, quiet=True), reporter],
                trust_code=sweep.trust_code,
            )
        if result.status == "interrupted":  # Ctrl-C mid-epoch: the run stopped, unfinished
            raise KeyboardInterrupt
    except KeyboardInterrupt:  # not the trial's fault: failed, not counted, tried again
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        requeue_interrupted(study, trial.number)
        raise
    except Exception as e:  # noqa: BLE001 - a trial's failure is recorded; the sweep goes on
        message = f"{type(e).__name__}: {e}" if not isinstance(e, TrainlabError) else str(e)
        trial.set_user_attr("error", message[:2000])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        write_trial(run_dir, trial.number, "failed", trial.params, error=message)
        _LOG.info(f"trial {trial.number}: {searched} -> failed: {message.splitlines()[0][:200]}")
        return "FAIL"
    seconds = time.perf_counter() - began
    value = result.best.get("value")
    if reporter.pruned_at is not None:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        write_trial(run_dir, trial.number, "pruned", trial.params, epoch=reporter.pruned_at,
                    reason=result.stopped["reason"] if result.stopped else "pruned")  # fmt: skip
        _LOG.info(
            f"trial {trial.number}: {searched} -> pruned at epoch {reporter.pruned_at} "
            f"({seconds:.1f} s)"
        )
        return "PRUNED"
    study.tell(trial, value)
    write_trial(run_dir, trial.number, "complete", trial.params, value=value, monitor=sweep.monitor)
    _LOG.info(f"trial {trial.number}: {searched} -> {sweep.monitor} {value:.4f} ({seconds:.1f} s)")
    return "COMPLETE"


def work(sweep: Sweep, worker: int = 0, timeout: float | None = None) -> int:
    """Claim and run trials until the sweep has ``sweep.trials``; returns how many this ran."""
    storage = make_storage(sweep)
    study = open_study(sweep, worker, storage)
    began, ran, waited = time.monotonic(), 0, False
    while True:
        if timeout and time.monotonic() - began > timeout:
            _LOG.info(f"worker {worker}: --timeout {timeout:g} s reached; no new trials")
            break
        claimed = claim(sweep, study, storage)
        if claimed.finished:
            break
        if claimed.trial is None:  # the last trials run elsewhere: wait for them to end (or die)
            if not waited:
                _LOG.info(
                    f"worker {worker}: waiting for {claimed.running} trial(s) running elsewhere"
                )
                waited = True
            time.sleep(1.0)
            continue
        waited = False
        with heartbeat(storage, claimed.trial_id):
            run_trial(sweep, study, claimed.trial)
        ran += 1
    return ran
