"""Which precision a run uses: ``--precision fast`` resolved from the hardware, and the CPU's
features that decide it. Torch-free (read from ``/proc/cpuinfo`` and the GPU's device node).

``fast`` means the fastest path whose probabilities stay within :data:`tagger.options.FAST_LIMIT`
of float32:

* a GPU, or a CPU with AMX (bf16 matrix tiles): **bf16** on PyTorch, where bf16 is native and
  several times faster than fp32;
* any other CPU: **int8**, the cached int8 ONNX Runtime graph (2.1x fp32 for PaSST-S on a 2-core
  EPYC with AVX-512 VNNI; bf16 there, AVX-512 BF16 without AMX, was only 1.4x; on AVX2-only CPUs
  bf16 is emulated and slower than fp32). When the int8 graph of a model is further than
  FAST_LIMIT from float32 (its layers are chosen by measured error when it is made, see
  :mod:`tagger_export.quantize`), ``fast`` runs the exact fp32 graph instead and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .options import Precision, Runtime

FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_flags() -> set[str]:
    """The feature flags of the first CPU (Linux; empty elsewhere)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in info.splitlines() if line.startswith("flags")),
                set())


def cpu_model() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                "unknown CPU")


def cpu_summary() -> str:
    """The CPU's model and the extensions that decide bf16 and int8 speed."""
    flags = cpu_flags()
    return f"{cpu_model()} ({', '.join(f for f in FEATURES if f in flags) or 'no AVX2'})"


def native_bf16(flags: set[str]) -> bool:
    """bf16 arithmetic in hardware (AVX-512 BF16 or AMX); elsewhere PyTorch emulates it, slowly."""
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Choice:
    precision: str  # fp32, bf16 or int8
    reason: str  # for --verbose ("" when the user named the precision)
    warning: str = ""  # printed in any case (bf16 emulated here)


def resolve(requested: str, on_gpu: bool, runtime: str = Runtime.auto.value,
            flags: set[str] | None = None) -> Choice:
    """The precision a run uses on this machine (``on_gpu``: the model runs on a CUDA device;
    ``runtime``: --backend, which rules out bf16 on ONNX Runtime and int8 on PyTorch)."""
    flags = cpu_flags() if flags is None else flags
    if requested == Precision.fast.value:
        if on_gpu or "amx_bf16" in flags:
            where = "on the GPU" if on_gpu else "(this CPU has AMX)"
            if runtime == Runtime.onnx.value:
                return Choice(Precision.fp32.value, f"fast: fp32 (bf16, the fast choice {where}, needs PyTorch)")
            return Choice(Precision.bf16.value, f"fast: bf16 {where}")
        if runtime == Runtime.torch.value:
            if native_bf16(flags):
                return Choice(Precision.bf16.value, "fast: bf16 (int8 needs ONNX Runtime; this CPU has AVX-512 BF16)")
            return Choice(Precision.fp32.value, "fast: fp32 (int8 needs ONNX Runtime; bf16 is emulated on this CPU)")
        return Choice(Precision.int8.value, "fast: int8 ONNX Runtime graph (no GPU, no AMX on this CPU)")
    if requested == Precision.bf16.value and not on_gpu and not native_bf16(flags):
        return Choice(requested, "", "warning: this CPU has no AVX-512 BF16 or AMX: bf16 is emulated and "
                                     "slower than fp32 here (--precision fast picks the fastest)")
    return Choice(requested, "")
