"""``tagger corpus``: fetch the packages, gather and render sources, split them, write the clips.

Output folder::

    OUT/labels.txt        the 50 classes, in model output order
    OUT/train.csv         path,labels (labels separated by ';': class names contain commas)
    OUT/heldout.csv       the source-disjoint held-out clips, same layout (absent with a held-out
                          fraction of 0, where every source trains)
    OUT/train/*.wav       32 kHz mono 16-bit clips (heldout/ likewise)
    OUT/sources.csv       every source recording: package, file, licence, labels, group, split
    OUT/attribution.csv   every clip's parts: which file of which package, where, how loud, licence
    OUT/corpus.json       seed, counts, package versions, per-class split sizes, timings

The folder is written as ``OUT.partial`` and renamed when complete.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import multiprocessing.pool
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tagger.audio import stream_audio
from tagger.augment import check_conditions_available
from tagger.errors import TaggerError

from .catalog import EXTRACTED, recorded_sources
from .classes import CLASSES, check_against_audioset
from .mix import SAMPLE_RATE, ClipMaker, Pools
from .packages import CorpusError, check_tools, fetch_packages, package_versions
from .pseudo import is_pseudo, pseudo_sources
from .render import rendered_sources
from .split import HELDOUT, TRAIN, split_groups, split_summary

LABEL_SEPARATOR = ";"
MAX_SOURCE_SECONDS = 120.0  # long music tracks: the first two minutes are plenty to crop from
MIN_SOURCE_SECONDS = 0.1
SILENCE_PEAK = 1e-4
SPLIT_CODES = {TRAIN: 0, HELDOUT: 1}


@dataclass(frozen=True)
class CorpusOptions:
    out: Path
    cache: Path
    seed: int = 0
    train_clips: int = 10000
    heldout_clips: int = 1500
    heldout_fraction: float = 0.25
    workers: int = 2
    conditions: float = 0.0  # share of training clips given random recording conditions
    pseudo_labels: Path | None = None  # a `python -m tagger.corpus.pseudo select` output: training sources


def _load_source(path: Path) -> np.ndarray:
    """A source as 32 kHz mono float32, at most MAX_SOURCE_SECONDS; empty when unreadable."""
    blocks, total = [], 0
    try:
        for block in stream_audio(path, SAMPLE_RATE):
            blocks.append(block)
            total += len(block)
            if total >= MAX_SOURCE_SECONDS * SAMPLE_RATE:
                break
    except TaggerError:
        return np.zeros(0, dtype=np.float32)
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return audio[: int(MAX_SOURCE_SECONDS * SAMPLE_RATE)]


def _usable(audio: np.ndarray) -> bool:
    return len(audio) >= MIN_SOURCE_SECONDS * SAMPLE_RATE and float(np.max(np.abs(audio))) > SILENCE_PEAK


# Worker state: set before the pool forks, so the sources' audio is shared, not pickled.
_MAKER: ClipMaker | None = None
_FOLDER: Path | None = None


def _write_clip(index: int) -> tuple[int, tuple[str, ...], tuple]:
    assert _MAKER is not None and _FOLDER is not None
    clip = _MAKER.make(index)
    sf.write(_FOLDER / f"{index:06d}.wav", clip.audio, SAMPLE_RATE, subtype="PCM_16")
    return index, clip.labels, clip.parts


def _worker_signals() -> None:
    """Pool workers die quietly when the pool terminates them (SIGTERM): they inherit the CLI's
    handler, which would raise in each of them and print a traceback per worker."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _fork_pool(workers: int) -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("fork").Pool(workers, initializer=_worker_signals)


def _make_clips(maker: ClipMaker, folder: Path, count: int, workers: int) -> Iterator[tuple]:
    global _MAKER, _FOLDER
    _MAKER, _FOLDER = maker, folder
    folder.mkdir(parents=True, exist_ok=True)
    if workers <= 1:
        yield from map(_write_clip, range(count))
        return
    with _fork_pool(workers) as pool:
        yield from pool.imap(_write_clip, range(count), chunksize=16)


