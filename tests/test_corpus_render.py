"""The rendered corpus: MIDI writer, procedural signals, typing, determinism, renderers and groups.

fluidsynth, espeak-ng and the Debian packages are not needed, except by the real renders at the end
(skipped without fluidsynth or the unpacked soundfonts).
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tagger.corpus import compose, keyboard, procedural, render, samples
from tagger.corpus.dsp import SR, pitch_shift
from tagger.corpus.licences import package_licence
from tagger.corpus.midi import DRUM_CHANNEL, TICKS_PER_SECOND, Control, Note, midi_bytes, varlen
from tagger.corpus.packages import PACKAGES, reserved_pattern
from tagger.corpus.render import check_tools
from tagger.corpus.samples import Hit, place
from tagger.corpus.source import Source
from tagger.corpus.split import HELDOUT, TRAIN, split_groups
from tagger.corpus.synth import GAP, LEAD_IN, Phrase, batch_midi, render_phrases, soundfont_presets
from tagger.errors import TaggerError


def _read_varlen(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def parse_smf(data: bytes) -> tuple[tuple[int, int, int], list[tuple[int, bytes]]]:
    """(format, tracks, division) and the (absolute tick, message) events of track 1."""
    assert data[:4] == b"MThd"
    length, fmt, tracks, division = struct.unpack(">IHHH", data[4:14])
    assert length == 6
    assert data[14:18] == b"MTrk"
    (track_length,) = struct.unpack(">I", data[18:22])
    assert 22 + track_length == len(data)
    events, pos, tick, end = [], 22, 0, 22 + track_length
    while pos < end:
        delta, pos = _read_varlen(data, pos)
        tick += delta
        status = data[pos]
        if status == 0xFF:
            meta_length, body = _read_varlen(data, pos + 2)
            message, pos = data[pos : body + meta_length], body + meta_length
        else:
            size = 2 if status & 0xF0 == 0xC0 else 3
            message, pos = data[pos : pos + size], pos + size
        events.append((tick, bytes(message)))
    return (fmt, tracks, division), events


def test_varlen_matches_the_smf_examples() -> None:
    assert varlen(0) == b"\x00"
    assert varlen(0x40) == b"\x40"
    assert varlen(0x7F) == b"\x7f"
    assert varlen(0x80) == b"\x81\x00"
    assert varlen(0x2000) == b"\xc0\x00"
    assert varlen(0x0FFFFFFF) == b"\xff\xff\xff\x7f"


def test_midi_file_parses_back_with_notes_tempo_and_programs() -> None:
    notes = [Note(0.5, 0.25, 60, 100, 0), Note(1.0, 2.0, 64, 80, 9)]
    header, events = parse_smf(midi_bytes(notes, [Control(0.0, 0, program=25), Control(0.0, 0, 91, 40)], end=5.0))
    assert header == (0, 1, 480)
    assert events[0] == (0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big"))
    assert (0, b"\xc0\x19") in events and (0, b"\xb0\x5b\x28") in events
    assert (480, b"\x90\x3c\x64") in events  # 0.5 s at 960 ticks/s
    assert (720, b"\x80\x3c\x00") in events
    assert (960, b"\x99\x40\x50") in events and (2880, b"\x89\x40\x00") in events
    assert events[-1] == (5 * TICKS_PER_SECOND, b"\xff\x2f\x00")


def test_note_off_comes_before_a_note_on_at_the_same_tick() -> None:
    _, events = parse_smf(midi_bytes([Note(0.0, 0.5, 60, 90), Note(0.5, 0.5, 60, 90)]))
    at_half = [message[0] & 0xF0 for tick, message in events if tick == 480]
    assert at_half == [0x80, 0x90]


def test_batch_midi_places_phrases_one_after_another() -> None:
    phrase = Phrase("a", ("Piano",), (Note(0.0, 1.0, 60, 90),), ((0, 0),), 3.0, (20, 0))
    data, starts = batch_midi([phrase, phrase])
    assert starts == [0.0, LEAD_IN + 3.0 + GAP]
    _, events = parse_smf(data)
    note_ons = [tick for tick, message in events if message[0] & 0xF0 == 0x90]
    assert note_ons == [round(LEAD_IN * 960), round((starts[1] + LEAD_IN) * 960)]


def _peak_frequencies(signal: np.ndarray, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / SR)
    peaks = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(freqs[index] - p) > 20 for p in peaks):
            peaks.append(float(freqs[index]))
        if len(peaks) == count:
            return sorted(peaks)
    return sorted(peaks)


@pytest.mark.parametrize("key", list("0123456789*#"))
def test_dtmf_key_has_its_row_and_column_frequency(key: str) -> None:
    row, column = procedural.dtmf_pair(key)
    assert row in procedural.DTMF_ROWS and column in procedural.DTMF_COLS
    low, high = _peak_frequencies(procedural.tone((row, column), 0.1), 2)
    assert abs(low - row) < 12 and abs(high - column) < 12


def test_dtmf_pairs_are_the_standard_ones() -> None:
    assert procedural.dtmf_pair("1") == (697.0, 1209.0)
    assert procedural.dtmf_pair("5") == (770.0, 1336.0)
    assert procedural.dtmf_pair("0") == (941.0, 1336.0)
    assert procedural.dtmf_pair("#") == (941.0, 1477.0)


def test_dtmf_clip_holds_only_dtmf_or_dial_tone_energy() -> None:
    clip = procedural.dtmf_clip(np.random.default_rng(3), 6.0)
    spectrum = np.abs(np.fft.rfft(clip)) ** 2
    freqs = np.fft.rfftfreq(len(clip), 1 / SR)
    allowed = list(procedural.DTMF_ROWS + procedural.DTMF_COLS) + [f for pair in procedural.DIAL_TONES for f in pair]
    near = np.min(np.abs(freqs[:, None] - np.array(allowed)[None, :]), axis=1) < 40
    assert spectrum[near].sum() / spectrum.sum() > 0.95


def test_sine_clip_steady_tone_has_the_drawn_frequency() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        clip = procedural.sine_clip(rng, 2.0)
        (peak,) = _peak_frequencies(clip, 1)
        assert 75 <= peak <= 8100
    tone = procedural.tone((1234.0,), 1.0)
    assert abs(_peak_frequencies(tone, 1)[0] - 1234.0) < 2


def _octave_band_power(signal: np.ndarray) -> np.ndarray:
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / SR)
    edges = 125 * 2.0 ** np.arange(6)  # 125 Hz .. 8 kHz
    return np.array([power[(freqs >= lo) & (freqs < 2 * lo)].mean() for lo in edges])


def test_pink_noise_falls_3_db_per_octave_and_white_is_flat() -> None:
    rng = np.random.default_rng(1)
    pink = 10 * np.log10(_octave_band_power(procedural.pink_noise(rng, 8.0)))
    white = 10 * np.log10(_octave_band_power(procedural.white_noise(rng, 8.0)))
    pink_slope = np.polyfit(np.arange(len(pink)), pink, 1)[0]
    white_slope = np.polyfit(np.arange(len(white)), white, 1)[0]
    assert -3.5 < pink_slope < -2.5
    assert abs(white_slope) < 0.3


@pytest.mark.parametrize("kind", ["wail", "yelp", "hilo"])
def test_siren_frequency_sweeps_within_the_siren_band(kind: str) -> None:
    freq = procedural.siren_frequency(np.random.default_rng(2), kind, 8.0)
    assert 400 <= freq.min() and freq.max() <= 1800
    assert freq.max() / freq.min() > 1.15  # it moves
    if kind == "hilo":
        assert len(np.unique(freq)) == 2
    else:
        crossings = np.sum(np.diff(np.sign(freq - freq.mean())) != 0)
        period_range = (2.5, 6.0) if kind == "wail" else (0.2, 0.4)
        assert 8.0 / period_range[1] * 2 - 3 <= crossings <= 8.0 / period_range[0] * 2 + 3


def test_siren_sweep_follows_the_instantaneous_frequency() -> None:
    freq = np.linspace(600, 1200, SR)
    signal = procedural.sweep(freq)
    early, late = _peak_frequencies(signal[: SR // 10], 1)[0], _peak_frequencies(signal[-SR // 10 :], 1)[0]
    assert abs(early - 630) < 40 and abs(late - 1170) < 40


def test_typing_assembly_places_press_and_release_at_their_times() -> None:
    click = np.zeros(100, dtype=np.float32)
    click[0] = 1.0
    sounds = {(5, 1): click, (5, 0): 0.5 * click}
    strokes = [(0.25, 0.33, 5), (1.0, 1.1, 5)]
    audio = keyboard.assemble(strokes, sounds, 2.0, [1.0, 1.0])
    assert len(audio) == 2 * SR
    assert np.flatnonzero(audio).tolist() == [8000, 10560, 32000, 35200]
    assert audio[8000] == 1.0 and audio[10560] == 0.5


def test_keystroke_timing_is_realistic() -> None:
    times = keyboard.keystroke_times(np.random.default_rng(4), 10.0)
    presses = np.array([press for press, _ in times])
    holds = np.array([release - press for press, release in times])
    gaps = np.diff(presses)
    assert len(times) > 15
    assert holds.min() >= 0.04 and holds.max() <= 0.12
    assert gaps.min() >= 0.06 and gaps.max() <= 1.5
    assert presses.max() < 10.0


def test_key_subsets_are_disjoint_and_each_has_one_big_key() -> None:
    codes = list(range(1, 0x60))
    subsets = keyboard.key_subsets(codes)
    flat = [code for subset in subsets for code in subset]
    assert sorted(flat) == codes
    assert [sum(code in keyboard.BIG_KEYS for code in subset) for subset in subsets] == [1, 1, 1, 1]


def test_sample_hits_are_mixed_at_their_times_with_gain() -> None:
    impulse = np.zeros(10, dtype=np.float32)
    impulse[0] = 1.0
    audio = place([Hit(0.5, 0, 0.5), Hit(1.5, 0, 1.0)], [impulse], 2.0)
    assert np.flatnonzero(audio).tolist() == [16000, 48000]
    assert audio[16000] == 0.5


def test_pitch_shift_by_resampling_moves_the_frequency() -> None:
    tone = procedural.tone((440.0,), 1.0)
    shifted = pitch_shift(tone, 12)
    assert abs(len(shifted) - SR / 2) < 5
    assert abs(_peak_frequencies(shifted, 1)[0] - 880) < 6


def test_melody_stays_in_range_and_scale() -> None:
    rng = np.random.default_rng(5)
    key = compose.random_key(rng)
    notes = compose.melody(rng, key, 55, 79, 8.0, 0)
    assert notes and all(55 <= n.pitch <= 79 for n in notes)
    assert all((n.pitch - key.tonic) % 12 in key.scale for n in notes)
    assert all(0 <= n.start < 8.0 and n.duration > 0 for n in notes)


def test_every_instrument_part_stays_in_its_range() -> None:
    rng = np.random.default_rng(6)
    for spec in compose.INSTRUMENT_SPECS:
        for _ in range(5):
            notes = compose.instrument_part(rng, compose.random_key(rng), spec, 6.0, 0)
            assert notes, spec.label
            assert all(spec.low <= n.pitch <= spec.high for n in notes), spec.label


def test_drum_groove_uses_the_drum_channel_and_gm_drum_keys() -> None:
    rng = np.random.default_rng(7)
    notes = compose.drum_groove(rng, compose.random_key(rng), 6.0)
    gm_keys = {compose.KICK, compose.SNARE, compose.SIDESTICK, compose.CLOSED_HAT, compose.PEDAL_HAT, compose.OPEN_HAT, compose.CRASH, compose.RIDE, *compose.TOMS}
    assert all(n.channel == 9 and n.pitch in gm_keys for n in notes)
    assert {compose.KICK, compose.CRASH} <= {n.pitch for n in notes}


def test_same_seed_gives_the_same_signals_and_another_seed_does_not() -> None:
    for make in (procedural.sine_clip, procedural.pink_noise, procedural.siren_clip, procedural.dtmf_clip):
        first = make(np.random.default_rng(11), 3.0)
        again = make(np.random.default_rng(11), 3.0)
        other = make(np.random.default_rng(12), 3.0)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)
    melody = [compose.melody(np.random.default_rng(9), compose.random_key(np.random.default_rng(9)), 50, 80, 5.0, 0) for _ in range(2)]
    assert melody[0] == melody[1]


def test_sample_licences_take_the_last_matching_stanza_via_source_paths(tmp_path: Path) -> None:
    doc = tmp_path / "sonic-pi-samples/usr/share/doc/sonic-pi-samples"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: MIT\n\n"
        "Files: etc/samples/kick.flac\n etc/samples/snare.flac\nCopyright: other\nLicense: CC0\n\n"
        "License: CC0\n text\n"
    )
    samples = "usr/share/sonic-pi/samples/"
    assert package_licence(tmp_path, "sonic-pi-samples", [samples + "snare.flac"]) == "CC0"
    assert package_licence(tmp_path, "sonic-pi-samples", [samples + "hat.flac"]) == "MIT"
    assert package_licence(tmp_path, "sonic-pi-samples", [samples + "kick.flac", samples + "hat.flac"]) == "CC0 AND MIT"
    with pytest.raises(ValueError, match="no copyright stanza covers"):
        package_licence(tmp_path, "bucklespring-data", ["usr/share/buckle/wav/01-0.wav"])


def test_missing_tools_raise_a_tagger_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TaggerError, match="apt-get install fluidsynth espeak-ng"):
        check_tools(tmp_path)


# --- Several renderers: soundfont presets, programs, groups, split, and real fluidsynth renders ---

# The unpacked Debian packages (tagger.corpus.packages.fetch_packages); the render tests skip
# without them or without fluidsynth.
PACKAGES_DIR = Path(os.environ.get("TAGGER_CORPUS_PACKAGES", "/work/corpus-cache/pkgs"))


def _chunk(name: bytes, body: bytes, pad: bool = True) -> bytes:
    return name + struct.pack("<I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")


def _soundfont(presets: list[tuple[int, int]], pad_odd_chunk: bool = True) -> bytes:
    """A minimal SoundFont: INFO, 3 bytes of samples (an odd chunk) and the preset headers."""
    info = _chunk(b"LIST", b"INFO" + _chunk(b"ifil", struct.pack("<HH", 2, 1)))
    samples = _chunk(b"LIST", b"sdta" + _chunk(b"smpl", b"\1\2\3", pad=False), pad=pad_odd_chunk)
    records = [(f"preset {bank}:{program}".encode(), program, bank) for bank, program in presets]
    phdr = b"".join(struct.pack("<20sHHHIII", name, program, bank, i, 0, 0, 0) for i, (name, program, bank) in enumerate(records))
    phdr += struct.pack("<20sHHHIII", b"EOP", 255, 255, len(records), 0, 0, 0)
    pdta = _chunk(b"LIST", b"pdta" + _chunk(b"phdr", phdr) + _chunk(b"pbag", b"\0" * 4 * (len(records) + 1)))
    body = b"sfbk" + info + samples + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("pad_odd_chunk", [True, False])
def test_soundfont_presets_reads_the_preset_headers(tmp_path: Path, pad_odd_chunk: bool) -> None:
    # Some SF3 files leave out the pad byte after an odd-sized chunk (MuseScore_General_Lite.sf3).
    path = tmp_path / "tiny.sf2"
    path.write_bytes(_soundfont([(0, 0), (0, 40), (128, 0), (8, 4)], pad_odd_chunk))
    assert soundfont_presets(path) == {(0, 0), (0, 40), (128, 0), (8, 4)}
    (tmp_path / "not.sf2").write_bytes(b"RIFF\4\0\0\0WAVE")
    with pytest.raises(ValueError, match="not a SoundFont"):
        soundfont_presets(tmp_path / "not.sf2")


def test_programs_a_soundfont_lacks_are_dropped_and_so_are_classes_left_without_one() -> None:
    gm = {(0, program) for program in range(128)} - {(0, 59), (0, 71)}  # no muted trumpet, no clarinet
    programs = render.available_programs(render.RENDERERS[2], frozenset(gm | {(128, 0), (128, 16)}))
    assert programs["Trumpet"] == (56,)
    assert programs["Drum kit"] == (0, 16)
    assert "Clarinet" not in programs
    assert programs["Saxophone"] == compose.SPEC_BY_LABEL["Saxophone"].programs
    phrases, _ = render.renderer_phrases(render.RENDERERS[2], programs, seed=1, phrases_per_class=4, ensembles=10)
    assert not any("Clarinet" in phrase.labels for phrase in phrases)
    for phrase in phrases:  # only programs the soundfont has
        for channel, program in phrase.programs:
            assert program in programs["Drum kit" if channel == DRUM_CHANNEL else next(
                label for label in phrase.labels if label != "Drum kit" and program in programs.get(label, ()))]


def test_every_instrument_class_is_in_exactly_one_band_and_ensembles_stay_in_their_band() -> None:
    banded = [label for labels in render.BANDS.values() for label in labels]
    assert sorted(banded) == sorted(spec.label for spec in compose.INSTRUMENT_SPECS)
    everything = {spec.label: spec.programs for spec in compose.INSTRUMENT_SPECS}
    for renderer in render.RENDERERS:
        phrases, _ = render.renderer_phrases(renderer, everything, seed=0, phrases_per_class=2, ensembles=10)
        ensembles = [phrase for phrase in phrases if len(phrase.labels) > 1]
        assert len(ensembles) == 10 and len(phrases) == 10 + 2 * len(compose.INSTRUMENT_SPECS)
        assert {render.BAND_OF[phrase.labels[0]] for phrase in ensembles} == set(render.BANDS)
        for phrase in phrases:
            group = render.midi_group(renderer, phrase.labels)
            assert group == f"midi:{renderer.name}:{render.BAND_OF[phrase.labels[0]]}"
            assert phrase.name.startswith(renderer.name + "_")
    with pytest.raises(ValueError):  # an ensemble across bands has no group
        render.midi_group(render.RENDERERS[0], ("Piano", "Trumpet"))


def test_phrases_are_seeded_per_renderer() -> None:
    everything = {spec.label: spec.programs for spec in compose.INSTRUMENT_SPECS}
    fluid, general = render.RENDERERS[0], render.RENDERERS[1]
    first, _ = render.renderer_phrases(fluid, everything, seed=3, phrases_per_class=2, ensembles=3)
    again, _ = render.renderer_phrases(fluid, everything, seed=3, phrases_per_class=2, ensembles=3)
    other_seed, _ = render.renderer_phrases(fluid, everything, seed=4, phrases_per_class=2, ensembles=3)
    other_renderer, _ = render.renderer_phrases(general, everything, seed=3, phrases_per_class=2, ensembles=3)
    assert first == again
    assert all(a.notes != b.notes for a, b in zip(first, other_seed))
    assert all(a.notes != b.notes for a, b in zip(first, other_renderer))  # new music, not the same phrase again


def _midi_stand_ins() -> list[Source]:
    """The rendered phrases' sources as midi_sources makes them (no audio), the real-sample phrase
    sets' groups, and one more real recording per instrument class (qabcs-data has most)."""
    everything = {spec.label: spec.programs for spec in compose.INSTRUMENT_SPECS}
    sources = []
    for renderer in render.RENDERERS:
        phrases, _ = render.renderer_phrases(renderer, everything, seed=0, phrases_per_class=2, ensembles=14)
        sources += [Source(Path(phrase.name), phrase.labels, renderer.package, phrase.name, renderer.licence,
                           render.midi_group(renderer, phrase.labels)) for phrase in phrases]
    real = [(s.label, s.group) for s in samples.MELODIC_SETS] + [("Drum kit", kit.group) for kit in samples.DRUM_KITS]
    real += [(spec.label, f"recorded:{spec.label}") for spec in compose.INSTRUMENT_SPECS]
    sources += [Source(Path(group), (label,), "pkg", group, "CC0-1.0", group) for label, group in real]
    return sources


