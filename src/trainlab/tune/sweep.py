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
  heartbeats stopped is marked failed ("its worker stopped") and its parameters are queued again,
  so the next worker (or a re-run of the command) tries them. Such a trial is not counted. The
  journal storage has no heartbeats: there a killed trial stays "running" (use an RDB URL).
- TPE samples; trials report each epoch, so the pruner (``median``, ``halving``, ``none``) stops
  poor ones early.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.engine.callbacks import Callback
from trainlab.errors import ConfigError, TrainlabError
from trainlab.fsutil import atomic_write_text
from trainlab.tune.space import Param, decode, read_space

HEARTBEAT_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_HEARTBEAT", "10"))
# A trial whose last heartbeat is older than this is taken for dead (its worker was killed).
GRACE_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_GRACE", "60"))
PRUNERS = ("median", "halving", "none")


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "trainlab sweep needs Optuna, an optional extra: pip install 'trainlab[sweep]' "
            "(or pip install optuna)."
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats with ask/tell (Optuna's own loop is not used: a claim must be exact) and its
    # experimental flags warn on every call; what they say is in this module's docstring
    for category in (UserWarning, FutureWarning, optuna.exceptions.ExperimentalWarning):
        warnings.filterwarnings("ignore", category=category, module="optuna")
    return optuna


def check_monitor(monitor: str) -> tuple[str, str]:
    """The metric a sweep optimises, and its direction; a test or training metric is refused."""
    split, _, metric = monitor.partition("_")
    if split == "test":
        raise ConfigError(
            f"--monitor {monitor}: a sweep chooses settings, and choosing them on the test split "
            "makes the test figure an optimistic estimate of new data (the test set has then "
            "taken part in training). Optimise a validation metric, val_acc or val_loss: every "
            "trial holds out --val-split of the training set (default 0.1)."
        )
    if split != "val" or metric not in ("acc", "loss"):
        raise ConfigError(
            f"--monitor {monitor}: a sweep optimises a validation metric, val_acc or val_loss."
        )
    return monitor, "maximize" if metric == "acc" else "minimize"


@dataclass
class Sweep:
    """A sweep's settings, as ``sweep.json`` records them."""

    directory: Path
    space: dict[str, Param]
    base: dict[str, Any]  # the train settings given (flags), the same for every trial
    config_file: str | None
    monitor: str
    direction: str
    trials: int
    storage: str
    pruner: str = "median"
    trust_code: bool = False
    seed: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def study_name(self) -> str:
        return self.directory.name

    def counted(self, trial) -> bool:
        """Does this trial count toward ``--trials``? Finished, pruned, or failed of its own
        error; a trial whose worker died is re-queued, not counted."""
        state = trial.state.name
        return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and "error" in trial.user_attrs)


def prepare(
    space_path: str | Path,
    given: dict[str, Any],
    *,
    config_file: str | None = None,
    trials: int = 20,
    sweeps_dir: str | Path = "sweeps",
    sweep_name: str | None = None,
    storage: str | None = None,
    pruner: str = "median",
    trust_code: bool = False,
) -> Sweep:
    """Check the space and settings, and open (or continue) the sweep's directory."""
    import_optuna()
    space = read_space(space_path)
    given = dict(given)
    monitor, direction = check_monitor(given.pop("monitor", None) or "val_acc")
    if (
        given.get("val_split", 0.1) <= 0
        or "val_split" in space
        and space["val_split"].kind != "fixed"
    ):
        raise ConfigError(
            "--val-split: a sweep needs a validation split to choose on (default 0.1), the same "
            "for every trial; give a fraction in (0, 1)."
        )
    given.setdefault("val_split", 0.1)
    if trials < 1:
        raise ConfigError(f"--trials {trials}: give at least 1.")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner {pruner}: one of {', '.join(PRUNERS)}.")
    for key in given:
        if key in space:
            raise ConfigError(
                f"{key} is both searched ({space_path}) and given as a flag; drop one of them."
            )
    name = sweep_name or Path(space_path).stem
    directory = Path(sweeps_dir) / name
    record = {
        "space": {k: p.describe() for k, p in space.items()},
        "base": given,
        "config_file": config_file,
        "monitor": monitor,
    }
    saved_path = directory / "sweep.json"
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        differ = [k for k in record if json.dumps(saved.get(k), sort_keys=True, default=str)
                  != json.dumps(record[k], sort_keys=True, default=str)]  # fmt: skip
        if differ:
            raise ConfigError(
                f"{directory} holds a sweep of other settings ({', '.join(differ)} differ); "
                "re-run it with its own settings to continue it, or give --sweep-name NEW."
            )
        storage = storage or saved.get("storage")
    directory.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(directory / 'study.db').resolve()}"
    atomic_write_text(
        saved_path, json.dumps({**record, "storage": url, "trials": trials}, indent=2, default=str)
    )
    return Sweep(
        directory,
        space,
        given,
        config_file,
        monitor,
        direction,
        trials,
        url,
        pruner,
        trust_code,
        int(given.get("seed", 0)),
        record,
    )


