"""The choices of the command-line options, each defined once: the CLI shows these enums and the
modules check their arguments against the same values; :func:`options_from` builds a module's
options dataclass from a command's parameters. Torch-free (the CLI imports it at start)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

# ONNX opsets `tagger export` writes: 17 brings STFT and LayerNormalization, 20 is the newest the
# TorchScript-based exporter writes.
MIN_OPSET, MAX_OPSET = 17, 20

# How far a path's probabilities may be from float32 PyTorch: the exact paths (the default, and
# every fp32 export) and the fast ones (--precision bf16/int8/fast).
EXACT_LIMIT = 1e-4
FAST_LIMIT = 5e-3


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"  # a folder of Parquet parts (tagger[parquet])
    audacity = "audacity"  # event formats: a label track, a Raven selection table, WebVTT captions
    raven = "raven"
    webvtt = "webvtt"


EVENT_FORMATS = ("audacity", "raven", "webvtt")
SINGLE_FILE_FORMATS = ("audacity", "webvtt")  # their files describe one audio file


class Pooling(str, Enum):
    max = "max"
    mean = "mean"


class Precision(str, Enum):
    """Inference precision of a PyTorch model: fp32 (exact), bf16 (PyTorch), int8 (the cached int8
    ONNX graph) or fast (the faster of those two on this hardware, see tagger.precision)."""

    fp32 = "fp32"
    bf16 = "bf16"
    int8 = "int8"
    fast = "fast"


class Runtime(str, Enum):
    """Which runtime runs a PyTorch model: auto picks the cached ONNX graph on the CPU in fp32."""

    auto = "auto"
    torch = "torch"
    onnx = "onnx"


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


class TableFormat(str, Enum):
    """A table for people or JSON for programs (tagger devices, tagger bench)."""

    table = "table"
    json = "json"


def values(choices: type[Enum]) -> tuple[str, ...]:
    """The option values of an enum, in order (for checks and messages)."""
    return tuple(choice.value for choice in choices)


Options = TypeVar("Options")


def options_from(cls: type[Options], parameters: dict[str, Any], **overrides: Any) -> Options:
    """A dataclass of options from a command's parameters of the same names: an enum gives its value,
    a list a tuple, a path its text where the field is a string, and None (an option not given)
    leaves the field's default; ``overrides`` are taken as they are."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        value = parameters.get(field.name)
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, Path) and "Path" not in str(field.type):
            value = str(value)
        values[field.name] = value
    unknown = set(overrides) - {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise TypeError(f"{cls.__name__} has no option {', '.join(sorted(unknown))}")
    return cls(**values)