def test_held_out_renders_of_a_class_come_from_renderers_it_never_trained_on() -> None:
    sources = _midi_stand_ins()
    renderer_of = {renderer.package: renderer.name for renderer in render.RENDERERS}
    untrained, crossed, seeds = 0, 0, 200
    for seed in range(seeds):
        side = split_groups(sources, 0.25, seed)
        for spec in compose.INSTRUMENT_SPECS:
            rendered = [s for s in sources if spec.label in s.labels and s.package in renderer_of]
            held = {renderer_of[s.package] for s in rendered if side[s.group] == HELDOUT}
            trained = {renderer_of[s.package] for s in rendered if side[s.group] == TRAIN}
            assert not held & trained, (seed, spec.label)
            assert trained, (seed, spec.label)  # a class always trains on some renderer
            crossed += bool(held)
        trains = {renderer_of[s.package] for s in sources if s.package in renderer_of and side[s.group] == TRAIN}
        if seed == 0:  # the corpus's default seed
            assert trains == set(renderer_of.values())
        untrained += len(renderer_of) - len(trains)
    assert untrained <= 2  # a renderer held out of every band: about 1 seed in 500
    assert crossed > 0.7 * seeds * len(compose.INSTRUMENT_SPECS)  # most classes are measured across renderers


def test_check_tools_names_the_missing_soundfonts_and_their_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("fluidsynth", "espeak-ng"):
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    fluid = render.RENDERERS[0]
    (tmp_path / fluid.package / fluid.path).parent.mkdir(parents=True)
    (tmp_path / fluid.package / fluid.path).write_bytes(b"")
    with pytest.raises(TaggerError) as error:
        check_tools(tmp_path)
    message = str(error.value)
    assert "GeneralUser-v1.47.sf2 (package minuet-data)" in message
    assert "OPL-3_FM_128M.sf2 (package opl3-soundfont)" in message
    assert "A320U.sf2 (package denemo-data)" in message
    assert "FluidR3" not in message
    for renderer in render.RENDERERS[1:]:
        (tmp_path / renderer.package / renderer.path).parent.mkdir(parents=True)
        (tmp_path / renderer.package / renderer.path).write_bytes(b"")
    check_tools(tmp_path)  # does not raise


