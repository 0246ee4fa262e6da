"""Tests for tagger.audio: decoding, downmixing and streaming resampling."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as F

from tagger.audio import (
    MODEL_SAMPLE_RATE,
    AudioInfo,
    StreamResampler,
    downmix,
    load_audio,
    probe,
    stream_audio,
)
from tagger.errors import AudioDecodeError

RATE_PAIRS = [
    (8000, 32000),
    (11025, 32000),
    (16000, 32000),
    (22050, 32000),
    (44100, 32000),
    (48000, 32000),
    (88200, 32000),
    (96000, 32000),
    (32000, 48000),
    (48000, 44100),
    (44056, 32000),  # NTSC-pulled 44.1k: reduces to 5507/4000
    (37800, 32000),
]


def tone(rate: int, seconds: float, freq: float = 1000.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp_with_noise(rate: int, length: int, seed: int) -> np.ndarray:
    """A 100 Hz -> Nyquist chirp plus white noise: energy at every frequency."""
    t = np.arange(length) / rate
    sweep = np.sin(2 * np.pi * (100 * t + (rate / 2 - 100) * t**2 / (2 * max(t[-1], 1e-9))))
    noise = np.random.default_rng(seed).standard_normal(length)
    return (0.4 * sweep + 0.2 * noise).astype(np.float32)


def resample_in_blocks(x: np.ndarray, orig: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """Run StreamResampler over random block sizes (including empty and 1-sample blocks)."""
    resampler = StreamResampler(orig, new)
    outputs, start = [], 0
    while start < len(x):
        size = int(rng.choice([0, 1, 2, 3, 17, 441, 1000, int(rng.integers(1, 20000))]))
        outputs.append(resampler.process(x[start : start + size]))
        start += size
    outputs.append(resampler.flush())
    assert all(out.dtype == np.float32 and out.ndim == 1 for out in outputs)
    return np.concatenate(outputs)


def torchaudio_resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    return F.resample(torch.from_numpy(x), orig, new).numpy()


def peak_frequency(x: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin of the middle of ``x`` (edges skipped)."""
    middle = x[len(x) // 8 : -len(x) // 8]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    return float(np.argmax(spectrum) * rate / len(middle))


# --- StreamResampler -------------------------------------------------------------


@pytest.mark.parametrize("orig, new", RATE_PAIRS)
def test_stream_resampler_matches_torchaudio(orig: int, new: int) -> None:
    x = chirp_with_noise(orig, orig + 1237, seed=orig)
    expected = torchaudio_resample(x, orig, new)
    got = resample_in_blocks(x, orig, new, np.random.default_rng(new + orig))
    assert len(got) == len(expected) == math.ceil(new * len(x) / orig)
    assert np.max(np.abs(got - expected)) < 1e-5


@pytest.mark.parametrize("orig", [44100, 96000, 8000])
@pytest.mark.parametrize("length", [1, 5, 40, 441, 442])
def test_stream_resampler_short_signals(orig: int, length: int) -> None:
    x = chirp_with_noise(orig, length, seed=length)
    expected = torchaudio_resample(x, orig, 32000)
    got = resample_in_blocks(x, orig, 32000, np.random.default_rng(length))
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) < 1e-5


def test_stream_resampler_coprime_rates_stay_small() -> None:
    # 47999 and 32000 are coprime: torchaudio's dense kernel would be 32000 x 48019 (6 GB).
    tracemalloc.start()
    resampler = StreamResampler(47999, 32000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50_000_000
    x = tone(47999, 3.0)
    got = np.concatenate([resampler.process(x[:70000]), resampler.process(x[70000:]), resampler.flush()])
    assert len(got) == math.ceil(32000 * len(x) / 47999)
    assert abs(peak_frequency(got, 32000) - 1000.0) < 2.0
    middle = got[8000:-8000]
    assert float(np.sqrt(np.mean(middle**2))) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)


def test_stream_resampler_without_input_is_empty() -> None:
    resampler = StreamResampler(44100, 32000)
    assert resampler.process(np.zeros(0, dtype=np.float32)).size == 0
    assert resampler.flush().size == 0


def test_stream_resampler_starts_over_after_flush() -> None:
    x = chirp_with_noise(22050, 5000, seed=1)
    resampler = StreamResampler(22050, 32000)
    first = np.concatenate([resampler.process(x), resampler.flush()])
    second = np.concatenate([resampler.process(x), resampler.flush()])
    np.testing.assert_array_equal(first, second)


