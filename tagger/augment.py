"""Training augmentations: what a training clip goes through before the model sees it.

Waveform side (in the data loader, per clip, seeded by the clip's draw so a resumed run sees the
same audio): speed change, a random recording-condition chain, background hiss, gain and a circular
roll. Spectrogram side (in the training step, per batch): mixup. (SpecAugment masks and the mel
filterbank jitter live in the front-end's train mode; patchout is part of the model.)

Torch is imported where it is used, so that the command line can read the option texts cheaply.

The recording-condition chain imitates how real recordings differ from clean sources: microphone
and room colour (random peak and shelf equalisation), band-limited devices (high- and low-pass),
low sample rates (8-22 kHz and back), room reverberation, compression, lossy codecs (MP3, GSM)
and mild clipping. It is built with Spotify's pedalboard, an optional training extra
(``pip install 'tagger[augment]'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from typing import TYPE_CHECKING

import numpy as np

from .errors import TaggerError

if TYPE_CHECKING:
    import torch

GAIN_DB = (-7.0, 6.0)
SPEED_RANGE = (0.9, 1.1)  # playback speed: pitch and tempo change together, as with a tape or a sampler
LOW_RATES = (8000, 12000, 16000, 24000)  # simple ratios to 32 kHz keep resampling cheap
HISS_SNR_DB = (15.0, 45.0)
CONDITIONS_HELP = ("Share of training clips given random recording conditions: equalisation, band-limits, "
                   "8-24 kHz sample rates, reverb, compression, MP3/GSM codecs, clipping, hiss "
                   "(and, in training, speed). Needs pedalboard: pip install 'tagger[augment]'.")
MISSING_PEDALBOARD = "--conditions needs pedalboard (a training extra): pip install 'tagger[augment]'"


def check_conditions_available() -> None:
    """Fail with one line when the recording-condition chain cannot be built here."""
    try:
        import pedalboard  # noqa: F401
    except ImportError:
        raise TaggerError(MISSING_PEDALBOARD) from None


@dataclass(frozen=True)
class Augment:
    """Waveform augmentations of training clips (the probabilities are per clip)."""

    gain_db: tuple[float, float] | None = GAIN_DB
    roll_samples: int = 0
    conditions: float = 0.0  # probability of speed change, recording-condition chain and hiss


NO_AUGMENT = Augment(gain_db=None)


def _resample(audio: np.ndarray, orig: int, new: int) -> np.ndarray:
    import torch
    import torchaudio

    wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return torchaudio.functional.resample(wave, orig, new).numpy()


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster (band-limited resampling; the ratio is rounded to a
    fraction with a small denominator so that the polyphase resampler stays cheap)."""
    ratio = Fraction(factor).limit_denominator(20)
    return audio if ratio == 1 else _resample(audio, ratio.numerator, ratio.denominator)


