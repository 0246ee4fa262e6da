"""The module that becomes the ONNX graph: waveform -> (probabilities, embedding).

The mel front-end is rebuilt from ONNX-friendly operations; it computes the same numbers as
:class:`tagger.frontend.MelFrontend` (eval mode) up to float32 rounding:

* pre-emphasis as two slices, ``x[1:] - 0.97 x[:-1]``;
* centring as a reflect ``Pad`` of ``n_fft // 2`` samples on each side;
* the STFT either as a strided ``Conv`` whose kernels are the windowed DFT basis (``dft``, the
  default: framing and transform in one op) or as the ONNX ``STFT`` operator (``stft``);
* the power spectrum and the Kaldi filterbank. Only the frequency bins that the filterbank weighs
  are computed (bins above ``fmax`` have zero weight, so leaving them out changes nothing).

Every shape is taken from the input tensor, so batch and length stay dynamic in the graph; the time
positional embedding is cropped to the patch count of the input by the model itself.

Each block's attention becomes one ``com.microsoft.MultiHeadAttention`` node (ONNX Runtime's fused
attention), which never holds the ``heads x tokens x tokens`` score matrices: PaSST-S on a 10 s
window peaks at 499 MiB instead of 761 MiB, at the same speed and within 5e-7 of PyTorch.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from tagger.frontend import LOG_OFFSET, NORM_SCALE, NORM_SHIFT, PREEMPHASIS, FrontendConfig
from tagger.model import Attention, AudioTagger, PaSST, logits_to_probabilities
from tagger.options import ExportFrontend, values

FRONTENDS = values(ExportFrontend)


def used_bins(mel_basis: torch.Tensor) -> int:
    """Number of leading frequency bins with a non-zero filterbank weight."""
    nonzero = (mel_basis != 0).any(dim=0).nonzero()
    return int(nonzero.max()) + 1


def padded_window(config: FrontendConfig) -> torch.Tensor:
    """The symmetric Hann window zero-padded (centred) to ``n_fft``, as torch.stft does."""
    window = torch.hann_window(config.win_length, periodic=False, dtype=torch.float64)
    left = (config.n_fft - config.win_length) // 2
    return nn.functional.pad(window, (left, config.n_fft - config.win_length - left))


def dft_kernels(config: FrontendConfig, bins: int) -> torch.Tensor:
    """``[2 * bins, 1, win_length]`` conv kernels: windowed cosines, then windowed negative sines.

    Only the ``win_length`` non-zero window taps are kept; the conv runs on the padded signal shifted
    by the window's left zero margin, so frame ``t`` still covers samples ``t * hop`` onwards.
    """
    left = (config.n_fft - config.win_length) // 2
    n = torch.arange(left, left + config.win_length, dtype=torch.float64)
    k = torch.arange(bins, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(k, n) / config.n_fft
    window = padded_window(config)[left:left + config.win_length]
    basis = torch.cat((torch.cos(phase), -torch.sin(phase))) * window
    return basis.float().unsqueeze(1)


class ExportFrontend(nn.Module):
    """``[batch, samples]`` waveform -> ``[batch, n_mels, frames]`` normalized log-mel, exportable."""

    def __init__(self, config: FrontendConfig, mel_basis: torch.Tensor, kind: str = "dft") -> None:
        super().__init__()
        if kind not in FRONTENDS:
            raise ValueError(f"front-end must be one of {FRONTENDS}")
        self.config = config
        self.kind = kind
        bins = used_bins(mel_basis)
        self.register_buffer("mel_basis", mel_basis[:, :bins].clone())
        if kind == "dft":
            # The power of bin k is re_k^2 + im_k^2: one matmul over the squared conv outputs.
            self.register_buffer("kernels", dft_kernels(config, bins))
            self.register_buffer("mel_basis2", torch.cat((self.mel_basis, self.mel_basis), dim=1))
        else:
            self.register_buffer("window", padded_window(config).float())

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = waveform[:, 1:] - PREEMPHASIS * waveform[:, :-1]
        half = c.n_fft // 2
        x = nn.functional.pad(x.unsqueeze(1), (half, half), mode="reflect")
        if self.kind == "dft":
            margin = (c.n_fft - c.win_length) // 2
            frames = nn.functional.conv1d(x[:, :, margin:x.shape[-1] - margin], self.kernels,
                                          stride=c.hop_length)
            mel = torch.matmul(self.mel_basis2, frames.square())
        else:
            spec = torch.stft(x.squeeze(1), c.n_fft, hop_length=c.hop_length, win_length=c.n_fft,
                              window=self.window, center=False, onesided=True, return_complex=False)
            power = spec[:, : self.mel_basis.shape[1]].square().sum(dim=-1)
            mel = torch.matmul(self.mel_basis, power)
        return (mel.add(LOG_OFFSET).log() + NORM_SHIFT) / NORM_SCALE


class MultiHeadAttention(torch.autograd.Function):
    """Scaled dot-product attention over ``[batch, tokens, dim]`` queries, keys and values (heads
    side by side in ``dim``); exported as ONNX Runtime's fused MultiHeadAttention."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
        batch, tokens, dim = q.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, tokens, num_heads, dim // num_heads).transpose(1, 2)

        out = nn.functional.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        return out.transpose(1, 2).reshape(batch, tokens, dim)

    @staticmethod
    def symbolic(g, q, k, v, num_heads: int):
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=num_heads)
        out.setType(q.type())  # same shape and type as the queries (the exporter cannot infer it)
        return out


class FusedAttention(nn.Module):
    """An eval-mode :class:`tagger.model.Attention` (its Linear layers, shared) as one fused node."""

    def __init__(self, attention: Attention) -> None:
        super().__init__()
        self.qkv, self.proj, self.num_heads = attention.qkv, attention.proj, attention.num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(x.shape[-1], dim=-1)  # the q | k | v layout of Attention's reshape
        return self.proj(MultiHeadAttention.apply(q, k, v, self.num_heads))


def with_fused_attention(passt: PaSST) -> PaSST:
    """A copy of ``passt`` whose blocks attend with :class:`FusedAttention` (weights shared, not copied)."""
    fused = copy.copy(passt)
    fused._modules = dict(passt._modules)
    blocks = []
    for block in passt.blocks:
        block = copy.copy(block)
        block._modules = dict(block._modules)
        block.attn = FusedAttention(block.attn)
        blocks.append(block)
    fused.blocks = nn.Sequential(*blocks)
    return fused


class ExportGraph(nn.Module):
    """Waveform ``[batch, samples]`` -> ``(probabilities [batch, classes], embedding [batch, dim])``.

    ``dtype`` is the transformer's precision (float32, or float16 for CUDA: then the transformer is a
    copy, so ``model`` is not changed); the front-end, the input and the outputs are float32.
    """

    def __init__(self, model: AudioTagger, frontend: str = "dft",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.frontend = ExportFrontend(model.frontend.config, model.frontend.mel_basis, frontend)
        passt = model.passt if dtype == torch.float32 else copy.deepcopy(model.passt).to(dtype)
        self.passt = with_fused_attention(passt)
        self.dtype = dtype
        self.multi_label = model.multi_label

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mel = self.frontend(waveform).unsqueeze(1).to(self.dtype)
        logits, embedding = self.passt(mel)
        logits, embedding = logits.float(), embedding.float()
        return logits_to_probabilities(logits, self.multi_label), embedding
