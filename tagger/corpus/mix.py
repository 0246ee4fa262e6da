"""Clip assembly: cut, vary, level and mix source recordings into labelled corpus clips.

Each clip is drawn from its own random generator seeded by ``(seed, split, clip index)``, so a clip's
content depends on nothing else (the build is deterministic whatever the number of worker processes).
A clip is 1-10 s long and holds one to three labelled sources (its labels are the union, plus the
parents they imply), sometimes an unlabelled distractor, and often a faint room tone. With
``conditions`` set, that share of the clips then goes through a random recording-condition chain
(`tagger.augment.recording_conditions`), except clips holding exact test signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagger.audio import MODEL_SAMPLE_RATE
from tagger.augment import recording_conditions

from .classes import CLASSES, with_implied
from .dsp import fade
from .source import Source

SAMPLE_RATE = MODEL_SAMPLE_RATE
MIN_SECONDS, MAX_SECONDS = 1.0, 10.0
SOURCE_COUNTS, SOURCE_COUNT_ODDS = (1, 2, 3), (0.5, 0.35, 0.15)
DISTRACTOR_ONLY_ODDS = 0.05  # clips that hold none of the classes
DISTRACTOR_ODDS = 0.15  # an unlabelled sound under the labelled ones
ROOM_TONE_ODDS = 0.5
LEVEL_DBFS = (-34.0, -14.0)  # RMS of the first source
SECONDARY_DB = (-8.0, 4.0)  # RMS of further sources relative to the first
DISTRACTOR_DB = (-14.0, -4.0)
ROOM_TONE_DB = (-45.0, -25.0)
SPEED_ODDS, SPEED_RANGE = 0.5, (0.9, 1.1)  # resampling factor: pitch and tempo together
FADE_SECONDS = 0.005
CONDITIONS_STREAM = 1  # seeds the recording conditions of a clip apart from its mix
UNVARIED_PACKAGES = {"procedural"}  # exact signals (DTMF pairs, tones, noise colours) keep their spectra


@dataclass(frozen=True)
class Part:
    """One source placed in a clip (the attribution of a clip is the list of its parts)."""

    source: int  # index into the split's sources
    offset: float  # seconds into the clip
    duration: float  # seconds
    level_db: float  # gain applied relative to the source's own RMS
    labelled: bool


@dataclass(frozen=True)
class Clip:
    audio: np.ndarray
    labels: tuple[str, ...]
    parts: tuple[Part, ...]


class Pools:
    """The sources of one split, indexed for drawing: class -> groups -> source indices."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        by_class: dict[str, dict[str, list[int]]] = {}
        distractors: list[int] = []
        for index, source in enumerate(sources):
            if not source.labels:
                distractors.append(index)
            for label in source.labels:
                by_class.setdefault(label, {}).setdefault(source.group, []).append(index)
        self.groups = {label: list(groups.values()) for label, groups in by_class.items()}
        self.distractors = distractors
        self.classes = [label for label in CLASSES if label in self.groups]

    def draw(self, rng: np.random.Generator, label: str) -> int:
        """A source of ``label``: a group uniformly, then a source of the group uniformly."""
        groups = self.groups[label]
        members = groups[int(rng.integers(len(groups)))]
        return members[int(rng.integers(len(members)))]


