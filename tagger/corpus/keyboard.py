"""Typing sequences assembled from real IBM Model-M key recordings (bucklespring-data).

bucklespring names its files ``<evdev key code in hex>-<1 press | 0 release>.wav``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tagger.corpus.dsp import SR, mix_at

WAV_DIR = "usr/share/buckle/wav"
BIG_KEYS = (0x39, 0x1C, 0x0E, 0x0F)  # space, enter, backspace, tab: one per key subset


def key_codes(wav_dir: Path) -> list[int]:
    """Key codes that have both a press and a release recording."""
    codes = {int(path.name[:2], 16) for path in wav_dir.glob("*-1.wav")}
    return sorted(code for code in codes if (wav_dir / f"{code:02x}-0.wav").exists())


def key_subsets(codes: list[int], count: int = 4) -> list[list[int]]:
    """Disjoint subsets of the keys, round-robin; each big key goes to a different subset."""
    ordinary = [code for code in codes if code not in BIG_KEYS]
    subsets = [ordinary[i::count] for i in range(count)]
    for i, code in enumerate(code for code in BIG_KEYS if code in codes):
        subsets[i % count].append(code)
    return subsets


def keystroke_times(rng: np.random.Generator, seconds: float) -> list[tuple[float, float]]:
    """(press, release) times: releases 40-120 ms after presses, 60-300 ms between keys
    within bursts, and longer pauses between bursts."""
    times, time = [], float(rng.uniform(0.05, 0.4))
    while time < seconds - 0.4:
        release = time + float(rng.uniform(0.04, 0.12))
        times.append((time, release))
        if rng.random() < 0.12:
            time += float(rng.uniform(0.4, 1.2))  # a pause between bursts
        else:
            time += float(rng.uniform(0.06, 0.3))
    return times


def keystrokes(rng: np.random.Generator, subset: list[int], seconds: float) -> list[tuple[float, float, int]]:
    """(press time, release time, key code) for a typing sequence on one key subset."""
    big = [code for code in subset if code in BIG_KEYS]
    ordinary = [code for code in subset if code not in BIG_KEYS]
    strokes = []
    for press, release in keystroke_times(rng, seconds):
        pool = big if big and rng.random() < 0.1 else ordinary
        strokes.append((press, release, int(rng.choice(pool))))
    return strokes


def assemble(strokes: list[tuple[float, float, int]], sounds: dict[tuple[int, int], np.ndarray], seconds: float, gains: list[float]) -> np.ndarray:
    """Mix the press (state 1) and release (state 0) sounds of each stroke at their times."""
    canvas = np.zeros(int(seconds * SR), dtype=np.float32)
    for (press, release, code), gain in zip(strokes, gains):
        mix_at(canvas, gain * sounds[(code, 1)], int(round(press * SR)))
        mix_at(canvas, gain * sounds[(code, 0)], int(round(release * SR)))
    return canvas
