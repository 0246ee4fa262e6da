"""Waveform -> normalized log-mel spectrogram, computed exactly as PaSST does.

Steps (eval mode): pre-emphasis ``y[n] = x[n+1] - 0.97 x[n]``; centred STFT (n_fft 1024, a symmetric
800-sample Hann window zero-padded to 1024, hop 320, reflect padding); power spectrum; Kaldi mel
filterbank (128 bins, 0-15000 Hz, plus a zero Nyquist column); ``ln(x + 1e-5)``; ``(x + 4.5) / 5``.
Train mode adds a random fmin/fmax jitter of the filterbank and SpecAugment frequency/time masks
(the time mask's width scaled to the input as ``timem`` is to PaSST's 10 s input).

The forward pass takes every shape from its input tensor and never branches on values, so the module
can be traced into an ONNX graph.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torchaudio
from torch import nn

LOG_OFFSET = 1e-5
NORM_SHIFT = 4.5
NORM_SCALE = 5.0
PREEMPHASIS = 0.97
TIMEM_FRAMES = 1000  # the input length (10 s) that ``timem`` is set for


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of the mel front-end; the defaults are PaSST's AudioSet settings."""

    sample_rate: int = 32000
    n_mels: int = 128
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    fmin: float = 0.0
    fmax: float | None = None  # None: sample_rate / 2 - fmax_aug_range / 2 (15000 Hz at 32 kHz)
    freqm: int = 48  # max width of a frequency mask (train mode)
    timem: int = 192  # max width of a time mask on a 10 s input (train mode; scaled to the input)
    fmin_aug_range: int = 10
    fmax_aug_range: int = 2000

    @property
    def eval_fmax(self) -> float:
        if self.fmax is not None:
            return float(self.fmax)
        return float(self.sample_rate // 2 - self.fmax_aug_range // 2)

    def n_frames(self, n_samples: int) -> int:
        """Number of mel frames for ``n_samples`` samples (pre-emphasis drops one sample)."""
        return 1 + (n_samples - 1) // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)


def mel_filterbank(config: FrontendConfig, fmin: float, fmax: float) -> torch.Tensor:
    """Kaldi mel filterbank [n_mels, n_fft // 2 + 1] (the Nyquist column is zero)."""
    banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
        config.n_mels, config.n_fft, float(config.sample_rate), fmin, fmax,
        vtln_low=100.0, vtln_high=-500.0, vtln_warp_factor=1.0,
    )
    return nn.functional.pad(banks, (0, 1), value=0.0)


class MelFrontend(nn.Module):
    """``[batch, samples]`` float waveform -> ``[batch, n_mels, frames]`` normalized log-mel."""

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__()
        self.config = config or FrontendConfig()
        c = self.config
        self.register_buffer(
            "window", torch.hann_window(c.win_length, periodic=False), persistent=False
        )
        self.register_buffer("mel_basis", mel_filterbank(c, c.fmin, c.eval_fmax), persistent=False)

    def power_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        # Pre-emphasis y[t] = x[t + 1] - 0.97 x[t] (PaSST's 2-tap conv, one sample shorter) as a
        # slice: the 1-channel conv1d took 8x longer on CPUs.
        x = waveform[..., 1:] - PREEMPHASIS * waveform[..., :-1]
        spec = torch.stft(
            x, c.n_fft, hop_length=c.hop_length, win_length=c.win_length, window=self.window,
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        )
        return spec.real.square() + spec.imag.square()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        power = self.power_spectrogram(waveform.float())
        mel_basis = self._train_filterbank() if self.training else self.mel_basis
        log_mel = torch.matmul(mel_basis, power).add(LOG_OFFSET).log()
        if self.training:
            log_mel = self._spec_augment(log_mel)
        return (log_mel + NORM_SHIFT) / NORM_SCALE

    def _train_filterbank(self) -> torch.Tensor:
        """Filterbank with PaSST's random band-edge jitter (one draw per batch)."""
        c = self.config
        fmin = c.fmin + int(torch.randint(c.fmin_aug_range, (1,)))
        fmax = c.eval_fmax + c.fmax_aug_range // 2 - int(torch.randint(c.fmax_aug_range, (1,)))
        return mel_filterbank(c, fmin, fmax).to(self.mel_basis.device)

    def _spec_augment(self, log_mel: torch.Tensor) -> torch.Tensor:
        """One random frequency mask and one random time mask per example (set to 0 in log space)."""
        c = self.config
        batch, n_mels, n_frames = log_mel.shape
        timem = round(c.timem * n_frames / TIMEM_FRAMES)
        keep = torch.ones_like(log_mel, dtype=torch.bool)
        for axis, max_width, length in ((1, c.freqm, n_mels), (2, timem, n_frames)):
            if max_width <= 0:
                continue
            width = (torch.rand(batch, device=log_mel.device) * min(max_width, length)).long()
            start = (torch.rand(batch, device=log_mel.device) * (length - width + 1)).long()
            positions = torch.arange(length, device=log_mel.device)
            inside = (positions >= start[:, None]) & (positions < (start + width)[:, None])
            keep &= ~inside.unsqueeze(3 - axis)
        return log_mel * keep
