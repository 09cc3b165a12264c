"""The allocator setting's effect, counted in page faults (not time): a training process reuses its
freed activations instead of faulting them in again each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trainlab.engine import allocator

LOOP = """
import json, resource, torch
import torch.nn.functional as F
from trainlab import build_model
from trainlab.engine.allocator import keep_freed_memory
torch.manual_seed(0)
model = build_model("cnn", input_shape=(3, 32, 32), outputs=10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))
def step():
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
def faults():  # of 30 training steps of the default CNN, batch 64 of colour 32x32 images
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
for _ in range(5):
    step()
plain = faults()
state = keep_freed_memory()
step()  # the first step after it may still map what glibc had trimmed
print(json.dumps({"state": state, "plain": plain, "after": faults()}))
"""


def _faults(**env: str) -> dict:
    """Page faults of 30 steps as glibc comes, then of 30 more after ``keep_freed_memory``."""
    keep = ("MALLOC_", "TRAINLAB_MALLOC", "LD_PRELOAD", "GLIBC_TUNABLES")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
    proc = subprocess.run(
        [sys.executable, "-c", LOOP],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**environ, "OMP_NUM_THREADS": "1", **env},
    )
    return json.loads(proc.stdout)


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


glibc = pytest.mark.skipif(not _is_glibc(), reason="the setting is glibc's")


@glibc
def test_freed_activations_are_reused_instead_of_faulted_in_again():
    measured = _faults()
    assert measured["state"].startswith("glibc ") and "64 MiB" in measured["state"]
    # glibc as it comes maps a step's larger blocks afresh: tens of thousands of faults per 30
    # steps (about 2,000 a step); reused, next to none
    assert measured["plain"] > 10_000
    assert measured["after"] * 10 < measured["plain"]


@glibc
def test_trainlab_malloc_system_leaves_glibc_as_it_is():
    measured = _faults(TRAINLAB_MALLOC="system")
    assert measured["state"] == "system (TRAINLAB_MALLOC=system)"
    assert measured["after"] * 3 > measured["plain"] > 10_000  # nothing was changed


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "jemalloc (LD_PRELOAD)"),
        ("LD_PRELOAD", "libtcmalloc_minimal.so.4", "tcmalloc (LD_PRELOAD)"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536", "GLIBC_TUNABLES"),
        ("MALLOC_TRIM_THRESHOLD_", "0", "MALLOC_*_THRESHOLD_"),
        ("MALLOC_MMAP_THRESHOLD_", "1048576", "MALLOC_*_THRESHOLD_"),
        ("TRAINLAB_MALLOC", "system", "TRAINLAB_MALLOC=system"),
    ],
)
def test_a_preloaded_allocator_or_glibc_tunables_are_named_not_overridden(
    monkeypatch, name, value, said
):
    for other in ("LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "TRAINLAB_MALLOC"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv(name, value)
    assert said in allocator._environment_choice()