def test_stream_resampler_passes_through_equal_rates() -> None:
    x = chirp_with_noise(32000, 3000, seed=2)
    resampler = StreamResampler(32000, 32000)
    got = np.concatenate([resampler.process(x[:1000]), resampler.process(x[1000:]), resampler.flush()])
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("rates", [(0, 32000), (44100, -1)])
def test_stream_resampler_rejects_bad_rates(rates: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        StreamResampler(*rates)


# --- downmix -----------------------------------------------------------------------


def test_downmix_averages_channels() -> None:
    left = tone(16000, 0.1)
    assert np.max(np.abs(downmix(np.stack([left, -left], axis=1)))) < 1e-7
    quad = np.stack([left, left, 3 * left, -left], axis=1)
    np.testing.assert_allclose(downmix(quad), left, atol=1e-6)


def test_downmix_keeps_mono() -> None:
    mono = tone(16000, 0.1)
    out = downmix(mono[:, None])
    assert out.dtype == np.float32 and out.shape == mono.shape
    np.testing.assert_array_equal(out, mono)


# --- decoding ----------------------------------------------------------------------

# (container, subtype, extension, sample rate, channels); MP3 is at most stereo.
# No 6-channel Vorbis: libvorbis treats channel 6 of 5.1 as LFE and drops the 1 kHz tone.
FORMAT_CASES = [
    ("WAV", "PCM_16", "wav", 8000, 1),
    ("WAV", "FLOAT", "wav", 96000, 8),
    ("WAV", "PCM_24", "wav", 48000, 6),
    ("FLAC", "PCM_16", "flac", 44100, 2),
    ("FLAC", "PCM_24", "flac", 88200, 6),
    ("FLAC", "PCM_16", "flac", 11025, 8),
    ("OGG", "VORBIS", "ogg", 22050, 2),
    ("OGG", "VORBIS", "ogg", 48000, 8),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100, 2),
    ("MP3", "MPEG_LAYER_III", "mp3", 16000, 1),
]


def write_tone_file(path: Path, fmt: str, subtype: str, rate: int, channels: int, seconds: float) -> None:
    """Every channel holds the same 1 kHz tone at a different level (mean level 0.4)."""
    levels = np.linspace(0.2, 0.6, channels) if channels > 1 else np.array([0.4])
    frames = tone(rate, seconds, amplitude=1.0)[:, None] * levels[None, :].astype(np.float32)
    sf.write(path, frames, rate, format=fmt, subtype=subtype)


