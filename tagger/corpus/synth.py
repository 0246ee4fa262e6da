"""Render many MIDI phrases with few fluidsynth processes.

The phrases of a batch are laid end to end in one MIDI file, separated by silent gaps, and
rendered in one fluidsynth run; the output is then cut back into one file per phrase. Two
batches run in parallel (one per CPU core).

fluidsynth silently plays another preset when a soundfont lacks the one a program change asks
for, so :func:`soundfont_presets` reads which (bank, program) pairs a soundfont really has.
"""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.corpus.dsp import SR, fade, normalize, random_peak, write_flac
from tagger.corpus.midi import Control, Note, midi_bytes

DRUM_BANK = 128  # where a GM soundfont keeps its drum kits (channel 10 selects it)
LEAD_IN = 0.1  # seconds of silence before the first note of a phrase
TAIL = 1.2  # seconds of release and reverb kept after the last note
GAP = 2.5  # seconds between the end of one phrase's notes and the next phrase


@dataclass(frozen=True)
class Phrase:
    """A MIDI phrase to render: its notes, the program of each channel, labels and name."""

    name: str
    labels: tuple[str, ...]
    notes: tuple[Note, ...]
    programs: tuple[tuple[int, int], ...]  # (channel, GM program); drum kits on channel 10
    duration: float
    effects: tuple[int, int]  # reverb and chorus send, 0-127


def _setup(phrase: Phrase, start: float) -> list[Control]:
    """Reset each channel, then set bank, program, volume, reverb and chorus."""
    controls = []
    for channel, program in phrase.programs:
        controls += [
            Control(start, channel, 121, 0),
            Control(start, channel, 0, 0),
            Control(start, channel, program=program),
            Control(start, channel, 7, 100),
            Control(start, channel, 91, phrase.effects[0]),
            Control(start, channel, 93, phrase.effects[1]),
        ]
    silence = start + LEAD_IN + phrase.duration + GAP - 0.2
    controls += [Control(silence, channel, 120, 0) for channel, _ in phrase.programs]
    return controls


def batch_midi(phrases: list[Phrase]) -> tuple[bytes, list[float]]:
    """One MIDI file holding all phrases back to back, and each phrase's start in seconds."""
    notes, controls, starts, time = [], [], [], 0.0
    for phrase in phrases:
        starts.append(time)
        controls += _setup(phrase, time)
        notes += [Note(n.start + time + LEAD_IN, n.duration, n.pitch, n.velocity, n.channel) for n in phrase.notes]
        time += LEAD_IN + phrase.duration + GAP
    return midi_bytes(notes, controls, end=time), starts


def soundfont_presets(soundfont: Path) -> frozenset[tuple[int, int]]:
    """Every (bank, program) preset of a SoundFont 2 (.sf2) or MuseScore SF3 (.sf3) file.

    Only the preset headers (``pdta/phdr``) are read; the sample data is skipped. Some SF3 files
    leave out the pad byte after an odd-sized chunk, so the next top-level chunk is looked for at
    both places.
    """
    with open(soundfont, "rb") as handle:
        riff, size, form = struct.unpack("<4sI4s", handle.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise ValueError(f"{soundfont} is not a SoundFont (RIFF sfbk) file")
        end, position = 8 + size, 12
        while position + 8 <= end:
            handle.seek(position)
            chunk, length = struct.unpack("<4sI", handle.read(8))
            if chunk == b"LIST" and handle.read(4) == b"pdta":
                return _phdr_presets(handle, position + 12, position + 8 + length, soundfont)
            position += 8 + length
            if length & 1:
                handle.seek(position)
                if handle.read(4) != b"LIST":
                    position += 1  # the pad byte is there
    raise ValueError(f"{soundfont} has no preset data (pdta chunk)")


def _phdr_presets(handle, start: int, end: int, soundfont: Path) -> frozenset[tuple[int, int]]:
    position = start
    while position + 8 <= end:
        handle.seek(position)
        chunk, length = struct.unpack("<4sI", handle.read(8))
        if chunk == b"phdr":
            data = handle.read(length)
            records = [struct.unpack_from("<20sHH", data, offset) for offset in range(0, length - 37, 38)]
            return frozenset((bank, program) for _, program, bank in records[:-1])  # the last is "EOP"
        position += 8 + length + (length & 1)
    raise ValueError(f"{soundfont} has no preset headers (phdr chunk)")


def _fluidsynth(soundfont: Path, midi: Path, wav: Path) -> subprocess.Popen:
    """Start a fast (offline) fluidsynth render of ``midi`` into a 32 kHz WAV file."""
    command = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(SR), "-T", "wav", "-O", "s16", "-F", str(wav), str(soundfont), str(midi)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _cut(wav: Path, start: float, seconds: float) -> np.ndarray:
    """Mono float32 samples ``[start, start + seconds)`` of a rendered batch."""
    with sf.SoundFile(wav) as audio:
        audio.seek(min(int(start * SR), audio.frames))
        frames = audio.read(int(seconds * SR), dtype="float32", always_2d=True)
    return frames.mean(axis=1)


def render_phrases(phrases: list[Phrase], soundfont: Path, out_dir: Path, rng: np.random.Generator, jobs: int = 2) -> list[Path]:
    """Render every phrase to ``out_dir/<name>.flac`` (peak-normalized to a random level)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    batches = [phrases[i::jobs] for i in range(jobs)]
    running = []
    for index, batch in enumerate(batches):
        data, starts = batch_midi(batch)
        midi, wav = out_dir / f"batch{index}.mid", out_dir / f"batch{index}.wav"
        midi.write_bytes(data)
        running.append((batch, starts, wav, _fluidsynth(soundfont, midi, wav)))
    paths = {}
    for batch, starts, wav, process in running:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"fluidsynth failed: {stderr.decode(errors='replace').strip()}")
        for phrase, start in zip(batch, starts):
            audio = fade(_cut(wav, start, LEAD_IN + phrase.duration + TAIL), 0.002, 0.3)
            paths[phrase.name] = write_flac(out_dir / f"{phrase.name}.flac", normalize(audio, random_peak(rng, -12, -1)))
        wav.unlink()
    return [paths[phrase.name] for phrase in phrases]
