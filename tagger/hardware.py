"""Devices, precision and process groups for training (one process, or one per rank under torchrun)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import TaggerError
from .options import TrainPrecision, values
from .torch_backend import resolve_device as resolve_inference_device

PRECISIONS = values(TrainPrecision)


@dataclass(frozen=True)
class Dist:
    """Where this process stands: rank 0 of 1 without torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU), if there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto: CUDA (this rank's GPU under torchrun) when available, else CPU."""
    try:
        device = resolve_inference_device(name)
    except ValueError as exc:
        raise TaggerError(str(exc)) from None
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AMX or AVX512-BF16), where bf16 beats fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision ``auto`` stands for on this device, after checking that it can run here.

    CUDA: bf16 where supported, else fp16 with loss scaling. CPU: bf16 with AMX/AVX512-BF16, else
    fp32 (on AVX2-only CPUs bf16 autocast is emulated and slower than fp32).
    """
    if name not in PRECISIONS:
        raise TaggerError(f"unknown precision '{name}' (use {', '.join(PRECISIONS)})")
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise TaggerError("fp16 training needs a CUDA GPU; on a CPU use bf16 or fp32")
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
