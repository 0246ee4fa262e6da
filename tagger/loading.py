"""Turn what the user typed after ``--model`` into a model: a file path or a registry name.

Torch-free at import (the checkpoint reader is imported when a model is loaded), so the ONNX path
can find a model's file without loading PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelLoadError
from .embedded import EMBEDDED_MODEL, embedded_model_path
from .registry import MODELS, download

if TYPE_CHECKING:
    from .model import AudioTagger


def default_model_name() -> str:
    """The model used when none is named: the embedded one (no download)."""
    return EMBEDDED_MODEL


def available_models() -> list[str]:
    """The names that ``--model`` accepts besides a path: the embedded model, then the official ones."""
    return [EMBEDDED_MODEL, *MODELS]


def model_file(name_or_path: str | None = None, show_progress: bool = True) -> tuple[Path, str | None, int | None]:
    """The local file of a model (downloading a registry model when it is not cached yet), the
    name it goes by (None for a path: the file names itself) and the stride its name implies."""
    name_or_path = name_or_path or default_model_name()
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None, None
    if name_or_path == EMBEDDED_MODEL:
        return embedded_model_path(), EMBEDDED_MODEL, None
    if name_or_path in MODELS:
        remote = MODELS[name_or_path]
        return download(remote, show_progress=show_progress), remote.name, remote.stride
    if path.suffix or "/" in name_or_path:
        raise ModelLoadError(f"{name_or_path}: no such model file")
    raise ModelLoadError(
        f"unknown model '{name_or_path}': not a file, and not one of {', '.join(available_models())}"
    )


def load_model(name_or_path: str | None = None, num_heads: int | None = None,
               stride: int | None = None, show_progress: bool = True) -> AudioTagger:
    """Load a model file (official PaSST checkpoint or tagger model) or a named registry model."""
    from .checkpoint import load_checkpoint

    path, name, implied_stride = model_file(name_or_path, show_progress)
    model = load_checkpoint(path, num_heads=num_heads, stride=stride or implied_stride)
    if name is not None:
        model.name = name
    return model
