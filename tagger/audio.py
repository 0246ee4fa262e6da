"""Audio decoding, downmixing and streaming resampling.

Only numpy and soundfile are used here (no torch), so the ONNX runtime path can
decode audio without installing torch.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

from tagger.errors import AudioDecodeError

MODEL_SAMPLE_RATE = 32000
# File names that folder arguments (tagger file DIR, class folders for training) take as audio.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus", ".w64"})

# torchaudio.functional.resample defaults (sinc_interp_hann).
_LOWPASS_FILTER_WIDTH = 6
_ROLLOFF = 0.99

# Each matmul row covers at least this many input samples (several kernel frames
# for small reduced input rates such as 3 in 96k->32k): keeps BLAS busy.
_MIN_ROW_INPUT = 48
# Multiply-adds per matmul call: small enough to stay in cache and below OpenBLAS's
# threading threshold (its threads made these tall, thin products up to 5x slower).
_MATMUL_SIZE = 1 << 18
# Outputs are grouped so that a group's tap span is about this many times the taps
# one output really uses (the rest of a kernel row is ~zero).
_GROUP_SPAN_FACTOR = 4

# libsndfile reports SF_COUNT_MAX frames when the length is unknown.
_UNKNOWN_FRAMES = 2**62

# libsndfile's SFE_BAD_FILE ("File does not exist or is not a regular file"), which it
# also returns for corrupt MP3 data in a regular file.
_SFE_BAD_FILE = 7

_SOUNDFILE_ERRORS = (sf.SoundFileError, OSError, TypeError, ValueError)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says about an audio file (MP3 frame counts are estimates)."""

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
    if isinstance(exc, sf.LibsndfileError):
        if exc.code == _SFE_BAD_FILE:
            return "corrupt or unsupported data"
        return exc.error_string.removeprefix("Error : ")
    return str(exc) or type(exc).__name__


def _check_path(path: PathLike) -> None:
    """Reject paths libsndfile would only describe vaguely."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _decode_error(path, "symbolic link loop") from None
        if os.path.islink(path):
            raise _decode_error(path, "broken symbolic link") from None
        raise _decode_error(path, "no such file" if exc.errno == errno.ENOENT else exc.strerror) from None
    if stat.S_ISDIR(info.st_mode):
        raise _decode_error(path, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise _decode_error(path, "not a regular file: a pipe, socket or device")
    if not os.access(path, os.R_OK):
        raise _decode_error(path, "permission denied")
    if info.st_size == 0:
        raise _decode_error(path, "empty file")


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Discard what C decoders write to fd 2 (mpg123 prints "Note: Illegal Audio-MPEG-Header ...").

    Failures still surface as libsndfile error codes; only the decoder's chatter is dropped.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _open(path: PathLike) -> sf.SoundFile:
    """Open an audio file for reading, converting every failure to AudioDecodeError."""
    _check_path(path)
    try:
        with native_stderr_silenced():
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
    channels = frames.shape[1]
    if channels == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    # A matrix-vector product: ~10x faster than mean(axis=1) on [n, 2] frames.
    return frames.astype(np.float32, copy=False) @ np.full(channels, 1 / channels, dtype=np.float32)


def _kernel_width(orig: int, new: int) -> int:
    """torchaudio's ``width``: taps of padding each side, for gcd-reduced rates."""
    return math.ceil(_LOWPASS_FILTER_WIDTH * orig / (min(orig, new) * _ROLLOFF))


