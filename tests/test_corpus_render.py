"""Pure parts of the rendered corpus: MIDI writer, procedural signals, typing, determinism.

fluidsynth, espeak-ng and the Debian packages are not needed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tagger.corpus import compose, keyboard, procedural
from tagger.corpus.dsp import SR, pitch_shift
from tagger.corpus.licences import package_licence
from tagger.corpus.midi import TICKS_PER_SECOND, Control, Note, midi_bytes, varlen
from tagger.corpus.render import check_tools
from tagger.corpus.samples import Hit, place
from tagger.corpus.synth import GAP, LEAD_IN, Phrase, batch_midi
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
