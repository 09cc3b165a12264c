"""A sweep's Optuna study: its storage (heartbeats on RDB storages), the re-queue of a trial
whose worker died, and the lock under which a worker claims a trial.

Only Optuna's public API is used: ``RDBStorage(heartbeat_interval=..., grace_period=...,
heartbeat_stale_trial_callback=...)``, ``fail_stale_trials``, ``RetryHeartbeatStaleTrialCallback``
and the storage's public methods (``record_heartbeat``, ``get_study_id_from_name``,
``get_trial_id_from_study_id_trial_number``). Optuna's own loop (``study.optimize``) is not used:
a worker claims a trial under a lock, so that a sweep runs exactly ``--trials`` trials.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from filelock import FileLock
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from trainlab.errors import ConfigError
from trainlab.tune.settings import Sweep, import_optuna, write_trial

HEARTBEAT_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_HEARTBEAT", "10"))
# A trial whose last heartbeat is older than this is taken for dead (its worker was killed).
GRACE_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_GRACE", "60"))
# A dead worker's parameters are tried again at most this many times: parameters that kill
# their worker each time (out of memory, say) must not keep a sweep from finishing.
MAX_RETRIES = 2


def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith((".log", ".journal"))


def make_storage(sweep: Sweep):
    """The study's storage: an RDB storage with heartbeats, or a journal file (no heartbeats)."""
    import_optuna()
    url = sweep.storage
    if _is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        with claim_lock(sweep):  # two machines starting at once must not both create the tables
            return RDBStorage(
                url,
                heartbeat_interval=max(1, round(HEARTBEAT_SECONDS)),
                grace_period=max(2, round(GRACE_SECONDS)),
                heartbeat_stale_trial_callback=Requeue(MAX_RETRIES),
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


class Requeue(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial that did not end (a new trial in the queue, with the same
    parameters), and the failed trial's ``trial.json`` saying why and what became of it."""

    def __init__(self, max_retry: int | None, why: str = "its worker stopped sending heartbeats"):
        super().__init__(max_retry=max_retry)
        self.max_retry, self.why = max_retry, why

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        tries = len(self.retry_history(trial)) + 1  # this trial and those it retried
        super().__call__(study, trial)
        run_dir = trial.user_attrs.get("run_dir")
        if not (run_dir and Path(run_dir).is_dir()):
            return  # it had not started its run
        if self.max_retry is None or tries <= self.max_retry:
            fate = "its parameters were queued again and another trial tries them"
        else:
            fate = f"its parameters were tried {tries} times and are not queued again"
        reason = f"{self.why}; {fate}"
        write_trial(Path(run_dir), trial.number, "failed", trial.params, reason=reason)


def open_study(sweep: Sweep, worker: int = 0, storage=None) -> optuna.Study:
    """The sweep's study, created by the first worker to come (``storage``: one of
    ``make_storage``'s, else a new one)."""
    import_optuna()
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[sweep.pruner]()
    sampler = optuna.samplers.TPESampler(seed=sweep.seed * 1000 + worker + os.getpid())
    storage = make_storage(sweep) if storage is None else storage
    with claim_lock(sweep):  # nor both create the study
        return optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            study_name=sweep.study_name,
            direction=sweep.direction,
            load_if_exists=True,
        )


@contextlib.contextmanager
def claim_lock(sweep: Sweep):
    """One claim at a time: PostgreSQL's advisory lock across machines, else a file lock (one
    machine, which is where SQLite and journal files live). Let go however the block ends."""
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
    with FileLock(sweep.directory / "claims.lock"):
        yield


@dataclass
class Claim:
    """What a worker got when it asked for a trial."""

    trial: optuna.trial.Trial | None  # the trial to run, or None
    trial_id: int | None  # the storage's id for its heartbeats
    running: int  # trials in progress elsewhere
    finished: bool  # the sweep has all its trials


def claim(sweep: Sweep, study: optuna.Study, storage) -> Claim:
    """Under the claim lock: fail the trials whose workers died (``Requeue`` queues them again),
    count the trials that count and those in progress, and take a new trial if the count
    leaves room for one. ``storage`` is the study's (``make_storage``)."""
    beats = isinstance(storage, RDBStorage)
    with claim_lock(sweep):
        if beats:
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(sweep.counted(t) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= sweep.trials or done + running >= sweep.trials:
            return Claim(None, None, running, finished=done >= sweep.trials)
        trial = study.ask()
        trial_id = None
        if beats:  # its first heartbeat before the lock is let go, so no one takes it for dead
            study_id = storage.get_study_id_from_name(study.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.record_heartbeat(trial_id)
        return Claim(trial, trial_id, running, finished=False)


@contextlib.contextmanager
def heartbeat(storage, trial_id: int | None):
    """Heartbeats for a trial while it runs (RDB storages), so a killed worker is noticed."""
    if trial_id is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat: the next one makes up
                storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, daemon=True, name="trainlab-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def requeue_interrupted(study: optuna.Study, number: int) -> None:
    """A trial stopped by Ctrl-C: failed (it is not the trial's fault, so it does not count)
    and its parameters queued again, however often."""
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    Requeue(None, why="interrupted")(study, trial)
