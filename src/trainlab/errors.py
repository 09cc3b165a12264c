"""Errors meant for people: each says what was wrong, what was expected, and what to do.

The CLI prints them without a traceback (``--debug`` shows it) and exits non-zero.
"""


class TrainlabError(Exception):
    """Base class of every error trainlab raises on purpose."""

    exit_code = 2


class ConfigError(TrainlabError):
    """A setting has a value that cannot work (unknown name, out of range, wrong type)."""


class DataError(TrainlabError):
    """A data file or data root is missing, corrupt or does not match its checksum."""


class CheckpointError(TrainlabError):
    """A checkpoint cannot be read, is unsafe, or does not fit the model."""


class TrainingDiverged(TrainlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


class DistributedError(TrainlabError):
    """Another process of a torchrun job failed, vanished, or the launcher stopped this one."""

    exit_code = 1


def unknown_name(kind: str, name: str, known: list[str]) -> ConfigError:
    """Error for a name that is not in a registry, listing the names that are."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown {kind} '{name}'. Known: {', '.join(sorted(known))}.{hint}")
