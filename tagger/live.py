"""The live tagging engine: captured blocks -> mono at the model rate -> windows -> model -> updates.

It uses the same window engine and batched model call as ``tagger file`` (:mod:`tagger.windows`,
:func:`tagger.tagging.run_windows`), with warm-up windows so that tags appear after one hop, and adds
what live use needs: a silence gate, smoothing, events, timing, and restarts after gaps in the audio.
No torch here: any backend with the :class:`tagger.backends.Backend` protocol works.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio import StreamResampler, downmix
from .capture import AudioQueue
from .events import EventDecoder
from .backends import Backend
from .tagging import run_windows
from .windows import Window, WindowEngine

SILENCE_DB = -120.0


def level_db(samples: np.ndarray) -> tuple[float, float]:
    """(RMS, peak) of samples in dB relative to full scale, floored at -120 dBFS."""
    if samples.size == 0:
        return SILENCE_DB, SILENCE_DB
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    return tuple(max(SILENCE_DB, 20 * math.log10(v)) if v > 0 else SILENCE_DB for v in (rms, peak))


@dataclass
class Update:
    """One window of live audio, tagged (or gated as silence when ``probabilities`` is None)."""

    start: float  # stream seconds
    end: float
    level_db: float  # RMS of the audio new since the previous update (one hop)
    peak_db: float
    probabilities: np.ndarray | None  # smoothed; None: below --min-level, not tagged
    inference: float  # seconds of model time for this window
    latency: float  # seconds from the window's last sample arriving to this update
    warmup: bool  # a partial window (the first full window has not filled yet)


@dataclass(frozen=True)
class LiveSettings:
    window: int  # samples at the model rate
    hop: int
    min_level_db: float | None = None


class LiveTagger:
    """Turns captured frames into :class:`Update` objects and event records; not thread-safe (one
    worker uses it).

    It stays current when the model is slower than the hop: of the windows that are ready at once
    (the audio that arrived while the last ones were tagged), it tags only the newest ones that fit
    in one hop of model time (at least one) and counts the others in ``skipped``, so updates come
    less often but their latency stays about one window's model time instead of growing without end.

    ``decoder`` knows the labels the run reports (updates carry only their smoothed probabilities,
    so nothing downstream masks) and turns windows into events, as ``tagger file --events`` does.
    Event records wait in :meth:`take_events` until the worker hands them on.
    """

    def __init__(self, backend: Backend, settings: LiveSettings, decoder: EventDecoder, input_rate: int) -> None:
        self.backend = backend
        self.settings = settings
        self.decoder = decoder
        self._events: list[dict[str, Any]] = []
        self.rate = backend.sample_rate
        self.skipped = 0  # windows left untagged to stay current
        self._per_window: float | None = None  # recent model seconds per window
        self._offset = 0.0  # stream seconds at the start of the current segment
        self._start_segment(input_rate)

    def _start_segment(self, input_rate: int) -> None:
        self.input_rate = input_rate
        self._resampler = StreamResampler(input_rate, self.rate)
        self._engine = WindowEngine(self.settings.window, self.settings.hop, warmup=True)
        self._input_frames = 0

    @property
    def time(self) -> float:
        """Stream seconds of audio received so far (gaps included)."""
        return self._offset + self._input_frames / self.input_rate

    def restart(self, input_rate: int, gap: float) -> None:
        """A gap of ``gap`` seconds in the audio: end open events, start new windows after it."""
        self._events += self.decoder.close(self.time)
        self._offset = self.time + gap
        self._start_segment(input_rate)

    def take_events(self) -> list[dict[str, Any]]:
        """The event records produced since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def push(self, frames: np.ndarray, arrival: float) -> list[Update]:
        """Feed ``[n, channels]`` frames whose last one arrived at ``arrival`` (time.monotonic())."""
        self._input_frames += len(frames)
        windows = self._engine.push(self._resampler.process(downmix(frames)))
        segment_seconds = self._input_frames / self.input_rate
        return self._tag(self._current(windows), lambda w: arrival + w.end / self.rate - segment_seconds)

    def _current(self, windows: list[Window]) -> list[Window]:
        """The newest windows that the model can tag within one hop (see the class)."""
        if self._per_window is None or len(windows) <= 1:
            return windows
        fit = max(1, int(self.settings.hop / self.rate / self._per_window))
        if len(windows) <= fit:
            return windows
        self.skipped += len(windows) - fit
        return windows[-fit:]

    def finish(self) -> list[Update]:
        """End of the input: the resampler's tail and the window engine's last window.

        Their last samples count as arriving now, when the input ended, so the latency of these
        updates is the time spent tagging them."""
        ended = time.monotonic()
        tail = self._resampler.flush()
        windows = self._engine.push(tail) + self._engine.flush()
        return self._tag(windows, lambda w: ended)

    def _tag(self, windows: list[Window], arrived: Callable[[Window], float]) -> list[Update]:
        if not windows:
            return []
        hop = self.settings.hop
        levels = [level_db(w.samples[-hop:]) for w in windows]
        gate = self.settings.min_level_db
        loud = [w for w, (rms, _) in zip(windows, levels) if gate is None or rms >= gate]
        started = time.perf_counter()
        results = iter([p for _, p in run_windows(loud, self.backend)])
        inference = (time.perf_counter() - started) / max(1, len(loud))
        if loud:
            self._per_window = inference if self._per_window is None else 0.5 * (self._per_window + inference)
        updates = []
        for w, (rms, peak) in zip(windows, levels):
            start, end = self._offset + w.start / self.rate, self._offset + w.end / self.rate
            tagged = gate is None or rms >= gate
            smoothed, records = self.decoder.update(start, end, next(results) if tagged else None)
            self._events += records
            updates.append(Update(start, end, rms, peak, smoothed, inference if tagged else 0.0,
                                  max(0.0, time.monotonic() - arrived(w)), w.warmup))
        return updates

    def close(self) -> list[dict[str, Any]]:
        """End the events still open (the run stops)."""
        return self.decoder.close(self.time)


class WorkerFailed:
    """Put on the updates queue when the worker thread hits an error; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        self.message = message


class Finished:
    """Put on the updates queue when the input ended and every window was tagged."""


class Worker(threading.Thread):
    """Reads the audio queue, runs the tagger, and puts :class:`Update` objects on ``updates`` and
    event records (dicts) on ``events``; a window's events go on their queue before its update, so a
    reader that takes an update and then the waiting events sees them in order."""

    def __init__(self, audio: AudioQueue, tagger: LiveTagger, updates: queue.Queue,
                 events: queue.Queue) -> None:
        super().__init__(name="tagger-inference", daemon=True)
        self.audio = audio
        self.tagger = tagger
        self.updates = updates
        self.events = events
        self.stopping = threading.Event()

    def _hand_on(self, updates: list[Update]) -> None:
        for record in self.tagger.take_events():
            self.events.put(record)
        for update in updates:
            self.updates.put(update)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                chunk = self.audio.read(timeout=0.1)
                if chunk is None:
                    if self.audio.ended:
                        self._hand_on(self.tagger.finish())
                        self.updates.put(Finished())
                        return
                    continue
                if chunk.gap > 0 or chunk.rate != self.tagger.input_rate:
                    self.tagger.restart(chunk.rate, chunk.gap)
                self._hand_on(self.tagger.push(chunk.frames, chunk.arrival))
        except Exception as exc:  # noqa: BLE001 - reported as one line by the display thread
            self.updates.put(WorkerFailed(f"tagging failed: {' '.join(str(exc).split()) or type(exc).__name__}"))

    def stop(self) -> None:
        self.stopping.set()
        self.join()
