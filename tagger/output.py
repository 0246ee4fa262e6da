"""Sinks for file results: a Rich table for people, JSON / JSONL / CSV for programs, and the event
formats of review tools: an Audacity label track, a Raven selection table, WebVTT captions."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .aggregate import timeline, top_k
from .formatting import format_time, probability_bar
from .tagging import FileResult

DECIMALS = 6
MAX_TIMELINE_ROWS = 40


class Sink(Protocol):
    def add(self, result: FileResult) -> None: ...
    def add_error(self, path: str, message: str) -> None: ...
    def close(self) -> None: ...


class ResultsOnly:
    """What a sink inherits when its format has no place for failures (the caller reports them on
    stderr) and nothing to finish when the run ends."""

    def add_error(self, path: str, message: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class RunInfo:
    """What every output names: the model and the settings used."""

    model: str
    labels: Sequence[str]
    sample_rate: int
    window: float
    hop: float
    pooling: str

    def header(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_sample_rate": self.sample_rate,
            "window": self.window,
            "hop": self.hop,
            "pooling": self.pooling,
        }


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), DECIMALS) for v in values]


def file_record(result: FileResult, run: RunInfo, k: int) -> dict[str, Any]:
    """One file as a JSON-ready dict: metadata, clip scores of every class, top-k and windows."""
    clip = result.clip
    return {
        "path": result.path,
        "duration": round(result.duration, DECIMALS),
        "sample_rate": result.info.sample_rate,
        "channels": result.info.channels,
        "format": result.info.format,
        "warnings": list(result.warnings),
        "model": run.model,
        "top": [{"label": run.labels[i], "probability": round(float(clip[i]), DECIMALS)}
                for i in top_k(clip, k)],
        "clip": dict(zip(run.labels, _rounded(clip))),
        "windows": [
            {"start": round(w.start, DECIMALS), "end": round(w.end, DECIMALS),
             "probabilities": _rounded(w.probabilities)}
            for w in result.windows
        ],
        **({} if result.events is None else {"events": result.events}),
    }


def error_record(path: str, message: str) -> dict[str, str]:
    return {"path": path, "error": message}


class JsonSink:
    """One JSON document for the whole run, written when it ends."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.stream, self.run, self.k = stream, run, k
        self.files: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []

    def add(self, result: FileResult) -> None:
        self.files.append(file_record(result, self.run, self.k))

    def add_error(self, path: str, message: str) -> None:
        self.errors.append(error_record(path, message))

    def close(self) -> None:
        document = {**self.run.header(), "labels": list(self.run.labels),
                    "files": self.files, "errors": self.errors}
        json.dump(document, self.stream, ensure_ascii=False)
        self.stream.write("\n")


class JsonlSink:
    """One JSON object per line, per file (or per failed file), as each file finishes."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.stream, self.run, self.k = stream, run, k

    def _write(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()

    def add(self, result: FileResult) -> None:
        self._write(file_record(result, self.run, self.k))

    def add_error(self, path: str, message: str) -> None:
        self._write(error_record(path, message))

    def close(self) -> None:
        pass


class CsvSink(ResultsOnly):
    """Wide CSV: one row per window and one ``clip`` row per file, one column per label."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.writer = csv.writer(stream)
        self.writer.writerow(["path", "scope", "start", "end", *run.labels])
        self.stream = stream

    def add(self, result: FileResult) -> None:
        self.writer.writerow([result.path, "clip", 0.0, round(result.duration, DECIMALS),
                              *_rounded(result.clip)])
        for w in result.windows:
            self.writer.writerow([result.path, "window", round(w.start, DECIMALS),
                                  round(w.end, DECIMALS), *_rounded(w.probabilities)])
        self.stream.flush()


