"""Reading and writing model files.

Two kinds of files load here, always with ``torch.load(..., weights_only=True)``:

* official PaSST checkpoints: a plain state_dict, one wrapped under ``model`` or ``state_dict``, or a
  Lightning checkpoint with ``net.`` / ``net_swa.`` prefixes. The architecture is inferred from the
  tensor shapes; the number of heads is ``embed_dim / 64`` (true of every release) unless given.
* the project's own self-describing files (``format: tagger-model``): config, labels, front-end
  settings and training metadata next to the weights.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .errors import ModelLoadError
from .frontend import FrontendConfig
from .labels import default_labels
from .model import AudioTagger, PaSST, PaSSTConfig

FORMAT_NAME = "tagger-model"
FORMAT_VERSION = 1
HEAD_DIM = 64
N_MELS = FrontendConfig().n_mels
# Prefixes of wrapped checkpoints, most preferred first (the SWA weights are the released ones).
_PREFIXES = ("net_swa.", "net.", "model.", "module.")
_IGNORED_KEYS = re.compile(r"^(head_dist\.|mel\.|frontend\.)")


def read_file(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load`` a file safely, turning every failure into a one-line ModelLoadError."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"{path}: refused to load: not a plain file of tensors ({_unpickler_reason(exc)})"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, zipfile errors...
        raise ModelLoadError(f"{path}: not a readable PyTorch model file ({_one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def _unpickler_reason(exc: BaseException) -> str:
    """What PyTorch's safe unpickler objected to, without its advice to load the file unsafely."""
    text = str(exc)
    detail = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else ""
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[0] if lines else "unsafe or unreadable content"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def official_state_dict(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The PaSST weights of an official-format checkpoint, with official key names, unwrapped."""
    for wrapper in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in _PREFIXES:
        stripped = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if "cls_token" in stripped:
            tensors = stripped
            break
    return {k: v for k, v in tensors.items() if not _IGNORED_KEYS.match(k)}


def infer_config(state: dict[str, torch.Tensor], num_heads: int | None = None,
                 stride: int | None = None) -> PaSSTConfig:
    """Rebuild the architecture of a PaSST state_dict from its tensor shapes."""
    required = ("cls_token", "patch_embed.proj.weight", "freq_new_pos_embed",
                "time_new_pos_embed", "head.1.weight", "blocks.0.mlp.fc1.weight")
    missing = [k for k in required if k not in state]
    if missing:
        raise ModelLoadError(f"not a PaSST checkpoint: missing {', '.join(missing)}")
    embed_dim = state["cls_token"].shape[-1]
    patch_size = state["patch_embed.proj.weight"].shape[-1]
    freq_patches = state["freq_new_pos_embed"].shape[2]
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    heads = num_heads or max(1, embed_dim // HEAD_DIM)
    if embed_dim % heads:
        raise ModelLoadError(f"embed_dim {embed_dim} is not divisible by {heads} heads")
    return PaSSTConfig(
        freq_patches=freq_patches,
        time_patches=state["time_new_pos_embed"].shape[3],
        patch_size=patch_size,
        stride=stride or _infer_stride(freq_patches, patch_size),
        embed_dim=embed_dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        num_classes=state["head.1.weight"].shape[0],
        distilled="dist_token" in state,
    )


def _infer_stride(freq_patches: int, patch_size: int) -> int:
    """The patch stride that turns 128 mel bins into ``freq_patches`` rows (released: 10, 12, 14, 16)."""
    for stride in (10, 16, 12, 14, *range(1, patch_size + 1)):  # the released strides first
        if (N_MELS - patch_size) // stride + 1 == freq_patches:
            return stride
    raise ModelLoadError(
        f"cannot infer the patch stride from {freq_patches} frequency patches; pass it explicitly"
    )


def model_from_official(obj: dict[str, Any], name: str, num_heads: int | None = None,
                        stride: int | None = None) -> AudioTagger:
    state = official_state_dict(obj)
    config = infer_config(state, num_heads=num_heads, stride=stride)
    passt = passt_with_weights(config, state, name)
    return AudioTagger(config, FrontendConfig(), default_labels(config.num_classes), name=name, passt=passt)


def passt_with_weights(config: PaSSTConfig, state: dict[str, torch.Tensor], name: str) -> PaSST:
    """A PaSST whose parameters are the given tensors (built on the meta device: no second copy)."""
    with torch.device("meta"):
        passt = PaSST(config)
    expected = passt.state_dict()
    problems = [k for k in expected if k not in state]
    problems += [k for k in state if k not in expected]
    problems += [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if problems:
        shown = ", ".join(problems[:4]) + (" ..." if len(problems) > 4 else "")
        raise ModelLoadError(f"{name}: weights do not fit the model ({shown})")
    passt.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return passt


# Fields of a model file's config and front-end settings that may be 0 (all others must be at least 1).
_MAY_BE_ZERO = {"s_patchout_t", "s_patchout_f", "u_patchout", "drop_rate", "attn_drop_rate",
                "drop_path_rate", "fmin", "freqm", "timem", "fmin_aug_range", "fmax_aug_range"}


def _checked_values(cls: type, values: Any, name: str, what: str) -> dict[str, Any]:
    """The known fields of a config dict, each of the type of its default and not negative."""
    if not isinstance(values, dict):
        raise ModelLoadError(f"{name}: damaged model file ({what} is not a mapping)")
    defaults = cls()
    checked = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            continue
        value, default = values[field.name], getattr(defaults, field.name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, bool):
            valid = isinstance(value, bool)
        elif isinstance(default, int):
            valid = number and isinstance(value, int)
        elif isinstance(default, float) or default is None:
            valid = (default is None and value is None) or (number and math.isfinite(value))
        else:
            valid = True
        if valid and number and value < (0 if field.name in _MAY_BE_ZERO else 1):
            valid = False
        if not valid:
            raise ModelLoadError(f"{name}: damaged model file ({what} {field.name} = {value!r})")
        checked[field.name] = value
    return checked


def model_from_own(obj: dict[str, Any], name: str) -> AudioTagger:
    config = PaSSTConfig.from_dict(_checked_values(PaSSTConfig, obj.get("config"), name, "config"))
    frontend = FrontendConfig(**_checked_values(FrontendConfig, obj.get("frontend"), name, "front-end"))
    labels = obj.get("labels")
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise ModelLoadError(f"{name}: damaged model file (labels are not a list of names)")
    try:
        passt = passt_with_weights(config, obj["state_dict"], name)
        model = AudioTagger(config, frontend, list(labels), name=str(obj.get("name", name)),
                            multi_label=bool(obj.get("multi_label", True)), passt=passt)
        with torch.no_grad():  # settings that cannot make a spectrogram fail here, not while tagging
            model.frontend(torch.zeros(1, model.min_samples))
    except ModelLoadError:
        raise
    except Exception as exc:  # any inconsistency of hand-edited settings and weights
        raise ModelLoadError(f"{name}: damaged model file ({_one_line(exc)})") from None
    metadata = obj.get("metadata", {})
    model.metadata = dict(metadata) if isinstance(metadata, dict) else {}
    return model


def load_checkpoint(path: str | os.PathLike, num_heads: int | None = None,
                    stride: int | None = None) -> AudioTagger:
    """Load an official PaSST checkpoint or one of the project's own model files (eval mode)."""
    obj = read_file(path)
    name = Path(path).name
    if obj.get("format") == FORMAT_NAME:
        version = obj.get("format_version", 0)
        if not isinstance(version, int):
            raise ModelLoadError(f"{name}: damaged model file (format version {version!r})")
        if version > FORMAT_VERSION:
            raise ModelLoadError(f"{name}: made by a newer tagger (format {obj['format_version']})")
        model = model_from_own(obj, name)
    else:
        model = model_from_official(obj, name, num_heads=num_heads, stride=stride)
    return model.eval()


def model_file_contents(model: AudioTagger, metadata: dict[str, Any] | None = None,
                        half: bool = False) -> dict[str, Any]:
    """The self-describing dict that :func:`save_model` writes."""
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.passt.state_dict().items()}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "config": model.config.to_dict(),
        "frontend": model.frontend.config.to_dict(),
        "labels": list(model.labels),
        "multi_label": model.multi_label,
        "state_dict": state,
        "metadata": dict(metadata or {}),
    }


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (see :mod:`tagger.atomic`)."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)


def save_model(model: AudioTagger, path: str | os.PathLike, metadata: dict[str, Any] | None = None,
               half: bool = False) -> None:
    atomic_save(model_file_contents(model, metadata, half=half), path)
