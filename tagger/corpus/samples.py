"""Phrases assembled from real recorded notes and drum hits (lmms, sonic-pi, hydrogen).

A melodic sample is played like a sampler plays it: pitch-shifted by resampling into short
melodies. Drum kits play the grooves of :mod:`tagger.corpus.compose` with their own hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tagger.audio import load_audio
from tagger.corpus.compose import CLOSED_HAT, CRASH, KICK, OPEN_HAT, PEDAL_HAT, RIDE, SIDESTICK, SNARE, TOMS, drum_groove, random_key
from tagger.corpus.dsp import SR, fade, mix_at, normalize, pitch_shift, random_peak

LMMS = "usr/share/lmms/samples"
SONIC_PI = "usr/share/sonic-pi/samples"
HYDROGEN = "usr/share/hydrogen/data/drumkits"
NOTE_SECONDS = 1.6  # longest stretch of a sample used as one note
PHRASES_PER_SET = 5
PHRASES_PER_KIT = 12


@dataclass(frozen=True)
class SampleSet:
    """Recordings of one instrument that belong to one split group."""

    group: str
    package: str
    files: tuple[str, ...]  # paths inside the package
    label: str


MELODIC_SETS: tuple[SampleSet, ...] = (
    SampleSet("lmms:piano01", "lmms-common", (f"{LMMS}/instruments/piano01.ogg",), "Piano"),
    SampleSet("lmms:piano02", "lmms-common", (f"{LMMS}/instruments/piano02.ogg",), "Piano"),
    SampleSet("sonic-pi:ambi_piano", "sonic-pi-samples", (f"{SONIC_PI}/ambi_piano.flac",), "Piano"),
    *(SampleSet(f"lmms:church_organ0{i}", "lmms-common", (f"{LMMS}/instruments/church_organ0{i}.ogg",), "Organ") for i in range(1, 5)),
    SampleSet("lmms:e_organ01", "lmms-common", (f"{LMMS}/instruments/e_organ01.ogg",), "Organ"),
    SampleSet("lmms:cello01", "lmms-common", (f"{LMMS}/instruments/cello01.ogg",), "Cello"),
    *(SampleSet(f"lmms:violin_{k}01", "lmms-common", (f"{LMMS}/instruments/violin_{k}01.ogg",), "Violin, fiddle") for k in ("fingered", "double_stop", "pizzicato")),
    SampleSet("lmms:trumpet01", "lmms-common", (f"{LMMS}/instruments/trumpet01.ogg",), "Trumpet"),
    SampleSet("lmms:flute01", "lmms-common", (f"{LMMS}/instruments/flute01.ogg",), "Flute"),
    # One recording distorted three ways: one group.
    SampleSet("lmms:steel_guitar_distorted", "lmms-common", tuple(f"{LMMS}/instruments/steel_guitar_{k}_distorted01.ogg" for k in ("slight", "medium", "heavy")), "Electric guitar"),
    *(SampleSet(f"lmms:latin_guitar0{i}", "lmms-common", (f"{LMMS}/latin/latin_guitar0{i}.ogg",), "Acoustic guitar") for i in range(1, 4)),
    SampleSet("sonic-pi:ambi_choir", "sonic-pi-samples", (f"{SONIC_PI}/ambi_choir.flac",), "Choir"),
)

# GM drum key -> the kit's files for that drum, softest to hardest.
DrumMap = dict[int, tuple[str, ...]]


@dataclass(frozen=True)
class DrumKit:
    """A real drum kit: one split group."""

    group: str
    package: str
    drums: DrumMap


def _layers(base: str, name: str) -> tuple[str, ...]:
    return tuple(f"{base}/{name}-{level}.wav" for level in ("Softest", "Soft", "Med", "Hard", "Hardest"))


_GM_ROCK = f"{HYDROGEN}/GMRockKit"
_LMMS_DRUMS = f"{LMMS}/drums"
DRUM_KITS: tuple[DrumKit, ...] = (
    DrumKit("hydrogen:GMRockKit", "hydrogen-data", {
        KICK: _layers(_GM_ROCK, "Kick"), SNARE: _layers(_GM_ROCK, "Snare"), SIDESTICK: _layers(_GM_ROCK, "SideStick"),
        CLOSED_HAT: _layers(_GM_ROCK, "HatClosed"), PEDAL_HAT: _layers(_GM_ROCK, "HatPedal"), OPEN_HAT: _layers(_GM_ROCK, "HatOpen"),
        CRASH: _layers(_GM_ROCK, "Crash"), RIDE: _layers(_GM_ROCK, "Ride"),
        **dict(zip(TOMS, [_layers(_GM_ROCK, t) for t in ("TomFloor", "TomFloor", "Tom2", "Tom2", "Tom1", "Tom1")])),
    }),
    DrumKit("sonic-pi:drum", "sonic-pi-samples", {
        KICK: (f"{SONIC_PI}/drum_bass_soft.flac", f"{SONIC_PI}/drum_bass_hard.flac"),
        SNARE: (f"{SONIC_PI}/drum_snare_soft.flac", f"{SONIC_PI}/drum_snare_hard.flac"),
        SIDESTICK: (f"{SONIC_PI}/drum_snare_soft.flac",),
        CLOSED_HAT: (f"{SONIC_PI}/drum_cymbal_closed.flac",), PEDAL_HAT: (f"{SONIC_PI}/drum_cymbal_pedal.flac",),
        OPEN_HAT: (f"{SONIC_PI}/drum_cymbal_open.flac",),
        CRASH: (f"{SONIC_PI}/drum_cymbal_soft.flac", f"{SONIC_PI}/drum_cymbal_hard.flac"),
        RIDE: (f"{SONIC_PI}/drum_cymbal_closed.flac",),
        **dict(zip(TOMS, [(f"{SONIC_PI}/drum_tom_{t}_soft.flac", f"{SONIC_PI}/drum_tom_{t}_hard.flac") for t in ("lo", "lo", "mid", "mid", "hi", "hi")])),
    }),
    DrumKit("lmms:drums", "lmms-common", {
        KICK: (f"{_LMMS_DRUMS}/bassdrum_acoustic01.ogg", f"{_LMMS_DRUMS}/bassdrum_acoustic02.ogg"),
        SNARE: (f"{_LMMS_DRUMS}/snare_acoustic01.ogg",), SIDESTICK: (f"{_LMMS_DRUMS}/sidestick01.ogg",),
        CLOSED_HAT: tuple(f"{_LMMS_DRUMS}/hihat_closed0{i}.ogg" for i in range(1, 6)),
        PEDAL_HAT: (f"{_LMMS_DRUMS}/hihat_foot_pedal01.ogg",),
        OPEN_HAT: tuple(f"{_LMMS_DRUMS}/hihat_opened0{i}.ogg" for i in range(1, 4)),
        CRASH: (f"{_LMMS_DRUMS}/crash01.ogg", f"{_LMMS_DRUMS}/crash02.ogg"),
        RIDE: (f"{_LMMS_DRUMS}/ride01.ogg", f"{_LMMS_DRUMS}/ride02.ogg"),
        **dict(zip(TOMS, [(f"{_LMMS_DRUMS}/tom_{t}01.ogg",) for t in ("low", "low", "mid", "mid", "hi", "hi")])),
    }),
)


@dataclass(frozen=True)
class Hit:
    """One sample placed in a phrase: start (s), which loaded sample, gain, pitch shift."""

    start: float
    sample: int
    gain: float
    semitones: float = 0.0


def place(hits: list[Hit], samples: list[np.ndarray], seconds: float) -> np.ndarray:
    """Mix the hits into a silent canvas of ``seconds`` (hits past the end are cut)."""
    canvas = np.zeros(int(seconds * SR), dtype=np.float32)
    for hit in hits:
        sound = samples[hit.sample] if hit.semitones == 0 else pitch_shift(samples[hit.sample], hit.semitones)
        mix_at(canvas, hit.gain * sound, int(round(hit.start * SR)))
    return canvas


def melodic_hits(rng: np.random.Generator, sample_count: int, seconds: float) -> list[Hit]:
    """A melody of pitch-shifted notes (scale steps within +-7 semitones), slightly overlapping."""
    scale = np.array([-7, -5, -3, -2, 0, 2, 4, 5, 7]) + int(rng.integers(-2, 3))
    step = rng.uniform(0.2, 0.7)
    index, time, hits = int(rng.integers(len(scale))), float(rng.uniform(0, 0.2)), []
    while time < seconds - 0.3:
        hits.append(Hit(time, int(rng.integers(sample_count)), float(rng.uniform(0.5, 1.0)), float(scale[index])))
        index = int(np.clip(index + rng.choice([-2, -1, 1, 1, 2]), 0, len(scale) - 1))
        time += step * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
    return hits


def drum_hits(rng: np.random.Generator, kit: DrumKit, seconds: float) -> tuple[list[Hit], list[str]]:
    """A groove played on a real kit, and the kit files the hits index into."""
    files = sorted({file for layers in kit.drums.values() for file in layers})
    hits = []
    for note in drum_groove(rng, random_key(rng), seconds):
        layers = kit.drums[note.pitch]
        layer = layers[min(len(layers) - 1, note.velocity * len(layers) // 128)]
        hits.append(Hit(note.start + float(rng.normal(0, 0.004)) + 0.05, files.index(layer), note.velocity / 127))
    return hits, files


@lru_cache(maxsize=None)
def load_sample(path: Path) -> np.ndarray:
    """A recording as 32 kHz mono (cached: kits reuse their hits in every phrase)."""
    return load_audio(path)


def load_note(path: Path) -> np.ndarray:
    """A sample as one note: 32 kHz mono, at most NOTE_SECONDS, faded out."""
    audio = load_sample(path)
    return fade(audio[: int(NOTE_SECONDS * SR)], 0.001, 0.15)


def render_melodic(rng: np.random.Generator, packages_dir: Path, sample_set: SampleSet, seconds: float) -> np.ndarray:
    """One phrase from a melodic sample set, peak-normalized to a random level."""
    notes = [load_note(packages_dir / sample_set.package / file) for file in sample_set.files]
    audio = place(melodic_hits(rng, len(notes), seconds), notes, seconds + 1.0)
    return normalize(fade(audio, 0.001, 0.3), random_peak(rng, -12, -1))


def render_kit(rng: np.random.Generator, packages_dir: Path, kit: DrumKit, seconds: float) -> np.ndarray:
    """One groove on a real drum kit, peak-normalized to a random level."""
    hits, files = drum_hits(rng, kit, seconds)
    sounds = [load_sample(packages_dir / kit.package / file) for file in files]
    audio = place(hits, sounds, seconds + 1.0)
    return normalize(fade(audio, 0.001, 0.5), random_peak(rng, -12, -1))