# --- storage, study, and the claim lock ----------------------------------------------------


def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith((".log", ".journal"))


def make_storage(sweep: Sweep):
    optuna = import_optuna()
    url = sweep.storage
    if _is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=max(1, round(HEARTBEAT_SECONDS)),
            grace_period=max(2, round(GRACE_SECONDS)),
            heartbeat_stale_trial_callback=_requeue(),
            **kwargs,
        )
    except ImportError as e:
        raise ConfigError(
            f"--storage {url}: its database driver is not installed ({e.__cause__ or e}); for "
            "PostgreSQL, pip install 'psycopg[binary]' (or name another driver: "
            "postgresql+psycopg2://...)."
        ) from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors name the database's problem
        raise ConfigError(f"--storage {url}: cannot open the study's storage ({e}).") from None


def _requeue():
    """What happens to a trial whose worker stopped sending heartbeats."""

    def requeue(study, trial) -> None:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        run_dir = trial.user_attrs.get("run_dir")
        if run_dir and Path(run_dir).is_dir():
            write_trial(
                Path(run_dir),
                trial.number,
                "failed",
                trial.params,
                reason="its worker stopped sending heartbeats (killed?); its parameters were "
                "queued again and another trial tries them",
            )

    return requeue


def open_study(sweep: Sweep, worker: int = 0):
    optuna = import_optuna()
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[sweep.pruner]()
    sampler = optuna.samplers.TPESampler(seed=sweep.seed * 1000 + worker + os.getpid())
    with claim_lock(sweep):  # two machines starting at once must not both create the tables
        return optuna.create_study(
            storage=make_storage(sweep),
            sampler=sampler,
            pruner=pruner,
            study_name=sweep.study_name,
            direction=sweep.direction,
            load_if_exists=True,
        )


