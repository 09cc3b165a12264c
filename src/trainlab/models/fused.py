"""The default cnn's [max-pool 2×2, batch norm, ReLU] stages as one fused CPU kernel in training.

PyTorch runs each of the three as its own kernel, forward and backward, and the pool's backward
zero-fills its whole input-sized gradient before scattering into it. On a 2-core CPU these
memory passes are a fifth of the default cnn's training step at 32×32. ``stage.c`` does the
stage in two passes over the convolution's output (one each way) and a few over the pooled
quarter. On x86-64 CPUs with AVX2 it is built at first use with the machine's C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``; ``-O3 -march=native``), cached under
``$XDG_CACHE_HOME/trainlab/kernels`` (``~/.cache``), and runs on PyTorch's OpenMP threads.

It runs only where it gives what PyTorch's modules give: a training-mode ``nn.BatchNorm2d``
(affine, running statistics) after an ``nn.MaxPool2d(2)`` and before an ``nn.ReLU``, on a
channels-last float32 or bfloat16 CPU tensor whose channels are a multiple of 8, with no hooks
on those modules, and not while tracing, scripting, compiling or exporting. The pool keeps
PyTorch's tie rule (the first maximum takes the gradient), batch norm its formulas and running
statistics; results agree with PyTorch's kernels to float rounding, and a run is repeatable.
Everything else (evaluation, export, CUDA, NCHW, other layers) runs PyTorch's modules as they
are. ``TRAINLAB_FUSED=0`` turns it off; without a C compiler, or on another CPU, it is off.
Each run records which (config.toml, ``[environment] stage_kernel``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules import module as _module

SOURCE = Path(__file__).with_name("stage.c")
ABI = 1
# The vector code wants the machine's own vector units (built without them it is slower than
# PyTorch's kernels), and OpenMP from libgomp, the runtime PyTorch's threads already run on.
_NATIVE = ["-O3", "-march=native"]


def _flag_sets(version: str) -> list[list[str]]:
    openmp = "-fopenmp=libgomp" if "clang" in version.lower() else "-fopenmp"
    return [[*_NATIVE, openmp], _NATIVE]  # without OpenMP: one thread


def _cpu_problem() -> str | None:
    """Why this CPU is left to PyTorch's kernels, or None. The kernel is measured on x86-64
    with AVX2 (and AVX-512); elsewhere it would be untested."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"off: the kernel is built for x86-64 CPUs, this is {platform.machine()}"
    flags = next((line for line in _cpu_key().splitlines() if line.startswith("flags")), "")
    if "avx2" not in flags.split():
        return "off: the CPU has no AVX2"
    return None


class _Library:
    def __init__(self, path: Path, compiler: str, flags: list[str]):
        self.path, self.compiler, self.flags = path, compiler, flags
        lib = ctypes.CDLL(str(path))
        if lib.stage_abi() != ABI:
            raise OSError(f"{path}: ABI {lib.stage_abi()}, expected {ABI}")
        p, f, n = ctypes.c_void_p, ctypes.c_float, ctypes.c_long
        self.forward = {}
        self.backward = {}
        for dtype, suffix in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            fwd = getattr(lib, f"stage_forward_{suffix}")
            fwd.argtypes = [p] * 10 + [f, f] + [n] * 4
            fwd.restype = ctypes.c_int
            bwd = getattr(lib, f"stage_backward_{suffix}")
            bwd.argtypes = [p] * 10 + [n] * 4
            bwd.restype = ctypes.c_int
            self.forward[dtype], self.backward[dtype] = fwd, bwd
        self._lib = lib


def _cache_dir() -> Path:
    from trainlab.data.root import default_root  # $XDG_CACHE_HOME/trainlab, as for data

    return default_root() / "kernels"


def _compiler() -> str | None:
    named = os.environ.get("CC")
    if named:
        return shutil.which(named)
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _cpu_key() -> str:
    """What -march=native depends on: the CPU's model and flags."""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(
            sorted({line for line in lines if line.startswith(("model name", "flags"))})
        )
    return platform.processor() or platform.machine()


