"""Audio decoding, downmixing and streaming resampling.

Only numpy and soundfile are used here (no torch), so the ONNX runtime path can
decode audio without installing torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

from tagger.errors import AudioDecodeError

MODEL_SAMPLE_RATE = 32000

# torchaudio.functional.resample defaults (sinc_interp_hann).
_LOWPASS_FILTER_WIDTH = 6
_ROLLOFF = 0.99

# libsndfile reports SF_COUNT_MAX frames when the length is unknown.
_UNKNOWN_FRAMES = 2**62

_SOUNDFILE_ERRORS = (sf.SoundFileError, OSError, TypeError, ValueError)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says about an audio file."""

    path: str
    sample_rate: int
    channels: int
    frames: int | None
    format: str

    @property
    def duration(self) -> float | None:
        """Length in seconds, or None when the frame count is unknown."""
        return None if self.frames is None else self.frames / self.sample_rate


def _decode_error(path: PathLike, reason: object) -> AudioDecodeError:
    """Build a one-line AudioDecodeError naming the file."""
    text = " ".join(str(reason).split()).rstrip(".") or "unknown error"
    return AudioDecodeError(f"{os.fspath(path)}: cannot decode audio ({text})")


def _error_reason(exc: Exception) -> str:
    """The short libsndfile message of an exception, without soundfile's prefix."""
    return getattr(exc, "error_string", None) or str(exc) or type(exc).__name__


def _check_path(path: PathLike) -> None:
    """Reject paths libsndfile would only describe vaguely."""
    if not os.path.exists(path):
        raise _decode_error(path, "no such file")
    if os.path.isdir(path):
        raise _decode_error(path, "is a directory")
    if os.path.getsize(path) == 0:
        raise _decode_error(path, "empty file")


def _open(path: PathLike) -> sf.SoundFile:
    """Open an audio file for reading, converting every failure to AudioDecodeError."""
    _check_path(path)
    try:
        audio = sf.SoundFile(os.fspath(path))
    except _SOUNDFILE_ERRORS as exc:
        raise _decode_error(path, _error_reason(exc)) from None
    problem = None
    if audio.channels < 1:
        problem = "no audio channels"
    elif audio.samplerate < 1:
        problem = f"invalid sample rate {audio.samplerate}"
    elif audio.frames == 0:
        problem = "no audio frames"
    if problem is not None:
        audio.close()
        raise _decode_error(path, problem)
    return audio


def probe(path: PathLike) -> AudioInfo:
    """Read an audio file's header (rate, channels, length, container format)."""
    with _open(path) as audio:
        frames = audio.frames if audio.frames < _UNKNOWN_FRAMES else None
        return AudioInfo(
            path=os.fspath(path),
            sample_rate=audio.samplerate,
            channels=audio.channels,
            frames=frames,
            format=audio.format,
        )


