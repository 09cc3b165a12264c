"""Ctrl-C as a request, not an exception: the loop finishes its batch and saves a checkpoint.

Example:
    >>> with StopFlag() as stop:
    ...     for batch in batches:
    ...         step(batch)
    ...         if stop.requested:
    ...             break
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from trainlab.errors import DistributedError


class StopFlag:
    """Set by the first Ctrl-C; a second one interrupts at once.

    Under torchrun a Ctrl-C reaches each process twice (from the terminal, then relayed by
    torchrun, which kills whatever is left after its shutdown timeout), so there the second one
    does not abort: every rank finishes the batch and the job saves one consistent last.pt.
    """

    def __init__(self, launched: bool = False) -> None:
        self.requested = False
        self.launched = launched
        self._previous: Any = None

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            if self.launched:  # torchrun stops the others this way when one process fails
                self._previous_term = signal.signal(signal.SIGTERM, self._terminated)
        return self

    @staticmethod
    def _terminated(signum, frame) -> None:  # noqa: ANN001, ARG004 - signal handler signature
        raise DistributedError(
            "the launcher stopped this process (SIGTERM): another process of the job failed, "
            "or the job was cancelled."
        )

    def _handle(self, signum, frame) -> None:  # noqa: ANN001, ARG002 - signal handler signature
        if self.requested:
            if self.launched:
                return
            raise KeyboardInterrupt
        self.requested = True
        if self.launched and os.environ.get("RANK", "0") != "0":
            return  # rank 0 speaks for the job
        print(
            "\ninterrupt: finishing this batch and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if getattr(self, "_previous_term", None) is not None:
            signal.signal(signal.SIGTERM, self._previous_term)