def test_no_renderer_comes_from_a_package_reserved_for_blind_evaluation() -> None:
    assert len({renderer.name for renderer in render.RENDERERS}) == len(render.RENDERERS) >= 3
    assert len({renderer.package for renderer in render.RENDERERS}) == len(render.RENDERERS)
    for renderer in render.RENDERERS:
        assert reserved_pattern(renderer.package) is None
        assert renderer.package in PACKAGES
    assert render.SOUNDFONT == "fluid-soundfont-gm/usr/share/sounds/sf2/FluidR3_GM.sf2"


def _renderers_here() -> list[render.Renderer]:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed")
    present = [r for r in render.RENDERERS if (PACKAGES_DIR / r.package / r.path).is_file()]
    if len(present) < len(render.RENDERERS):
        pytest.skip(f"the soundfonts are not unpacked in {PACKAGES_DIR} (set TAGGER_CORPUS_PACKAGES; "
                    "tagger.corpus.packages.fetch_packages unpacks them)")
    return present


def test_renderer_licences_are_the_copyright_files_ones() -> None:
    for renderer in _renderers_here():
        if renderer.package == "fluid-soundfont-gm":  # not DEP-5: its text says MIT
            text = (PACKAGES_DIR / renderer.package / "usr/share/doc" / renderer.package / "copyright").read_text()
            assert "MIT license" in text and renderer.licence == "MIT"
        else:  # DEP-5 stanzas name the upstream file (OPL-3_FM_128M.sf2, soundfonts/A320U.sf2) or cover
            # everything (minuet's *)
            names = [renderer.source_path] if renderer.source_path else [renderer.file]
            assert package_licence(PACKAGES_DIR, renderer.package, names) == renderer.licence