@contextlib.contextmanager
def claim_lock(sweep: Sweep):
    """One claim at a time: PostgreSQL's advisory lock across machines, else a file lock (one
    machine, which is where SQLite and journal files live)."""
    if sweep.storage.startswith("postgresql"):
        import sqlalchemy

        key = int(hashlib.sha256(sweep.study_name.encode()).hexdigest()[:15], 16)
        engine = sqlalchemy.create_engine(sweep.storage, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
        return
    with open(sweep.directory / "claims.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- one worker ----------------------------------------------------------------------------


def write_trial(run_dir: Path, number: int, state: str, params: dict, **more: Any) -> None:
    """``trial.json`` in the trial's run directory: which trial it is and how it ended."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        run_dir / "trial.json",
        json.dumps(
            {"trial": number, "state": state, "params": decode(params), **more},
            indent=2,
            default=str,
        ),
    )


class _Reporter(Callback):
    """Reports the monitored metric each epoch; stops the run when the pruner says so."""

    def __init__(self, trial, monitor: str, pruner: str):
        self.trial, self.monitor, self.pruner = trial, monitor, pruner
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        self.trial.report(row[self.monitor], step=row["epoch"] - 1)  # steps count from 0
        if self.trial.should_prune():
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


def run_trial(sweep: Sweep, study, trial, log) -> str:
    """Train one trial's run and tell the study how it ended; returns the state's name."""
    optuna = import_optuna()
    from trainlab.report.console import ConsoleLogger
    from trainlab.resolve import plan_run
    from trainlab.workflow import train

    values = {name: p.suggest(trial) for name, p in sweep.space.items()}
    run_dir = sweep.directory / "trials" / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    shown = " ".join(f"{k}={v}" for k, v in values.items() if sweep.space[k].kind != "fixed")
    began = time.perf_counter()
    reporter = _Reporter(trial, sweep.monitor, sweep.pruner)
    try:
        plan = plan_run(
            trial_settings(sweep, values, trial.number),
            config_file=sweep.config_file,
            source=f"trial {trial.number}",
        )
        result = train(
            plan,
            callbacks=[ConsoleLogger(plan.config.log_every, quiet=True), reporter],
            log=lambda _line: None,
            trust_code=sweep.trust_code,
        )
    except KeyboardInterrupt:  # not the trial's fault: failed, not counted, tried again
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        write_trial(
            run_dir, trial.number, "failed", trial.params, reason="interrupted; queued again"
        )
        raise
    except Exception as e:  # noqa: BLE001 - a trial's failure is recorded; the sweep goes on
        message = f"{type(e).__name__}: {e}" if not isinstance(e, TrainlabError) else str(e)
        trial.set_user_attr("error", message[:2000])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        write_trial(run_dir, trial.number, "failed", trial.params, error=message)
        log(f"trial {trial.number}: {shown} -> failed: {message.splitlines()[0][:200]}")
        return "FAIL"
    seconds = time.perf_counter() - began
    value = result.best.get("value")
    if reporter.pruned_at is not None:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        write_trial(run_dir, trial.number, "pruned", trial.params, epoch=reporter.pruned_at,
                    reason=result.stopped["reason"] if result.stopped else "pruned")  # fmt: skip
        log(
            f"trial {trial.number}: {shown} -> pruned at epoch {reporter.pruned_at} "
            f"({seconds:.1f} s)"
        )
        return "PRUNED"
    study.tell(trial, value)
    write_trial(run_dir, trial.number, "complete", trial.params, value=value, monitor=sweep.monitor)
    log(f"trial {trial.number}: {shown} -> {sweep.monitor} {value:.4f} ({seconds:.1f} s)")
    return "COMPLETE"


def beats(storage) -> bool:
    """Does this storage keep heartbeats (an RDB storage, as the study wraps it)?"""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


@contextlib.contextmanager
def heartbeat(storage, trial):
    """Heartbeats for the trial while it runs (RDB storages), so a killed worker is noticed."""
    if not beats(storage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat: the next one makes up
                storage.record_heartbeat(trial._trial_id)

    thread = threading.Thread(target=beat, daemon=True, name="trainlab-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def work(sweep: Sweep, worker: int = 0, timeout: float | None = None, log=None) -> int:
    """Claim and run trials until the sweep has ``sweep.trials``; returns how many this ran."""
    optuna = import_optuna()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    study = open_study(sweep, worker)
    storage = study._storage
    began, ran, waited = time.monotonic(), 0, False
    while True:
        if timeout and time.monotonic() - began > timeout:
            log(f"worker {worker}: --timeout {timeout:g} s reached; no new trials")
            break
        trial = None
        with claim_lock(sweep):
            if beats(storage):
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            done = sum(sweep.counted(t) for t in trials)
            running = sum(t.state.name == "RUNNING" for t in trials)
            if done >= sweep.trials:
                break
            if done + running < sweep.trials:
                trial = study.ask()
                if beats(storage):
                    storage.record_heartbeat(trial._trial_id)
        if trial is None:  # the last trials run elsewhere: wait for them to end (or die)
            if not waited:
                log(f"worker {worker}: waiting for {running} trial(s) running elsewhere")
                waited = True
            time.sleep(1.0)
            continue
        waited = False
        with heartbeat(storage, trial):
            run_trial(sweep, study, trial, log)
        ran += 1
    return ran


# --- results -------------------------------------------------------------------------------


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

    figures = []
    for title, plot in (
        ("Optimisation history", vis.plot_optimization_history),
        ("Parameter importances", vis.plot_param_importances),
        ("Parallel coordinates", vis.plot_parallel_coordinate),
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
                f'<h2>{title}</h2><img alt="{title}" src="data:image/png;base64,{encoded}">'
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
