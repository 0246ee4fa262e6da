"""From a stream of per-window probabilities to sound events (no torch, no audio).

Overlapping windows see one sound many times: with a 10 s window moved every second, a door slam
is inside ten windows. :class:`EventTracker` turns those repeated detections into one event per
sound with per-label thresholds, hysteresis (an event starts at ``threshold`` and only ends when
the probability falls below ``threshold * offset_ratio``) and a minimum duration. :class:`Smoother`
optionally averages the last few windows first.

Times are stream seconds. A window ``[start, end]`` that follows a hop of ``hop`` seconds brings
new audio ``[end - hop, end]``: an onset is placed at the start of the new audio of the first
window above threshold, an offset at the start of the new audio of the first window below the
offset threshold, so both are accurate to about one hop.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


DEFAULT_THRESHOLD = 0.5


class Smoother:
    """Mean of the last ``windows`` probability vectors (1: no smoothing)."""

    def __init__(self, windows: int = 1) -> None:
        if windows < 1:
            raise ValueError("smoothing needs at least 1 window")
        self._recent: deque[np.ndarray] = deque(maxlen=windows)

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        self._recent.append(np.asarray(probabilities, dtype=np.float32))
        if len(self._recent) == 1:
            return self._recent[0]
        return np.mean(np.stack(self._recent), axis=0)

    def reset(self) -> None:
        self._recent.clear()


def find_label(labels: Sequence[str], name: str) -> int:
    """Index of a label by name, ignoring case; ValueError with suggestions otherwise."""
    lowered = [label.lower() for label in labels]
    if name.strip().lower() in lowered:
        return lowered.index(name.strip().lower())
    close = difflib.get_close_matches(name, labels, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"unknown label '{name}'{hint}")


def label_indices(labels: Sequence[str], name: str) -> list[int]:
    """A label by name (case ignored); for an AudioSet ontology class that is not one of the labels
    (``Animal``), every label under it; ValueError with suggestions otherwise."""
    try:
        return [find_label(labels, name)]
    except ValueError:
        from .ontology import labels_under

        under = labels_under(labels, name)
        if under:
            return under
        raise


def shown_labels(labels: Sequence[str], only: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
    """Indices of the classes to show and report, in model order: all, or only ``only``, minus
    ``exclude`` (each a label, or an ontology class standing for the labels under it)."""
    mask = np.zeros(len(labels), bool) if only else np.ones(len(labels), bool)
    for name in only:
        mask[label_indices(labels, name)] = True
    for name in exclude:
        mask[label_indices(labels, name)] = False
    if not mask.any():
        raise ValueError("--only/--exclude leave no label to report")
    return np.flatnonzero(mask)


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


def label_thresholds(labels: Sequence[str], default: float,
                     overrides: Mapping[str, float] | None = None) -> np.ndarray:
    """One threshold per class: ``default``, or the override given for that label name."""
    if not 0.0 < default <= 1.0:
        raise ValueError(f"threshold {default:g} is not in (0, 1]")
    thresholds = np.full(len(labels), default, dtype=np.float32)
    index = {label: i for i, label in enumerate(labels)}
    for label, value in (overrides or {}).items():
        if not 0.0 < value <= 1.0:
            raise ValueError(f"threshold {value:g} for '{label}' is not in (0, 1]")
        thresholds[index[label]] = value
    return thresholds


@dataclass
class Event:
    """One sound: ``offset`` is None while it lasts; ``peak`` is its highest probability."""

    label: str
    onset: float
    peak: float
    offset: float | None = None

    def record(self, kind: str, time: float) -> dict[str, Any]:
        """A JSON-ready dict: ``onset`` when the event is confirmed, ``offset`` when it ends."""
        record: dict[str, Any] = {"type": "event", "event": kind, "time": round(time, 3),
                                  "label": self.label, "onset": round(self.onset, 3)}
        if self.offset is not None:
            record["offset"] = round(self.offset, 3)
            record["duration"] = round(self.offset - self.onset, 3)
        record["peak"] = round(float(self.peak), 4)
        return record


@dataclass
class _Candidate:
    event: Event
    confirmed: bool = False


@dataclass
class EventTracker:
    """Per-label hysteresis with a minimum duration; see the module docstring.

    :meth:`update` returns the records of events confirmed (``onset``) or ended (``offset``)
    by one window, an event is confirmed once it has lasted ``min_duration`` seconds.
    """

    labels: Sequence[str]
    thresholds: np.ndarray
    offset_ratio: float = 0.7
    min_duration: float = 0.0
    _open: dict[int, _Candidate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.offset_ratio <= 1.0:
            raise ValueError(f"offset ratio {self.offset_ratio:g} is not in (0, 1]")
        if self.min_duration < 0:
            raise ValueError("the minimum duration cannot be negative")
        self._offsets = self.thresholds * self.offset_ratio

    @property
    def ongoing(self) -> list[Event]:
        """Confirmed events that have not ended yet."""
        return [c.event for c in self._open.values() if c.confirmed]

    def update(self, new_audio_start: float, end: float, probabilities: np.ndarray) -> list[dict[str, Any]]:
        """Feed one window's probabilities (new audio ``[new_audio_start, end]``)."""
        records = []
        above_on = probabilities >= self.thresholds
        above_off = probabilities >= self._offsets
        for i in list(self._open):
            candidate = self._open[i]
            if above_off[i]:
                candidate.event.peak = max(candidate.event.peak, float(probabilities[i]))
            else:
                del self._open[i]
                if candidate.confirmed:
                    candidate.event.offset = new_audio_start
                    records.append(candidate.event.record("offset", end))
        for i in np.flatnonzero(above_on):
            if i not in self._open:
                self._open[int(i)] = _Candidate(Event(self.labels[i], new_audio_start,
                                                      float(probabilities[i])))
        for candidate in self._open.values():
            if not candidate.confirmed and end - candidate.event.onset >= self.min_duration:
                candidate.confirmed = True
                records.append(candidate.event.record("onset", end))
        return records

    def close(self, time: float) -> list[dict[str, Any]]:
        """End every open event at ``time`` (end of stream, a gap in the audio); drop unconfirmed ones."""
        records = []
        for candidate in self._open.values():
            if candidate.confirmed:
                candidate.event.offset = max(time, candidate.event.onset)
                records.append(candidate.event.record("offset", time))
        self._open.clear()
        return records


