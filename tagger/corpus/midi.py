"""A dependency-free Standard MIDI File (format 0) writer.

Times are given in seconds: the file uses a fixed tempo of 120 BPM and 480 ticks per quarter
note, so one second is exactly 960 ticks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TICKS_PER_QUARTER = 480
TEMPO_US_PER_QUARTER = 500_000
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 // TEMPO_US_PER_QUARTER
DRUM_CHANNEL = 9


@dataclass(frozen=True)
class Note:
    """One note: start and length in seconds, MIDI pitch and velocity, channel 0-15."""

    start: float
    duration: float
    pitch: int
    velocity: int
    channel: int = 0


@dataclass(frozen=True)
class Control:
    """A control change (``program`` is None) or a program change (``program`` set)."""

    time: float
    channel: int
    controller: int = 0
    value: int = 0
    program: int | None = None


def varlen(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    if value < 0:
        raise ValueError("variable-length quantities are non-negative")
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(groups))


def ticks(seconds: float) -> int:
    """Seconds to ticks at the file's fixed tempo."""
    return max(0, round(seconds * TICKS_PER_SECOND))


def _timed_events(notes: list[Note], controls: list[Control]) -> list[tuple[int, int, bytes]]:
    """(tick, order, message) for every event; at one tick: controls, note-offs, note-ons."""
    events = []
    for control in controls:
        if control.program is None:
            message = bytes([0xB0 | control.channel, control.controller & 0x7F, control.value & 0x7F])
        else:
            message = bytes([0xC0 | control.channel, control.program & 0x7F])
        events.append((ticks(control.time), 0, message))
    for note in notes:
        on = ticks(note.start)
        off = max(on + 1, ticks(note.start + note.duration))
        events.append((on, 2, bytes([0x90 | note.channel, note.pitch & 0x7F, max(1, min(127, note.velocity))])))
        events.append((off, 1, bytes([0x80 | note.channel, note.pitch & 0x7F, 0])))
    events.sort(key=lambda event: (event[0], event[1]))
    return events


def midi_bytes(notes: list[Note], controls: list[Control] = (), end: float | None = None) -> bytes:
    """A complete format-0 SMF; ``end`` (seconds) extends the track past the last event."""
    body = bytearray(varlen(0) + b"\xff\x51\x03" + TEMPO_US_PER_QUARTER.to_bytes(3, "big"))
    now = 0
    for tick, _, message in _timed_events(list(notes), list(controls)):
        body += varlen(tick - now) + message
        now = tick
    last = max(now, ticks(end) if end is not None else now)
    body += varlen(last - now) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)
