"""Device choice: ``auto`` is the machine's accelerator (CUDA, Apple's MPS, ...) if it has a
usable one, else the CPU (``torch.accelerator``)."""

from __future__ import annotations

import torch

from trainlab.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        found = torch.accelerator.current_accelerator(check_available=True)
        return torch.device(found.type) if found is not None else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"device '{name}' is not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device '{name}' asked for, but CUDA is not available here; use --device cpu or auto"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise ConfigError(f"device '{name}': only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(
            f"device '{name}' asked for, but MPS is not available here; use --device cpu or auto"
        )
    return device


def accelerator(index: int = 0) -> torch.device:
    """cuda:index if it exists, else Apple's MPS (for index 0) if available, else the CPU."""
    if torch.cuda.device_count() >= index + 1:
        return torch.device(f"cuda:{index}")
    if index == 0 and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def all_accelerators() -> list[torch.device]:
    """Every CUDA device, or the CPU alone."""
    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return devices or [torch.device("cpu")]


def module_device(model) -> torch.device:
    """Where a module's parameters live (the CPU for a function or a parameterless module)."""
    parameters = model.parameters() if isinstance(model, torch.nn.Module) else iter(())
    first = next(parameters, None)
    return first.device if first is not None else torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full float32.

    "auto" picks bf16 only where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16), where it is faster and, with float32 weights and batch-norm statistics, does
    not cost accuracy. Elsewhere bf16 is emulated and slower, so auto means float32 there.
    """
    if amp == "off" or device.type == "mps":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None
