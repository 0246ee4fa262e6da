"""``tagger listen``: its options checked against the model, and one run: a source, the inference
worker, a display, faults, and a clean stop with a summary.

The main thread only moves updates and events from the worker to the display (the Rich UI or JSON
lines, :mod:`tagger.displays`), watches the clock (``--duration``) and the source (reopening one that
can come back, such as a device or the audio server), and turns Ctrl-C into a summary; capture and
inference run on their own threads.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from .aggregate import top_k
from .backends import Backend
from .audio import native_stderr_silenced
from .capture import AudioQueue, FileSource, MicrophoneSource, Source
from .displays import Display, Header, JsonLines, TuiDisplay, summary_text
from .errors import TaggerError
from .events import EventDecoder, EventOptions
from .formatting import rounded
from .live import Finished, LiveSettings, LiveTagger, Update, Worker, WorkerFailed
from .tagging import WindowSettings

RETRY_SECONDS = 1.0
REFRESH_SECONDS = 0.25


@dataclass(frozen=True)
class ListenOptions:
    """Everything ``tagger listen`` was asked to do, checked by :func:`prepare`."""

    device: str | None = None
    input_path: str | None = None
    window: float | None = None
    hop: float = 1.0
    top: int = 5
    events: EventOptions = EventOptions()  # thresholds, smoothing, the labels reported
    min_level: float | None = None
    interactive: bool = False  # the Rich UI (else JSON lines)
    output: Path | None = None
    duration: float | None = None


@dataclass
class Plan:
    """The checked settings of a run: windowing and the event decoder (the labels it reports)."""

    window: int
    hop: int
    decoder: EventDecoder

    @property
    def labels(self) -> list[str]:
        return self.decoder.labels


def prepare(backend: Backend, options: ListenOptions) -> Plan:
    """Check the options against the model; ValueError (a usage error) when they do not fit."""
    window, hop = WindowSettings(options.window, options.hop).resolve(backend)
    if hop > window:
        raise ValueError("--hop cannot be longer than the window")
    return Plan(window, hop, EventDecoder(backend.labels, options.events, hop / backend.sample_rate,
                                          backend.thresholds))


@dataclass
class Tally:
    """What the summary reports."""

    updates: int = 0
    events: int = 0
    reconnects: int = 0
    latencies: list[float] = field(default_factory=list)
    inference: list[float] = field(default_factory=list)
    peaks: np.ndarray | None = None

    def add(self, update: Update) -> None:
        self.updates += 1
        if update.probabilities is not None:
            self.latencies.append(update.latency)
            self.inference.append(update.inference)
            self.peaks = update.probabilities if self.peaks is None else np.maximum(self.peaks, update.probabilities)

    def summary(self, stopped: str, elapsed: float, audio: float, queue_: AudioQueue,
                labels: Sequence[str], top: int, skipped: int = 0) -> dict[str, Any]:
        def percentiles(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            return {"p50": rounded(np.percentile(values, 50) * 1000, 1),
                    "p95": rounded(np.percentile(values, 95) * 1000, 1)}

        peaks = []
        if self.peaks is not None:
            peaks = [{"label": labels[i], "peak": rounded(self.peaks[i], 4)}
                     for i in top_k(self.peaks, min(top, len(labels)))]
        return {"type": "summary", "stopped": stopped, "seconds": rounded(elapsed, 2),
                "audio_seconds": rounded(audio, 2), "updates": self.updates, "skipped_windows": skipped, "events": self.events,
                "lost_seconds": rounded(queue_.lost), "input_overflows": queue_.flags,
                "reconnects": self.reconnects,
                "latency_ms": percentiles(self.latencies), "inference_ms": percentiles(self.inference),
                "top": peaks}


def open_events_file(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise TaggerError(f"{path}: cannot write ({exc.strerror})") from None


def run_listen(backend: Backend, options: ListenOptions, plan: Plan) -> dict[str, Any]:
    """Listen until --duration, the end of --input, or Ctrl-C; return the summary."""
    rate = backend.sample_rate
    window_s = plan.window / rate
    events_file = open_events_file(options.output)
    capacity = max(10.0, 2 * window_s)
    with native_stderr_silenced():
        source: Source = (FileSource(options.input_path, capacity) if options.input_path
                          else MicrophoneSource(options.device, capacity))
        tagger = LiveTagger(backend, LiveSettings(plan.window, plan.hop, options.min_level), plan.decoder,
                            source.rate)
        header = Header(source.name, source.rate, source.channels, backend.name,
                        backend.runtime, rate, window_s, plan.hop / rate)
        display: Display
        if options.interactive:
            from rich.console import Console

            console = Console(highlight=False)
            display = TuiDisplay(console, header, plan.labels, options.top)
        else:
            display = JsonLines(sys.stdout, plan.labels, options.top, plan.hop / rate)
            display.write({"type": "start", "source": source.name, "input_rate": source.rate,
                           "channels": source.channels, "model": backend.name, "backend": header.backend,
                           "sample_rate": rate, "window": rounded(window_s), "hop": rounded(plan.hop / rate)})
        tally = Tally()
        run = _Run(source, tagger, display, tally, events_file)
        with display if isinstance(display, TuiDisplay) else nullcontext():
            try:
                stopped = run.loop(options.duration)
            finally:
                run.shut_down()
        summary = tally.summary(stopped, run.elapsed, tagger.time, source.queue, plan.labels, options.top,
                                tagger.skipped)
    try:
        if isinstance(display, JsonLines):
            display.write(summary)
        else:
            console.print(summary_text(summary))
    except BrokenPipeError:
        _silence_stdout()
    return summary


class _Run:
    """The main thread's loop and its clean-up."""

    def __init__(self, source: Source, tagger: LiveTagger, display: Display, tally: Tally,
                 events_file: IO[str] | None) -> None:
        self.source, self.tagger, self.display, self.tally = source, tagger, display, tally
        self.events_file = events_file
        self.updates: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self.waiting: list[dict[str, Any]] = []  # event records taken, not yet due
        self.shown_until = float("-inf")  # the end of the last update shown, stream seconds
        self.worker = Worker(source.queue, tagger, self.updates, self.events)
        self.started = time.monotonic()
        self.elapsed = 0.0

    def loop(self, duration: float | None) -> str:
        """Run until a reason to stop; returns it. Ctrl-C (and SIGTERM) only set a flag that the
        loop checks between items, so an update or event is never half written."""
        interrupted = threading.Event()
        handlers = {sig: signal.signal(sig, lambda *_: interrupted.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._loop(duration, interrupted)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _loop(self, duration: float | None, interrupted: threading.Event) -> str:
        self.source.start()
        self.worker.start()
        self.started = time.monotonic()
        away_since: float | None = None
        next_retry = 0.0
        last_refresh = 0.0
        try:
            while not interrupted.is_set():
                now = time.monotonic()
                self.elapsed = now - self.started
                if duration is not None and self.elapsed >= duration:
                    return "duration"
                if self._drain(timeout=min(0.05, max(0.0, (duration or 1e9) - self.elapsed))):
                    if self.source.fault():
                        raise TaggerError(self.source.fault())  # the input stopped early
                    return "end of input"
                if away_since is None:
                    fault = self.source.fault()
                    if fault:
                        if not self.source.recoverable:
                            raise TaggerError(fault)
                        away_since = now
                        self.display.set_status(f"{fault}; reopening every second, results so far are kept")
                elif now >= next_retry:
                    if self.source.reopen():
                        self.tally.reconnects += 1
                        self.display.set_status(f"input back after {now - away_since:.1f} s; listening")
                        away_since = None
                    else:
                        next_retry = now + RETRY_SECONDS
                if now - last_refresh >= REFRESH_SECONDS:
                    self.display.refresh(self.elapsed, self.source.queue.lost, self.source.queue.late)
                    last_refresh = now
            return "interrupted"
        except BrokenPipeError:
            _silence_stdout()
            return "output closed"

    def _drain(self, timeout: float) -> bool:
        """Show everything the worker produced; True when the input has ended."""
        try:
            item = self.updates.get(timeout=timeout)
            while not self._show(item):
                item = self.updates.get_nowait()
        except queue.Empty:
            self._events_until(self.shown_until)
            return False
        self._events_until(None)
        return True

    def _events_until(self, end: float | None) -> None:
        """Show the waiting event records that belong to windows up to ``end`` (all with None): a
        window's events follow its update, as the worker produced them."""
        try:
            while True:
                self.waiting.append(self.events.get_nowait())
        except queue.Empty:
            pass
        due = [r for r in self.waiting if end is None or r["time"] <= end + 1e-6]
        self.waiting = [r for r in self.waiting if not (end is None or r["time"] <= end + 1e-6)]
        for record in due:
            self._event(record)

    def _show(self, item: object) -> bool:
        """Pass one item from the worker on; True when it says the input has ended."""
        if isinstance(item, Finished):
            return True
        if isinstance(item, WorkerFailed):
            raise TaggerError(item.message)
        assert isinstance(item, Update)
        self.tally.add(item)
        self.display.add_update(item)
        self.shown_until = item.end
        self._events_until(item.end)
        return False

    def _event(self, record: dict[str, Any]) -> None:
        if record["event"] == "onset":
            self.tally.events += 1
        self.display.add_event(record)
        if self.events_file is not None:
            self.events_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.events_file.flush()

    def shut_down(self) -> None:
        """Stop capture and inference, show what is left, end open events, close the events file."""
        self.source.stop()
        self.worker.stop()
        try:
            while True:
                self._show(self.updates.get_nowait())
        except (queue.Empty, TaggerError):
            pass
        try:
            self._events_until(None)
            for record in self.tagger.close():
                self._event(record)
            self.display.refresh(self.elapsed, self.source.queue.lost, self.source.queue.late)
        except BrokenPipeError:
            _silence_stdout()
        finally:
            if self.events_file is not None:
                self.events_file.close()


def _silence_stdout() -> None:
    """After the reader of stdout went away: send the rest (and Python's final flush) nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