def _build(compiler: str) -> tuple[Path, list[str]]:
    source = SOURCE.read_bytes()
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=60
    ).stdout.partition("\n")[0]
    key = hashlib.sha256(
        source + repr((compiler, version, _cpu_key(), ABI, torch.__version__)).encode()
    ).hexdigest()[:16]
    folder = _cache_dir()
    problems = []
    for flags in _flag_sets(version):
        target = folder / f"stage-{key}-{len(flags)}.so"
        if target.exists():
            return target, flags
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".so.tmp")
        os.close(fd)
        try:
            proc = subprocess.run(
                [compiler, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode == 0:
                os.replace(tmp, target)  # whole or not at all, also with several processes
                return target, flags
            problems.append(f"{' '.join(flags)}: {proc.stderr.strip()[-300:]}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    raise OSError("; ".join(problems))


@functools.lru_cache(maxsize=1)
def library() -> _Library | str:
    """The built kernel, or why there is none (a sentence). Built once per process."""
    if os.environ.get("TRAINLAB_FUSED", "1").strip().lower() in ("0", "off", "no", "false"):
        return "off (TRAINLAB_FUSED=0)"
    cpu = _cpu_problem()
    if cpu is not None:
        return cpu
    compiler = _compiler()
    if compiler is None:
        return "off: no C compiler (install gcc, or set CC)"
    try:
        path, flags = _build(compiler)
        return _Library(path, compiler, flags)
    except (OSError, subprocess.SubprocessError, AttributeError) as exc:
        return f"off: building {SOURCE.name} with {compiler} failed ({str(exc)[:300]})"


def describe() -> str:
    """For the run's record: whether the fused stage kernel runs, and how it was built."""
    lib = library()
    if isinstance(lib, str):
        return lib
    built = f"{Path(lib.compiler).name} {' '.join(lib.flags)}"
    return f"fused pool+BN+ReLU in training, where a model has them ({built})"


class _Stage(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, factor, eps):  # noqa: PLR0913
        lib = library()
        n, c, h, w = x.shape
        pooled = (n, c, h // 2, w // 2)
        last = torch.channels_last
        p = torch.empty(pooled, dtype=x.dtype, memory_format=last)
        idx = torch.empty(pooled, dtype=torch.uint8, memory_format=last)
        y = torch.empty(pooled, dtype=x.dtype, memory_format=last)
        mean = torch.empty(c, dtype=torch.float32)  # whatever the default dtype is
        invstd = torch.empty(c, dtype=torch.float32)
        weight, bias = weight.detach(), bias.detach()
        stats = (
            (running_mean.data_ptr(), running_var.data_ptr())
            if running_mean is not None
            else (None, None)
        )
        status = lib.forward[x.dtype](
            x.data_ptr(), p.data_ptr(), idx.data_ptr(), y.data_ptr(), weight.data_ptr(),
            bias.data_ptr(), mean.data_ptr(), invstd.data_ptr(), *stats, factor, eps, n, h, w, c,
        )  # fmt: skip
        if status != 0:
            raise MemoryError("the fused pool/batch-norm kernel could not allocate its sums")
        ctx.save_for_backward(p, idx, mean, invstd, weight, bias)
        ctx.shape = (n, c, h, w)
        return y

    @staticmethod
    @once_differentiable  # a second derivative gets torch's clear error, not a wrong one
    def backward(ctx, grad):
        p, idx, mean, invstd, weight, bias = ctx.saved_tensors
        n, c, h, w = ctx.shape
        grad = grad.to(p.dtype).contiguous(memory_format=torch.channels_last)
        gx = torch.empty(ctx.shape, dtype=p.dtype, memory_format=torch.channels_last)
        gw, gb = torch.empty(c, dtype=torch.float32), torch.empty(c, dtype=torch.float32)
        status = library().backward[p.dtype](
            grad.data_ptr(), p.data_ptr(), idx.data_ptr(), mean.data_ptr(), invstd.data_ptr(),
            weight.data_ptr(), bias.data_ptr(), gx.data_ptr(), gw.data_ptr(), gb.data_ptr(),
            n, h, w, c,
        )  # fmt: skip
        if status != 0:
            raise MemoryError("the fused pool/batch-norm kernel could not allocate its sums")
        wants = ctx.needs_input_grad
        return gx, gw if wants[1] else None, gb if wants[2] else None, None, None, None, None


def _hooked(*modules: nn.Module) -> bool:
    """Whether a forward or backward hook, on these modules or on all, expects them to run."""
    for m in modules:
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks:
            return True
        if m._backward_pre_hooks:
            return True
    return bool(
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    )


def fits(pool: nn.Module, bn: nn.Module, relu: nn.Module, x: torch.Tensor) -> bool:
    """Whether the fused kernel gives exactly what ``relu(bn(pool(x)))`` would."""
    if (
        type(pool) is not nn.MaxPool2d
        or type(bn) is not nn.BatchNorm2d
        or type(relu) is not nn.ReLU
    ):
        return False
    if not bn.training or not bn.affine or x.device.type != "cpu" or x.dim() != 4:
        return False
    if x.dtype not in (torch.float32, torch.bfloat16) or bn.weight.dtype != torch.float32:
        return False
    n, c, h, w = x.shape
    if c % 8 or h < 2 or w < 2 or n * (h // 2) * (w // 2) < 2 or c != bn.num_features:
        return False
    if not x.is_contiguous(memory_format=torch.channels_last) or x.stride(1) != 1:
        return False
    if bn.running_mean is not None and bn.running_mean.dtype != torch.float32:
        return False
    if not (
        pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and not pool.ceil_mode
        and not pool.return_indices
    ):
        return False
    if _hooked(pool, bn, relu):
        return False
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    if "torch.onnx" in sys.modules and torch.onnx.is_in_onnx_export():  # never imported: no export
        return False
    return not isinstance(library(), str)


def stage(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``relu(bn(max_pool2d(x, 2)))`` in training mode, with bn's running statistics updated."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            factor = 1.0 / float(bn.num_batches_tracked)
    return _Stage.apply(
        x, bn.weight, bn.bias, bn.running_mean, bn.running_var, float(factor), float(bn.eps)
    )


class FusedStages(nn.Sequential):
    """An ``nn.Sequential`` that runs each [MaxPool2d(2), BatchNorm2d, ReLU] run of its layers as
    one fused kernel where ``fits`` holds (see the module's docstring), and layer by layer
    otherwise. Its layers, parameters and state_dict are the plain Sequential's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            if i + 2 < len(layers) and fits(layers[i], layers[i + 1], layers[i + 2], x):
                x = stage(layers[i + 1], x)
                i += 3
            else:
                x = layers[i](x)
                i += 1
        return x
