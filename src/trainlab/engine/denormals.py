"""Subnormal floats flushed to zero while a run trains on the CPU.

Adam's second moment (``exp_avg_sq``) averages squared gradients; squares of tiny gradients fall
below float32's smallest normal number (1.2e-38), and after one epoch of the seed-mlp recipe
about 46% of Adam's state is subnormal. Many CPUs compute on subnormal operands through a slow
microcode path (on the 2-core AMD EPYC the cost measured within noise: an Adam step over
subnormal state 0.80 ms against 0.69-0.77 ms); flushing them to zero (x86's FTZ and DAZ)
changes no result that matters (the seed-mlp run's accuracy is the same to the digit) and
removes that path where it is slow. The mode is set for
the training loop and put back as it was after it; each run records it (config.toml,
``[resolved] flush_denormal``).

Example:
    >>> from trainlab.engine import denormals
    >>> with denormals.flushed(torch.device("cpu")):
    ...     ...   # the epochs
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path

import torch


def flushing() -> bool:
    """Whether this thread treats subnormal floats as zero (a subnormal times one reads 0)."""
    return torch.tensor([1e-40]).mul(1.0).item() == 0.0


def record(device: torch.device) -> str:
    """For the run's record: whether its training flushes subnormal floats to zero, and on
    which threads."""
    if device.type != "cpu":
        return "off (not on the CPU)"
    before = flushing()
    supported = torch.set_flush_denormal(True)
    torch.set_flush_denormal(before)
    if not supported:
        return "off (this CPU cannot)"
    if _openmp() is None and torch.get_num_threads() > 1:
        return "on (while training; the main thread only: no libgomp found)"
    return "on (while training)"


def _openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch computes on (libgomp, as loaded by torch), or None."""
    global _gomp
    if _gomp is None:
        try:
            maps = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            maps = []
        paths = sorted({line.split()[-1] for line in maps if "libgomp" in line.split()[-1]})
        try:
            _gomp = ctypes.CDLL(paths[0]) if paths else False
        except OSError:
            _gomp = False
    return _gomp or None


_gomp: ctypes.CDLL | bool | None = None
_TEAM_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def set_flush(on: bool) -> bool:
    """Set the mode on every thread torch computes on; whether that reached them all.

    ``torch.set_flush_denormal`` sets the calling thread's mode only, and PyTorch's OpenMP
    threads keep their own: with 2 threads, half of Adam's state stayed subnormal. So the call
    runs once on each thread of an OpenMP team of torch's size (libgomp reuses its threads).
    """
    torch.set_flush_denormal(on)
    gomp, threads = _openmp(), torch.get_num_threads()
    if threads == 1:
        return True
    if gomp is None or not hasattr(gomp, "GOMP_parallel"):
        return False
    task = _TEAM_TASK(lambda _data: torch.set_flush_denormal(on))
    gomp.GOMP_parallel.argtypes = [_TEAM_TASK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    gomp.GOMP_parallel(task, None, threads, 0)
    return True


@contextlib.contextmanager
def flushed(device: torch.device) -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU inside the block, on every thread torch
    computes on; the mode as it was after. After ``torch.set_num_threads`` inside the block,
    call ``set_flush(True)`` again."""
    if device.type != "cpu":
        yield
        return
    before = flushing()
    set_flush(True)
    try:
        yield
    finally:
        set_flush(before)