def _decode_all(paths: list[Path], workers: int) -> list[np.ndarray]:
    if workers <= 1:
        return [_load_source(path) for path in paths]
    with _fork_pool(workers) as pool:
        return pool.map(_load_source, paths, chunksize=8)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def build_corpus(opts: CorpusOptions, report: Callable[[str], None] = print) -> dict:
    """Build the whole corpus into ``opts.out``; returns the summary written to corpus.json."""
    check_against_audioset()
    check_tools()
    if opts.conditions > 0:
        check_conditions_available()
    if opts.out.exists():
        raise CorpusError(f"{opts.out} already exists: remove it or choose another folder")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    trees = fetch_packages(opts.cache, report=report)
    timings["fetch_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    report("gathering recorded sources")
    sources = recorded_sources(trees, opts.cache / EXTRACTED)
    report("rendering instruments, speech synthesis, typing and procedural signals")
    sources += rendered_sources(trees, opts.cache / "work" / f"rendered-seed{opts.seed}", opts.seed)
    if opts.pseudo_labels is not None:
        pseudo = pseudo_sources(opts.pseudo_labels)
        report(f"adding {len(pseudo)} pseudo-labelled sources from {opts.pseudo_labels} (training only)")
        sources += pseudo
    timings["sources_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    report(f"decoding {len(sources)} sources")
    audio = _decode_all([source.path for source in sources], opts.workers)
    kept = [i for i, a in enumerate(audio) if _usable(a)]
    sources, audio = [sources[i] for i in kept], [audio[i] for i in kept]
    timings["decode_s"] = time.perf_counter() - mark

    assignment = split_groups([s for s in sources if not is_pseudo(s)], opts.heldout_fraction, opts.seed)
    assignment.update({s.group: TRAIN for s in sources if is_pseudo(s)})  # model labels never judge a model
    partial = opts.out.with_name(opts.out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "labels.txt").write_text("".join(f"{label}\n" for label in CLASSES), encoding="utf-8")
    _write_csv(partial / "sources.csv", ["package", "file", "licence", "labels", "group", "split"],
               [[s.package, s.origin, s.licence, LABEL_SEPARATOR.join(s.labels), s.group,
                 assignment[s.group]] for s in sources])

    attribution: list[list] = []
    clip_counts = {TRAIN: 0, HELDOUT: 0}
    splits = [(TRAIN, opts.train_clips)]
    if opts.heldout_fraction > 0:
        splits.append((HELDOUT, opts.heldout_clips))
    for split, count in splits:
        mark = time.perf_counter()
        members = [i for i, s in enumerate(sources) if assignment[s.group] == split]
        pools = Pools([sources[i] for i in members])
        conditions = opts.conditions if split == TRAIN else 0.0  # the held-out split stays as recorded
        maker = ClipMaker(pools, [audio[i] for i in members], opts.seed, SPLIT_CODES[split], conditions)
        report(f"writing {count} {split} clips from {len(members)} sources")
        rows = []
        for index, labels, parts in _make_clips(maker, partial / split, count, opts.workers):
            rows.append([f"{split}/{index:06d}.wav", LABEL_SEPARATOR.join(labels)])
            for part in parts:
                source = pools.sources[part.source]
                attribution.append([f"{split}/{index:06d}.wav", source.package, source.origin,
                                    source.licence, f"{part.offset:.3f}", f"{part.duration:.3f}",
                                    f"{part.level_db:.1f}", int(part.labelled)])
        _write_csv(partial / f"{split}.csv", ["path", "labels"], rows)
        clip_counts[split] = len(rows)
        timings[f"{split}_clips_s"] = time.perf_counter() - mark
    _write_csv(partial / "attribution.csv",
               ["clip", "package", "file", "licence", "offset_s", "duration_s", "level_db", "labelled"],
               attribution)
    timings["total_s"] = time.perf_counter() - started
    summary = {
        "seed": opts.seed,
        "heldout_fraction": opts.heldout_fraction,
        "conditions": opts.conditions,
        "clips": clip_counts,
        "sources": len(sources),
        "pseudo_labelled": sum(is_pseudo(s) for s in sources),
        "groups_per_class": split_summary(sources, assignment),
        "packages": package_versions(opts.cache),
        "licences": sorted({s.licence for s in sources}),
        "timings": {key: round(value, 1) for key, value in timings.items()},
    }
    (partial / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    partial.rename(opts.out)
    return summary
