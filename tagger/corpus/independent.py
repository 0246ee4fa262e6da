"""An independent check set: real recordings from Debian packages the corpus never uses.

    python -m tagger.corpus.independent OUT --cache DIR
    tagger eval MODEL OUT/independent.csv --label-separator ';'

The corpus (``tagger corpus``) takes its sources only from the packages in
``tagger.corpus.packages.PACKAGES``. This set comes from two others: GCompris's activity sounds
(``gcompris-qt-data``: farm animals, solo instrument demos, sound-memory recordings, vehicles)
and ALSA's channel-test voice (``alsa-utils``). Every file is labelled by hand from what its
activity presents it as (the "owl" of the farm animals, the "violin" of the instrument quiz);
files whose content a name does not settle (a "harbor" ambience, a "guitar" note of unknown kind)
are left out. Files of other classes stay in as negatives (the cat, the duck, the banjo).

It is for measuring only: the model never trains on it, and the audio is extracted into OUT,
never committed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tagger.errors import TaggerError

from .classes import with_implied
from .packages import fetch_packages
from .rcc import rcc_files

PACKAGES = ("gcompris-qt-data", "alsa-utils")
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
ALSA_SOUNDS = "usr/share/sounds/alsa"
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
# ALSA's speaker-test voice: one speaker naming the channels.
ALSA_SPEECH = ("Front_Center.wav", "Front_Left.wav", "Front_Right.wav", "Rear_Center.wav",
               "Rear_Left.wav", "Rear_Right.wav", "Side_Left.wav", "Side_Right.wav")


def build_independent_set(out: Path, cache: Path) -> int:
    """Extract the hand-labelled files into ``out`` and write ``out/independent.csv``; returns the count."""
    trees = fetch_packages(cache, PACKAGES)
    rows: list[tuple[str, str, str, str]] = []  # path, labels, package, file in the package
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
            target = out / "gcompris" / activity / name.replace("/", "_")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(found[name])
            rows.append((str(target.relative_to(out)), LABEL_SEPARATOR.join(with_implied(labels)),
                         "gcompris-qt-data", f"{bundle.name}:{prefix}{name}"))
    for name in ALSA_SPEECH:
        source = trees / "alsa-utils" / ALSA_SOUNDS / name
        target = out / "alsa" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        rows.append((str(target.relative_to(out)), "Speech", "alsa-utils", f"{ALSA_SOUNDS}/{name}"))
    with open(out / "independent.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "labels", "package", "file"])
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tagger.corpus.independent", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the extracted files and independent.csv")
    parser.add_argument("--cache", type=Path, default=Path("independent-cache"),
                        help="downloaded and unpacked packages (default: independent-cache)")
    args = parser.parse_args(argv)
    try:
        count = build_independent_set(args.out, args.cache)
    except (TaggerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out / 'independent.csv'}: {count} files; score a model with "
          f"tagger eval MODEL {args.out / 'independent.csv'} --label-separator ';'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
