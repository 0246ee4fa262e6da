"""Pseudo-labels: the corpus packages' sounds that no catalog rule names, labelled by trained models.

Most files of the corpus packages match no rule of the catalog (a name that does not settle what the
sound is). Tagged by one or more models, the ones they agree on with confidence can teach a student
model too (the noisy-student recipe)::

    python -m tagger.corpus.pseudo list corpus-cache -o unlabelled.csv
    tagger file --from-list unlabelled.csv -f jsonl --resume -o scores-a.jsonl --model A.pt   # per model
    python -m tagger.corpus.pseudo select unlabelled.csv scores-a.jsonl [scores-b.jsonl ...] \\
        -o pseudo-labels.csv
    tagger corpus corpus-pl --pseudo-labels pseudo-labels.csv ...

``list`` takes every readable, non-silent audio file (and archive member) of the corpus packages that no
rule matches and that lasts at most ``--max-seconds`` (10: one window); files the catalog excludes stay
out, and so do copies or other takes of a labelled recording (the catalog's content fingerprint). ``select`` averages the models' clip probabilities and
keeps a file when some class reaches ``--high`` and no class lies between ``--low`` and ``--high`` (an
unsure file is left out whole), at most ``--max-per-class`` files per class, the most confident first.
Pseudo-labelled sources only ever train: the held-out split stays made of catalog labels.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tagger.errors import TaggerError

from .catalog import EXTRACTED, RULES, Candidate, Rule, deduplicate, package_candidates
from .classes import CLASSES
from .packages import PACKAGES, CorpusError
from .render import TYPING_PACKAGE
from .samples import DRUM_KITS, MELODIC_SETS
from .source import Source

LIST_HEADER = ["path", "package", "origin", "licence", "group", "seconds"]
LABELS_HEADER = ["path", "package", "origin", "licence", "group", "labels", "confidence"]
LABEL_SEPARATOR = ";"
# Longest file listed: one window of the models. A longer file's score is the max over its windows, which
# does not say that a random training crop of it holds the sound (and most are music tracks or loops).
MAX_SECONDS = 10.0
GROUP_PREFIX = "pseudo:"  # a pseudo-labelled source's group, so the split can tell it apart
# Packages whose unnamed files are never listed. FreeDink holds copies of sounds from a package reserved
# for blind evaluation, which the catalog excludes by name only where it names them. The others' files feed
# rendered sources (instrument notes, drum hits, key presses) whose groups may be held out: a
# pseudo-labelled copy of such a note would put a held-out recording into training.
NO_PSEUDO_LABELS: frozenset[str] = frozenset(
    {"freedink-data", TYPING_PACKAGE}
    | {sample_set.package for sample_set in MELODIC_SETS} | {kit.package for kit in DRUM_KITS}
)


def unlabelled_sources(packages_dir: Path, work_dir: Path, rules: tuple[Rule, ...] | list[Rule] = RULES,
                       packages: tuple[str, ...] = PACKAGES,
                       max_seconds: float = MAX_SECONDS) -> list[tuple[Source, float]]:
    """The distinct recordings of ``packages`` that no rule names and that last at most ``max_seconds``,
    with their durations in seconds.

    Labelled and unmatched files are deduplicated together, labelled ones first, so an unmatched copy
    of a labelled recording (or another take of it) is dropped; unmatched copies of each other keep one.
    """
    labelled: list[Candidate] = []
    unmatched: list[Candidate] = []
    for package in packages:
        if (packages_dir / package).is_dir():
            labelled += package_candidates(rules, packages_dir, package, work_dir)
            if package not in NO_PSEUDO_LABELS:
                unmatched += package_candidates(rules, packages_dir, package, work_dir, unmatched=True)
    own_groups = {candidate.source.group for candidate in unmatched}
    seconds = {candidate.source.path: candidate.seconds for candidate in unmatched}
    kept = deduplicate(labelled + unmatched)
    return sorted(((source, seconds[source.path]) for source in kept
                   if source.group in own_groups and seconds[source.path] <= max_seconds),
                  key=lambda item: (item[0].package, item[0].origin))


def write_list(rows: list[tuple[Source, float]], out: Path) -> None:
    """Absolute paths: ``tagger file --from-list`` reads relative ones from the list's folder, and
    ``select`` matches its scores to the list by path."""
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LIST_HEADER)
        for source, seconds in rows:
            writer.writerow([str(source.path.resolve()), source.package, source.origin, source.licence, source.group,
                             f"{seconds:.3f}"])


def _read_csv(path: Path, header: list[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in header if column not in (reader.fieldnames or [])]
            if missing:
                raise CorpusError(f"{path} is not a pseudo-label file (no column {missing[0]!r})")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"cannot read {path}: {error}") from error


def read_scores(path: Path) -> dict[str, dict[str, float]]:
    """``{audio path: {label: clip probability}}`` from a ``tagger file -f jsonl`` output; failed
    files are left out. Every record must score the corpus classes."""
    scores: dict[str, dict[str, float]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                record = json.loads(line)
                if "clip" not in record:
                    continue  # a file that could not be tagged
                if set(record["clip"]) != set(CLASSES):
                    raise CorpusError(f"{path}:{number}: the model's labels are not the corpus classes")
                scores[record["path"]] = record["clip"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise CorpusError(f"cannot read {path} as tagger file -f jsonl output: {error}") from error
    return scores


@dataclass(frozen=True)
class Selection:
    high: float = 0.8
    low: float = 0.2
    max_per_class: int = 150


def select(listed: list[dict[str, str]], scores: list[dict[str, dict[str, float]]],
           options: Selection = Selection()) -> list[dict[str, str]]:
    """The listed files the models agree on (see the module text), most confident first."""
    if not 0.0 <= options.low < options.high <= 1.0:
        raise CorpusError("the thresholds need 0 <= low < high <= 1")
    chosen = []
    for row in listed:
        if not all(row["path"] in model for model in scores):
            continue
        mean = {label: sum(model[row["path"]][label] for model in scores) / len(scores) for label in CLASSES}
        if any(options.low < value < options.high for value in mean.values()):
            continue
        labels = [label for label in CLASSES if mean[label] >= options.high]
        if labels:
            chosen.append((min(mean[label] for label in labels), row, labels))
    chosen.sort(key=lambda item: (-item[0], item[1]["path"]))
    taken: dict[str, int] = {label: 0 for label in CLASSES}
    rows = []
    for confidence, row, labels in chosen:
        if any(taken[label] >= options.max_per_class for label in labels):
            continue
        for label in labels:
            taken[label] += 1
        rows.append({**{key: row[key] for key in LIST_HEADER[:5]}, "labels": LABEL_SEPARATOR.join(labels),
                     "confidence": f"{confidence:.4f}"})
    return rows


def pseudo_sources(path: Path) -> list[Source]:
    """The sources of a ``select`` output, in its order; their groups carry GROUP_PREFIX."""
    sources = []
    for row in _read_csv(path, LABELS_HEADER):
        labels = tuple(label for label in row["labels"].split(LABEL_SEPARATOR) if label)
        unknown = [label for label in labels if label not in CLASSES]
        if unknown or not labels:
            raise CorpusError(f"{path}: {row['path']} has labels that are not corpus classes: {row['labels']!r}")
        sources.append(Source(Path(row["path"]), labels, row["package"], row["origin"], row["licence"],
                              GROUP_PREFIX + row["group"]))
    return sources


def is_pseudo(source: Source) -> bool:
    return source.group.startswith(GROUP_PREFIX)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tagger.corpus.pseudo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="write the unmatched recordings of the corpus packages")
    listing.add_argument("cache", type=Path, help="the corpus cache (its pkgs/ folder holds the packages)")
    listing.add_argument("-o", "--output", type=Path, required=True, help="CSV to write (path column: audio)")
    listing.add_argument("--max-seconds", type=float, default=MAX_SECONDS,
                         help="leave out longer files (their score need not hold for a crop of them)")
    choosing = commands.add_parser("select", help="keep the files the models agree on")
    choosing.add_argument("listed", type=Path, help="the CSV that list wrote")
    choosing.add_argument("scores", type=Path, nargs="+", help="tagger file -f jsonl outputs, one per model")
    choosing.add_argument("-o", "--output", type=Path, required=True, help="pseudo-label CSV to write")
    choosing.add_argument("--high", type=float, default=Selection.high, help="a label's mean probability to keep it")
    choosing.add_argument("--low", type=float, default=Selection.low,
                          help="every other label must be at most this, or the file is left out")
    choosing.add_argument("--max-per-class", type=int, default=Selection.max_per_class,
                          help="at most this many files per class, the most confident first")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            # archive members go where `tagger corpus` extracts them, so the labelled ones are there already
            rows = unlabelled_sources(args.cache / "pkgs", args.cache / EXTRACTED, max_seconds=args.max_seconds)
            write_list(rows, args.output)
            print(f"{args.output}: {len(rows)} recordings no rule names; tag them with "
                  f"tagger file --from-list {args.output} -f jsonl -o SCORES.jsonl --resume")
            return 0
        listed = _read_csv(args.listed, LIST_HEADER)
        rows = select(listed, [read_scores(path) for path in args.scores],
                      Selection(args.high, args.low, args.max_per_class))
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, LABELS_HEADER)
            writer.writeheader()
            writer.writerows(rows)
        counts = {label: sum(label in row["labels"].split(LABEL_SEPARATOR) for row in rows) for label in CLASSES}
        print(f"{args.output}: {len(rows)} of {len(listed)} files pseudo-labelled; "
              + ", ".join(f"{label} {n}" for label, n in counts.items() if n))
        return 0
    except (TaggerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