@dataclass(frozen=True)
class EventOptions:
    """The event options that ``tagger listen`` and ``tagger file --events`` share."""

    threshold: float | None = None  # None: the model's own thresholds, else DEFAULT_THRESHOLD
    label_thresholds: Sequence[str] = ()  # "LABEL=P"
    offset_ratio: float = 0.7
    min_duration: float = 0.0
    smooth: int = 1
    only: Sequence[str] = ()
    exclude: Sequence[str] = ()
    thresholds: str | None = None  # a thresholds file (tagger.thresholds)

    def per_label(self, labels: Sequence[str], model: Mapping[str, float] | None = None) -> np.ndarray:
        """One threshold per class: ``--label-threshold``, else the thresholds file, else
        ``--threshold``, else the model's own (``model``), else DEFAULT_THRESHOLD; ValueError for
        a label the model does not know or a bad value."""
        from .errors import TaggerError
        from .thresholds import read_thresholds

        overrides: dict[str, float] = {}
        if self.threshold is None:
            overrides.update({label: p for label, p in (model or {}).items() if label in labels})
        if self.thresholds:
            try:
                from_file = read_thresholds(self.thresholds)
            except TaggerError as exc:
                raise ValueError(str(exc)) from None
            for name, value in from_file.items():
                try:
                    overrides[labels[find_label(labels, name)]] = value
                except ValueError as exc:
                    raise ValueError(f"{self.thresholds}: {exc}") from None
        overrides.update(parse_label_thresholds(labels, self.label_thresholds))
        default = DEFAULT_THRESHOLD if self.threshold is None else self.threshold
        return label_thresholds(labels, default, overrides)


class EventDecoder:
    """Per-window probabilities of one stream -> events, the same way for live audio and files:
    the reported labels only (``--only``/``--exclude``), smoothing over the last windows, then the
    :class:`EventTracker`. A window brings the new audio of its last hop (all of it for the first)."""

    def __init__(self, labels: Sequence[str], options: EventOptions, hop_seconds: float,
                 model_thresholds: Mapping[str, float] | None = None) -> None:
        self.shown = shown_labels(labels, options.only, options.exclude)
        self.labels = [labels[i] for i in self.shown]
        thresholds = options.per_label(labels, model_thresholds)[self.shown]
        self.tracker = EventTracker(self.labels, thresholds, options.offset_ratio, options.min_duration)
        self.smoother = Smoother(options.smooth)
        self.hop = hop_seconds

    def update(self, start: float, end: float, probabilities: np.ndarray | None) -> tuple[np.ndarray | None,
                                                                                     list[dict[str, Any]]]:
        """Feed one window (all the model's classes; None: not tagged, as silence); returns its
        smoothed probabilities of the reported labels and the event records it produced."""
        smoothed = None if probabilities is None else self.smoother(np.asarray(probabilities)[self.shown])
        scores = np.zeros(len(self.shown), np.float32) if smoothed is None else smoothed
        return smoothed, self.tracker.update(max(start, end - self.hop), end, scores)

    def close(self, time: float) -> list[dict[str, Any]]:
        """End the open events at ``time`` (end of the stream, or a gap); smoothing starts afresh."""
        self.smoother.reset()
        return self.tracker.close(time)


def finished_events(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ended events of a stream's records (its ``offset`` records), in onset order, as
    ``{label, onset, offset, duration, peak}``."""
    ended = [{key: r[key] for key in ("label", "onset", "offset", "duration", "peak")}
             for r in records if r.get("event") == "offset"]
    return sorted(ended, key=lambda e: (e["onset"], e["label"]))
