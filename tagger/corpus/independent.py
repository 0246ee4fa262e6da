"""An independent check set: real recordings from Debian packages the corpus never uses.

    python -m tagger.corpus.independent OUT --cache DIR
    tagger eval MODEL OUT/independent.csv --label-separator ';'

The corpus (``tagger corpus``) takes its sources only from the packages in
``tagger.corpus.packages.PACKAGES``. This set comes from five others: GCompris's activity sounds
(``gcompris-qt-data``: farm animals, solo instrument demos, sound-memory recordings, vehicles),
ALSA's channel-test voice (``alsa-utils``), and the sound effects and music of Widelands, Battle
for Wesnoth and SuperTuxKart (``widelands-data``, ``wesnoth-1.16-data``, ``supertuxkart-data``,
1.2 GB of downloads). Every file is labelled by hand from what its game or activity presents it
as (the "owl" of the farm animals, the "violin" of the instrument quiz); files whose content a
name does not settle (a "harbor" ambience, a "guitar" note of unknown kind, a kart's engine) are
left out. Files of other classes stay in as negatives (the cat, the ducks, the banjo, a clock).

Given ``--corpus CORPUS`` (a folder ``tagger corpus`` wrote, built from ``--corpus-cache``), files
that the catalog's content fingerprint finds to be copies of a corpus source recording are named
and left out of the manifest, so that the check stays independent as the corpus grows. It is for
measuring only: the model never trains on it, and the audio is extracted into OUT, never committed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tagger.errors import TaggerError

from .catalog import ARCHIVE_SUFFIXES, Fingerprint, extract_member, file_fingerprint
from .classes import with_implied
from .packages import fetch_packages
from .rcc import rcc_files

GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
LABEL_SEPARATOR = ";"

# (GCompris activity, file in its resource folder, labels); an empty tuple is a negative.
GCOMPRIS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("explore_farm_animals", "animals/dog.ogg", ("Dog",)),
    ("explore_farm_animals", "animals/cow.ogg", ("Cattle, bovinae",)),
    ("explore_farm_animals", "animals/pig.ogg", ("Pig",)),
    ("explore_farm_animals", "animals/horse.ogg", ("Horse",)),
    ("explore_farm_animals", "animals/sheep.ogg", ("Sheep",)),
    ("explore_farm_animals", "animals/chickens.ogg", ("Chicken, rooster",)),
    ("explore_farm_animals", "animals/owl.ogg", ("Bird",)),
    ("explore_farm_animals", "animals/cat.ogg", ()),
    ("explore_farm_animals", "animals/duck.ogg", ()),  # AudioSet files ducks under Fowl, not Bird
    ("memory-sound", "LRBark_1_LA_cut.ogg", ("Dog",)),
    ("memory-sound", "LRBark_3_LA_cut.ogg", ("Dog",)),
    ("memory-sound", "LRDoor_Open_2_LA.ogg", ("Door",)),
    ("memory-sound", "LRRain_in_garden_01_LA_cut.ogg", ("Rain",)),
    ("memory-sound", "LRStartAndStopCarEngine1LACut.ogg", ("Car",)),
    ("memory-sound", "LRTrain_slowing_down_01_LA_cut.ogg", ("Train",)),
    ("memory-sound", "LRApplauses_1_LA_cut.ogg", ()),
    ("guessnumber", "helicopter.wav", ("Helicopter",)),
    ("railroad", "sounds/train.wav", ("Train",)),
    ("traffic", "car.wav", ("Car",)),
    ("canal_lock", "water_fill.wav", ("Water",)),
    ("instruments", "accordion.ogg", ("Accordion",)),
    ("instruments", "cello.ogg", ("Cello",)),
    ("instruments", "clarinet.ogg", ("Clarinet",)),
    ("instruments", "drum_kit.ogg", ("Drum kit",)),
    ("instruments", "electric_guitar.ogg", ("Electric guitar",)),
    ("instruments", "flute_traversiere.ogg", ("Flute",)),
    ("instruments", "guitar.ogg", ("Acoustic guitar",)),
    ("instruments", "harp.ogg", ("Harp",)),
    ("instruments", "organ.ogg", ("Organ",)),
    ("instruments", "piano.ogg", ("Piano",)),
    ("instruments", "saxophone.ogg", ("Saxophone",)),
    ("instruments", "trombone.ogg", ("Trombone",)),
    ("instruments", "trumpet.ogg", ("Trumpet",)),
    ("instruments", "violin.ogg", ("Violin, fiddle",)),
    *(("instruments", f"{name}.ogg", ("Music",)) for name in (
        "banjo", "bongo", "castanets", "cymbal", "harmonica", "horn", "maracas", "snare_drum",
        "tambourine", "timpani", "triangle", "tuba")),
)
# Plain files of other packages: (package, path in the package, labels).
WIDELANDS, WESNOTH, STK = ("widelands-data", "usr/share/games/widelands/data"), \
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data"), ("supertuxkart-data", "usr/share/games/supertuxkart/data")
FILES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # ALSA's speaker-test voice: one speaker naming the channels
    *(("alsa-utils", f"usr/share/sounds/alsa/{name}.wav", ("Speech",)) for name in (
        "Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left",
        "Side_Right")),
    # Widelands: six birds' calls, two crickets, farm animals, a few negatives and its music
    *((WIDELANDS[0], f"{WIDELANDS[1]}/sound/animals/bird{bird}_{take:02d}.ogg", ("Bird",))
      for bird, takes in ((1, 3), (2, 5), (3, 4), (4, 3), (5, 3), (6, 2)) for take in range(takes)),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/sound/animals/crickets{n}_00.ogg", ("Insect",)) for n in (1, 2)),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/sound/farm/horse_{n:02d}.ogg", ("Horse",)) for n in (0, 1)),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/sound/farm/ox_{n:02d}.ogg", ("Cattle, bovinae",)) for n in (0, 1)),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/sound/farm/sheep_{n:02d}.ogg", ("Sheep",)) for n in (0, 1, 2)),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/world/critters/duck/duck_{n:02d}.ogg", ()) for n in (0, 1, 2)),
    (WIDELANDS[0], f"{WIDELANDS[1]}/sound/animals/frog.ogg", ()),
    (WIDELANDS[0], f"{WIDELANDS[1]}/sound/farm/donkey.ogg", ()),
    *((WIDELANDS[0], f"{WIDELANDS[1]}/music/ingame_{n:02d}.ogg", ("Music",)) for n in (0, 2, 4)),
    # Battle for Wesnoth: ambiences, horses, laughs, weapons
    *((WESNOTH[0], f"{WESNOTH[1]}/core/sounds/ambient/birds{n}.ogg", ("Bird",)) for n in (1, 2, 3)),
    (WESNOTH[0], f"{WESNOTH[1]}/core/sounds/ambient/campfire.ogg", ("Fire",)),
    (WESNOTH[0], f"{WESNOTH[1]}/core/sounds/explosion.ogg", ("Explosion",)),
    (WESNOTH[0], f"{WESNOTH[1]}/core/sounds/gunshot.wav", ("Gunshot, gunfire",)),
    (WESNOTH[0], f"{WESNOTH[1]}/core/sounds/dwarf-laugh.wav", ("Laughter",)),
    (WESNOTH[0], f"{WESNOTH[1]}/campaigns/World_Conquest/sounds/witches-laugh.wav", ("Laughter",)),
    *((WESNOTH[0], f"{WESNOTH[1]}/core/sounds/{name}", ("Horse",)) for name in (
        "horse-canter.wav", "horse-elf-canter.wav", "horse-die.ogg", "horse-hit-1.ogg", "horse-hit-2.ogg",
        "horse-hit-3.ogg")),
    # SuperTuxKart: vehicles, weather, water, animals, an airport announcement, music (not its
    # rain.ogg: the catalog's fingerprint finds it is megaglest's, which the corpus uses)
    (STK[0], f"{STK[1]}/library/stklib_steamLocomotive_a/steamLocomotive.ogg", ("Train",)),
    (STK[0], f"{STK[1]}/sfx/airplane_jetEngine.ogg", ("Aircraft",)),
    (STK[0], f"{STK[1]}/sfx/horn.ogg", ("Vehicle horn, car horn, honking",)),
    (STK[0], f"{STK[1]}/sfx/WilhelmScream.ogg", ("Screaming",)),
    (STK[0], f"{STK[1]}/sfx/exotic-birds.ogg", ("Bird",)),
    (STK[0], f"{STK[1]}/sfx/exotic-birds_2.ogg", ("Bird",)),
    (STK[0], f"{STK[1]}/sfx/explosion.ogg", ("Explosion",)),
    (STK[0], f"{STK[1]}/sfx/thunder.ogg", ("Thunder",)),
    *((STK[0], f"{STK[1]}/sfx/{name}.ogg", ("Water",)) for name in ("river_loop", "waterfall_loop_2", "splash")),
    (STK[0], f"{STK[1]}/tracks/black_forest/cow.ogg", ("Cattle, bovinae",)),
    (STK[0], f"{STK[1]}/tracks/scotland/sheep.ogg", ("Sheep",)),
    (STK[0], f"{STK[1]}/sfx/sara_airport_pa.ogg", ("Speech",)),
    (STK[0], f"{STK[1]}/sfx/gnu_flute.ogg", ("Flute",)),
    (STK[0], f"{STK[1]}/sfx/clock.ogg", ()),
    *((STK[0], f"{STK[1]}/music/{name}.ogg", ("Music",)) for name in ("celtic", "menutheme")),
)
CHECK_PACKAGES = ("gcompris-qt-data", *sorted({package for package, _, _ in FILES}))


def build_independent_set(out: Path, cache: Path) -> int:
    """Extract the hand-labelled files into ``out`` and write ``out/independent.csv``; returns the count."""
    trees = fetch_packages(cache, CHECK_PACKAGES, evaluation_only=True)
    rows: list[tuple[str, str, str, str]] = []  # path, labels, package, file in the package

    def save(relative: Path, data: bytes, labels: tuple[str, ...], package: str, origin: str) -> None:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(data)
        rows.append((str(relative), LABEL_SEPARATOR.join(with_implied(labels)), package, origin))

    wanted: dict[str, dict[str, tuple[str, ...]]] = {}
    for activity, name, labels in GCOMPRIS:
        wanted.setdefault(activity, {})[name] = labels
    for activity, files in wanted.items():
        bundle = trees / "gcompris-qt-data" / GCOMPRIS_RCC / f"{activity}.rcc"
        prefix = f"gcompris/src/activities/{activity}/resource/"
        found = {inner.removeprefix(prefix): data for inner, data in rcc_files(bundle)
                 if inner.removeprefix(prefix) in files}
        for name, labels in files.items():
            if name not in found:
                raise TaggerError(f"{bundle.name} has no {prefix}{name} (another GCompris version?)")
            save(Path("gcompris", activity, name.replace("/", "_")), found[name], labels, "gcompris-qt-data",
                 f"{bundle.name}:{prefix}{name}")
    for package, inner, labels in FILES:
        source = trees / package / inner
        if not source.is_file():
            raise TaggerError(f"{package} has no {inner} (another version of the package?)")
        save(Path(package, Path(inner).name), source.read_bytes(), labels, package, inner)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "independent.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "labels", "package", "file"])
        writer.writerows(rows)
    return len(rows)


def _corpus_file(row: dict[str, str], packages_dir: Path, work_dir: Path) -> Path | None:
    """Where a recorded source of the corpus's sources.csv lies (archive members are extracted)."""
    archive, colon, member = row["file"].partition(":")
    if colon and Path(archive).suffix in ARCHIVE_SUFFIXES:
        path = packages_dir / row["package"] / archive
        if not path.is_file():
            return None
        return extract_member(path, member, work_dir / row["package"] / Path(archive).name / member)
    path = packages_dir / row["package"] / row["file"]
    return path if path.is_file() else None


