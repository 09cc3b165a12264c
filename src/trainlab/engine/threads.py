"""How many CPU threads a run computes on, and how its idle threads wait.

PyTorch's CPU kernels and the fused stage kernel (models/stage.c) run on one team of OpenMP
threads, one per core by default. Beside a busy neighbour (another process computing on one of
the cores) a thread of the team is descheduled behind it and the others wait for it at every
barrier, spinning on cores they could have left to it: an epoch took ten times as long. So:

- a run computes on the cores the rest of the machine leaves free: the cores this process may
  use, less the CPU time other processes took (from ``/proc/stat``, our own time subtracted),
  rounded, at least 1; checked again after each epoch, and recorded (config.toml's
  ``[resolved]``, and ``threads_next`` in metrics.jsonl when it changes). Beside one busy
  process on 2 cores an epoch then takes 1.4-1.6x the idle one, not 4-11x;
- idle threads wait as libgomp does by default (a short spin, then sleep): making them sleep at
  once (``OMP_WAIT_POLICY=PASSIVE``) cost 60% on an idle machine, for a gain the thread count
  already gives;
- the thread count changes how float sums are split, so two runs of one seed are bit-identical
  at the same count: ``TRAINLAB_THREADS=cores`` computes on all the cores whatever else runs
  (repeatable on a busy machine), and ``OMP_NUM_THREADS``, or ``torch.set_num_threads`` called
  before the run, is the user's choice and is kept.

Example:
    >>> from trainlab.engine import threads
    >>> chooser = threads.ThreadChooser()
    >>> chooser.start()      # sets torch's threads; what it chose and why
    {'threads': 2, 'threads_chosen': 'free cores: 2 cores, 0.0 busy with other work', ...}
    >>> chooser.recheck()    # after an epoch: the new count, or None when unchanged
    >>> chooser.finish()     # torch's count as it was before the run
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def wait_policy() -> str:
    """How idle OpenMP threads wait in this process, for the run's record."""
    given = [f"{name}={os.environ[name]}" for name in _WAIT_VARIABLES if name in os.environ]
    if given:
        return f"{', '.join(given)} (set before the run)"
    return "libgomp's default (a short spin, then sleep)"


def environment_as_given() -> dict[str, str]:
    """This process's environment as the user gave it: for child processes that should run as
    the user would have run them (a benchmark's peers, a baseline)."""
    return dict(os.environ)


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _physical_cores(cores: list[int]) -> int:
    """Cores without their SMT siblings (PyTorch's default thread count), or all of them."""
    seen = set()
    for cpu in cores:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            seen.add(
                ((topology / "physical_package_id").read_text(), (topology / "core_id").read_text())
            )
        except OSError:
            return len(cores)
    return len(seen) or len(cores)


def _busy_ticks(cores: list[int]) -> int | None:
    """Ticks the given CPUs spent on anything but idling, since boot (Linux), or None."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted, busy = {f"cpu{c}" for c in cores}, 0
    for line in lines:
        name, *ticks = line.split()
        if name in wanted:
            values = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
            busy += sum(values) - values[3] - values[4]
    return busy


class _Sample:
    """A point to measure from: the machine's busy ticks, our own CPU time, the clock."""

    def __init__(self, cores: list[int]):
        self.busy = _busy_ticks(cores)
        own = os.times()
        self.own, self.wall = own.user + own.system, time.monotonic()

    def others_since(self, then: _Sample) -> float | None:
        """Cores other processes kept busy on average between ``then`` and now."""
        if self.busy is None or then.busy is None or self.wall - then.wall < 0.05:
            return None
        busy = (self.busy - then.busy) / os.sysconf("SC_CLK_TCK")
        return max(0.0, (busy - (self.own - then.own)) / (self.wall - then.wall))


_imported = _Sample(_cores())  # the first window runs from here (torch's import) to the run


class ThreadChooser:
    """One run's thread count: chosen at its start, checked again between epochs."""

    def __init__(self, processes_here: int = 1):
        self.cores = _cores()
        self.processes_here = max(1, processes_here)  # torchrun's processes on this machine
        self.explicit = self._explicit()
        mode = os.environ.get("TRAINLAB_THREADS", "").strip() or "free"
        if mode not in ("free", "cores"):
            from trainlab.errors import ConfigError

            raise ConfigError(
                f"TRAINLAB_THREADS={mode}: expected free (the cores other processes leave free, "
                "the default) or cores (all of them, whatever else runs); for a count, set "
                "OMP_NUM_THREADS."
            )
        self.follows_load = mode == "free"
        self.last = _imported
        self.others = 0.0
        self.before = 0

    def _explicit(self) -> str | None:
        import torch

        if "OMP_NUM_THREADS" in os.environ:
            return f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} (set before the run)"
        n = torch.get_num_threads()
        defaults = {len(self.cores), _physical_cores(self.cores)}  # torch's, on any machine
        if n not in defaults:
            return f"torch.set_num_threads({n}) (called before the run)"
        return None

    def _most(self) -> int:
        return max(1, _physical_cores(self.cores) // self.processes_here)

    def _count(self) -> int:
        now = _Sample(self.cores)
        others = now.others_since(self.last)
        if others is None or now.wall - self.last.wall > 60:  # no window, or a stale one
            time.sleep(0.2)
            later = _Sample(self.cores)
            others, now = later.others_since(now), later
        if others is None and hasattr(os, "getloadavg"):  # no /proc/stat: the load, ours too
            others = max(0.0, os.getloadavg()[0] - 1)
        self.last, self.others = now, others or 0.0
        free = len(self.cores) - round(self.others)
        return max(1, min(self._most(), free // self.processes_here))

    def start(self) -> dict[str, Any]:
        """Choose and set the run's thread count; the record of what was chosen and why."""
        import torch

        self.before = torch.get_num_threads()
        if self.explicit is not None:
            how = self.explicit
        elif self.follows_load:
            torch.set_num_threads(self._count())
            how = (
                f"free cores: {len(self.cores)} cores, {self.others:.1f} busy with other work "
                "(TRAINLAB_THREADS=cores: all of them, repeatable whatever else runs)"
            )
        else:
            torch.set_num_threads(self._most())
            how = (
                f"cores (TRAINLAB_THREADS=cores): the {self._most()} this process may use, "
                "whatever else runs"
            )
        return {
            "threads": torch.get_num_threads(),
            "threads_chosen": how,
            "omp_wait_policy": wait_policy(),
        }

    def recheck(self) -> int | None:
        """Between epochs: the new thread count if the free cores changed (and it is ours to
        choose), else None. ``torch.set_num_threads`` is cheap."""
        import torch

        if self.explicit is not None or not self.follows_load:
            return None
        count = self._count()
        if count == torch.get_num_threads():
            return None
        torch.set_num_threads(count)
        return count

    def finish(self) -> None:
        """After the run: torch's count as it was, so the next run in this process chooses
        afresh (and a count it finds set is the user's)."""
        import torch

        if self.explicit is None and self.before:
            torch.set_num_threads(self.before)
