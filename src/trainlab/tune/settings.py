"""What a sweep is: its settings checked (``prepare``), its folder and ``sweep.json``, and each
trial's ``trial.json``. How a sweep runs is in ``trainlab.tune.sweep``."""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.data.kinds.tasks import BALANCED, CLASSIFICATION
from trainlab.errors import ConfigError
from trainlab.fsutil import atomic_write_text
from trainlab.tune.space import Param, decode, read_space

PRUNERS = ("median", "halving", "none")


@functools.cache
def import_optuna():
    """Optuna, or a ConfigError saying how to install it; its notices hushed, once."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "trainlab sweep needs Optuna, an optional extra: pip install 'trainlab[sweep]' "
            "(or pip install optuna)."
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna calls what a sweep uses experimental (heartbeats, their retry, fail_stale_trials),
    # and says heartbeats are meant for its own loop (a sweep claims trials itself, so that the
    # count is exact): nothing a user can act on. The filters are set once: each change to
    # them makes Python forget which warnings it has shown, and show them all again.
    warnings.filterwarnings(
        "ignore",
        category=optuna.exceptions.ExperimentalWarning,
        module=r"(optuna|trainlab\.tune)(\.|$)",
    )
    warnings.filterwarnings(
        "ignore", "Heartbeat of storage is supposed to be used with Study.optimize", UserWarning
    )
    return optuna


MULTILABEL_MONITORS = ("micro_f1", "macro_f1", "map")


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
    known = ("acc", "loss", *BALANCED, *MULTILABEL_MONITORS)
    if split != "val" or metric not in known:
        raise ConfigError(
            f"--monitor {monitor}: a sweep optimises a validation metric, one of "
            + ", ".join(f"val_{m}" for m in known[:-3])
            + " (multi-label: val_micro_f1, val_macro_f1, val_map)."
        )
    return monitor, "maximize" if CLASSIFICATION.higher_is_better_for(metric) else "minimize"


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
