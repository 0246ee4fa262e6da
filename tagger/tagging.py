"""Tag audio: blocks -> windows -> batched model calls -> per-window probabilities -> clip scores.

This is the one inference path; ``tagger file`` feeds it decoded file blocks and ``tagger listen``
feeds it microphone blocks. A backend (:mod:`tagger.backends`: PyTorch or ONNX Runtime) turns a
batch of windows into probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
import numpy as np

from .aggregate import pool_windows
from .backends import Backend
from .audio import AudioInfo, OpenedAudio, StreamResampler, downmix, open_audio
from .errors import AudioDecodeError
from .events import EventDecoder, EventOptions, finished_events
from .windows import Window, WindowEngine



@dataclass(frozen=True)
class WindowSettings:
    """Window length and hop in seconds.

    The default window is the model's whole context: the longest input whose patches fit the
    positional grid (10.05 s for the official 99-column grid), so any clip a reference PaSST takes
    in one pass is also tagged here in one pass. The default hop is half the window.
    """

    window: float | None = None
    hop: float | None = None

    def resolve(self, backend: Backend) -> tuple[int, int]:
        """Window and hop in samples at the model's rate, checked against the model's context."""
        rate = backend.sample_rate
        if self.window is None:
            window = backend.max_samples
        elif not math.isfinite(self.window) or self.window <= 0:
            raise ValueError("--window must be a number of seconds above 0")
        else:
            window = int(round(self.window * rate))
        if window > backend.max_samples:
            raise ValueError(
                f"a {self.window:g} s window is longer than the model's context "
                f"({backend.max_samples / rate:g} s)"
            )
        if self.hop is None:
            return window, max(1, window // 2)
        if not math.isfinite(self.hop) or self.hop <= 0:
            raise ValueError("--hop must be a number of seconds above 0")
        return window, max(1, int(round(self.hop * rate)))


@dataclass
class WindowResult:
    start: float  # seconds
    end: float
    probabilities: np.ndarray  # [classes]


@dataclass
class FileResult:
    path: str
    info: AudioInfo
    duration: float  # seconds of decoded audio
    windows: list[WindowResult]
    clip: np.ndarray  # [classes], pooled over the windows
    warnings: list[str]  # signs that the file was cut short (what decoded was tagged)
    events: list[dict] | None = None  # {label, onset, offset, duration, peak} when events were asked for


def run_windows(windows: Iterable[Window], backend: Backend,
                batch_size: int | None = None) -> Iterator[tuple[Window, np.ndarray]]:
    """Batch consecutive windows of equal length through the model (``batch_size`` at most; by
    default the backend's own, see :data:`tagger.backends.CPU_BATCH_SIZE`); yield them in order."""
    batch_size = batch_size or backend.batch_size
    pending: list[Window] = []
    for window in windows:
        if pending and (len(pending) == batch_size or len(window.samples) != len(pending[0].samples)):
            yield from _predict(pending, backend)
            pending = []
        pending.append(window)
    if pending:
        yield from _predict(pending, backend)


def _predict(windows: list[Window], backend: Backend) -> Iterator[tuple[Window, np.ndarray]]:
    probabilities = backend.predict(np.stack([w.samples for w in windows]))
    yield from zip(windows, probabilities)


def windows_of_stream(blocks: Iterable[np.ndarray], engine: WindowEngine,
                      on_samples: Callable[[int], None] | None = None) -> Iterator[Window]:
    """Cut a stream of blocks into windows, reporting the samples consumed as it goes."""
    for block in blocks:
        yield from engine.push(block)
        if on_samples:
            on_samples(len(block))
    yield from engine.flush()


def tag_blocks(blocks: Iterable[np.ndarray], backend: Backend, settings: WindowSettings = WindowSettings(),
               batch_size: int | None = None, pooling: str = "max",
               on_samples: Callable[[int], None] | None = None, events: EventOptions | None = None,
               ) -> tuple[list[WindowResult], np.ndarray | None, int, list[dict] | None]:
    """Window mono blocks at the model's rate, run the model, pool the windows: (windows, clip
    scores or None when there was no audio, samples received, events or None).

    With ``events``, the windows also go through the :class:`tagger.events.EventDecoder` exactly as
    in ``tagger listen``: with the live engine's growing warm-up windows before the first full
    one (so onsets in the first window are placed to a hop), which are tagged for the events only.
    """
    window, hop = settings.resolve(backend)
    engine = WindowEngine(window, hop, warmup=events is not None)
    rate = backend.sample_rate
    decoder = EventDecoder(backend.labels, events, hop / rate, backend.thresholds) if events is not None else None
    results: list[WindowResult] = []
    records: list[dict] = []
    last: WindowResult | None = None
    for w, probs in run_windows(windows_of_stream(blocks, engine, on_samples), backend, batch_size):
        last = WindowResult(w.start / rate, w.end / rate, probs)
        if decoder is not None:
            records += decoder.update(last.start, last.end, probs)[1]
        if not w.warmup:
            results.append(last)
    if not results and last is not None:  # a short clip that a warm-up window already covered whole
        results.append(last)
    clip = pool_windows(np.stack([r.probabilities for r in results]), pooling) if results else None
    if decoder is None:
        return results, clip, engine.received, None
    records += decoder.close(engine.received / rate)
    return results, clip, engine.received, finished_events(records)


def tag_file(path: str, backend: Backend, settings: WindowSettings = WindowSettings(),
             batch_size: int | None = None, pooling: str = "max",
             on_samples: Callable[[int], None] | None = None, info: AudioInfo | None = None,
             events: EventOptions | None = None) -> FileResult:
    """Tag one file: decode it in blocks, window it, run the model, pool the windows (and decode
    events, see :func:`tag_blocks`). ``info`` is the file's header when the caller has read it."""
    settings.resolve(backend)  # a bad window fails before decoding
    return tag_opened(str(path), open_audio(path, backend.sample_rate, info), backend, settings, batch_size,
                      pooling, on_samples, events)


def tag_opened(path: str, opened: OpenedAudio, backend: Backend, settings: WindowSettings = WindowSettings(),
               batch_size: int | None = None, pooling: str = "max",
               on_samples: Callable[[int], None] | None = None, events: EventOptions | None = None) -> FileResult:
    """Tag a file already opened (streamed here, or decoded whole by a worker process)."""
    windows, clip, received, found = tag_blocks(opened.blocks, backend, settings, batch_size, pooling, on_samples,
                                                events)
    if clip is None:
        raise AudioDecodeError(f"{path}: the file holds no audio samples")
    return FileResult(path=path, info=opened.info, duration=received / backend.sample_rate, windows=windows,
                      clip=clip, warnings=opened.warnings, events=found)


def tag_array(audio: np.ndarray, sample_rate: int, backend: Backend, settings: WindowSettings = WindowSettings(),
              batch_size: int | None = None, pooling: str = "max") -> tuple[list[WindowResult], np.ndarray]:
    """Tag a waveform in memory (``[samples]`` or ``[samples, channels]``, integer PCM or float,
    any rate) through the same path as a file: downmix, resample, window, model, pool."""
    array = np.asarray(audio)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError("audio must be a non-empty [samples] or [samples, channels] array")
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / np.float32(-np.iinfo(array.dtype).min)
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"audio must hold numbers, not {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError("audio holds NaN or infinite samples")
    resampler = StreamResampler(int(sample_rate), backend.sample_rate)
    mono = downmix(array)
    windows, clip, _, _ = tag_blocks([resampler.process(mono), resampler.flush()], backend, settings, batch_size,
                                     pooling)
    assert clip is not None  # a non-empty input gives at least one window
    return windows, clip
