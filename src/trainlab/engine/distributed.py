"""Running under ``torchrun``: join its process group, shard the data, add up the counts.

trainlab launches nothing and has no communication layer of its own. ``torchrun`` (or SLURM,
Kubernetes, TorchX, which all start it) sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT;
``Dist.join`` reads them and calls ``torch.distributed.init_process_group`` (gloo on the CPU,
nccl on CUDA with ``cuda:LOCAL_RANK``). Everything else is torch's own collectives:

- ``--batch-size`` is the global batch. Each global batch of the (seed, epoch) permutation is
  split into ``world`` equal contiguous parts, so 1 or N processes see the same batches and, with
  DistributedDataParallel averaging the per-process mean gradients, take the same steps.
- Evaluation is exact: each rank scores a contiguous, unpadded shard of the split, then the
  counts (Σ loss·n, n, confusion matrix) are summed with one all-reduce. 10,000 test images
  count as 10,000, never as a padded 10,002.
- Only global rank 0 writes files and prints; checkpoints hold rank 0's weights (identical on
  every rank after each step) and every rank's random-number state.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError, DistributedError

# A collective that waits longer than this ends the job (gloo's default is 30 minutes). A peer
# that dies closes its sockets, so the usual failure is reported at once; this bounds the rest.
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``Dist()`` is a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    restart: int = 0  # TORCHELASTIC_RESTART_COUNT: > 0 when torchrun restarted the job
    run_id: str | None = None  # TORCHELASTIC_RUN_ID: the same across a job's restarts
    launched: bool = False  # started by torchrun (even with one process)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Several processes, and a process group to talk through."""
        return self.world > 1 and torch.distributed.is_initialized()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Dist:
        env = os.environ if env is None else env
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return cls()
        try:
            return cls(
                rank=int(env["RANK"]),
                world=int(env["WORLD_SIZE"]),
                local_rank=int(env.get("LOCAL_RANK", "0")),
                restart=int(env.get("TORCHELASTIC_RESTART_COUNT", "0")),
                run_id=env.get("TORCHELASTIC_RUN_ID"),
                launched=True,
            )
        except ValueError as e:
            raise ConfigError(
                f"the launcher's environment is malformed ({e}): RANK, WORLD_SIZE and LOCAL_RANK "
                "must be integers. Start trainlab with torchrun, or unset them."
            ) from None

    # --- joining ---------------------------------------------------------------------------

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
        if device.type == "cuda" and self.launched and device.index is None:
            if self.local_rank >= torch.cuda.device_count():
                raise ConfigError(
                    f"LOCAL_RANK {self.local_rank}, but this machine has "
                    f"{torch.cuda.device_count()} CUDA device(s). Start at most that many "
                    "processes per node (--nproc-per-node)."
                )
            return torch.device("cuda", self.local_rank)
        return device

    def join(self, device: torch.device) -> Dist:
        """Initialise the process group once (gloo for CPU, nccl for CUDA)."""
        if self.world <= 1 or torch.distributed.is_initialized():
            return self
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        timeout = float(os.environ.get("TRAINLAB_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        extra: dict[str, Any] = {}
        if self.restart:
            # torchrun keeps its store across restarts, holding the dead attempt's addresses:
            # a key prefix per attempt keeps the new process group from reading them
            store, _, _ = next(
                torch.distributed.rendezvous(
                    "env://", self.rank, self.world, timeout=timedelta(seconds=timeout)
                )
            )
            store = torch.distributed.PrefixStore(f"trainlab/restart-{self.restart}/", store)
            extra = {"store": store, "rank": self.rank, "world_size": self.world}
        try:
            torch.distributed.init_process_group(
                backend,
                timeout=timedelta(seconds=timeout),
                device_id=device if device.type == "cuda" else None,
                **extra,
            )
        except (RuntimeError, ValueError) as e:
            raise DistributedError(
                f"could not join the process group ({backend}, rank {self.rank} of "
                f"{self.world}): {e}. Check that every node can reach MASTER_ADDR:MASTER_PORT "
                f"({os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')})."
            ) from None
        atexit.register(_leave)  # a process that exits inside the group aborts noisily
        return self

    @property
    def backend(self) -> str | None:
        return torch.distributed.get_backend() if self.active else None

    # --- collectives (no-ops on one process) -----------------------------------------------

    def barrier(self) -> None:
        if self.active:
            _collective(torch.distributed.barrier)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value]
        _collective(torch.distributed.broadcast_object_list, box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.world
        _collective(torch.distributed.all_gather_object, out, value)
        return out

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is True on any: a decision all ranks take together."""
        if not self.active:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        _collective(torch.distributed.all_reduce, t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def sum_counts(self, counts) -> Any:
        """A copy of ``counts`` (``engine.metrics.Counts``) summed over the ranks."""
        total = counts.copy()
        if not self.active:
            return total
        if hasattr(total, "merge"):  # multi-label: the scores themselves, in rank order
            return total.merge(self.gather(total.state()))
        k = total.confusion.numel()
        packed = torch.cat(
            [
                total.loss_sum.reshape(1).double(),
                torch.tensor([float(total.n)], dtype=torch.float64, device=total.device),
                total.confusion.reshape(-1).double(),
            ]
        )
        _collective(torch.distributed.all_reduce, packed)
        total.loss_sum.copy_(packed[0].to(total.loss_sum.dtype))
        total.n = int(packed[1].item())
        total.confusion.copy_(packed[2 : 2 + k].round().long().view_as(total.confusion))
        return total

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (batch-norm running statistics) on every rank, so all evaluate
        the same model: the one its checkpoint holds."""
        if not self.active:
            return
        for buffer in model.buffers():
            _collective(torch.distributed.broadcast, buffer, src=0)

    def shard(self, n: int) -> slice:
        """This rank's contiguous, unpadded part of ``n`` items (sizes differ by at most one)."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    @contextlib.contextmanager
    def node_first(self) -> Iterator[None]:
        """Local rank 0 of each machine runs the block first (fetches, verifies); the other
        processes wait for it, then run the block (and find the files in place)."""
        if self.local_rank:
            self.barrier()
        yield
        if not self.local_rank:
            self.barrier()

    def leave(self) -> None:
        """Every rank, after the last collective: wait for the others, then tear down.

        Without the barrier a rank that finished first (the others still writing files) tore
        its group down and exited while its peers' connections were open, and once, under
        load, gloo's threads aborted that process at exit ("terminate called without an active
        exception", SIGABRT after a completed run)."""
        if self.active:
            with contextlib.suppress(RuntimeError):  # a peer gone already: nothing to wait for
                torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def _leave() -> None:
    if torch.distributed.is_initialized():
        with contextlib.suppress(RuntimeError, ValueError):
            torch.distributed.destroy_process_group()


def _collective(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, ValueError) as e:  # DistBackendError is a RuntimeError
        raise peer_failure(e) from None


BACKEND_SIGNS = ("gloo", "nccl", "connection", "timed out", "timeout", "broken pipe", "socket")


def is_backend_failure(e: BaseException) -> bool:
    """Whether an exception from a step (DDP's gradient all-reduce) means a peer is gone."""
    if isinstance(e, getattr(torch.distributed, "DistError", ())):
        return True
    return isinstance(e, RuntimeError) and any(s in str(e).lower() for s in BACKEND_SIGNS)


def peer_failure(e: BaseException) -> DistributedError:
    return DistributedError(
        f"another process of this job stopped or cannot be reached ({_first_line(e)})."
    )


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\.(cc|cpp):\d+\] ", "", lines[0]) if lines else type(e).__name__
    return text.split(" This is typically")[0][:300]


def wrap(model: nn.Module, dist: Dist, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module training steps go through: the model itself, or DistributedDataParallel
    around it (which broadcasts rank 0's initial weights and averages the gradients)."""
    if sync_bn:
        convert_sync_batchnorm(model, device)
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm that computes its batch statistics over all ranks (``--sync-bn``).

    On CUDA this is torch's ``SyncBatchNorm``; torch's version refuses CPU tensors, so on the
    CPU (gloo) each layer becomes ``GlooSyncBatchNorm``, which sums the per-rank moments with
    the differentiable ``torch.distributed.nn.all_reduce``. Parameter and buffer names do not
    change, so checkpoints load into the plain model.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            setattr(model, name, GlooSyncBatchNorm.from_batchnorm(child))
        else:
            convert_sync_batchnorm(child, device)
    return model


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: the sum's gradient is every rank's, summed."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd API
        out = tensor.clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd API
        out = grad.clone()
        torch.distributed.all_reduce(out)
        return out


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with statistics over every rank's batch, for CPU process groups."""

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 - torch's name
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    @classmethod
    def from_batchnorm(cls, bn: nn.modules.batchnorm._BatchNorm) -> GlooSyncBatchNorm:
        out = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        if bn.affine:
            out.weight, out.bias = bn.weight, bn.bias
        out.running_mean, out.running_var = bn.running_mean, bn.running_var
        out.num_batches_tracked = bn.num_batches_tracked
        out.training = bn.training
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
        if not (self.training and group):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        xf = x.float()
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), xf.new_tensor([x.numel() / c])])
        total = _SumOverRanks.apply(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp(min=0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                if m is None:
                    m = 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * n / (n - 1).clamp(min=1)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)