def _db(value: float) -> float:
    return float(10.0 ** (value / 20.0))


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def _active_rms(audio: np.ndarray, frame: int = 640) -> float:
    """RMS over the loudest half of 20 ms frames, so that a short bark in silence is levelled by the bark."""
    usable = len(audio) // frame * frame
    if usable == 0:
        return _rms(audio)
    energies = np.mean(np.square(audio[:usable].reshape(-1, frame), dtype=np.float64), axis=1)
    loud = np.sort(energies)[len(energies) // 2:]
    return float(np.sqrt(loud.mean()))


def _speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it), by linear interpolation."""
    positions = np.arange(0.0, len(audio) - 1, factor)
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def _room_tone(rng: np.random.Generator, length: int) -> np.ndarray:
    """Noise through a one-pole low-pass (cut-off 150-800 Hz), like a microphone's floor in a room.

    Its spectrum falls 6 dB per octave above the cut-off: unlike the White or Pink noise classes.
    """
    cutoff = rng.uniform(150.0, 800.0)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    tone = np.fft.irfft(spectrum / np.sqrt(1.0 + (frequencies / cutoff) ** 2), n=length)
    return (tone / (_rms(tone) or 1.0)).astype(np.float32)


class ClipMaker:
    """Draws clips from one split's sources (``audio[i]`` is source ``i`` at 32 kHz mono)."""

    def __init__(self, pools: Pools, audio: list[np.ndarray], seed: int, split_code: int,
                 conditions: float = 0.0) -> None:
        self.pools = pools
        self.audio = audio
        self.seed = seed
        self.split_code = split_code
        self.conditions = conditions

    def make(self, index: int) -> Clip:
        rng = np.random.default_rng([self.seed, self.split_code, index])
        length = round(rng.uniform(MIN_SECONDS, MAX_SECONDS) * 100) * SAMPLE_RATE // 100
        mix = np.zeros(length, dtype=np.float32)
        parts: list[Part] = []
        labels: list[str] = []
        if self.pools.distractors and rng.random() < DISTRACTOR_ONLY_ODDS:
            level = rng.uniform(*LEVEL_DBFS)
            parts += self._place(rng, mix, self._distractor(rng), level, labelled=False)
        else:
            chosen = self._classes(rng, index)
            level = rng.uniform(*LEVEL_DBFS)
            for position, label in enumerate(chosen):
                source = self.pools.draw(rng, label)
                relative = 0.0 if position == 0 else rng.uniform(*SECONDARY_DB)
                parts += self._place(rng, mix, source, level + relative, labelled=True)
                labels += self.pools.sources[source].labels
            if self.pools.distractors and rng.random() < DISTRACTOR_ODDS:
                parts += self._place(rng, mix, self._distractor(rng), level + rng.uniform(*DISTRACTOR_DB),
                                     labelled=False)
        if rng.random() < ROOM_TONE_ODDS:
            mix += _room_tone(rng, length) * np.float32(_db(level + rng.uniform(*ROOM_TONE_DB)))
        exact = any(self.pools.sources[part.source].package in UNVARIED_PACKAGES for part in parts)
        if self.conditions > 0 and not exact:  # own generator: the mix is the same with or without
            conditions_rng = np.random.default_rng([self.seed, self.split_code, index, CONDITIONS_STREAM])
            if conditions_rng.random() < self.conditions:
                mix = recording_conditions(conditions_rng, mix, SAMPLE_RATE)
        peak = float(np.max(np.abs(mix))) if mix.size else 0.0
        if peak > 0.99:
            mix *= np.float32(0.99 / peak)
        return Clip(mix, with_implied(labels), tuple(parts))

    def _classes(self, rng: np.random.Generator, index: int) -> list[str]:
        """The first class goes round the classes (balance); the others are random, all different."""
        classes = self.pools.classes
        first = classes[index % len(classes)]
        count = int(rng.choice(SOURCE_COUNTS, p=SOURCE_COUNT_ODDS))
        others = [label for label in classes if label != first]
        picked = rng.choice(len(others), size=min(count - 1, len(others)), replace=False)
        return [first, *(others[i] for i in sorted(picked))]

    def _distractor(self, rng: np.random.Generator) -> int:
        return self.pools.distractors[int(rng.integers(len(self.pools.distractors)))]

    def _place(self, rng: np.random.Generator, mix: np.ndarray, source: int, level_db: float,
               labelled: bool) -> list[Part]:
        """Add the source to the mix: one crop of a long source, or 1-3 occurrences of a short one."""
        audio = self.audio[source]
        if self.pools.sources[source].package not in UNVARIED_PACKAGES and rng.random() < SPEED_ODDS:
            audio = _speed(audio, rng.uniform(*SPEED_RANGE))
        gain = np.float32(_db(level_db) / (_active_rms(audio) or 1.0))
        length = len(mix)
        if len(audio) >= length:
            start = int(rng.integers(len(audio) - length + 1))
            mix += fade(audio[start:start + length], FADE_SECONDS, FADE_SECONDS) * gain
            return [Part(source, 0.0, length / SAMPLE_RATE, level_db, labelled)]
        repeats = int(rng.integers(1, min(3, length // len(audio)) + 1))
        parts = []
        for _ in range(repeats):
            offset = int(rng.integers(length - len(audio) + 1))
            mix[offset:offset + len(audio)] += fade(audio, FADE_SECONDS, FADE_SECONDS) * gain
            parts.append(Part(source, offset / SAMPLE_RATE, len(audio) / SAMPLE_RATE, level_db, labelled))
        return parts
