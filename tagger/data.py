"""Training and evaluation data: manifests, class folders, label vocabularies, splits and clip datasets.

Two layouts are read:

* a CSV manifest with a path column and a labels column holding several labels (FSD50K/AudioSet
  style, e.g. ``clips/a.wav,"Dog,Bark"``); paths are relative to the manifest's folder;
* class folders, ``DATA/<label>/**/*.wav``: one label per clip.

Audio is decoded with :func:`tagger.audio.load_audio`, the reader and resampler of ``tagger file``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .atomic import atomic_write
from .audio import AUDIO_SUFFIXES, load_audio, probe
from .augment import NO_AUGMENT, Augment, augment_clip
from .errors import TaggerError

# PaSST's sampling weight of a label: 1000 / (clips with the label + 100).
_WEIGHT_SCALE, _WEIGHT_OFFSET = 1000.0, 100.0


class DataError(TaggerError):
    """A dataset, manifest or labels file cannot be used."""


@dataclass(frozen=True)
class Example:
    path: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ManifestFormat:
    """How a CSV manifest is laid out."""

    path_column: str = "path"
    labels_column: str = "labels"
    delimiter: str = ","
    label_separator: str = ","


def read_examples(source: str | os.PathLike, fmt: ManifestFormat = ManifestFormat()) -> list[Example]:
    """The clips of a class-folder tree (a directory) or of a CSV manifest (a file)."""
    source = Path(source)
    if source.is_dir():
        examples = _read_folders(source)
    elif source.is_file():
        examples = _read_manifest(source, fmt)
    else:
        raise DataError(f"{source}: no such manifest or folder")
    missing = [e.path for e in examples if not os.path.isfile(e.path)]
    if missing:
        raise DataError(f"{source}: {len(missing)} audio file(s) missing, e.g. {missing[0]}")
    return examples


def _read_folders(root: Path) -> list[Example]:
    examples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        examples += [Example(str(path), (folder.name,)) for path in files]
    if not examples:
        raise DataError(f"{root}: no audio files in class folders (expected {root}/<label>/*.wav)")
    return examples


def _read_manifest(path: Path, fmt: ManifestFormat) -> list[Example]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle, delimiter=fmt.delimiter))
            columns = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc})") from None
    if not rows:
        raise DataError(f"{path}: the manifest has no rows")
    for column in (fmt.path_column, fmt.labels_column):
        if column not in columns:
            raise DataError(f"{path}: no column '{column}' (columns: {', '.join(c for c in columns if c)})")
    examples = []
    for number, row in enumerate(rows, start=2):
        clip = (row.get(fmt.path_column) or "").strip()
        if not clip:
            raise DataError(f"{path}:{number}: empty '{fmt.path_column}'")
        labels = tuple(dict.fromkeys(
            label.strip() for label in (row.get(fmt.labels_column) or "").split(fmt.label_separator)
            if label.strip()))
        examples.append(Example(str(path.parent / clip), labels))
    return examples


def read_labels_file(path: str | os.PathLike) -> list[str]:
    """A label vocabulary: one label per line, in class order (blank lines ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the labels file ({exc})") from None
    labels = [line.strip() for line in lines if line.strip()]
    duplicated = [label for label, n in Counter(labels).items() if n > 1]
    if duplicated:
        raise DataError(f"{path}: label '{duplicated[0]}' is listed twice")
    if not labels:
        raise DataError(f"{path}: the labels file is empty")
    return labels


def vocabulary(examples: list[Example]) -> list[str]:
    """The labels used by the examples, sorted."""
    return sorted({label for e in examples for label in e.labels})


def check_labels(examples: list[Example], labels: list[str], source: str) -> None:
    known = set(labels)
    unknown = sorted({label for e in examples for label in e.labels if label not in known})
    if unknown:
        shown = ", ".join(f"'{u}'" for u in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise DataError(f"{source}: {len(unknown)} label(s) not in the label vocabulary: {shown}")


@dataclass(frozen=True)
class BadClip:
    """A clip that cannot be used, and why (one line)."""

    path: str
    reason: str


def error_reason(exc: TaggerError, path: str) -> str:
    """An error's message without the path it starts with (the path is reported beside it)."""
    return str(exc).removeprefix(f"{path}: ") or type(exc).__name__


def probe_clips(examples: list[Example]) -> tuple[list[Example], list[float], list[BadClip]]:
    """Read every file's header: the usable clips with their durations (seconds), and the bad ones."""
    good, durations, bad = [], [], []
    for example in examples:
        try:
            info = probe(example.path)
        except TaggerError as exc:
            bad.append(BadClip(example.path, error_reason(exc, example.path)))
            continue
        if info.frames == 0:
            bad.append(BadClip(example.path, "the file holds no audio samples"))
            continue
        good.append(example)
        durations.append(info.duration if info.duration is not None else math.inf)
    return good, durations, bad


def stratified_split(examples: list[Example], fraction: float,
                     seed: int) -> tuple[list[Example], list[Example]]:
    """(train, validation): each clip is grouped by its rarest label, each group split by ``fraction``.

    Groups of one clip stay in training; every larger group gives at least one clip to validation
    and keeps at least one.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--val-split must be between 0 and 1, not {fraction:g}")
    counts = Counter(label for e in examples for label in e.labels)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        key = min(example.labels, key=lambda label: (counts[label], label)) if example.labels else ""
        groups[key].append(index)
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for key in sorted(groups):
        members = list(rng.permutation(groups[key]))
        if len(members) >= 2:
            chosen.update(members[: min(max(1, round(fraction * len(members))), len(members) - 1)])
    train = [e for i, e in enumerate(examples) if i not in chosen]
    val = [e for i, e in enumerate(examples) if i in chosen]
    if not val:
        raise DataError("too few clips to split off a validation set; give --val")
    return train, val


def target_matrix(examples: list[Example], labels: list[str]) -> np.ndarray:
    """``[clips, classes]`` 0/1 float32 targets."""
    index = {label: i for i, label in enumerate(labels)}
    targets = np.zeros((len(examples), len(labels)), dtype=np.float32)
    for row, example in enumerate(examples):
        targets[row, [index[label] for label in example.labels]] = 1.0
    return targets


def sample_weights(targets: np.ndarray) -> np.ndarray:
    """PaSST's balancing: each clip weighs the sum of ``1000 / (label count + 100)`` of its labels."""
    label_weights = _WEIGHT_SCALE / (targets.sum(axis=0) + _WEIGHT_OFFSET)
    weights = targets @ label_weights
    weights[weights == 0] = label_weights.min()  # clips without labels are still drawn
    return weights


class AudioCache:
    """Decoded, resampled audio as float16 ``.npy`` files keyed by path, mtime, size and rate."""

    def __init__(self, directory: str | os.PathLike, sample_rate: int) -> None:
        self.directory = Path(directory)
        self.sample_rate = sample_rate
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{directory}: cannot create the cache folder ({exc.strerror})") from None

    def _entry(self, path: str) -> Path:
        stat = os.stat(path)
        key = f"{os.path.abspath(path)}|{stat.st_mtime_ns}|{stat.st_size}|{self.sample_rate}"
        return self.directory / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def load(self, path: str) -> np.ndarray:
        entry = self._entry(path)
        try:
            return np.load(entry, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError):
            pass  # not cached yet (or unreadable): decode and (re)write it
        audio = load_audio(path, self.sample_rate)
        with atomic_write(entry) as handle:
            np.save(handle, audio.astype(np.float16))
        return audio


class ClipDataset(Dataset):
    """Fixed-length training clips with their target vectors.

    Items are keyed ``(clip index, draw id)``: the crop and the augmentations (`tagger.augment`) come from a generator seeded by
    ``(seed, draw id)``, so a resumed run sees exactly the data it would have seen. Short clips are
    zero-padded at the end. (Validation does not crop: it tags whole clips as ``tagger eval`` does.)
    """

    def __init__(self, examples: list[Example], labels: list[str], window: int, sample_rate: int,
                 seed: int = 0, augment: Augment = NO_AUGMENT, cache: AudioCache | None = None) -> None:
        self.examples = examples
        self.targets = target_matrix(examples, labels)
        self.window = window
        self.sample_rate = sample_rate
        self.seed = seed
        self.augment = augment
        self.cache = cache

    def __len__(self) -> int:
        return len(self.examples)

    def _read(self, index: int) -> np.ndarray:
        path = self.examples[index].path
        return self.cache.load(path) if self.cache else load_audio(path, self.sample_rate)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        """``(waveform, targets, clip index, error)``: a clip that fails to decode (or holds NaN/Inf)
        comes back as silence with its error message, for the training loop to leave out."""
        index, draw = key
        try:
            audio = self._read(index)
        except TaggerError as exc:
            path = self.examples[index].path
            return (torch.zeros(self.window), torch.from_numpy(self.targets[index]), index,
                    error_reason(exc, path))
        rng = np.random.default_rng([self.seed, draw])
        clip = augment_clip(self.augment, rng, audio, self.window, self.sample_rate)
        return torch.from_numpy(clip), torch.from_numpy(self.targets[index]), index, ""


class EpochSampler(Sampler):
    """The draws of one epoch for one rank: ``(clip index, draw id)`` pairs.

    The order is a permutation (or, with weights, a weighted draw with replacement) seeded by
    ``(seed, epoch)``, padded to a multiple of the world size and dealt out to the ranks like
    ``DistributedSampler``. ``skip`` drops the first draws of the rank (resuming mid-epoch).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1,
                 weights: np.ndarray | None = None) -> None:
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.per_rank = math.ceil(size / world_size)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=generator)
        else:
            order = torch.randperm(self.size, generator=generator)
        total = self.per_rank * self.world_size
        order = order.repeat(math.ceil(total / self.size))[:total].tolist()
        for position in range(self.skip, self.per_rank):
            slot = self.rank + position * self.world_size
            yield order[slot], self.epoch * total + slot