def downmix(frames: np.ndarray) -> np.ndarray:
    """Average the channels of ``[n, channels]`` frames into mono float32 ``[n]``."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float32)


def _sinc_kernel(orig: int, new: int) -> tuple[np.ndarray, int]:
    """Hann-windowed sinc kernel ``[new, 2 * width + orig]`` for gcd-reduced rates.

    Evaluated in float32 step by step like torchaudio's ``_get_sinc_resample_kernel``
    for float32 input: the rounding of the time grid moves the taps by up to ~5e-5,
    so a float64 kernel would not reproduce torchaudio's output.
    """
    f32 = np.float32
    base = min(orig, new) * _ROLLOFF
    width = math.ceil(_LOWPASS_FILTER_WIDTH * orig / base)
    idx = np.arange(-width, width + orig, dtype=f32) / f32(orig)
    t = np.arange(0, -new, -1, dtype=f32)[:, None] / f32(new) + idx[None, :]
    t = np.clip(t * f32(base), -_LOWPASS_FILTER_WIDTH, _LOWPASS_FILTER_WIDTH)
    window = np.cos(t * f32(math.pi) / f32(_LOWPASS_FILTER_WIDTH) / f32(2)) ** 2
    t = t * f32(math.pi)
    sinc = np.divide(np.sin(t), t, out=np.ones_like(t), where=t != 0)
    return sinc * (window * f32(base / orig)), width


class StreamResampler:
    """Band-limited resampling of a signal that arrives in blocks.

    Feeding blocks to :meth:`process` and finishing with :meth:`flush` yields,
    concatenated, ``torchaudio.functional.resample(x, orig_rate, new_rate)`` of the
    whole signal (defaults: sinc_interp_hann, width 6, rolloff 0.99), with length
    ``ceil(new_rate * len(x) / orig_rate)``. Only ``kernel width + block`` input
    samples are held at any time.
    """

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        if orig_rate <= 0 or new_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_rate} and {new_rate}")
        gcd = math.gcd(orig_rate, new_rate)
        self._orig = orig_rate // gcd
        self._new = new_rate // gcd
        self._passthrough = orig_rate == new_rate
        kernel, self._width = _sinc_kernel(self._orig, self._new)
        self._kernel_t = np.ascontiguousarray(kernel.T)
        self._reset()

    def _reset(self) -> None:
        """Start a new stream: left zero padding, nothing consumed or emitted."""
        self._history = np.zeros(self._width, dtype=np.float32)
        self._consumed = 0
        self._emitted = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next mono block; returns all output samples now computable."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise ValueError(f"expected a 1-D block, got shape {block.shape}")
        self._consumed += block.size
        if self._passthrough:
            return block
        self._history = np.concatenate([self._history, block])
        return self._convolve()

    def flush(self) -> np.ndarray:
        """Return the remaining output (right zero padding) and start a new stream."""
        if self._passthrough:
            self._reset()
            return np.zeros(0, dtype=np.float32)
        padding = np.zeros(self._width + self._orig, dtype=np.float32)
        self._history = np.concatenate([self._history, padding])
        remaining = -(-self._new * self._consumed // self._orig) - self._emitted
        tail = self._convolve()[:remaining]
        self._reset()
        return tail

    def _convolve(self) -> np.ndarray:
        """Apply the kernel to every complete window of history, then drop used input."""
        kernel_width = self._kernel_t.shape[0]
        if self._history.size < kernel_width:
            return np.zeros(0, dtype=np.float32)
        windows = sliding_window_view(self._history, kernel_width)[:: self._orig]
        out = (windows @ self._kernel_t).reshape(-1)
        self._history = self._history[len(windows) * self._orig :].copy()
        self._emitted += out.size
        return out


def _read_blocks(audio: sf.SoundFile, path: PathLike, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``[n, channels]`` float32 blocks until the end of the file."""
    while True:
        try:
            frames = audio.read(block_frames, dtype="float32", always_2d=True)
        except _SOUNDFILE_ERRORS as exc:
            raise _decode_error(path, _error_reason(exc)) from None
        if len(frames) == 0:
            return
        yield frames


def _resampled_blocks(
    audio: sf.SoundFile, path: PathLike, target_rate: int, block_seconds: float
) -> Iterator[np.ndarray]:
    """Decode, downmix and resample an open file block by block; closes it at the end."""
    with audio:
        resampler = StreamResampler(audio.samplerate, target_rate)
        block_frames = max(1, round(block_seconds * audio.samplerate))
        for frames in _read_blocks(audio, path, block_frames):
            out = resampler.process(downmix(frames))
            if out.size:
                yield out
        tail = resampler.flush()
        if tail.size:
            yield tail


def stream_audio(
    path: PathLike, target_rate: int = MODEL_SAMPLE_RATE, block_seconds: float = 8.0
) -> Iterator[np.ndarray]:
    """Decode a file as mono float32 blocks at ``target_rate``, in constant memory.

    The file is opened (and header errors raised) immediately; decoding happens as
    the returned iterator is consumed.
    """
    if target_rate <= 0 or block_seconds <= 0:
        raise ValueError("target_rate and block_seconds must be positive")
    return _resampled_blocks(_open(path), path, target_rate, block_seconds)


def load_audio(path: PathLike, target_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Decode a whole file as one mono float32 array at ``target_rate``."""
    blocks = list(stream_audio(path, target_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
