"""The choices of the command-line options, each defined once: the CLI shows these enums and the
modules check their arguments against the same values. Torch-free (the CLI imports it at start)."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Pooling(str, Enum):
    max = "max"
    mean = "mean"


class Precision(str, Enum):
    """Inference precision of a PyTorch model."""

    fp32 = "fp32"
    bf16 = "bf16"


class TrainPrecision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Task(str, Enum):
    auto = "auto"
    multi_label = "multi-label"
    single_label = "single-label"


class ReportFormat(str, Enum):
    json = "json"
    csv = "csv"


class ExportFrontend(str, Enum):
    dft = "dft"
    stft = "stft"


class ExportPrecision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"
    fp16 = "fp16"


class ListenFormat(str, Enum):
    auto = "auto"
    tui = "tui"
    jsonl = "jsonl"


class DevicesFormat(str, Enum):
    table = "table"
    json = "json"


def values(choices: type[Enum]) -> tuple[str, ...]:
    """The option values of an enum, in order (for checks and messages)."""
    return tuple(choice.value for choice in choices)
