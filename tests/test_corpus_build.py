"""Corpus assembly: the source-disjoint split, clip mixing and the folder `tagger corpus` writes.

The package fetching and the renderers need apt, fluidsynth and espeak-ng (tested by running the
builder, see README); here the sources are generated tones and noises so every step runs anywhere.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tagger.corpus import build as corpus_build
from tagger.corpus.build import LABEL_SEPARATOR, CorpusOptions, build_corpus
from tagger.corpus.classes import CLASSES, with_implied
from tagger.corpus.mix import MAX_SECONDS, MIN_SECONDS, SAMPLE_RATE, ClipMaker, Pools
from tagger.corpus.source import Source
from tagger.corpus.split import HELDOUT, TRAIN, split_groups
from tagger.data import ManifestFormat, read_examples


def _sources(groups_per_class: int = 4, files_per_group: int = 2) -> list[Source]:
    sources = []
    for label in CLASSES:
        for group in range(groups_per_class):
            for take in range(files_per_group):
                sources.append(Source(Path(f"/nowhere/{label}/{group}-{take}.wav"), (label,), "pkg",
                                      f"{label}/{group}-{take}.wav", "CC0-1.0", f"{label}#{group}"))
    return sources


def _tone_audio(sources: list[Source], seed: int = 0) -> list[np.ndarray]:
    """A different tone per source, 0.3-12 s long, so clips can be checked by their spectra."""
    rng = np.random.default_rng(seed)
    audio = []
    for index, _ in enumerate(sources):
        seconds = rng.uniform(0.3, 12.0)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        audio.append((0.3 * np.sin(2 * np.pi * (200 + 7 * index) * t)).astype(np.float32))
    return audio


def test_split_holds_out_whole_groups_of_every_class() -> None:
    sources = _sources()
    assignment = split_groups(sources, 0.25, seed=3)
    for label in CLASSES:
        sides = {assignment[s.group] for s in sources if label in s.labels}
        assert sides == {TRAIN, HELDOUT}, label
    # the takes of one group never straddle the split (it is a map from group to side)
    assert set(assignment) == {s.group for s in sources}
    assert split_groups(sources, 0.25, seed=3) == assignment
    assert split_groups(sources, 0.25, seed=4) != assignment


def test_split_keeps_a_single_recording_for_training_and_respects_multilabel_groups() -> None:
    sources = [Source(Path("a"), ("Dog",), "p", "a", "x", "only-dog"),
               Source(Path("b"), ("Rain", "Thunder"), "p", "b", "x", "storm-1"),
               Source(Path("c"), ("Rain", "Thunder"), "p", "c", "x", "storm-2"),
               Source(Path("d"), ("Rain",), "p", "d", "x", "rain-3")]
    assignment = split_groups(sources, 0.5, seed=0)
    assert assignment["only-dog"] == TRAIN
    thunder = [assignment["storm-1"], assignment["storm-2"]]
    assert sorted(thunder) == [HELDOUT, TRAIN]


def test_a_fraction_of_zero_trains_on_every_group() -> None:
    sources = _sources()
    assert set(split_groups(sources, 0.0, seed=3).values()) == {TRAIN}
    assert set(split_groups(sources, 0.0, seed=3)) == {s.group for s in sources}
    with pytest.raises(ValueError, match="held-out fraction"):
        split_groups(sources, 1.0, seed=3)


def test_clips_are_deterministic_labelled_and_levelled() -> None:
    sources = _sources(groups_per_class=2, files_per_group=1)
    distractor = Source(Path("/nowhere/chime.wav"), (), "lomiri-sounds", "chime.wav", "GPL-3", "chime")
    sources.append(distractor)
    audio = _tone_audio(sources)
    maker = ClipMaker(Pools(sources), audio, seed=7, split_code=0)
    clips = [maker.make(index) for index in range(120)]
    again = maker.make(17)
    assert np.array_equal(again.audio, clips[17].audio) and again.labels == clips[17].labels
    assert not np.array_equal(clips[17].audio, clips[18].audio)
    for index, clip in enumerate(clips):
        seconds = len(clip.audio) / SAMPLE_RATE
        assert MIN_SECONDS <= seconds <= MAX_SECONDS + 0.01
        assert float(np.max(np.abs(clip.audio))) <= 0.99 + 1e-6
        labelled = [sources[p.source] for p in clip.parts if p.labelled]
        expected = with_implied([label for s in labelled for label in s.labels])
        assert clip.labels == expected
        if labelled:  # the first class goes round the classes
            assert CLASSES[index % len(CLASSES)] in clip.labels
        for part in clip.parts:  # every placed part lies inside the clip
            assert 0 <= part.offset and part.offset + part.duration <= seconds + 1e-6
    assert any(not clip.labels for clip in clips), "no distractor-only clip in 120"
    assert any(len([p for p in c.parts if p.labelled]) >= 2 for c in clips), "no mixtures"


def test_a_placed_source_is_audible_in_its_clip() -> None:
    sources = _sources(groups_per_class=1, files_per_group=1)
    audio = _tone_audio(sources)
    maker = ClipMaker(Pools(sources), audio, seed=1, split_code=0)
    clip = maker.make(0)
    part = clip.parts[0]
    start = round(part.offset * SAMPLE_RATE)
    inside = clip.audio[start:start + round(part.duration * SAMPLE_RATE)]
    rms_inside = float(np.sqrt(np.mean(inside ** 2)))
    assert 20 * np.log10(rms_inside) > -40.0  # levels are -34..-14 dBFS (+ speed changes)


@pytest.fixture()
def fake_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Source]:
    """Stand-ins for the apt/fluidsynth steps: tone files on disk as the sources."""
    folder = tmp_path / "sources"
    folder.mkdir()
    sources = []
    for source, audio in zip(_sources(groups_per_class=3, files_per_group=1),
                             _tone_audio(_sources(groups_per_class=3, files_per_group=1))):
        path = folder / (source.group.replace(",", "").replace(" ", "_").replace("#", "-") + ".wav")
        sf.write(path, audio, SAMPLE_RATE)
        sources.append(Source(path, source.labels, source.package, source.origin, source.licence,
                              source.group))
    silent = folder / "silent.wav"
    sf.write(silent, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    sources.append(Source(silent, ("Dog",), "pkg", "silent.wav", "CC0-1.0", "silent"))
    monkeypatch.setattr(corpus_build, "check_tools", lambda: None)
    monkeypatch.setattr(corpus_build, "fetch_packages", lambda cache, report: cache / "pkgs")
    monkeypatch.setattr(corpus_build, "package_versions", lambda cache: {"pkg": "1.0"})
    monkeypatch.setattr(corpus_build, "recorded_sources", lambda trees, work: sources[:-60])
    monkeypatch.setattr(corpus_build, "rendered_sources", lambda trees, work, seed: sources[-60:])
    return sources


def test_build_writes_a_corpus_that_training_reads(fake_packages: list[Source], tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    summary = build_corpus(CorpusOptions(out=out, cache=tmp_path / "cache", seed=5, train_clips=60,
                                         heldout_clips=25, workers=2), report=lambda message: None)
    assert summary["clips"] == {"train": 60, "heldout": 25}
    assert summary["sources"] == len(fake_packages) - 1  # the silent file is dropped
    assert (out / "labels.txt").read_text().splitlines() == list(CLASSES)
    assert not out.with_name("corpus.partial").exists()
    fmt = ManifestFormat(label_separator=LABEL_SEPARATOR)
    train, heldout = read_examples(out / "train.csv", fmt), read_examples(out / "heldout.csv", fmt)
    assert len(train) == 60 and len(heldout) == 25
    assert all(set(e.labels) <= set(CLASSES) for e in train + heldout)
    # class names with commas survive the manifest
    index = CLASSES.index("Walk, footsteps")
    assert "Walk, footsteps" in train[index].labels
    info = sf.info(train[0].path)
    assert info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16"

    with open(out / "sources.csv", newline="") as handle:
        side_of = {row["group"]: row["split"] for row in csv.DictReader(handle)}
    with open(out / "attribution.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_origin = {s.origin: s.group for s in fake_packages}
    for row in rows:  # every part of a held-out clip comes from a held-out group, and vice versa
        side = row["clip"].split("/")[0]
        assert side_of[by_origin[row["file"]]] == side
        assert row["licence"] == "CC0-1.0" and row["package"] == "pkg"
    assert {row["clip"] for row in rows} == {e.path.removeprefix(str(out) + "/") for e in train + heldout}
    saved = json.loads((out / "corpus.json").read_text())
    assert saved["seed"] == 5 and saved["packages"] == {"pkg": "1.0"}

    again = tmp_path / "again"
    build_corpus(CorpusOptions(out=again, cache=tmp_path / "cache", seed=5, train_clips=60, heldout_clips=25,
                               workers=1), report=lambda message: None)
    for name in ("train/000000.wav", "train/000059.wav", "heldout/000024.wav"):
        assert (out / name).read_bytes() == (again / name).read_bytes()
    assert (out / "train.csv").read_text() == (again / "train.csv").read_text()


def test_build_without_a_heldout_split_draws_training_clips_from_every_source(
        fake_packages: list[Source], tmp_path: Path) -> None:
    out = tmp_path / "all"
    summary = build_corpus(CorpusOptions(out=out, cache=tmp_path / "cache", seed=5, train_clips=120,
                                         heldout_clips=25, heldout_fraction=0.0, workers=1),
                           report=lambda message: None)
    assert summary["clips"] == {"train": 120, "heldout": 0}
    assert not (out / "heldout.csv").exists() and not (out / "heldout").exists()
    with open(out / "sources.csv", newline="") as handle:
        assert {row["split"] for row in csv.DictReader(handle)} == {TRAIN}
    # groups a 0.25 split would hold out now feed training clips
    kept = [s for s in fake_packages if s.origin != "silent.wav"]
    would_hold_out = {g for g, side in split_groups(kept, 0.25, seed=5).items() if side == HELDOUT}
    with open(out / "attribution.csv", newline="") as handle:
        used = {row["file"] for row in csv.DictReader(handle)}
    assert {s.group for s in kept if s.origin in used} & would_hold_out


def test_build_refuses_an_existing_folder(fake_packages: list[Source], tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    out.mkdir()
    with pytest.raises(corpus_build.CorpusError, match="already exists"):
        build_corpus(CorpusOptions(out=out, cache=tmp_path / "cache"), report=lambda message: None)


def _sigterm_is_default(_: int) -> bool:
    import signal

    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_pool_workers_end_quietly_under_the_clis_sigterm_handler(
        fake_packages: list[Source], tmp_path: Path) -> None:
    """`tagger corpus` installs a SIGTERM handler that raises; the pool's forked workers inherited it, and
    the pool ends its workers with SIGTERM: a worker caught in Python code then printed a traceback after a
    successful build. Workers now take the default action."""
    import signal

    from tagger.cli import _raise_terminated

    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with corpus_build._fork_pool(2) as pool:
            assert pool.map(_sigterm_is_default, range(4)) == [True] * 4
        summary = build_corpus(CorpusOptions(out=tmp_path / "corpus", cache=tmp_path / "cache", seed=5,
                                             train_clips=40, heldout_clips=10, workers=2),
                               report=lambda message: None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert summary["clips"] == {"train": 40, "heldout": 10}
