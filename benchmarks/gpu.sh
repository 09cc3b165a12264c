#!/usr/bin/env bash
# Run the benchmark unchanged on a CUDA machine: the same code keeps the data on the GPU, uses
# bf16 autocast there and non-blocking copies. Results land in benchmarks/results/ as on the CPU.
#
#   bash benchmarks/gpu.sh            # setup + all default measurements
#   bash benchmarks/gpu.sh --only throughput
#   bash benchmarks/gpu.sh --only distributed   # torchrun, one process per GPU (>= 2 GPUs)
#                                               # against one GPU, nccl, the global batch
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
.venv/bin/python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: run `make bench` for the CPU benchmark"
print("benchmarking on", torch.cuda.get_device_name())
PY
.venv/bin/python benchmarks/bench.py "$@"
