"""Turn what the user typed after ``--model`` into a model: a file path or a registry name."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import load_checkpoint
from .errors import ModelLoadError
from .model import AudioTagger
from .embedded import EMBEDDED_MODEL, embedded_model_path
from .registry import MODELS, download


def default_model_name() -> str:
    """The model used when none is named: the embedded one (no download)."""
    return EMBEDDED_MODEL


def available_models() -> list[str]:
    """The names that ``--model`` accepts besides a path: the embedded model, then the official ones."""
    return [EMBEDDED_MODEL, *MODELS]


def load_model(name_or_path: str | None = None, num_heads: int | None = None,
               stride: int | None = None, show_progress: bool = True) -> AudioTagger:
    """Load a model file (official PaSST checkpoint or tagger model) or a named registry model."""
    name_or_path = name_or_path or default_model_name()
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return load_checkpoint(path, num_heads=num_heads, stride=stride)
    if name_or_path == EMBEDDED_MODEL:
        model = load_checkpoint(embedded_model_path())
        model.name = EMBEDDED_MODEL
        return model
    if name_or_path in MODELS:
        remote = MODELS[name_or_path]
        local = download(remote, show_progress=show_progress)
        model = load_checkpoint(local, num_heads=num_heads, stride=stride or remote.stride)
        model.name = remote.name
        return model
    if path.suffix or "/" in name_or_path:
        raise ModelLoadError(f"{name_or_path}: no such model file")
    raise ModelLoadError(
        f"unknown model '{name_or_path}': not a file, and not one of {', '.join(available_models())}"
    )
