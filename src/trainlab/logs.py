"""Where trainlab tells a person what it does: the ``trainlab`` logger, stdlib ``logging``.

Every module logs to ``logging.getLogger(__name__)`` (all under ``trainlab``); nothing prints
progress itself. Who shows it decides: the CLI installs a stderr handler for the command
(``--quiet``: warnings only, ``-v``: debug too), and ``Trainer.fit`` does the same unless
``quiet``. A program that configures logging itself sees trainlab's lines in its own handlers.

Example:
    >>> import logging
    >>> logging.getLogger("trainlab").setLevel(logging.WARNING)  # a program's own choice
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

LOGGER = logging.getLogger("trainlab")


def say(line: str) -> None:
    """A line of progress (stderr when shown; stdout is for results)."""
    LOGGER.info(line)


def warn(line: str) -> None:
    """A line a person should see even with ``--quiet``."""
    LOGGER.warning(line)


class _Stderr(logging.StreamHandler):
    """trainlab's own handler: the message as it is, to the stderr of the moment."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR and _other_rank():
            return  # under torchrun, rank 0 speaks for the job
        self.setStream(sys.stderr)  # follow a redirected stderr (pytest's capture, a notebook)
        super().emit(record)


def _other_rank() -> bool:
    return "WORLD_SIZE" in os.environ and os.environ.get("RANK", "0") != "0"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Warnings only, for the duration (a sweep's trials, a quiet fit)."""
    before = LOGGER.level
    LOGGER.setLevel(max(logging.WARNING, before))
    try:
        yield
    finally:
        LOGGER.setLevel(before)


@contextlib.contextmanager
def to_stderr(*, quiet: bool = False, verbose: bool = False) -> Iterator[None]:
    """Show trainlab's lines on stderr for the duration: info and up, warnings only when
    ``quiet``, debug too when ``verbose``. Nested uses keep the outer one's handler."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    if any(isinstance(h, _Stderr) for h in LOGGER.handlers):
        before = LOGGER.level
        LOGGER.setLevel(max(level, before) if quiet else before)
        try:
            yield
        finally:
            LOGGER.setLevel(before)
        return
    handler, before = _Stderr(), LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(before)
