"""What ``tagger listen`` shows: the Rich terminal UI and JSON lines, side by side, and the closing
summary's text. Both read without colour (the UI's bars use distinct characters). A display only
ever sees the labels the run reports (``--only``/``--exclude`` are applied before it)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .aggregate import top_k
from .formatting import format_time, probability_bar, rounded
from .live import SILENCE_DB, Update

HISTORY = 32  # updates shown in each label's history strip
EVENT_LINES = 6
SPARK = "·▁▂▃▄▅▆▇█"  # '·' is ~0: the strip stays visible for a quiet label
LEVEL_FLOOR_DB = -60.0


class Display(Protocol):
    """Where a run's updates, events and status go (the UI or JSON lines)."""

    def add_update(self, update: Update) -> None: ...
    def add_event(self, record: dict[str, Any]) -> None: ...
    def set_status(self, text: str) -> None: ...
    def refresh(self, elapsed: float, lost: float, late: float) -> None: ...


class JsonLines:
    """``--format jsonl``: one object per update, event and status change, on stdout."""

    def __init__(self, stream: IO[str], labels: Sequence[str], top: int, hop: float) -> None:
        self.stream, self.labels, self.top, self.hop = stream, labels, top, hop
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
            record["top"] = [{"label": self.labels[i], "probability": rounded(update.probabilities[i], 6)}
                             for i in top_k(update.probabilities, min(self.top, len(self.labels)))]
        self.write(record)

    def add_event(self, record: dict[str, Any]) -> None:
        self.write(record)

    def set_status(self, text: str) -> None:
        self.write({"type": "status", "message": text})

    def refresh(self, elapsed: float, lost: float, late: float) -> None:
        self.lost = lost


# --- the Rich terminal UI ------------------------------------------------------------------------


def sparkline(values: np.ndarray) -> str:
    """One character per value in [0, 1]: eight bar heights, '·' for about zero."""
    steps = np.clip(np.round(np.asarray(values) * (len(SPARK) - 1)), 0, len(SPARK) - 1).astype(int)
    return "".join(SPARK[i] for i in steps)


def level_bar(db: float, width: int = 20) -> str:
    """-60..0 dBFS as a bar."""
    return probability_bar((max(db, LEVEL_FLOOR_DB) - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB, width)


@dataclass(frozen=True)
class Header:
    """What the top lines say about the run."""

    source: str  # device name or input file
    input_rate: int
    channels: int
    model: str
    backend: str
    sample_rate: int
    window: float
    hop: float


def event_line(record: dict[str, Any]) -> str:
    if record["event"] == "onset":
        return f"{format_time(record['onset']):>8}  start  {record['label']}  (p {record['peak']:.2f})"
    return (f"{format_time(record['offset']):>8}  end    {record['label']}  "
            f"{format_time(record['onset'])}-{format_time(record['offset'])}, {record['duration']:.1f} s, "
            f"peak {record['peak']:.2f}")


class TuiDisplay:
    """Keeps the latest state and draws it in a Rich Live region on a terminal."""

    def __init__(self, console: Console, header: Header, labels: Sequence[str], top: int) -> None:
        self.console = console
        self.header = header
        self.labels = labels
        self.top = top
        self.history: deque[np.ndarray] = deque(maxlen=HISTORY)
        self.events: deque[str] = deque(maxlen=EVENT_LINES)
        self.update: Update | None = None
        self.latencies: deque[float] = deque(maxlen=200)
        self.status = "listening"
        self.lost = 0.0
        self.late = 0.0
        self.elapsed = 0.0
        self._live = Live(self.render(), console=console, auto_refresh=False, transient=False,
                          redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> "TuiDisplay":
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self.render(), refresh=True)
        self._live.stop()

    def add_update(self, update: Update) -> None:
        self.update = update
        probabilities = update.probabilities
        self.history.append(np.zeros(len(self.labels), np.float32) if probabilities is None else probabilities)
        if update.probabilities is not None:
            self.latencies.append(update.latency)

    def add_event(self, record: dict[str, Any]) -> None:
        self.events.append(event_line(record))

    def set_status(self, text: str) -> None:
        self.status = text

    def refresh(self, elapsed: float, lost: float, late: float) -> None:
        self.elapsed, self.lost, self.late = elapsed, lost, late
        self._live.update(self.render(), refresh=True)

    def render(self) -> Group:
        h = self.header
        title = Text(f"tagger listen  {h.source}  ({h.input_rate} Hz, {h.channels} ch -> mono "
                     f"{h.sample_rate / 1000:g} kHz)", style="bold")
        settings = Text(f"model {h.model} ({h.backend})  window {h.window:g} s  hop {h.hop:g} s")
        return Group(title, settings, self._meters(), self._labels_table(), self._event_log(),
                     Text(f"status: {self.status}   (Ctrl-C to stop)"))

    def _meters(self) -> Text:
        u = self.update
        level = u.level_db if u else SILENCE_DB
        lat = np.array(self.latencies) if self.latencies else None
        latency = (f"latency {lat[-1] * 1000:.0f} ms (p95 {np.percentile(lat, 95) * 1000:.0f})"
                   if lat is not None else "latency -")
        rtf = f"RTF {u.inference / self.header.hop:.2f}" if u and u.probabilities is not None else "RTF -"
        lost = f"lost {self.lost:.1f} s" + (f" (behind {self.late:.1f} s)" if self.late > 0.25 else "")
        return Text(f"time {format_time(self.elapsed)}  level {level_bar(level)} "
                    f"{'quiet' if level <= SILENCE_DB else f'{level:.0f} dBFS'}  {latency}  {rtf}  {lost}")

    def _labels_table(self) -> Table | Text:
        u = self.update
        if u is None:
            return Text("waiting for audio ...")
        if u.probabilities is None:
            return Text("(below --min-level: not tagging)")
        history = np.stack(self.history)
        table = Table(show_edge=False, box=None, pad_edge=False,
                      title="warming up (partial window)" if u.warmup else None, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("label", no_wrap=True, max_width=40)
        table.add_column("prob", justify="right")
        table.add_column("")
        table.add_column(f"last {HISTORY} updates", no_wrap=True)
        for rank, i in enumerate(top_k(u.probabilities, min(self.top, len(self.labels))), start=1):
            p = float(u.probabilities[i])
            table.add_row(str(rank), self.labels[i], f"{p:.3f}", probability_bar(p),
                          sparkline(history[:, i]).rjust(HISTORY, " "))
        return table

    def _event_log(self) -> Text:
        if not self.events:
            return Text("events: none yet")
        return Text("events:\n" + "\n".join(self.events))


def summary_text(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    lines = [f"stopped ({summary['stopped']}) after {summary['seconds']:.1f} s: {summary['updates']} updates, "
             f"{summary['events']} events, {summary['lost_seconds']:.1f} s of audio lost, "
             f"{summary['reconnects']} reconnects"]
    if latency:
        lines.append(f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms")
    if summary["skipped_windows"]:
        lines.append(f"{summary['skipped_windows']} windows skipped to stay current (the model is slower than "
                     "the hop: a longer --hop, --precision int8 or a smaller model keeps every window)")
    if summary["top"]:
        lines.append("highest: " + ", ".join(f"{t['label']} {t['peak']:.2f}" for t in summary["top"]))
    return "\n".join(lines)
