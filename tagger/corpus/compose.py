"""Random musical phrases (melodies, arpeggios, chords, drum grooves) as MIDI notes.

Each instrument class has General MIDI programs, a playing range and the textures it plays.
Times are in seconds from the start of the phrase; one beat lasts ``60 / bpm`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagger.corpus.midi import DRUM_CHANNEL, Note

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 0, 4), (5, 3, 0, 4))


@dataclass(frozen=True)
class Instrument:
    """How a class is played: GM programs, MIDI pitch range and textures it uses."""

    label: str
    programs: tuple[int, ...]
    low: int
    high: int
    textures: tuple[str, ...]


INSTRUMENT_SPECS: tuple[Instrument, ...] = (
    Instrument("Piano", (0, 1), 33, 96, ("melody_chords", "arpeggio", "chords", "melody")),
    Instrument("Organ", (16, 17, 18, 19), 36, 84, ("chords", "melody_chords", "melody")),
    Instrument("Acoustic guitar", (24, 25), 40, 76, ("strum", "arpeggio", "melody")),
    Instrument("Electric guitar", (26, 27, 28, 29, 30), 40, 84, ("melody", "power", "arpeggio", "strum")),
    Instrument("Violin, fiddle", (40, 110), 55, 98, ("melody",)),
    Instrument("Cello", (42,), 36, 74, ("melody",)),
    Instrument("Trumpet", (56, 59), 54, 82, ("melody",)),
    Instrument("Trombone", (57,), 40, 72, ("melody",)),
    Instrument("Flute", (73,), 60, 96, ("melody",)),
    Instrument("Saxophone", (64, 65, 66, 67), 44, 80, ("melody",)),
    Instrument("Clarinet", (71,), 50, 89, ("melody",)),
    Instrument("Harp", (46,), 36, 91, ("arpeggio", "chords", "melody")),
    Instrument("Accordion", (21, 23), 41, 84, ("melody_chords", "melody")),
    Instrument("Choir", (52, 53), 48, 79, ("chords", "melody")),
    Instrument("Drum kit", (0, 8, 16, 32, 40), 35, 81, ("groove",)),
)
SPEC_BY_LABEL = {spec.label: spec for spec in INSTRUMENT_SPECS}

# GM percussion keys (channel 10).
KICK, SNARE, SIDESTICK, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 38, 37, 42, 44, 46
CRASH, RIDE = 49, 51
TOMS = (41, 43, 45, 47, 48, 50)


@dataclass(frozen=True)
class Key:
    """Tonic pitch class, scale, tempo and loudness shared by the parts of one phrase."""

    tonic: int
    scale: tuple[int, ...]
    beat: float  # seconds per beat
    velocity: int
    legato: float  # share of each note's slot that sounds

    def pitches(self, low: int, high: int) -> list[int]:
        """Every scale pitch in [low, high]."""
        return [p for p in range(low, high + 1) if (p - self.tonic) % 12 in self.scale]

    def chord(self, degree: int, low: int, high: int, size: int = 3) -> list[int]:
        """A diatonic chord (stacked thirds) on ``degree``, voiced near the middle of the range."""
        steps = len(self.scale)
        classes = [(self.tonic + self.scale[(degree + 2 * i) % steps]) % 12 for i in range(size)]
        centre = (low + high) // 2 - 5
        root = centre + (classes[0] - centre) % 12
        chord, previous = [], root - 1
        for pitch_class in classes:
            pitch = previous + 1 + (pitch_class - previous - 1) % 12
            chord.append(pitch)
            previous = pitch
        return [p for p in chord if low <= p <= high] or [root]


def random_key(rng: np.random.Generator) -> Key:
    """A random key, scale, tempo (60-160 BPM), dynamic and articulation."""
    name = str(rng.choice(list(SCALES)))
    return Key(
        tonic=int(rng.integers(12)),
        scale=SCALES[name],
        beat=60.0 / rng.uniform(60, 160),
        velocity=int(rng.integers(45, 115)),
        legato=float(rng.uniform(0.5, 1.0)),
    )


def _velocity(rng: np.random.Generator, key: Key, accent: bool) -> int:
    return int(np.clip(key.velocity + (12 if accent else 0) + rng.normal(0, 8), 20, 127))


def melody(rng: np.random.Generator, key: Key, low: int, high: int, seconds: float, channel: int) -> list[Note]:
    """A stepwise random walk on the scale with occasional leaps, rests and varied rhythm."""
    pitches = key.pitches(low, high)
    index = int(rng.integers(len(pitches) // 4, max(len(pitches) // 4 + 1, 3 * len(pitches) // 4)))
    lengths, weights = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0), (0.1, 0.35, 0.3, 0.1, 0.1, 0.05)
    notes, time = [], float(rng.uniform(0, 0.3))
    while time < seconds:
        slot = float(rng.choice(lengths, p=weights)) * key.beat
        if rng.random() > 0.1:  # otherwise a rest
            on_beat = abs(time / key.beat - round(time / key.beat)) < 1e-6
            duration = min(slot * key.legato, seconds - time)
            notes.append(Note(time, duration, pitches[index], _velocity(rng, key, on_beat), channel))
        step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2])) if rng.random() > 0.15 else int(rng.integers(-5, 6))
        index = int(np.clip(index + step, 0, len(pitches) - 1))
        time += slot
    return notes


def chords(rng: np.random.Generator, key: Key, low: int, high: int, seconds: float, channel: int) -> list[Note]:
    """Block chords following a common progression, one or two per bar."""
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    length = key.beat * float(rng.choice([2.0, 4.0]))
    notes, time, step = [], 0.0, 0
    while time < seconds:
        chord = key.chord(progression[step % len(progression)], low, high, int(rng.integers(3, 5)))
        velocity = _velocity(rng, key, step % 2 == 0)
        duration = min(length * max(key.legato, 0.8), seconds - time)
        notes += [Note(time, duration, pitch, velocity, channel) for pitch in chord]
        time, step = time + length, step + 1
    return notes


def arpeggio(rng: np.random.Generator, key: Key, low: int, high: int, seconds: float, channel: int) -> list[Note]:
    """Broken chords (up, down or up-down) in eighths or sixteenths, ringing over each other."""
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    slot = key.beat * float(rng.choice([0.25, 0.5]))
    pattern = str(rng.choice(["up", "down", "updown"]))
    notes, time, step = [], 0.0, 0
    while time < seconds:
        chord = key.chord(progression[step % len(progression)], low, min(high, low + 30), 3)
        tones = chord + [p + 12 for p in chord if p + 12 <= high]
        order = {"up": tones, "down": tones[::-1], "updown": tones + tones[-2:0:-1]}[pattern]
        for i, pitch in enumerate(order):
            if time >= seconds:
                break
            ring = min(slot * rng.uniform(1.5, 4.0), seconds - time)
            notes.append(Note(time, ring, pitch, _velocity(rng, key, i == 0), channel))
            time += slot
        step += 1
    return notes


def strum(rng: np.random.Generator, key: Key, low: int, high: int, seconds: float, channel: int, power: bool = False) -> list[Note]:
    """Strummed guitar chords (notes a few ms apart, down and up strokes) or power chords."""
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    rhythm = [0.0, 1.0, 1.5, 2.5, 3.0] if rng.random() < 0.5 else [0.0, 1.0, 2.0, 3.0]
    notes, bar = [], 0
    while bar * 4 * key.beat < seconds:
        root = key.chord(progression[bar % len(progression)], low, low + 14, 3)[0]
        shape = [root, root + 7, root + 12] if power else key.chord(progression[bar % len(progression)], low, low + 24, 4) + [root + 12]
        for beat in rhythm:
            start = (bar * 4 + beat) * key.beat
            if start >= seconds:
                break
            down = beat == int(beat)
            spread = rng.uniform(0.008, 0.025)
            strings = shape if down else shape[::-1][:3]
            length = min(key.beat * (1.0 if down else 0.5) * key.legato + 0.1, seconds - start)
            notes += [Note(start + i * spread, length, p, _velocity(rng, key, down), channel) for i, p in enumerate(strings)]
        bar += 1
    return notes


def bass_and_chords(rng: np.random.Generator, key: Key, low: int, high: int, seconds: float, channel: int) -> list[Note]:
    """A melody in the upper register over chords in the lower one (piano, organ, accordion)."""
    split = (low + high) // 2
    upper = melody(rng, key, split, high, seconds, channel)
    lower = chords(rng, key, max(low, split - 20), split, seconds, channel)
    return upper + [Note(n.start, n.duration, n.pitch, max(20, n.velocity - 15), channel) for n in lower]


def drum_groove(rng: np.random.Generator, key: Key, seconds: float) -> list[Note]:
    """A drum-kit groove (rock, half-time, shuffle-ish or jazz ride) with fills and crashes."""
    style = str(rng.choice(["rock", "halftime", "ride", "four"]))
    hat = RIDE if style == "ride" else int(rng.choice([CLOSED_HAT, CLOSED_HAT, OPEN_HAT, PEDAL_HAT]))
    subdivision = 2 if style in ("ride", "halftime") else int(rng.choice([2, 4]))
    notes, bar, bars = [], 0, max(1, int(np.ceil(seconds / (4 * key.beat))))
    while bar < bars:
        start = bar * 4 * key.beat
        fill = bar == bars - 1 and bars > 1 and rng.random() < 0.6
        notes += _drum_fill(rng, key, start) if fill else _drum_bar(rng, key, start, style, hat, subdivision)
        if bar == 0 or (bar % 4 == 0 and rng.random() < 0.5):
            notes.append(Note(start, 1.0, CRASH, _velocity(rng, key, True), DRUM_CHANNEL))
        bar += 1
    return [n for n in notes if n.start < seconds]


def _drum_bar(rng: np.random.Generator, key: Key, start: float, style: str, hat: int, subdivision: int) -> list[Note]:
    """One bar of kick, snare and hi-hat (or ride)."""
    notes = []
    for i in range(4 * subdivision):
        t = start + i * key.beat / subdivision
        notes.append(Note(t, 0.1, hat, _velocity(rng, key, i % subdivision == 0) - 10, DRUM_CHANNEL))
    kicks = {"rock": [0, 2.5 if rng.random() < 0.5 else 2], "halftime": [0, 1.5], "ride": [0], "four": [0, 1, 2, 3]}[style]
    snares = {"rock": [1, 3], "halftime": [2], "ride": [1, 3], "four": [1, 3]}[style]
    if rng.random() < 0.3:
        kicks = kicks + [3.5]
    snare = SIDESTICK if style == "ride" and rng.random() < 0.5 else SNARE
    notes += [Note(start + b * key.beat, 0.1, KICK, _velocity(rng, key, True), DRUM_CHANNEL) for b in kicks]
    notes += [Note(start + b * key.beat, 0.1, snare, _velocity(rng, key, True), DRUM_CHANNEL) for b in snares]
    return notes


def _drum_fill(rng: np.random.Generator, key: Key, start: float) -> list[Note]:
    """A bar ending in a sixteenth-note fill down the toms."""
    notes = [Note(start, 0.1, KICK, _velocity(rng, key, True), DRUM_CHANNEL)]
    first = int(rng.choice([4, 8, 12]))
    for i in range(first, 16):
        drum = TOMS[::-1][min(5, (i - first) * 6 // (16 - first))] if rng.random() < 0.7 else SNARE
        notes.append(Note(start + i * key.beat / 4, 0.1, drum, _velocity(rng, key, i % 4 == 0), DRUM_CHANNEL))
    return notes


def instrument_part(rng: np.random.Generator, key: Key, spec: Instrument, seconds: float, channel: int, textures: tuple[str, ...] | None = None) -> list[Note]:
    """Notes for one instrument in a texture it plays (drums go to channel 10)."""
    if spec.label == "Drum kit":
        return drum_groove(rng, key, seconds)
    texture = str(rng.choice(list(textures or spec.textures)))
    if texture == "melody" and spec.high - spec.low > 24:  # a register, not the whole range
        low = int(rng.integers(spec.low, spec.high - 23))
        return melody(rng, key, low, low + 24, seconds, channel)
    makers = {"melody": melody, "chords": chords, "arpeggio": arpeggio, "melody_chords": bass_and_chords, "strum": strum}
    if texture == "power":
        return strum(rng, key, spec.low, spec.high, seconds, channel, power=True)
    return makers[texture](rng, key, spec.low, spec.high, seconds, channel)
