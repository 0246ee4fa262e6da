"""Pseudo-labels: unmatched recordings of the corpus packages, chosen by models' agreement, train only."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tagger.corpus.build import LABEL_SEPARATOR, CorpusOptions, build_corpus
from tagger.corpus.catalog import FILE, Rule
from tagger.corpus.classes import CLASSES
from tagger.corpus.packages import CorpusError
from tagger.corpus.pseudo import LIST_HEADER, Selection, pseudo_sources, select, unlabelled_sources, write_list
from tagger.corpus.source import Source
import test_corpus_build
from test_corpus_catalog import PKG, ROOT, make_package, noise, write

fake_packages = test_corpus_build.fake_packages  # the fixture: fake sources, no downloads


def test_list_takes_what_no_rule_names_and_drops_copies_of_labelled_recordings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_package(tmp_path / "pkgs")
    sounds = root / ROOT / "sounds"
    dog = noise(2.5, seed=1)
    write(sounds / "dog1.wav", dog)
    write(sounds / "misc/copy_of_dog.wav", dog)  # unmatched, but the labelled dog's recording
    write(sounds / "misc/longer_dog.wav", np.concatenate([dog, noise(1.5, seed=9)]))  # another take of it
    write(sounds / "misc/thing.wav", noise(2.5, seed=2))
    write(sounds / "misc/thing_again.wav", noise(2.5, seed=2))  # unmatched copies: one is kept
    write(sounds / "excluded.wav", noise(1.0, seed=3))
    write(sounds / "misc/silent.wav", np.zeros(16000, dtype=np.float32))
    archive = root / ROOT / "data.pk3"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(write(tmp_path / "m.wav", noise(0.8, seed=4)), "sound/misc/hum.wav")
    rules = [Rule(PKG, ROOT + "sounds/dog*.wav", ("Dog",), FILE), Rule(PKG, ROOT + "sounds/excluded.wav", None)]

    monkeypatch.chdir(tmp_path)  # a cache named relative to the current folder, as on the command line
    found = unlabelled_sources(Path("pkgs"), Path("work"), rules, packages=(PKG, "absent-package"))

    origins = [source.origin for source, _ in found]
    assert origins == [ROOT + "data.pk3:sound/misc/hum.wav", ROOT + "sounds/misc/thing.wav"]
    hum, thing = (source for source, _ in found)
    assert hum.path.read_bytes() == (tmp_path / "m.wav").read_bytes()  # extracted from the archive
    assert hum.licence == "GPL-2+" and thing.licence == "CC-BY-SA-3.0" and thing.labels == ()
    assert [round(seconds, 2) for _, seconds in found] == [0.8, 2.5]
    short = unlabelled_sources(Path("pkgs"), Path("work"), rules, packages=(PKG,), max_seconds=1.0)
    assert [source.origin for source, _ in short] == [hum.origin]  # longer files are left out
    write_list(found, tmp_path / "unlabelled.csv")
    with open(tmp_path / "unlabelled.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # absolute, so that `tagger file --from-list` (relative paths from the list's folder) finds the files
    assert list(rows[0]) == LIST_HEADER and rows[1]["path"] == str(tmp_path / thing.path)


def _scores(**by_path: dict[str, float]) -> dict[str, dict[str, float]]:
    return {path: {label: probabilities.get(label, 0.01) for label in CLASSES}
            for path, probabilities in by_path.items()}


def _listed(*paths: str) -> list[dict[str, str]]:
    return [{"path": p, "package": "pkg", "origin": p, "licence": "CC0-1.0", "group": f"pkg:{p}", "seconds": "1"}
            for p in paths]


def test_select_keeps_confident_agreement_only_and_caps_each_class() -> None:
    one = _scores(dog={"Dog": 0.95}, dog2={"Dog": 0.9}, dog3={"Dog": 0.99}, unsure={"Dog": 0.95, "Bird": 0.5},
                  split={"Dog": 0.95}, both={"Music": 0.97, "Piano": 0.85}, nothing={})
    two = _scores(dog={"Dog": 0.9}, dog2={"Dog": 0.86}, dog3={"Dog": 0.97}, unsure={"Dog": 0.9},
                  split={"Dog": 0.5}, both={"Music": 0.99, "Piano": 0.9}, nothing={})
    listed = _listed("dog", "dog2", "dog3", "unsure", "split", "both", "nothing", "untagged")

    rows = select(listed, [one, two], Selection(high=0.8, low=0.2, max_per_class=2))

    # "unsure" has Bird at 0.255 on average, "split" Dog at 0.725: left out whole; "untagged" has no score
    assert [row["path"] for row in rows] == ["dog3", "dog", "both"]  # the two most confident dogs, then both
    assert rows[2]["labels"] == "Music;Piano" and rows[2]["confidence"] == "0.8750"
    assert rows[0]["group"] == "pkg:dog3" and rows[0]["labels"] == "Dog"
    with pytest.raises(CorpusError, match="low < high"):
        select(listed, [one], Selection(high=0.3, low=0.5))


def test_select_from_real_scores_of_the_embedded_model(tmp_path: Path) -> None:
    """`list` CSV -> `tagger file --from-list` -> `select`: full-band white noise is labelled (band-limited
    to 8 kHz it reads as Rain), a faint hum is not."""
    rng = np.random.default_rng(0)
    white = write(tmp_path / "white.wav", (0.3 * rng.standard_normal(3 * 32000)).astype(np.float32), 32000)
    hum = write(tmp_path / "hum.wav", (0.001 * np.sin(np.arange(3 * 16000) * 0.01)).astype(np.float32))
    listed = [(Source(path, (), "pkg", path.name, "CC0-1.0", f"pkg:{path.name}"), 3.0) for path in (white, hum)]
    write_list(listed, tmp_path / "unlabelled.csv")
    scores = tmp_path / "scores.jsonl"
    tagged = subprocess.run([sys.executable, "-m", "tagger", "file", "--from-list", str(tmp_path / "unlabelled.csv"),
                             "-f", "jsonl", "-o", str(scores), "--threads", "1"], capture_output=True, text=True)
    assert tagged.returncode == 0, tagged.stderr
    out = tmp_path / "pseudo.csv"
    chosen = subprocess.run([sys.executable, "-m", "tagger.corpus.pseudo", "select", str(tmp_path / "unlabelled.csv"),
                             str(scores), str(scores), "-o", str(out), "--high", "0.8", "--low", "0.3"],
                            capture_output=True, text=True)
    assert chosen.returncode == 0, chosen.stderr
    assert "1 of 2 files pseudo-labelled; White noise 1" in chosen.stdout
    clips = {json.loads(line)["path"]: json.loads(line)["clip"] for line in scores.read_text().splitlines()}
    assert clips[str(white)]["White noise"] >= 0.8
    [source] = pseudo_sources(out)
    assert source.path == white and source.labels == ("White noise",) and source.group == "pseudo:pkg:white.wav"

    bad = subprocess.run([sys.executable, "-m", "tagger.corpus.pseudo", "select", str(tmp_path / "unlabelled.csv"),
                          str(tmp_path / "unlabelled.csv"), "-o", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: cannot read") and len(bad.stderr.splitlines()) == 1


def test_pseudo_labelled_sources_train_and_never_enter_the_heldout_split(
        fake_packages: list[Source], tmp_path: Path) -> None:
    extra = [write(tmp_path / f"pseudo-{i}.wav", noise(2.0, seed=40 + i)) for i in range(6)]
    labels_csv = tmp_path / "pseudo.csv"
    with open(labels_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "package", "origin", "licence", "group", "labels", "confidence"])
        for i, path in enumerate(extra):
            writer.writerow([path, "other-pkg", f"sounds/{i}.wav", "GPL-2+", f"other-pkg:sounds/{i}.wav",
                             "Dog" if i % 2 else "Bird;Music", "0.9"])
    out = tmp_path / "corpus"
    summary = build_corpus(CorpusOptions(out=out, cache=tmp_path / "cache", seed=5, train_clips=400,
                                         heldout_clips=25, workers=1, pseudo_labels=labels_csv),
                           report=lambda message: None)
    assert summary["pseudo_labelled"] == 6
    with open(out / "sources.csv", newline="") as handle:
        pseudo_rows = [row for row in csv.DictReader(handle) if row["package"] == "other-pkg"]
    assert len(pseudo_rows) == 6 and {row["split"] for row in pseudo_rows} == {"train"}
    assert pseudo_rows[0]["labels"] == LABEL_SEPARATOR.join(("Bird", "Music"))
    with open(out / "attribution.csv", newline="") as handle:
        used = [row for row in csv.DictReader(handle) if row["package"] == "other-pkg"]
    assert used and all(row["clip"].startswith("train/") for row in used)

    broken = tmp_path / "broken.csv"
    broken.write_text("path,package,origin,licence,group,labels,confidence\nx.wav,p,o,l,g,Unicorn,0.9\n")
    with pytest.raises(CorpusError, match="not corpus classes"):
        build_corpus(CorpusOptions(out=tmp_path / "c2", cache=tmp_path / "cache", pseudo_labels=broken),
                     report=lambda message: None)


def test_copies_of_reserved_sounds_in_an_allowed_package_are_never_used() -> None:
    """FreeDink ships Battle for Wesnoth's bird, arrow and gold sounds (Wesnoth is reserved for blind
    evaluation): the catalog excludes them by name and `list` never offers FreeDink's unnamed files."""
    from tagger.corpus.catalog import RULES, match_rule
    from tagger.corpus.pseudo import NO_PSEUDO_LABELS

    dink = "usr/share/games/dink/dink/Sound/"
    for name in ("bird1.wav", "arrow.wav", "gold.wav"):
        assert match_rule(RULES, "freedink-data", dink + name).labels is None
    assert match_rule(RULES, "freedink-data", dink + "wscream.wav").labels == ("Screaming",)
    assert "freedink-data" in NO_PSEUDO_LABELS
    # LibreOffice's gallery train is GCompris's (reserved): excluded, so neither a source nor a pseudo-label
    assert match_rule(RULES, "libreoffice-common", "usr/lib/libreoffice/share/gallery/sounds/train.wav").labels is None


def test_packages_that_feed_rendered_sources_give_no_pseudo_labels() -> None:
    """Instrument notes, drum hits and key presses are parts of rendered sources whose groups may be held
    out: listing them unlabelled would let a held-out recording train."""
    from tagger.corpus import samples
    from tagger.corpus.pseudo import NO_PSEUDO_LABELS

    used = {s.package for s in samples.MELODIC_SETS} | {kit.package for kit in samples.DRUM_KITS}
    used.add("bucklespring-data")  # render.py assembles the typing sources from its key presses (by name here)
    assert used <= set(NO_PSEUDO_LABELS), used - set(NO_PSEUDO_LABELS)
