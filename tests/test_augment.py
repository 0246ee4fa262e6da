"""Training augmentations (`tagger.augment`): what they do to real audio, seeded exactness, and the
message when the optional pedalboard extra is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tagger.audio import load_audio
from tagger.augment import (NO_AUGMENT, Augment, augment_clip, change_speed, check_conditions_available,
                            low_rate, recording_conditions)
from tagger.corpus.mix import ClipMaker, Pools
from tagger.corpus.source import Source
from tagger.errors import TaggerError

RATE = 32000
EXAMPLE = Path(__file__).resolve().parents[1] / "tagger" / "assets" / "example.ogg"


@pytest.fixture(scope="module")
def example() -> np.ndarray:
    return load_audio(EXAMPLE, RATE)


def _band_energy(audio: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def _tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def test_without_augmentation_a_clip_is_a_plain_crop(example: np.ndarray) -> None:
    window = 3 * RATE
    clip = augment_clip(NO_AUGMENT, np.random.default_rng(4), example, window, RATE)
    start = int(np.random.default_rng(4).integers(0, len(example) - window + 1))
    np.testing.assert_array_equal(clip, example[start:start + window])
    short = augment_clip(NO_AUGMENT, np.random.default_rng(4), example[:RATE], window, RATE)
    assert len(short) == window and not short[RATE:].any()


def test_recording_conditions_are_seeded_and_keep_length_and_range(example: np.ndarray) -> None:
    augment = Augment(roll_samples=RATE // 4, conditions=1.0)
    clips = [augment_clip(augment, np.random.default_rng([0, draw]), example, 4 * RATE, RATE) for draw in range(12)]
    again = augment_clip(augment, np.random.default_rng([0, 3]), example, 4 * RATE, RATE)
    np.testing.assert_array_equal(again, clips[3])
    for clip in clips:
        assert clip.shape == (4 * RATE,) and clip.dtype == np.float32
        assert np.isfinite(clip).all() and np.abs(clip).max() <= 10 ** (6 / 20) + 1e-6
    # twelve draws give twelve different spectral balances (equalisation, filters, rates)
    tilts = [_band_energy(c, 2000, 16000) / (_band_energy(c, 0, 2000) + 1e-12) for c in clips]
    assert len({round(t, 6) for t in tilts}) == len(tilts)
    assert max(tilts) / min(tilts) > 10


def test_a_low_sample_rate_removes_what_lies_above_its_nyquist_frequency() -> None:
    for rate in (8000, 12000, 16000, 24000):
        high, low = _tone(0.6 * rate), _tone(0.3 * rate)
        assert len(low_rate(high, RATE, rate)) == len(high)
        assert _band_energy(low_rate(high, RATE, rate), 0, RATE / 2) < 5e-3 * _band_energy(high, 0, RATE / 2)  # about -29 dB
        kept = low_rate(low, RATE, rate)
        assert _band_energy(kept, 0, RATE / 2) > 0.9 * _band_energy(low, 0, RATE / 2)


def test_a_speed_change_moves_pitch_and_duration_together() -> None:
    faster = change_speed(_tone(1000.0, 2.0), 1.1)
    assert abs(len(faster) - 2 * RATE / 1.1) < 2
    peak = np.fft.rfftfreq(len(faster), 1 / RATE)[np.argmax(np.abs(np.fft.rfft(faster)))]
    assert abs(peak - 1100) < 5


def test_conditions_leave_silence_silent_and_tolerate_tiny_inputs() -> None:
    rng = np.random.default_rng(0)
    assert not recording_conditions(rng, np.zeros(RATE, np.float32), RATE).any()
    assert recording_conditions(rng, np.full(10, 0.1, np.float32), RATE).shape == (10,)


def test_corpus_conditions_change_the_sound_not_the_mix_and_spare_exact_signals(example: np.ndarray) -> None:
    sources = [Source(Path(f"/nowhere/{i}.wav"), ("Piano",), "pkg", f"{i}.wav", "MIT", f"g{i}") for i in range(3)]
    sources.append(Source(Path("/nowhere/sine.wav"), ("Sine wave",), "procedural", "sine", "MIT", "sine"))
    audio = [example[i * RATE:(i + 4) * RATE] for i in range(3)] + [_tone(440.0, 4.0)]
    plain = ClipMaker(Pools(sources), audio, seed=3, split_code=0)
    conditioned = ClipMaker(Pools(sources), audio, seed=3, split_code=0, conditions=1.0)
    changed = varied = 0
    for index in range(16):
        a, b = plain.make(index), conditioned.make(index)
        assert a.labels == b.labels and a.parts == b.parts and len(a.audio) == len(b.audio)
        exact = any(sources[part.source].package == "procedural" for part in a.parts)
        if exact:
            np.testing.assert_array_equal(a.audio, b.audio)
        else:
            varied += 1
            changed += not np.array_equal(a.audio, b.audio)
    assert varied >= 4 and changed >= varied - 1  # a chain may (rarely) draw no stage at all


def test_a_missing_pedalboard_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pedalboard", None)
    with pytest.raises(TaggerError, match=r"pip install 'tagger\[augment\]'"):
        check_conditions_available()


def test_one_mixup_draw_mixes_spectrograms_and_targets_alike(example: np.ndarray) -> None:
    import torch

    from tagger.augment import Mixup
    from tagger.frontend import MelFrontend

    torch.manual_seed(3)
    crops = torch.from_numpy(np.stack([example[i * RATE:(i + 2) * RATE] for i in range(0, 18, 3)]))
    mel = MelFrontend().eval()(crops)
    targets = torch.eye(len(crops))
    mix = Mixup.draw(len(crops), 0.3, torch.device("cpu"))
    assert bool((mix.weight >= 0.5).all()) and sorted(mix.partner.tolist()) == list(range(len(crops)))
    mixed_mel, mixed_targets = mix(mel), mix(targets)
    for i, (w, j) in enumerate(zip(mix.weight.tolist(), mix.partner.tolist())):
        assert torch.allclose(mixed_mel[i], w * mel[i] + (1 - w) * mel[j], atol=1e-6)
        assert mixed_targets[i].sum().item() == pytest.approx(1.0)
        assert mixed_targets[i, i].item() >= 0.5  # each clip stays mostly itself
        assert mixed_targets[i, j].item() == pytest.approx(1 - w if j != i else 1.0)


@pytest.mark.parametrize("seconds", [5, 10])
def test_the_time_mask_scales_with_the_input_as_timem_is_to_10_s(example: np.ndarray, seconds: int) -> None:
    import torch

    from tagger.frontend import FrontendConfig, MelFrontend

    torch.manual_seed(0)
    frontend = MelFrontend(FrontendConfig(freqm=0, fmin_aug_range=1, fmax_aug_range=2)).train()
    crop = torch.from_numpy(example[: seconds * RATE]).expand(64, -1)
    masked = (frontend(crop) == 4.5 / 5).all(dim=1)  # a masked column is 0 in log space, 0.9 normalized
    widths = masked.sum(dim=1)
    limit = round(192 * seconds / 10)
    assert int(widths.max()) < limit and int(widths.max()) > limit * 0.8


def test_the_front_end_stays_float32_under_autocast() -> None:
    import torch

    from tagger.model import PRESETS, AudioTagger
    from tagger.frontend import FrontendConfig

    torch.manual_seed(0)
    model = AudioTagger(PRESETS["passt-mini"], FrontendConfig(), [f"c{i}" for i in range(527)]).eval()
    wave = torch.from_numpy(_tone(440.0, 2.0))[None]
    seen = []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(wave, mel_transform=lambda mel: seen.append(mel) or mel)
    assert seen[0].dtype == torch.float32
    assert torch.equal(seen[0], model.frontend(wave))
