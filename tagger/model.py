"""PaSST: the Patchout faSt Spectrogram Transformer (Koutini et al., Interspeech 2022).

A ViT over log-mel spectrograms with overlapping patches, separate frequency and time positional
embeddings (shorter inputs crop the time embedding), cls + distillation tokens and patchout. Parameter
names follow the official implementation so its checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from .frontend import FrontendConfig, MelFrontend


@dataclass(frozen=True)
class PaSSTConfig:
    """Architecture and patchout settings. The patch grid is the size of the positional embeddings."""

    freq_patches: int = 12  # 128 mel bins with patch 16, stride 10
    time_patches: int = 99  # 998 frames (10 s) with patch 16, stride 10
    patch_size: int = 16
    stride: int = 10
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_classes: int = 527
    distilled: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    s_patchout_t: int = 0  # time columns dropped in train mode
    s_patchout_f: int = 0  # frequency rows dropped in train mode
    u_patchout: int = 0  # random patches dropped in train mode

    @property
    def num_tokens(self) -> int:
        return 2 if self.distilled else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PaSSTConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def patch_grid(n_mels: int, n_frames: int, patch_size: int, stride: int) -> tuple[int, int]:
    """Patch grid (frequency, time) produced by the patch convolution for an input of this size."""
    return (n_mels - patch_size) // stride + 1, (n_frames - patch_size) // stride + 1


def grid_for_frames(n_frames: int, patch_size: int = 16, stride: int = 10) -> int:
    return (n_frames - patch_size) // stride + 1


PRESETS: dict[str, PaSSTConfig] = {
    # The official PaSST-S geometry: 128 x 998 input (10 s), 12 x 99 patches, 768/12/12.
    "passt-s": PaSSTConfig(),
    # Smaller CPU-friendly sizes, same 10 s grid.
    "passt-small": PaSSTConfig(embed_dim=384, depth=12, num_heads=6),
    "passt-tiny": PaSSTConfig(embed_dim=192, depth=12, num_heads=3),
    "passt-mini": PaSSTConfig(embed_dim=128, depth=4, num_heads=2),
}


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, attn_drop: float, proj_drop: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0
        )
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per example in train mode."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, exact GELU)."""

    def __init__(self, config: PaSSTConfig, drop_path: float) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, config.num_heads, config.attn_drop_rate, config.drop_rate)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, config: PaSSTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, config.embed_dim, config.patch_size, stride=config.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class PaSST(nn.Module):
    """``[batch, 1, n_mels, frames]`` log-mel -> ``(logits [batch, classes], embedding [batch, dim])``."""

    def __init__(self, config: PaSSTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.distilled else None
        self.new_pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, config.freq_patches, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, config.time_patches))
        self.pos_drop = nn.Dropout(config.drop_rate)
        rates = [config.drop_path_rate * i / max(1, config.depth - 1) for i in range(config.depth)]
        self.blocks = nn.Sequential(*(Block(config, rate) for rate in rates))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, config.num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        for tensor in (self.cls_token, self.dist_token, self.new_pos_embed,
                       self.freq_new_pos_embed, self.time_new_pos_embed):
            if tensor is not None:
                nn.init.trunc_normal_(tensor, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        fan_in = self.patch_embed.proj.in_channels * self.config.patch_size ** 2
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def replace_head(self, num_classes: int) -> None:
        """Give the model a freshly initialised head for a new label set."""
        linear = nn.Linear(self.config.embed_dim, num_classes)
        nn.init.trunc_normal_(linear.weight, std=0.02)
        nn.init.zeros_(linear.bias)
        self.head[1] = linear.to(self.head[0].weight.device)
        self.config = replace(self.config, num_classes=num_classes)

    def _add_positions(self, x: torch.Tensor) -> torch.Tensor:
        """Add time (cropped to the input; a random crop in train mode) and frequency embeddings."""
        time_pos = self.time_new_pos_embed
        n_time = x.shape[-1]
        offset = 0
        if self.training and n_time < time_pos.shape[-1]:
            offset = int(torch.randint(time_pos.shape[-1] - n_time + 1, (1,)))
        return x + time_pos[..., offset:offset + n_time] + self.freq_new_pos_embed

    def _structured_patchout(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.s_patchout_t:
            n_time = x.shape[-1]
            keep = torch.randperm(n_time, device=x.device)[: max(1, n_time - c.s_patchout_t)]
            x = x[..., keep.sort().values]
        if c.s_patchout_f:
            n_freq = x.shape[-2]
            keep = torch.randperm(n_freq, device=x.device)[: max(1, n_freq - c.s_patchout_f)]
            x = x[:, :, keep.sort().values, :]
        return x

    def _unstructured_patchout(self, x: torch.Tensor) -> torch.Tensor:
        n_patches = x.shape[1]
        keep = torch.randperm(n_patches, device=x.device)[: max(1, n_patches - self.config.u_patchout)]
        return x[:, keep.sort().values, :]

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """Tokens after the final norm, ``[batch, num_tokens + patches, dim]``."""
        # The patch conv stays in float32 (slow in bf16 on CPUs); the rest runs in the blocks' dtype.
        x = self._add_positions(self.patch_embed(mel)).to(self.cls_token.dtype)
        if self.training:
            x = self._structured_patchout(x)
        x = x.flatten(2).transpose(1, 2)  # frequency-major: token = f * T + t
        if self.training and self.config.u_patchout:
            x = self._unstructured_patchout(x)
        tokens = self.cls_token + self.new_pos_embed[:, :1]
        if self.dist_token is not None:
            tokens = torch.cat((tokens, self.dist_token + self.new_pos_embed[:, 1:]), dim=1)
        x = torch.cat((tokens.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.blocks(self.pos_drop(x))
        return self.norm(x)

    def to_bfloat16(self) -> "PaSST":
        """Cast everything but the patch embedding to bfloat16 (fast inference on AMX CPUs and GPUs)."""
        for name, child in self.named_children():
            if name != "patch_embed":
                child.to(torch.bfloat16)
        for param in (self.cls_token, self.dist_token, self.new_pos_embed):
            if param is not None:
                param.data = param.data.to(torch.bfloat16)
        return self

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.forward_features(mel)
        embedding = x[:, : self.config.num_tokens].mean(dim=1)
        return self.head(embedding), embedding


class AudioTagger(nn.Module):
    """Front-end + PaSST: ``[batch, samples]`` waveform -> ``(logits, embedding)``, plus its labels."""

    def __init__(self, config: PaSSTConfig, frontend: FrontendConfig, labels: list[str],
                 name: str = "unnamed", multi_label: bool = True, passt: PaSST | None = None) -> None:
        super().__init__()
        if len(labels) != config.num_classes:
            raise ValueError(f"{len(labels)} labels for a model with {config.num_classes} classes")
        grid_f, _ = patch_grid(frontend.n_mels, config.patch_size, config.patch_size, config.stride)
        if grid_f != config.freq_patches:
            raise ValueError(
                f"{frontend.n_mels} mel bins give {grid_f} frequency patches, "
                f"the model expects {config.freq_patches}"
            )
        self.frontend = MelFrontend(frontend)
        self.passt = passt if passt is not None else PaSST(config)
        self.labels = list(labels)
        self.name = name
        self.multi_label = multi_label
        self.metadata: dict = {}

    @property
    def config(self) -> PaSSTConfig:
        return self.passt.config

    @property
    def sample_rate(self) -> int:
        return self.frontend.config.sample_rate

    @property
    def max_samples(self) -> int:
        """The longest waveform whose time patches still fit the positional grid."""
        c = self.config
        return (c.time_patches * c.stride + c.patch_size - 1) * self.frontend.config.hop_length

    @property
    def min_samples(self) -> int:
        """The shortest waveform that yields one time patch."""
        return (self.config.patch_size - 1) * self.frontend.config.hop_length + 1

    @property
    def context_seconds(self) -> float:
        """The model's context, in whole tenths of a second (10.0 for the official models)."""
        return math.floor(self.max_samples * 10 / self.sample_rate) / 10

    def forward(self, waveform: torch.Tensor,
                mel_transform: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, samples]`` waveform -> (logits, embedding). The front-end always runs in
        float32, also under autocast; ``mel_transform`` (training: mixup) acts on its output."""
        with torch.autocast(waveform.device.type, enabled=False):
            mel = self.frontend(waveform)
            if mel_transform is not None:
                mel = mel_transform(mel)
        return self.passt(mel.unsqueeze(1))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits_to_probabilities(logits, self.multi_label)


def logits_to_probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Sigmoid for multi-label models, softmax for single-label ones (also in the exported graph)."""
    return logits.sigmoid() if multi_label else logits.softmax(dim=-1)