class TableSink(ResultsOnly):
    """Rich tables: the clip's top-k labels, then a compact timeline of the windows."""

    def __init__(self, console: Console, run: RunInfo, k: int) -> None:
        self.console, self.run, self.k = console, run, k

    def add(self, result: FileResult) -> None:
        self.console.print(Group(self._clip_table(result), *self._timeline(result), *self._events(result)))

    def _clip_table(self, result: FileResult) -> Table:
        info = result.info
        title = (f"{result.path}  ({format_time(result.duration)}, "
                 f"{info.sample_rate / 1000:g} kHz, {info.channels} ch, "
                 f"{len(result.windows)} window{'s' if len(result.windows) != 1 else ''})")
        table = Table(title=title, title_justify="left", show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("probability", justify="right")
        table.add_column("")
        for rank, i in enumerate(top_k(result.clip, self.k), start=1):
            p = float(result.clip[i])
            table.add_row(str(rank), self.run.labels[i], f"{p:.3f}", probability_bar(p))
        return table

    def _timeline(self, result: FileResult) -> list[Table | Text]:
        if len(result.windows) < 2:
            return []
        segments = timeline(np.array([w.start for w in result.windows]),
                            np.array([w.end for w in result.windows]),
                            np.stack([w.probabilities for w in result.windows]))
        table = Table(title="timeline (top label per window, consecutive windows merged)",
                      title_justify="left", show_edge=False)
        table.add_column("from", justify="right")
        table.add_column("to", justify="right")
        table.add_column("label")
        table.add_column("peak", justify="right")
        for s in segments[:MAX_TIMELINE_ROWS]:
            table.add_row(format_time(s.start), format_time(s.end), self.run.labels[s.label_index],
                          f"{s.peak:.3f}")
        parts: list[Table | Text] = [Text(""), table]
        if len(segments) > MAX_TIMELINE_ROWS:
            parts.append(Text(f"... {len(segments) - MAX_TIMELINE_ROWS} more segments "
                              "(use --format json for every window)"))
        parts.append(Text(""))
        return parts

    def _events(self, result: FileResult) -> list[Table | Text]:
        if result.events is None:
            return []
        if not result.events:
            return [Text("events: none above the threshold"), Text("")]
        table = Table(title="events", title_justify="left", show_edge=False)
        for column in ("onset", "offset", "label", "peak"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for e in result.events:
            table.add_row(format_time(e["onset"]), format_time(e["offset"]), e["label"], f"{e['peak']:.3f}")
        return [table, Text("")]


class AudacitySink(ResultsOnly):
    """An Audacity label track (File > Import > Labels): ``start<TAB>end<TAB>text`` per event, in
    seconds, the text ``label probability``. It describes one audio file."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.stream = stream

    def add(self, result: FileResult) -> None:
        for e in result.events or []:
            self.stream.write(f"{e['onset']:.6f}\t{e['offset']:.6f}\t{e['label']} {e['peak']:.2f}\n")
        self.stream.flush()


RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "Begin File", "Label", "Probability")


class RavenSink(ResultsOnly):
    """A Raven selection table (tab-separated, one row per event, numbered across the run): the
    event spans the whole band up to the model's Nyquist frequency; ``Begin File`` is the audio file's
    path as it was given."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.stream, self.run = stream, run
        self.selection = 0
        self.stream.write("\t".join(RAVEN_COLUMNS) + "\n")

    def add(self, result: FileResult) -> None:
        for e in result.events or []:
            self.selection += 1
            row = (self.selection, "Spectrogram 1", 1, f"{e['onset']:.6f}", f"{e['offset']:.6f}", 0,
                   self.run.sample_rate // 2, _tab_free(result.path), _tab_free(e["label"]), f"{e['peak']:.4f}")
            self.stream.write("\t".join(str(value) for value in row) + "\n")
        self.stream.flush()


def _tab_free(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def vtt_time(seconds: float) -> str:
    """WebVTT's ``hh:mm:ss.ttt``."""
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


class WebVttSink(ResultsOnly):
    """WebVTT captions, one cue per event (``[Dog] 0.93``), for a video of the audio file."""

    def __init__(self, stream: IO[str], run: RunInfo, k: int) -> None:
        self.stream = stream
        self.stream.write("WEBVTT\n")

    def add(self, result: FileResult) -> None:
        for e in result.events or []:
            text = " ".join(e["label"].replace("-->", "->").splitlines())
            self.stream.write(f"\n{vtt_time(e['onset'])} --> {vtt_time(e['offset'])}\n[{text}] {e['peak']:.2f}\n")
        self.stream.flush()


SUFFIXES = {"audacity": ".txt", "webvtt": ".vtt"}


class FolderSink(ResultsOnly):
    """One file per audio file in ``folder``, for the formats that describe one audio file
    (audacity, webvtt): ``<stem>.txt`` / ``<stem>.vtt``, ``<stem>-2...`` when two inputs share a
    stem; each written atomically as its audio file finishes."""

    def __init__(self, folder: Path, output_format: str, run: RunInfo, k: int) -> None:
        self.folder, self.output_format, self.run, self.k = folder, output_format, run, k
        self.used: set[str] = set()

    def add(self, result: FileResult) -> None:
        from .atomic import atomic_write
        from .errors import TaggerError

        stem = name = Path(result.path).stem
        number = 2
        while name in self.used:
            name, number = f"{stem}-{number}", number + 1
        self.used.add(name)
        target = self.folder / f"{name}{SUFFIXES[self.output_format]}"
        try:
            with atomic_write(target, "w", newline="") as stream:
                sink = make_sink(self.output_format, stream, self.run, self.k)
                sink.add(result)
                sink.close()
        except OSError as exc:
            raise TaggerError(f"{target}: cannot write ({exc.strerror or exc})") from None


def make_sink(output_format: str, stream: IO[str], run: RunInfo, k: int) -> Sink:
    """The sink for ``--format``; tables go to a Rich console on ``stream``."""
    if output_format == "table":
        return TableSink(Console(file=stream, highlight=False), run, k)
    sinks = {"json": JsonSink, "jsonl": JsonlSink, "csv": CsvSink, "audacity": AudacitySink, "raven": RavenSink,
             "webvtt": WebVttSink}
    return sinks[output_format](stream, run, k)