def corpus_copies(out: Path, corpus: Path, packages_dir: Path, work_dir: Path) -> list[tuple[str, str]]:
    """``(file of the set, "package:file" of the corpus)`` for every file of the set whose content
    is a corpus source's (the catalog's fingerprint: same recording, whatever the gain or length)."""
    with open(corpus / "sources.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if (packages_dir / row["package"]).is_dir()]
    sources: list[tuple[str, Fingerprint]] = []
    for row in rows:
        path = _corpus_file(row, packages_dir, work_dir)
        found = file_fingerprint(path) if path else None
        if found:
            sources.append((f"{row['package']}:{row['file']}", found))
    with open(out / "independent.csv", newline="", encoding="utf-8") as handle:
        files = [row["path"] for row in csv.DictReader(handle)]
    copies = []
    for name in files:
        mine = file_fingerprint(out / name)
        match = mine and next((source for source, theirs in sources if theirs.compare(mine)), None)
        if match:
            copies.append((name, match))
    return copies


def drop_files(out: Path, names: set[str]) -> int:
    """Remove these files from ``out/independent.csv``; returns how many rows remain."""
    manifest = out / "independent.csv"
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header, *rows = list(reader)
    kept = [row for row in rows if row[0] not in names]
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(kept)
    return len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tagger.corpus.independent", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the extracted files and independent.csv")
    parser.add_argument("--cache", type=Path, default=Path("independent-cache"),
                        help="downloaded and unpacked packages (default: independent-cache)")
    parser.add_argument("--corpus", type=Path, help="a corpus folder: leave out copies of its sources")
    parser.add_argument("--corpus-cache", type=Path, default=Path("corpus-cache"),
                        help="the cache that corpus was built from (default: corpus-cache)")
    args = parser.parse_args(argv)
    try:
        count = build_independent_set(args.out, args.cache)
        if args.corpus:
            copies = corpus_copies(args.out, args.corpus, args.corpus_cache / "pkgs",
                                   args.corpus_cache / "work" / "copy-check")
            for name, source in copies:
                print(f"left out {name}: a copy of the corpus source {source}")
            count = drop_files(args.out, {name for name, _ in copies})
    except (TaggerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out / 'independent.csv'}: {count} files; score a model with "
          f"tagger eval MODEL {args.out / 'independent.csv'} --label-separator ';'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
