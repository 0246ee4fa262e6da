"""tagger: audio tagging with PaSST (Patchout faSt Spectrogram Transformer), from Python::

    import tagger

    model = tagger.load_model()                 # the embedded offline-50; or "passt-s-swa", a .pt or .onnx file
    result = tagger.tag_file(model, "song.wav") # per-window probabilities and clip scores
    print(tagger.top_labels(model, result.clip, 3))
    result = tagger.tag(model, waveform, 44100) # a numpy array: [samples] or [samples, channels]

``tagger.available_models()`` lists the names ``load_model`` takes; :mod:`tagger.hear` has the HEAR
API (embeddings). The package root imports nothing heavy: torch loads only for PyTorch models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    import numpy as np

    from .backends import Backend
    from .tagging import FileResult, WindowResult

__all__ = ["available_models", "load_model", "tag", "tag_file", "top_labels", "__version__"]


def available_models() -> list[str]:
    """The model names :func:`load_model` takes besides a path: the embedded model, then the official
    PaSST checkpoints (downloaded, with their checksums verified, on first use)."""
    from .loading import available_models as names

    return names()


def load_model(name: str | None = None, device: str = "auto", precision: str = "fp32",
               threads: int | None = None, progress: bool = False, backend: str = "auto") -> "Backend":
    """A model ready to tag: a name from :func:`available_models`, a ``.pt`` file (tagger's or an
    official PaSST checkpoint) or an ``.onnx`` file from ``tagger export`` (run by ONNX Runtime).
    ``device``: auto, cpu, cuda or cuda:N; ``precision``: fp32 or bf16 (PyTorch models);
    ``backend``: auto (a PyTorch model runs as its cached ONNX graph on the CPU in fp32), torch or onnx."""
    from .backends import load_backend

    return load_backend(name, device=device, precision=precision, threads=threads, progress=progress,
                        runtime=backend)


def tag_file(model: "Backend", path: str, window: float | None = None, hop: float | None = None,
             pooling: str = "max", batch_size: int | None = None) -> "FileResult":
    """Tag an audio file of any format, rate, channel count and length, as ``tagger file`` does:
    ``result.windows`` (start, end, probabilities) and ``result.clip`` (pooled over the windows).
    ``window``/``hop`` in seconds default to the model's context and half of it."""
    from .tagging import WindowSettings, tag_file as tag_one

    return tag_one(str(path), model, WindowSettings(window, hop), batch_size, pooling)


def tag(model: "Backend", audio: "np.ndarray", sample_rate: int, window: float | None = None,
        hop: float | None = None, pooling: str = "max",
        batch_size: int | None = None) -> "tuple[list[WindowResult], np.ndarray]":
    """Tag a waveform (``[samples]`` or ``[samples, channels]``, any rate; float or integer PCM):
    ``(windows, clip scores)`` exactly as :func:`tag_file` would give for the same audio in a file."""
    from .tagging import WindowSettings, tag_array

    return tag_array(audio, sample_rate, model, WindowSettings(window, hop), batch_size,
                     pooling)


def top_labels(model: "Backend", scores: "np.ndarray", k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` highest ``(label, score)`` pairs of a clip's (or a window's) scores."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))[:k]
    return [(model.labels[i], float(scores[i])) for i in order]
