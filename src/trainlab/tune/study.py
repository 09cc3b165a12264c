"""A sweep's Optuna study: its storage (heartbeats on RDB storages), the re-queue of a trial
whose worker died, and the lock under which a worker claims a trial."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.tune.settings import Sweep, import_optuna, write_trial

HEARTBEAT_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_HEARTBEAT", "10"))
# A trial whose last heartbeat is older than this is taken for dead (its worker was killed).
GRACE_SECONDS = float(os.environ.get("TRAINLAB_SWEEP_GRACE", "60"))


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
