"""engine/denormals.py: while a CPU run trains, every thread torch computes on flushes
subnormal floats to zero; afterwards the mode is as it was; the run records it."""

from __future__ import annotations

import os

import pytest
import torch

from trainlab.engine import denormals

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def _subnormals(t: torch.Tensor) -> int:
    """Subnormal float32 values, from their bits (a flushing thread would read them as 0)."""
    bits = t.contiguous().view(torch.int32)
    return int(((bits & 0x7F800000) == 0).logical_and((bits & 0x7FFFFF) != 0).sum())


@pytest.mark.parametrize("threads", [1, 2])
def test_every_thread_flushes_inside_and_none_after(threads):
    if threads > len(os.sched_getaffinity(0)):
        pytest.skip("one core")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        big = torch.full((1 << 21,), SMALLEST_NORMAL)  # split among the threads
        assert _subnormals(big * 0.5) == big.numel()  # the default: subnormal results
        with denormals.flushed(torch.device("cpu")):
            assert denormals.flushing()
            assert _subnormals(big * 0.5) == 0  # every thread's share flushed
            # what Adam's second moment meets: squares of tiny gradients
            assert _subnormals(torch.full((1 << 21,), 1e-20).square()) == 0
        assert not denormals.flushing()
        assert _subnormals(big * 0.5) == big.numel()
    finally:
        torch.set_num_threads(before)


def test_the_run_records_it():
    assert denormals.record(torch.device("cpu")).startswith("on (while training")
    assert denormals.record(torch.device("meta")) == "off (not on the CPU)"
    assert not denormals.flushing()