def _kernel_values(phase: np.ndarray, tap: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Entries ``[phase, tap]`` of torchaudio's ``[new, 2 * width + orig]`` sinc kernel.

    Evaluated in float32 step by step like ``_get_sinc_resample_kernel`` for float32
    input: the rounding of the time grid moves the taps by up to ~5e-5, so float64
    would not reproduce torchaudio's output. Elementwise, so any subset can be built.
    """
    f32 = np.float32
    base = min(orig, new) * _ROLLOFF
    idx = (tap - _kernel_width(orig, new)).astype(f32) / f32(orig)
    t = (-phase).astype(f32) / f32(new) + idx
    t = np.clip(t * f32(base), -_LOWPASS_FILTER_WIDTH, _LOWPASS_FILTER_WIDTH)
    window = np.cos(t * f32(math.pi) / f32(_LOWPASS_FILTER_WIDTH) / f32(2)) ** 2
    t = t * f32(math.pi)
    sinc = np.divide(np.sin(t), t, out=np.ones_like(t), where=t != 0)
    return sinc * (window * f32(base / orig))


class _TapGroup(NamedTuple):
    """Row outputs ``outputs`` use only taps ``[first_tap, first_tap + len(kernel_t))``."""

    outputs: slice
    first_tap: int
    kernel_t: np.ndarray


def _tap_groups(orig: int, new: int, frames_per_row: int) -> list[_TapGroup]:
    """Kernel pieces for one matmul row of ``frames_per_row`` frames, grouped by taps.

    Output ``p`` of a row (frame ``p // new``, phase ``p % new``) is non-zero only on
    taps ``[orig * p // new, orig * p // new + band)``; outside that band torchaudio's
    taps are ~1e-15 (clamped window) and are left out. Consecutive outputs are grouped
    so that each group's tap span is about ``_GROUP_SPAN_FACTOR`` bands.
    """
    width = _kernel_width(orig, new)
    band = 2 * width + 2
    row_taps = frames_per_row * orig + 2 * width
    row_outputs = frames_per_row * new
    group_size = max(1, (_GROUP_SPAN_FACTOR - 1) * band * new // orig)
    groups = []
    for start in range(0, row_outputs, group_size):
        outputs = np.arange(start, min(start + group_size, row_outputs))
        first_tap = orig * start // new
        stop_tap = min(row_taps, orig * int(outputs[-1]) // new + band)
        frame, phase = np.divmod(outputs, new)
        tap = np.arange(first_tap, stop_tap)[:, None] - frame[None, :] * orig
        kernel_t = _kernel_values(phase[None, :], tap, orig, new)
        kernel_t[(tap < 0) | (tap >= 2 * width + orig)] = 0  # taps of another frame
        groups.append(_TapGroup(slice(start, int(outputs[-1]) + 1), first_tap, kernel_t))
    return groups


class StreamResampler:
    """Band-limited resampling of a signal that arrives in blocks.

    Feeding blocks to :meth:`process` and finishing with :meth:`flush` yields,
    concatenated, ``torchaudio.functional.resample(x, orig_rate, new_rate)`` of the
    whole signal (defaults: sinc_interp_hann, width 6, rolloff 0.99), with length
    ``ceil(new_rate * len(x) / orig_rate)``. Only ``kernel width + block`` input
    samples are held at any time.

    With rates reduced by their gcd to ``orig``/``new``, output frame ``j`` (``new``
    samples) is the kernel applied to padded input ``[j * orig, j * orig + 2 * width
    + orig)``. A matmul row holds one or more consecutive frames (``step`` input
    samples); all complete rows of a block are computed by a few matmuls over
    strided sliding windows, one per group of outputs, each over only the taps that
    group uses. The history keeps only the not yet used input.
    """

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        if orig_rate <= 0 or new_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_rate} and {new_rate}")
        gcd = math.gcd(orig_rate, new_rate)
        self._orig = orig_rate // gcd
        self._new = new_rate // gcd
        self._passthrough = orig_rate == new_rate
        self._width = _kernel_width(self._orig, self._new)
        frames_per_row = max(1, _MIN_ROW_INPUT // self._orig)
        self._step = frames_per_row * self._orig
        self._row_taps = self._step + 2 * self._width
        self._row_outputs = frames_per_row * self._new
        self._groups = [] if self._passthrough else _tap_groups(self._orig, self._new, frames_per_row)
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
        padding = np.zeros(self._width + self._step, dtype=np.float32)
        self._history = np.concatenate([self._history, padding])
        remaining = -(-self._new * self._consumed // self._orig) - self._emitted
        tail = self._convolve()[:remaining]
        self._reset()
        return tail

    def _convolve(self) -> np.ndarray:
        """Compute every complete row of history, then drop the input no row needs."""
        if self._history.size < self._row_taps:
            return np.zeros(0, dtype=np.float32)
        rows = (self._history.size - self._row_taps) // self._step + 1
        out = np.empty((rows, self._row_outputs), dtype=np.float32)
        for group in self._groups:
            span, outputs = group.kernel_t.shape
            taps = self._history[group.first_tap : group.first_tap + (rows - 1) * self._step + span]
            windows = sliding_window_view(taps, span)[:: self._step]
            chunk = max(1, _MATMUL_SIZE // (span * outputs))
            for first in range(0, rows, chunk):
                out[first : first + chunk, group.outputs] = windows[first : first + chunk] @ group.kernel_t
        self._history = self._history[rows * self._step :].copy()
        self._emitted += out.size
        return out.reshape(-1)


def truncation(audio: sf.SoundFile) -> str | None:
    """What libsndfile noticed about a file cut short (its header promises more data than there is,
    or an Ogg stream without its end-of-stream mark), in words; None for a whole file."""
    try:
        info = audio.extra_info
    except (AttributeError, RuntimeError, sf.SoundFileError):
        return None
    promised = re.search(r"^data : (\d+) \(should be (\d+)\)", info, re.MULTILINE)
    if promised and int(promised[2]) < int(promised[1]):
        return (f"truncated: the header promises {int(promised[1]):,} bytes of audio, the file holds "
                f"{int(promised[2]):,}; tagged what is there")
    if "Last page lacks an end-of-stream bit" in info:
        return "truncated: the Ogg stream ends without its end-of-stream mark; tagged what is there"
    return None


def _read_blocks(audio: sf.SoundFile, path: PathLike, block_frames: int,
                 warnings: list[str]) -> Iterator[np.ndarray]:
    """Yield ``[n, channels]`` float32 blocks until the end of the file. A decoding error after some
    audio has come out ends the stream with a warning (a file cut short); before, it is an error."""
    chatty_decoder = audio.format == "MP3"
    decoded = 0
    stopped: str | None = None  # why decoding ended early
    while stopped is None:
        try:
            if chatty_decoder:
                with native_stderr_silenced():
                    frames = audio.read(block_frames, dtype="float32", always_2d=True)
            else:
                frames = audio.read(block_frames, dtype="float32", always_2d=True)
        except _SOUNDFILE_ERRORS as exc:
            frames = _salvage(audio, decoded)  # the part of the failed block that does decode
            if decoded + len(frames) == 0:
                raise _decode_error(path, _error_reason(exc)) from None
            stopped = _error_reason(exc).rstrip(".")
        if len(frames) == 0 and stopped is None:
            return
        if not np.isfinite(frames).all():  # float files can hold NaN/Inf; nothing downstream survives them
            raise _decode_error(path, "holds NaN or infinite samples")
        decoded += len(frames)
        if len(frames):
            yield frames
    known = 0 < audio.frames < _UNKNOWN_FRAMES
    total = f" of the {audio.frames / audio.samplerate:.1f} s announced" if known else ""
    warnings.append(f"decoding stopped after {decoded / audio.samplerate:.1f} s{total} ({stopped}); "
                    "tagged what decoded")


def _salvage(audio: sf.SoundFile, position: int) -> np.ndarray:
    """After a failed read: the frames from ``position`` that decode, read again in 0.1 s steps."""
    step = max(1, audio.samplerate // 10)
    parts = []
    try:
        audio.seek(position)
        while len(frames := audio.read(step, dtype="float32", always_2d=True)):
            parts.append(frames)
    except _SOUNDFILE_ERRORS:
        pass
    return np.concatenate(parts) if parts else np.zeros((0, audio.channels), np.float32)


def _resampled_blocks(
    audio: sf.SoundFile, path: PathLike, target_rate: int, block_seconds: float, warnings: list[str]
) -> Iterator[np.ndarray]:
    """Decode, downmix and resample an open file block by block; closes it at the end."""
    with audio:
        resampler = StreamResampler(audio.samplerate, target_rate)
        block_frames = max(1, round(block_seconds * audio.samplerate))
        for frames in _read_blocks(audio, path, block_frames, warnings):
            out = resampler.process(downmix(frames))
            if out.size:
                yield out
        tail = resampler.flush()
        if tail.size:
            yield tail


def stream_audio(
    path: PathLike, target_rate: int = MODEL_SAMPLE_RATE, block_seconds: float = 8.0,
    warnings: list[str] | None = None,
) -> Iterator[np.ndarray]:
    """Decode a file as mono float32 blocks at ``target_rate``, in constant memory.

    The file is opened (and header errors raised) immediately; decoding happens as
    the returned iterator is consumed. Signs of a file cut short are appended to ``warnings``.
    """
    if target_rate <= 0 or block_seconds <= 0:
        raise ValueError("target_rate and block_seconds must be positive")
    warnings = [] if warnings is None else warnings
    audio = _open(path)
    if (cut := truncation(audio)) is not None:
        warnings.append(cut)
    return _resampled_blocks(audio, path, target_rate, block_seconds, warnings)


@dataclass
class OpenedAudio:
    """A file ready for the model: its header, its mono blocks at the model's rate (decoded as
    they are read, or already whole) and the signs that it was cut short (filled while decoding)."""

    info: AudioInfo
    blocks: Iterable[np.ndarray]
    warnings: list[str]


def open_audio(path: PathLike, target_rate: int = MODEL_SAMPLE_RATE, info: AudioInfo | None = None) -> OpenedAudio:
    """Open a file for streaming (``info``: its header when the caller has read it)."""
    info = info or probe(path)
    warnings: list[str] = []
    return OpenedAudio(info, stream_audio(path, target_rate, warnings=warnings), warnings)


def load_audio(path: PathLike, target_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Decode a whole file as one mono float32 array at ``target_rate``."""
    blocks = list(stream_audio(path, target_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