def test_every_renderer_has_a_preset_for_every_program_it_is_given() -> None:
    for renderer in _renderers_here():
        presets = soundfont_presets(PACKAGES_DIR / renderer.package / renderer.path)
        programs = render.available_programs(renderer, presets)
        assert set(programs) == {spec.label for spec in compose.INSTRUMENT_SPECS}, renderer.name  # no class lost
        assert all((0, p) in presets for label, ps in programs.items() if label != "Drum kit" for p in ps)
        assert all((128, p) in presets for p in programs["Drum kit"])
    opl3 = render.RENDERERS[2]
    assert render.available_programs(opl3, soundfont_presets(PACKAGES_DIR / opl3.package / opl3.path))["Drum kit"] == (0,)


def _log_spectrum(audio: np.ndarray) -> np.ndarray:
    """Mean power in 40 log-spaced bands from 60 Hz to 12 kHz, in dB relative to the total."""
    frames = audio[: len(audio) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    edges = np.geomspace(60, 12000, 41)
    bands = np.array([power[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(edges, edges[1:])])
    return 10 * np.log10(bands / bands.sum() + 1e-12)


def test_each_renderer_plays_the_same_phrase_audibly_and_differently(tmp_path: Path) -> None:
    renderers = _renderers_here()
    rng = np.random.default_rng(21)
    key = compose.random_key(rng)
    phrases = [Phrase(label.split(",")[0].lower(), (label,), tuple(compose.melody(rng, key, 60, 79, 4.0, 0)), ((0, program),), 4.0, (20, 0))
               for label, program in (("Violin, fiddle", 40), ("Trumpet", 56))]
    spectra = {}
    for renderer in renderers:
        soundfont = PACKAGES_DIR / renderer.package / renderer.path
        paths = render_phrases(phrases, soundfont, tmp_path / renderer.name, np.random.default_rng(0), jobs=1)
        again = render_phrases(phrases, soundfont, tmp_path / f"{renderer.name}-again", np.random.default_rng(0), jobs=1)
        for phrase, path, repeat in zip(phrases, paths, again):
            audio, rate = sf.read(path, dtype="float32")
            assert rate == SR and len(audio) >= 4 * SR
            assert np.array_equal(audio, sf.read(repeat, dtype="float32")[0])  # deterministic
            active = audio[int(0.2 * SR) : int(4 * SR)]
            assert 20 * np.log10(np.sqrt(np.mean(active ** 2))) > -40, (renderer.name, phrase.name)  # not silent
            spectra[renderer.name, phrase.name] = _log_spectrum(active)
    for phrase in phrases:  # the same notes on the same program sound different with each soundfont
        for i, a in enumerate(renderers):
            for b in renderers[i + 1 :]:
                distance = np.mean(np.abs(spectra[a.name, phrase.name] - spectra[b.name, phrase.name]))
                assert distance > 2.0, (phrase.name, a.name, b.name, distance)


def test_midi_sources_render_every_class_with_every_renderer(tmp_path: Path) -> None:
    renderers = _renderers_here()
    sources = render.midi_sources(PACKAGES_DIR, tmp_path, seed=5, phrases_per_class=1, ensembles=2)
    assert len(sources) == len(renderers) * (len(compose.INSTRUMENT_SPECS) + 2)
    for renderer in renderers:
        own = [s for s in sources if s.package == renderer.package]
        assert {label for s in own for label in s.labels} == {spec.label for spec in compose.INSTRUMENT_SPECS}
        assert sum(len(s.labels) > 1 for s in own) == 2
        assert {s.licence for s in own} == {renderer.licence}
        assert all(s.origin.startswith(renderer.file + ", programs ") for s in own)
        assert all(s.group == render.midi_group(renderer, s.labels) for s in own)
        assert all(s.path.parent == tmp_path / "midi" / renderer.name for s in own)
        for source in own:
            audio, _ = sf.read(source.path, dtype="float32")
            assert 0.05 < np.max(np.abs(audio)) <= 0.9, source.path.name  # peak-normalised to -12..-1 dBFS
