"""The demo clip's layout, levels and procedural sections (no fluidsynth needed)."""

from __future__ import annotations

import numpy as np

from tagger.corpus import example, procedural, render
from tagger.corpus.classes import CLASSES
from tagger.corpus.dsp import SR


def _bursts(signal: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample of each run of sound, bridging the zero samples inside a tone."""
    sounding = np.convolve(np.abs(signal) > 1e-6, np.ones(32), mode="same") > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], sounding.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def _key_of(burst: np.ndarray) -> str:
    """The DTMF key whose row and column tones are strongest in ``burst``."""
    t = np.arange(len(burst)) / SR

    def strongest(freqs: tuple[float, ...]) -> int:
        return int(np.argmax([abs(np.dot(burst, np.exp(-2j * np.pi * f * t))) for f in freqs]))

    return procedural.DTMF_KEYS[strongest(procedural.DTMF_ROWS)][strongest(procedural.DTMF_COLS)]


def test_sections_tile_twenty_seconds_with_corpus_classes_and_permissive_licences() -> None:
    sections = example.SECTIONS
    assert sections[0].start == 0.0 and example.DURATION == 20.0
    assert all(a.end == b.start for a, b in zip(sections, sections[1:]))
    assert [s.label for s in sections] == ["Piano", "Siren", "Telephone dialing, DTMF"]
    assert all(s.label in CLASSES and s.end - s.start >= 5.0 for s in sections)
    assert all(s.licence.startswith("MIT") for s in sections)


def test_the_docstring_holds_the_printed_section_table() -> None:
    table = example.description()
    assert len(table.splitlines()) == 2 + len(example.SECTIONS)
    assert table in example.__doc__


def test_example_seed_is_not_the_corpus_seed_and_the_piano_phrase_is_not_a_corpus_phrase() -> None:
    assert example.EXAMPLE_SEED != 0
    # Every renderer's phrases with seed 0, as if each soundfont had every program (the notes of a
    # phrase do not depend on its program).
    everything = {spec.label: spec.programs for spec in render.compose.INSTRUMENT_SPECS}
    corpus = [phrase for renderer in render.RENDERERS
              for phrase in render.renderer_phrases(renderer, everything, seed=0)[0]]
    assert len(corpus) > 100
    phrase = example.piano_phrase()
    assert phrase.programs == ((0, 0),)  # acoustic grand
    assert len(phrase.notes) >= 10 and max(n.start + n.duration for n in phrase.notes) <= phrase.duration + 1e-9
    assert all(set(phrase.notes) != set(other.notes) for other in corpus)
    assert example.piano_phrase() == phrase


def test_procedural_sections_are_deterministic_and_as_long_as_their_section() -> None:
    first, again = example.procedural_sections(), example.procedural_sections()
    for index in (example.SIREN, example.DTMF):
        section = example.SECTIONS[index]
        assert np.array_equal(first[index], again[index])
        assert len(first[index]) == int((section.end - section.start + example.CROSSFADE) * SR)


def test_the_dtmf_section_dials_the_phone_number_in_order() -> None:
    dtmf = example.procedural_sections()[example.DTMF]
    keys = "".join(_key_of(dtmf[a:b]) for a, b in _bursts(dtmf))
    assert keys == example.PHONE_NUMBER.replace(" ", "")
    assert _bursts(dtmf)[-1][1] < len(dtmf) - int(example.CROSSFADE * SR)  # done before the clip ends


def test_levelled_procedural_sections_sit_at_minus_20_dbfs_without_clipping() -> None:
    for part in example.procedural_sections().values():
        levelled = example.level(part)
        assert abs(example.active_rms_db(levelled) - example.LEVEL_DB) < 0.1
        assert 20 * np.log10(np.max(np.abs(levelled))) <= example.PEAK_DB + 1e-4


def test_active_rms_ignores_gaps_and_the_peak_ceiling_wins() -> None:
    tone = procedural.tone((1000.0,), 1.0)  # a full-scale sine: -3 dBFS RMS
    gapped = np.concatenate([tone, np.zeros(3 * SR, dtype=np.float32)])
    assert abs(example.active_rms_db(gapped) - 10 * np.log10(0.5)) < 0.05
    spiky = np.full(SR, 0.01, dtype=np.float32)
    spiky[100] = 1.0
    levelled = example.level(spiky)
    assert abs(np.max(np.abs(levelled)) - 10 ** (example.PEAK_DB / 20)) < 1e-6
    assert example.active_rms_db(levelled) < example.LEVEL_DB


def test_assembly_crossfades_neighbours_and_fits_each_part() -> None:
    ones = [np.ones(30 * SR, dtype=np.float32), np.full(SR, 0.5, dtype=np.float32), np.ones(30 * SR, dtype=np.float32)]
    clip = example.assemble(ones)
    assert len(clip) == 20 * SR
    overlap = round(example.CROSSFADE * SR)
    boundary = 7 * SR
    assert np.all(clip[SR : boundary - 1] == 1.0)  # the first part alone
    fading = clip[boundary + 1 : boundary + overlap - 1]
    assert np.all(fading <= 1.0) and np.all(fading >= 0.5)  # 1 fading out over 0.5 fading in
    assert np.all(clip[boundary + overlap : 8 * SR] == 0.5)
    assert np.all(clip[8 * SR : 13 * SR] == 0.0)  # the short part is padded with silence
    assert clip[13 * SR + overlap] == 1.0 and clip[-1] == 0.0  # last part fades out to the end
