"""Procedural test signals: sine tones, white and pink noise, sirens, DTMF dialing."""

from __future__ import annotations

import numpy as np

from tagger.corpus.dsp import SR, fade

DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
DIAL_TONES = ((350.0, 440.0), (425.0,), (400.0, 450.0))  # North America, Europe, UK


def dtmf_pair(key: str) -> tuple[float, float]:
    """(row, column) frequencies of a DTMF key."""
    for row, keys in enumerate(DTMF_KEYS):
        if key in keys:
            return DTMF_ROWS[row], DTMF_COLS[keys.index(key)]
    raise ValueError(f"not a DTMF key: {key!r}")


def tone(freqs: tuple[float, ...] | list[float], seconds: float, amplitudes: list[float] | None = None) -> np.ndarray:
    """Sum of steady sines, each at amplitude 1 unless given; ``round(seconds * SR)`` samples."""
    t = np.arange(round(seconds * SR)) / SR
    amps = amplitudes or [1.0] * len(freqs)
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps)).astype(np.float32)


def sweep(freq: np.ndarray, harmonics: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """A tone following the instantaneous frequency ``freq`` (Hz per sample), with harmonics."""
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(harmonics) if a).astype(np.float32)


def sine_clip(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A steady tone, a slow glide, or a few consecutive tones, all within 80-8000 Hz."""
    kind = rng.choice(["steady", "glide", "sequence"], p=[0.5, 0.25, 0.25])
    n = int(seconds * SR)
    if kind == "steady":
        freq = np.full(n, _log_uniform(rng, 80, 8000))
    elif kind == "glide":
        start, stop = _log_uniform(rng, 80, 8000), _log_uniform(rng, 80, 8000)
        freq = np.geomspace(start, stop, n)
    else:
        count = int(rng.integers(2, 6))
        edges = np.linspace(0, n, count + 1).astype(int)
        freq = np.concatenate([np.full(b - a, _log_uniform(rng, 80, 8000)) for a, b in zip(edges, edges[1:])])
        return _gated_sequence(sweep(freq), edges, rng)
    return fade(sweep(freq), 0.02, 0.05)


def _gated_sequence(signal: np.ndarray, edges: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fade each tone of a sequence in and out, leaving a short random gap between tones."""
    out = np.zeros_like(signal)
    for a, b in zip(edges, edges[1:]):
        gap = int(rng.uniform(0, 0.15) * SR)
        out[a : b - gap] = fade(signal[a : b - gap], 0.01, 0.01)
    return out


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def white_noise(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Gaussian white noise (flat spectrum)."""
    return rng.standard_normal(int(seconds * SR)).astype(np.float32)


def pink_noise(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise with a 1/f power spectrum (-3 dB per octave), shaped in the frequency domain."""
    n = int(seconds * SR)
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    signal = np.fft.irfft(spectrum, n)
    return (signal / np.std(signal)).astype(np.float32)


def siren_frequency(rng: np.random.Generator, kind: str, seconds: float) -> np.ndarray:
    """Instantaneous frequency of an emergency siren: ``wail``, ``yelp`` or ``hilo``."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "hilo":
        low = rng.uniform(400, 800)
        high = low * rng.uniform(1.2, 1.45)
        half = rng.uniform(0.35, 0.7)
        return np.where((t // half) % 2 == 0, high, low)
    low, high = rng.uniform(450, 800), rng.uniform(1100, 1700)
    period = rng.uniform(2.5, 6.0) if kind == "wail" else rng.uniform(0.2, 0.4)
    rise = rng.uniform(0.55, 0.8)  # share of each cycle spent rising
    position = (t / period + rng.uniform(0, 1)) % 1
    shape = np.where(position < rise, position / rise, (1 - position) / (1 - rise))
    return low + (high - low) * np.sin(shape * np.pi / 2)


def siren_clip(rng: np.random.Generator, seconds: float, kind: str | None = None) -> np.ndarray:
    """A wail, yelp or hi-lo siren (``kind``, random when None) with odd harmonics and a little noise."""
    kind = str(rng.choice(["wail", "yelp", "hilo"])) if kind is None else kind
    brightness = rng.uniform(0.2, 0.6)
    harmonics = tuple(brightness ** (k // 2) / (k + 1) if k % 2 == 0 else 0.1 * brightness for k in range(7))
    signal = sweep(siren_frequency(rng, kind, seconds), harmonics)
    signal += 0.02 * rng.standard_normal(len(signal)).astype(np.float32)
    return fade(signal, 0.05, 0.1)


def dtmf_clip(rng: np.random.Generator, seconds: float, digits: str | None = None) -> np.ndarray:
    """Digits dialed with DTMF tones (40-150 ms tone, 40-150 ms gap), sometimes after a dial tone.

    ``digits`` are random when None; a space in them is a pause between groups of digits.
    """
    out = np.zeros(int(seconds * SR), dtype=np.float32)
    position = int(rng.uniform(0.05, 0.5) * SR)
    if rng.random() < 0.3:
        dial = fade(tone(DIAL_TONES[rng.integers(len(DIAL_TONES))], rng.uniform(0.5, 2.0)), 0.01, 0.01)
        out[position : position + len(dial)] = dial[: len(out) - position]
        position += len(dial) + int(rng.uniform(0.1, 0.4) * SR)
    for key in dtmf_digits(rng) if digits is None else digits:
        if key == " ":
            position += int(rng.uniform(0.3, 0.9) * SR)
            continue
        length = int(rng.uniform(0.04, 0.15) * SR)
        if position + length > len(out):
            break
        twist = [1.0, 10 ** (rng.uniform(0, 3) / 20)]  # the column tone is a little louder
        out[position : position + length] = fade(tone(dtmf_pair(key), length / SR, twist), 0.003, 0.003)
        position += length + int(rng.uniform(0.04, 0.15) * SR)
        if rng.random() < 0.12:  # a pause between groups of digits
            position += int(rng.uniform(0.3, 0.9) * SR)
    return out


def dtmf_digits(rng: np.random.Generator, count: int = 40) -> str:
    """Random dialed keys: mostly digits, occasionally * or #."""
    keys = rng.choice(list("0123456789*#"), size=count, p=[0.095] * 10 + [0.025] * 2)
    return "".join(keys)
