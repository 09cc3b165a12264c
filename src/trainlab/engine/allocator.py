"""Keep freed memory for reuse: glibc's malloc would otherwise page-fault every step's activations.

glibc serves each block over 128 KiB with a fresh ``mmap`` and unmaps it when it is freed, and it
raises that threshold only up to 32 MiB and only after such a block comes back. A CPU training step
frees and reallocates its activations (a few MiB each) every batch, so every step faults its pages
in again and the kernel zeroes them: 1.2 million page faults in four epochs of the default CNN on
10,000 32×32 colour images, and about 30% of each epoch on a 2-core machine. Serving blocks up to
64 MiB from the heap and keeping up to 1 GiB of freed heap (at most a sixteenth of the machine's
memory) before returning it cuts the faults eightfold (what Intel's PyTorch CPU guide gets by
preloading jemalloc or tcmalloc).

The setting is process-wide and made once. It is left alone where the environment already chose
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES`` with a malloc
tunable, a preloaded jemalloc, tcmalloc or mimalloc) or where ``TRAINLAB_MALLOC=system``, and off
glibc (macOS, Windows, musl) there is nothing to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

MMAP_THRESHOLD = 64 << 20  # blocks above this are still mapped (and returned) one by one
TRIM_THRESHOLD = 1 << 30  # freed memory at the heap's top kept for reuse, at most this much...
TRIM_SHARE = 16  # ...and at most 1/16 of the machine's memory (256 MiB on a 4 GiB machine)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers

_state: str | None = None


def _environment_choice() -> str | None:
    if os.environ.get("TRAINLAB_MALLOC", "").lower() == "system":
        return "system (TRAINLAB_MALLOC=system)"
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            return f"{name} (LD_PRELOAD)"
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return "glibc, as the environment set it (MALLOC_*_THRESHOLD_)"
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "glibc, as the environment set it (GLIBC_TUNABLES)"
    return None


def keep_freed_memory() -> str:
    """Tune glibc's malloc for training (once per process); returns what the process uses.

    The answer is recorded in each run's config.toml ([environment] allocator).
    """
    global _state
    if _state is not None:
        return _state
    chosen = _environment_choice()
    if chosen is not None:
        _state = chosen
        return _state
    if not sys.platform.startswith("linux"):
        _state = "system"
        return _state
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        version = libc.gnu_get_libc_version().decode()
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no gnu_get_libc_version)
        _state = "system"
        return _state
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim = TRIM_THRESHOLD
    with contextlib.suppress(ValueError, OSError):
        trim = min(trim, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // TRIM_SHARE)
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, trim):
        _state = f"glibc {version}, mmap threshold 64 MiB, trim threshold {trim >> 20} MiB"
    else:
        _state = f"glibc {version} (mallopt refused the thresholds)"
    return _state


def allocator() -> str:
    """What ``keep_freed_memory`` chose, or "system" if it has not run in this process."""
    return _state or "system"
