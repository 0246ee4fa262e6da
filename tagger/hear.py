"""The HEAR API (https://hearbenchmark.com/hear-api.html) for tagger's models, as hear21passt offers
it for PaSST::

    from tagger import hear
    model = hear.load_model()                          # or a .pt file / a name from tagger.available_models()
    scene = hear.get_scene_embeddings(audio, model)    # audio: [n_sounds, n_samples] at model.sample_rate
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)

An embedding is PaSST's token embedding (the mean of its cls and distillation tokens) followed by the
class logits (768 + 527 = 1295 numbers for PaSST-S, as hear21passt's). A scene embedding is the mean
over windows of the model's context (hop: half of it); timestamp embeddings come from
``TIMESTAMP_WINDOW_S`` windows centred every ``TIMESTAMP_HOP_MS`` (the audio is zero-padded at both
ends), with timestamps in milliseconds.
"""

from __future__ import annotations

import torch
from torch import nn

from .loading import load_model as load_tagger_model
from .model import AudioTagger

TIMESTAMP_HOP_MS = 50.0
TIMESTAMP_WINDOW_S = 1.0
BATCH = 16  # windows per model call


class HearModel(nn.Module):
    """A tagger model with the attributes the HEAR API requires."""

    def __init__(self, tagger: AudioTagger) -> None:
        super().__init__()
        self.tagger = tagger.eval()
        self.sample_rate = tagger.sample_rate
        self.scene_embedding_size = tagger.config.embed_dim + tagger.config.num_classes
        self.timestamp_embedding_size = self.scene_embedding_size

    @torch.inference_mode()
    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        """``[n, samples]`` windows -> ``[n, embedding size]`` (embedding, then logits)."""
        short = self.tagger.min_samples - windows.shape[-1]
        if short > 0:
            windows = nn.functional.pad(windows, (0, short))
        out = []
        for batch in windows.split(BATCH):
            logits, embedding = self.tagger(batch.float())
            out.append(torch.cat([embedding, logits], dim=-1).float())
        return torch.cat(out)


def load_model(model_file_path: str = "") -> HearModel:
    """The model at ``model_file_path`` (a .pt file or a model name); the embedded one when empty."""
    return HearModel(load_tagger_model(model_file_path or None, show_progress=False))


def _check(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if audio.ndim != 2:
        raise ValueError(f"audio must be [n_sounds, n_samples], not {tuple(audio.shape)}")
    return audio.to(next(model.parameters()).device)


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """``[n_sounds, n_samples]`` -> ``[n_sounds, model.scene_embedding_size]``."""
    audio = _check(audio, model)
    length, window = audio.shape[1], model.tagger.max_samples
    hop = window // 2
    starts = list(range(0, max(1, length - window + 1), hop))
    if starts[-1] + window < length:
        starts.append(length - window)  # the end of the sound, in a last full window
    windows = torch.stack([audio[:, s:s + window] for s in starts], dim=1)  # [n, windows, samples]
    embeddings = model.embed(windows.reshape(-1, windows.shape[-1]))
    return embeddings.reshape(audio.shape[0], len(starts), -1).mean(dim=1)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n_sounds, n_samples]`` -> (``[n_sounds, n_timestamps, size]``, timestamps ``[n_sounds,
    n_timestamps]`` in ms, the centres of the windows)."""
    audio = _check(audio, model)
    rate = model.sample_rate
    window = min(int(TIMESTAMP_WINDOW_S * rate), model.tagger.max_samples)
    hop = int(TIMESTAMP_HOP_MS * rate / 1000)
    padded = nn.functional.pad(audio, (window // 2, window - window // 2))
    count = audio.shape[1] // hop + 1
    frames = padded.unfold(1, window, hop)[:, :count]  # [n, count, window]: centred on k * hop
    embeddings = model.embed(frames.reshape(-1, window)).reshape(audio.shape[0], count, -1)
    timestamps = (torch.arange(count, device=audio.device) * hop * 1000.0 / rate).expand(audio.shape[0], count)
    return embeddings, timestamps
