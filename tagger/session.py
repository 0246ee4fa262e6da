"""One ``tagger listen`` run: a source, the inference worker, a display, faults, and a clean stop.

The main thread only moves updates from the worker to the display (the Rich UI or JSON lines),
watches the clock (``--duration``) and the source (reopening it when the device or the audio server
comes back), and turns Ctrl-C into a summary; capture and inference run on their own threads.
"""

from __future__ import annotations

import difflib
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
from typing import IO, Any, Protocol

import numpy as np

from .aggregate import top_k
from .capture import FileSource, MicrophoneSource, native_stderr_discarded
from .errors import TaggerError
from .events import EventTracker, label_thresholds
from .live import Finished, LiveSettings, LiveTagger, Update, Worker, WorkerFailed
from .backends import Backend
from .tagging import WindowSettings
from .tui import Header, TuiDisplay

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
    threshold: float = 0.5
    label_thresholds: Sequence[str] = ()  # "LABEL=P"
    offset_ratio: float = 0.7
    min_duration: float = 0.0
    smooth: int = 1
    only: Sequence[str] = ()
    exclude: Sequence[str] = ()
    min_level: float | None = None
    interactive: bool = False  # the Rich UI (else JSON lines)
    output: Path | None = None
    duration: float | None = None


def find_label(labels: Sequence[str], name: str) -> int:
    """Index of a label by name, ignoring case; ValueError with suggestions otherwise."""
    lowered = [label.lower() for label in labels]
    if name.strip().lower() in lowered:
        return lowered.index(name.strip().lower())
    close = difflib.get_close_matches(name, labels, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"unknown label '{name}'{hint}")


