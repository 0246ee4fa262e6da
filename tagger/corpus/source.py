"""A source recording: one real or rendered sound that corpus clips are cut from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One recording and where it came from.

    ``labels`` are corpus class names (empty for a distractor: a sound that is none of the 50
    classes, such as a UI chime). ``group`` is the unit of the train/held-out split: sources
    that share a group (the same original recording reused by two games, the takes of one
    speaker, the renders of one MIDI phrase) always land in the same split, so the held-out
    set never hears a recording the model was trained on.
    """

    path: Path  # audio file on disk, any format soundfile reads
    labels: tuple[str, ...]
    package: str  # Debian package it came from, or "procedural"
    origin: str  # file inside the package, or how it was made
    licence: str
    group: str