def low_rate(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """``audio`` as if recorded at ``rate``: band-limited to its Nyquist frequency, same length."""
    ratio = Fraction(rate, sample_rate)
    down = _resample(audio, ratio.denominator, ratio.numerator)
    return np.pad(_resample(down, ratio.numerator, ratio.denominator), (0, len(audio)))[: len(audio)]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def condition_chain(rng: np.random.Generator, sample_rate: int):
    """A random recording-condition chain (a ``pedalboard.Pedalboard``); every stage is optional."""
    import pedalboard as pb

    nyquist = sample_rate / 2
    stages: list = []
    if rng.random() < 0.8:  # microphone and room colour
        for _ in range(int(rng.integers(1, 4))):
            stages.append(pb.PeakFilter(cutoff_frequency_hz=_log_uniform(rng, 80, min(10000, 0.9 * nyquist)),
                                        gain_db=float(rng.uniform(-12, 12)), q=_log_uniform(rng, 0.4, 3.0)))
        if rng.random() < 0.5:
            stages.append(pb.LowShelfFilter(cutoff_frequency_hz=_log_uniform(rng, 80, 400), gain_db=float(rng.uniform(-10, 8))))
        if rng.random() < 0.5:
            stages.append(pb.HighShelfFilter(cutoff_frequency_hz=_log_uniform(rng, 2000, 8000), gain_db=float(rng.uniform(-12, 6))))
    if rng.random() < 0.3:  # small speakers and cheap microphones lose the lows
        stages.append(pb.HighpassFilter(cutoff_frequency_hz=_log_uniform(rng, 80, 500)))
    if rng.random() < 0.3:  # ... and the highs
        stages.append(pb.LowpassFilter(cutoff_frequency_hz=_log_uniform(rng, 2500, min(12000, 0.9 * nyquist))))
    if rng.random() < 0.4:
        wet = float(rng.uniform(0.05, 0.45))
        stages.append(pb.Reverb(room_size=float(rng.uniform(0.1, 0.9)), damping=float(rng.uniform(0.1, 0.9)),
                                wet_level=wet, dry_level=float(1.0 - 0.5 * wet), width=0.0))
    if rng.random() < 0.3:
        stages.append(pb.Compressor(threshold_db=float(rng.uniform(-35, -10)), ratio=float(rng.uniform(2, 10)),
                                    attack_ms=float(rng.uniform(1, 30)), release_ms=float(rng.uniform(50, 300))))
    codec = rng.random()
    if codec < 0.15:
        stages.append(pb.MP3Compressor(vbr_quality=float(rng.uniform(2, 9))))
    elif codec < 0.2:
        stages.append(pb.GSMFullRateCompressor())  # telephone: 8 kHz, 13 kbit/s
    if rng.random() < 0.1:
        stages.append(pb.Distortion(drive_db=float(rng.uniform(3, 15))))
    return pb.Pedalboard(stages)


def add_hiss(rng: np.random.Generator, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Add white noise, or noise low-passed somewhere between 150 Hz and 8 kHz (hiss to rumble),
    at a random signal-to-noise ratio."""
    import pedalboard as pb

    power = float(np.mean(audio.astype(np.float64) ** 2))
    if power == 0.0:
        return audio
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    if rng.random() < 0.6:
        colour = pb.LowpassFilter(cutoff_frequency_hz=_log_uniform(rng, 150, min(8000, 0.9 * sample_rate / 2)))
        noise = colour(noise[None, :], sample_rate)[0]
    noise *= np.float32(np.sqrt(power / (np.mean(noise.astype(np.float64) ** 2) + 1e-30)
                                / 10 ** (rng.uniform(*HISS_SNR_DB) / 10)))
    return (audio + noise).astype(np.float32)


def recording_conditions(rng: np.random.Generator, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` as if recorded elsewhere: a random chain, then (sometimes) hiss; same length."""
    chain = condition_chain(rng, sample_rate)
    out = chain(audio[None, :].astype(np.float32), sample_rate)[0] if len(chain) else audio
    if rng.random() < 0.35:  # recorded or stored at a low sample rate
        low = [rate for rate in LOW_RATES if rate < sample_rate]
        if low:
            out = low_rate(out, sample_rate, int(rng.choice(low)))
    if rng.random() < 0.3:
        out = add_hiss(rng, out, sample_rate)
    out = np.nan_to_num(out[: len(audio)], nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return (out / peak if peak > 1.0 else out).astype(np.float32)


def augment_clip(augment: Augment, rng: np.random.Generator, audio: np.ndarray, window: int,
                 sample_rate: int) -> np.ndarray:
    """Crop ``window`` samples from ``audio`` (at a random offset) and augment them; the result has
    exactly ``window`` samples (short clips are zero-padded at the end)."""
    conditions = augment.conditions > 0 and rng.random() < augment.conditions
    if conditions:
        factor = float(rng.uniform(*SPEED_RANGE))
        span = min(len(audio), int(np.ceil(window * factor)) + 64)  # what the crop needs, at most
        start = int(rng.integers(0, len(audio) - span + 1))
        clip = change_speed(audio[start:start + span], factor)[:window]
        clip = recording_conditions(rng, clip, sample_rate)
    else:
        start = int(rng.integers(0, max(0, len(audio) - window) + 1))
        clip = audio[start:start + window]
    if augment.gain_db:
        clip = clip * np.float32(10.0 ** (rng.uniform(*augment.gain_db) / 20.0))
    if augment.roll_samples:
        limit = augment.roll_samples
        clip = np.roll(clip, int(rng.integers(-limit, limit + 1)))
    return np.pad(clip, (0, window - len(clip))).astype(np.float32)


@dataclass(frozen=True)
class Mixup:
    """One mixup draw for a batch: example i becomes ``weight[i] * x[i] + (1 - weight[i]) *
    x[partner[i]]``. The same draw mixes the spectrograms and the targets."""

    weight: torch.Tensor  # [batch], each at least 0.5
    partner: torch.Tensor  # [batch] indices into the batch

    @classmethod
    def draw(cls, batch: int, alpha: float, device: torch.device) -> "Mixup":
        """Weights ~ Beta(alpha, alpha), folded to >= 0.5; partners a random permutation."""
        import torch

        weight = torch.distributions.Beta(alpha, alpha).sample((batch,)).to(device)
        return cls(torch.maximum(weight, 1.0 - weight), torch.randperm(batch, device=device))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.view(-1, *([1] * (x.dim() - 1)))
        return weight * x + (1.0 - weight) * x[self.partner]