def label_mask(labels: Sequence[str], only: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
    """Classes to show and report: all, or only ``only``, minus ``exclude``."""
    mask = np.zeros(len(labels), bool) if only else np.ones(len(labels), bool)
    for name in only:
        mask[find_label(labels, name)] = True
    for name in exclude:
        mask[find_label(labels, name)] = False
    if not mask.any():
        raise ValueError("--only/--exclude leave no label to report")
    return mask


def parse_label_thresholds(labels: Sequence[str], items: Sequence[str]) -> dict[str, float]:
    """``["Speech=0.7", ...]`` -> {label: threshold} with the model's spelling of each label."""
    result = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            threshold = float(value)
        except ValueError:
            threshold = None
        if not sep or not name or threshold is None:
            raise ValueError(f"--label-threshold '{item}' is not LABEL=PROBABILITY")
        result[labels[find_label(labels, name)]] = threshold
    return result


@dataclass
class Plan:
    """The checked settings of a run."""

    window: int
    hop: int
    allowed: np.ndarray
    tracker: EventTracker


def prepare(backend: Backend, options: ListenOptions) -> Plan:
    """Check the options against the model; ValueError (a usage error) when they do not fit."""
    window, hop = WindowSettings(options.window, options.hop).resolve(backend)
    if hop > window:
        raise ValueError("--hop cannot be longer than the window")
    labels = backend.labels
    allowed = label_mask(labels, options.only, options.exclude)
    thresholds = label_thresholds(labels, options.threshold,
                                  parse_label_thresholds(labels, options.label_thresholds))
    tracker = EventTracker(labels, thresholds, options.offset_ratio, options.min_duration, allowed)
    return Plan(window, hop, allowed, tracker)


class Display(Protocol):
    def add_update(self, update: Update) -> None: ...
    def add_event(self, record: dict[str, Any]) -> None: ...
    def set_status(self, text: str) -> None: ...
    def refresh(self, elapsed: float, lost: float, late: float) -> None: ...


def rounded(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


class JsonLines:
    """``--format jsonl``: one object per update, event and status change, on stdout."""

    def __init__(self, stream: IO[str], labels: Sequence[str], allowed: np.ndarray, top: int,
                 hop: float) -> None:
        self.stream, self.labels, self.allowed, self.top, self.hop = stream, labels, allowed, top, hop
        self.lost = 0.0

    def write(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()

    def add_update(self, update: Update) -> None:
        record: dict[str, Any] = {
            "type": "update", "start": rounded(update.start), "end": rounded(update.end),
            "warmup": update.warmup, "level_db": rounded(update.level_db, 1),
            "peak_db": rounded(update.peak_db, 1), "tagged": update.probabilities is not None,
            "latency_ms": rounded(update.latency * 1000, 1),
            "inference_ms": rounded(update.inference * 1000, 1),
            "rtf": rounded(update.inference / self.hop), "lost_seconds": rounded(self.lost),
        }
        if update.probabilities is not None:
            probabilities = np.where(self.allowed, update.probabilities, -1.0)
            record["top"] = [{"label": self.labels[i], "probability": rounded(update.probabilities[i], 6)}
                             for i in top_k(probabilities, min(self.top, int(self.allowed.sum())))]
        self.write(record)

    def add_event(self, record: dict[str, Any]) -> None:
        self.write(record)

    def set_status(self, text: str) -> None:
        self.write({"type": "status", "message": text})

    def refresh(self, elapsed: float, lost: float, late: float) -> None:
        self.lost = lost


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

    def summary(self, stopped: str, elapsed: float, audio: float, lost: float,
                labels: Sequence[str], allowed: np.ndarray, top: int) -> dict[str, Any]:
        def percentiles(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            return {"p50": rounded(np.percentile(values, 50) * 1000, 1),
                    "p95": rounded(np.percentile(values, 95) * 1000, 1)}

        peaks = []
        if self.peaks is not None:
            masked = np.where(allowed, self.peaks, -1.0)
            peaks = [{"label": labels[i], "peak": rounded(self.peaks[i], 4)}
                     for i in top_k(masked, min(top, int(allowed.sum())))]
        return {"type": "summary", "stopped": stopped, "seconds": rounded(elapsed, 2),
                "audio_seconds": rounded(audio, 2), "updates": self.updates, "events": self.events,
                "lost_seconds": rounded(lost), "reconnects": self.reconnects,
                "latency_ms": percentiles(self.latencies), "inference_ms": percentiles(self.inference),
                "top": peaks}


def summary_text(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    lines = [f"stopped ({summary['stopped']}) after {summary['seconds']:.1f} s: {summary['updates']} updates, "
             f"{summary['events']} events, {summary['lost_seconds']:.1f} s of audio lost, "
             f"{summary['reconnects']} reconnects"]
    if latency:
        lines.append(f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms")
    if summary["top"]:
        lines.append("highest: " + ", ".join(f"{t['label']} {t['peak']:.2f}" for t in summary["top"]))
    return "\n".join(lines)


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
    with native_stderr_discarded():
        source = (FileSource(options.input_path, capacity) if options.input_path
                  else MicrophoneSource(options.device, capacity))
        tagger = LiveTagger(backend, LiveSettings(plan.window, plan.hop, options.smooth, options.min_level),
                            plan.tracker, source.rate)
        header = Header(source.name, source.rate, source.channels, backend.name,
                        type(backend).__name__.removesuffix("Backend"), rate, window_s, plan.hop / rate)
        if options.interactive:
            from rich.console import Console

            console = Console(highlight=False)
            display: Display = TuiDisplay(console, header, list(backend.labels), plan.allowed, options.top)
        else:
            display = JsonLines(sys.stdout, backend.labels, plan.allowed, options.top, plan.hop / rate)
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
        summary = tally.summary(stopped, run.elapsed, tagger.time, source.queue.lost, backend.labels,
                                plan.allowed, options.top)
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

    def __init__(self, source: FileSource | MicrophoneSource, tagger: LiveTagger, display: Display,
                 tally: Tally, events_file: IO[str] | None) -> None:
        self.source, self.tagger, self.display, self.tally = source, tagger, display, tally
        self.events_file = events_file
        self.updates: queue.Queue = queue.Queue()
        self.worker = Worker(source.queue, tagger, self.updates)
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
                    if isinstance(self.source, FileSource) and self.source.fault():
                        raise TaggerError(self.source.fault())  # the file stopped decoding
                    return "end of input"
                if away_since is None:
                    fault = self.source.fault()
                    if fault:
                        if isinstance(self.source, FileSource):
                            raise TaggerError(fault)
                        away_since = now
                        self.source.mark_lost()
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
            return False
        return True

    def _show(self, item: object) -> bool:
        """Pass one item from the worker on; True when it says the input has ended."""
        if isinstance(item, Finished):
            return True
        if isinstance(item, WorkerFailed):
            raise TaggerError(item.message)
        if isinstance(item, Update):
            self.tally.add(item)
            self.display.add_update(item)
            for record in item.events:
                self._event(record)
        elif isinstance(item, dict):
            self._event(item)
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

