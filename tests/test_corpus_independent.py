"""The independent check set: Qt resource bundles are read exactly, and the set is labelled and scorable."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tagger.corpus import independent
from tagger.corpus.classes import CLASSES
from tagger.corpus.packages import PACKAGES as CORPUS_PACKAGES
from tagger.corpus.packages import CorpusError
from tagger.corpus.rcc import rcc_files
from tagger.data import ManifestFormat, read_examples
from tagger.errors import TaggerError


def write_rcc(path: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    """A version-2 Qt resource bundle of ``{"dir/.../name": (contents, compressed)}``, as Qt's rcc lays it out."""
    tree: dict = {}
    for inner, entry in files.items():
        *folders, name = inner.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = entry
    names, name_offsets = bytearray(), {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return name_offsets[name]

    data = bytearray()
    nodes: list[bytes] = [b""]  # 22-byte records; a folder's children are consecutive, as rcc writes them
    queue: list[tuple[int, str, dict]] = [(0, "", tree)]
    while queue:
        index, name, folder = queue.pop(0)
        children = sorted(folder.items())
        first = len(nodes)
        nodes.extend([b""] * len(children))
        nodes[index] = struct.pack(">IHII", name_offset(name) if index else 0, 2, len(children), first) + bytes(8)
        for child, (child_name, entry) in enumerate(children, start=first):
            if isinstance(entry, dict):
                queue.append((child, child_name, entry))
                continue
            contents, compressed = entry
            stored = struct.pack(">I", len(contents)) + zlib.compress(contents) if compressed else contents
            nodes[child] = struct.pack(">IHHHI", name_offset(child_name), 1 if compressed else 0, 0, 0,
                                       len(data)) + bytes(8)
            data.extend(struct.pack(">I", len(stored)) + stored)
    tree_bytes = b"".join(nodes)
    tree_at = 20
    data_at = tree_at + len(tree_bytes)
    names_at = data_at + len(data)
    path.write_bytes(b"qres" + struct.pack(">IIII", 2, tree_at, data_at, names_at) + tree_bytes + data + names)


def test_rcc_files_come_back_byte_for_byte(tmp_path: Path) -> None:
    bundle = tmp_path / "activity.rcc"
    plain, packed = b"OggS" + bytes(range(256)) * 3, b"RIFF" + b"\x00\x01" * 5000
    write_rcc(bundle, {"gcompris/res/plain.ogg": (plain, False), "gcompris/res/sub/packed.wav": (packed, True),
                       "top.txt": (b"hello", False)})
    assert dict(rcc_files(bundle)) == {"gcompris/res/plain.ogg": plain, "gcompris/res/sub/packed.wav": packed,
                                       "top.txt": b"hello"}


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.rcc"
    other.write_bytes(b"OggS" + bytes(40))
    with pytest.raises(CorpusError, match="not a Qt resource bundle"):
        list(rcc_files(other))


def test_a_truncated_bundle_is_refused_in_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "activity.rcc"
    write_rcc(bundle, {"res/a.wav": (b"RIFF" * 500, True)})
    bundle.write_bytes(bundle.read_bytes()[:60])
    with pytest.raises(CorpusError, match="damaged Qt resource bundle"):
        list(rcc_files(bundle))


def test_the_check_uses_no_package_the_corpus_trains_on() -> None:
    assert set(independent.CHECK_PACKAGES).isdisjoint(CORPUS_PACKAGES)


def _wav_bytes(tmp_path: Path, seed: int) -> bytes:
    path = tmp_path / f"tone{seed}.wav"
    sf.write(path, np.random.default_rng(seed).uniform(-0.1, 0.1, 3200).astype(np.float32), 32000)
    return path.read_bytes()


def test_the_set_is_extracted_labelled_and_readable_as_a_manifest(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    trees = tmp_path / "pkgs"
    rcc_dir = trees / "gcompris-qt-data" / independent.GCOMPRIS_RCC
    rcc_dir.mkdir(parents=True)
    by_activity: dict[str, dict[str, tuple[bytes, bool]]] = {}
    for number, (activity, name, _) in enumerate(independent.GCOMPRIS):
        inner = f"gcompris/src/activities/{activity}/resource/{name}"
        by_activity.setdefault(activity, {})[inner] = (_wav_bytes(tmp_path, number), number % 2 == 0)
    for activity, files in by_activity.items():
        files[f"gcompris/src/activities/{activity}/resource/README"] = (b"licence text", False)
        write_rcc(rcc_dir / f"{activity}.rcc", files)
    for number, (package, inner, _) in enumerate(independent.FILES):
        (trees / package / inner).parent.mkdir(parents=True, exist_ok=True)
        (trees / package / inner).write_bytes(_wav_bytes(tmp_path, 1000 + number))
    monkeypatch.setattr(independent, "fetch_packages", lambda cache, packages, evaluation_only: trees)

    out = tmp_path / "set"
    count = independent.build_independent_set(out, tmp_path / "cache")
    assert count == len(independent.GCOMPRIS) + len(independent.FILES)
    examples = read_examples(str(out / "independent.csv"), ManifestFormat(label_separator=";"))
    assert len({e.path for e in examples}) == count  # no two files share a name in OUT
    by_name = {Path(e.path).name: e for e in examples}
    assert by_name["animals_owl.ogg"].labels == ("Bird",)
    assert set(by_name["violin.ogg"].labels) == {"Violin, fiddle", "Music"}  # the parent comes along
    assert by_name["animals_cat.ogg"].labels == ()  # a negative
    assert by_name["bird3_02.ogg"].labels == ("Bird",)
    assert by_name["Front_Center.wav"].labels == ("Speech",)
    assert all(set(e.labels) <= set(CLASSES) for e in examples)
    first = independent.GCOMPRIS[0]
    assert Path(by_name["animals_dog.ogg"].path).read_bytes() == by_activity[first[0]][
        f"gcompris/src/activities/{first[0]}/resource/{first[1]}"][0]

    # a GCompris release that moved a file is named in one line
    files = by_activity["traffic"]
    del files["gcompris/src/activities/traffic/resource/car.wav"]
    write_rcc(rcc_dir / "traffic.rcc", files)
    with pytest.raises(TaggerError, match="traffic.rcc has no .*car.wav"):
        independent.build_independent_set(tmp_path / "again", tmp_path / "cache")


def test_copies_of_corpus_sources_are_found_and_left_out(tmp_path: Path) -> None:
    """A file of the set that is a corpus source at another gain (even inside a zip archive) is a
    copy; a different recording of the same kind of sound is not."""
    import zipfile

    rng = np.random.default_rng(0)
    rate = 22050
    rain = (rng.standard_normal(rate * 3) * np.linspace(0.1, 0.3, rate * 3)).astype(np.float32)
    other_rain = (rng.standard_normal(rate * 3) * 0.2).astype(np.float32)
    bark = (np.sin(2 * np.pi * 600 * np.arange(rate) / rate) * (np.arange(rate) % 4000 < 1500)).astype(np.float32)
    packages = tmp_path / "pkgs"
    (packages / "game-data" / "sounds").mkdir(parents=True)
    sf.write(packages / "game-data" / "sounds" / "rain.wav", rain, rate)
    member = tmp_path / "bark.ogg"
    sf.write(member, 0.5 * bark, rate)
    with zipfile.ZipFile(packages / "game-data" / "sounds" / "pak.zip", "w") as archive:
        archive.write(member, "animals/bark.ogg")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sources.csv").write_text("package,file,licence,labels,group,split\n"
                                        "game-data,sounds/rain.wav,GPL-2+,Rain,g1,train\n"
                                        "game-data,sounds/pak.zip:animals/bark.ogg,GPL-2+,Dog,g2,train\n"
                                        "procedural,\"sine_clip, clip 0\",MIT,Sine wave,g3,train\n")
    out = tmp_path / "set"
    out.mkdir()
    sf.write(out / "copy.flac", 0.5 * rain, 44100 // 2)
    sf.write(out / "dog.wav", bark, rate)
    sf.write(out / "new-rain.wav", other_rain, rate)
    (out / "independent.csv").write_text("path,labels,package,file\ncopy.flac,Rain,a,x\ndog.wav,Dog,b,y\n"
                                         "new-rain.wav,Rain,c,z\n")
    copies = independent.corpus_copies(out, corpus, packages, tmp_path / "work")
    assert copies == [("copy.flac", "game-data:sounds/rain.wav"), ("dog.wav", "game-data:sounds/pak.zip:animals/bark.ogg")]
    assert independent.drop_files(out, {name for name, _ in copies}) == 1
    assert [e.path for e in read_examples(out / "independent.csv")] == [str(out / "new-rain.wav")]