@pytest.mark.parametrize("fmt, subtype, ext, rate, channels", FORMAT_CASES)
def test_load_audio_formats(tmp_path: Path, fmt: str, subtype: str, ext: str, rate: int, channels: int) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile without {fmt}")
    path = tmp_path / f"tone.{ext}"
    write_tone_file(path, fmt, subtype, rate, channels, seconds=1.5)

    info = probe(path)
    assert (info.sample_rate, info.channels, info.format) == (rate, channels, fmt)
    assert info.path == str(path)

    decoded_frames = len(sf.read(path, dtype="float32")[0])
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == math.ceil(MODEL_SAMPLE_RATE * decoded_frames / rate)
    assert abs(peak_frequency(audio, MODEL_SAMPLE_RATE) - 1000.0) < 2.0
    rms = float(np.sqrt(np.mean(audio[len(audio) // 4 : -len(audio) // 4] ** 2)))
    lossy = fmt in ("OGG", "MP3")
    assert rms == pytest.approx(0.4 / math.sqrt(2), rel=0.1 if lossy else 0.01)
    if not lossy:
        assert decoded_frames == round(1.5 * rate)


def test_load_audio_matches_torchaudio_on_wav(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    frames = np.stack([chirp_with_noise(44100, 30000, 3), tone(44100, 30000 / 44100)], axis=1)
    sf.write(path, frames, 44100, subtype="FLOAT")
    expected = torchaudio_resample(frames.mean(axis=1, dtype=np.float32), 44100, 32000)
    got = load_audio(path)
    assert len(got) == len(expected)
    assert np.max(np.abs(got - expected)) < 1e-5


def test_load_audio_target_rate_equal_to_file_rate(tmp_path: Path) -> None:
    path = tmp_path / "native.flac"
    x = tone(32000, 0.5)
    sf.write(path, x, 32000, subtype="PCM_24")
    np.testing.assert_allclose(load_audio(path), x, atol=1e-6)


def test_stream_audio_blocks_equal_load_audio(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    rate, seconds = 44100, 20.0
    t = np.arange(round(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3 * t * t)).astype(np.float32)
    sf.write(path, np.stack([x, 0.5 * x], axis=1), rate, subtype="FLOAT")

    whole = load_audio(path)
    blocks = list(stream_audio(path, block_seconds=0.73))
    assert len(blocks) > 20
    assert all(b.dtype == np.float32 and b.ndim == 1 and b.size > 0 for b in blocks)
    assert max(b.size for b in blocks) <= 0.73 * MODEL_SAMPLE_RATE + 64
    np.testing.assert_allclose(np.concatenate(blocks), whole, rtol=0, atol=1e-6)
    assert len(whole) == math.ceil(MODEL_SAMPLE_RATE * seconds)


def test_stream_audio_other_target_rate(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(22050, 1.0), 22050)
    audio = np.concatenate(list(stream_audio(path, target_rate=16000, block_seconds=0.1)))
    assert len(audio) == 16000
    assert abs(peak_frequency(audio, 16000) - 1000.0) < 2.0


# --- probe and errors ------------------------------------------------------------


def test_probe_reports_header(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    sf.write(path, np.zeros((48000, 2), dtype=np.float32), 24000)
    info = probe(path)
    assert info == AudioInfo(path=str(path), sample_rate=24000, channels=2, frames=48000, format="FLAC")
    assert info.duration == pytest.approx(2.0)


def bad_input(tmp_path: Path, kind: str) -> Path:
    """Create (or not) a file that must not decode."""
    if kind == "missing":
        return tmp_path / "missing.wav"
    if kind == "directory":
        path = tmp_path / "folder.wav"
        path.mkdir()
        return path
    path = tmp_path / f"{kind}.wav"
    if kind == "text":
        path.write_text("this is not audio\nreally not\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated_header":
        good = tmp_path / "good.wav"
        sf.write(good, tone(16000, 0.2), 16000)
        path.write_bytes(good.read_bytes()[:30])
    elif kind == "no_frames":
        sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000)
    elif kind == "random_mp3":
        path = path.with_suffix(".mp3")
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


BAD_KINDS = ["missing", "directory", "text", "empty", "truncated_header", "no_frames", "random_mp3"]


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("reader", [probe, load_audio, stream_audio])
def test_bad_inputs_raise_one_line_decode_error(tmp_path: Path, kind: str, reader) -> None:
    path = bad_input(tmp_path, kind)
    with pytest.raises(AudioDecodeError) as caught:
        reader(path)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert path.name in message
    assert "cannot decode audio" in message


def test_a_decode_error_mid_stream_ends_the_stream_with_a_warning(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "breaks.wav"
    sf.write(path, tone(16000, 2.0), 16000)
    warnings: list[str] = []
    blocks = stream_audio(path, block_seconds=0.5, warnings=warnings)
    assert next(blocks).size > 0

    def broken_read(self, *args, **kwargs):
        raise sf.LibsndfileError(1, prefix="Error reading: ")

    monkeypatch.setattr(sf.SoundFile, "read", broken_read)
    list(blocks)  # the resampler's tail, then the end: no exception
    assert len(warnings) == 1 and warnings[0].startswith("decoding stopped after 0.5 s of the 2.0 s announced")


def test_a_decode_error_before_any_audio_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "breaks.wav"
    sf.write(path, tone(16000, 2.0), 16000)
    blocks = stream_audio(path, block_seconds=0.5)
    monkeypatch.setattr(sf.SoundFile, "read", lambda self, *a, **k: (_ for _ in ()).throw(
        sf.LibsndfileError(1, prefix="Error reading: ")))
    with pytest.raises(AudioDecodeError) as caught:
        list(blocks)
    assert path.name in str(caught.value) and "\n" not in str(caught.value)


def test_unreadable_file_raises_decode_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, tone(16000, 0.2), 16000)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # tests may run as root
    with pytest.raises(AudioDecodeError, match="locked.wav: cannot decode audio \\(permission denied\\)"):
        probe(path)


def test_a_corrupt_flac_gives_what_decodes_and_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.flac"
    sf.write(path, tone(44100, 5.0), 44100, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    audio = np.concatenate(list(stream_audio(path, block_seconds=0.5, warnings=warnings)))
    assert 1.0 < len(audio) / MODEL_SAMPLE_RATE < 5.0  # the part before the damage
    assert len(warnings) == 1 and "of the 5.0 s announced" in warnings[0] and "\n" not in warnings[0]


def test_module_does_not_import_torch() -> None:
    code = "import sys, tagger.audio; sys.exit('torch' in sys.modules or 'torchaudio' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
