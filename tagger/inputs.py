"""Which files a run tags: paths and folders from the command line, lists of paths (``--from-list``)
and a deterministic share of them (``--shard K/N``). Torch-free."""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from .audio import AUDIO_SUFFIXES
from .errors import TaggerError


def expand_paths(paths: Iterable[Path]) -> Iterator[tuple[str, str | None]]:
    """Yield (path, problem): files as given, directories searched recursively for audio files."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                yield str(path), f"{path}: no audio files in this directory"
            for child in found:
                yield str(child), None
        elif path.exists() or path.is_symlink():  # a broken or looping link: the decoder says which
            yield str(path), None
        else:
            yield str(path), f"{path}: no such file or directory"


def read_list(source: Path, column: str = "path", delimiter: str = ",") -> list[Path]:
    """The paths a list names: one per line (blank lines and ``#`` comments skipped), or, for a
    ``.csv`` file, its ``column``. Relative paths are relative to the list's folder, as in training
    manifests; ``-`` reads the list from stdin, relative to the current folder."""
    try:
        if str(source) == "-":
            text, folder = sys.stdin.read(), Path()
        else:
            text, folder = source.read_text(encoding="utf-8"), source.parent
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a UTF-8 text file"
        raise TaggerError(f"{source}: cannot read the list ({reason})") from None
    if source.suffix.lower() == ".csv":
        entries = _csv_column(source, text, column, delimiter)
    else:
        entries = [line.strip() for line in text.splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    return [folder / entry for entry in entries]


def _csv_column(source: Path, text: str, column: str, delimiter: str) -> list[str]:
    try:
        rows = csv.DictReader(text.splitlines(), delimiter=delimiter)
        if rows.fieldnames is None or column not in rows.fieldnames:
            raise TaggerError(f"{source}: no column {column!r} (choose one with --path-column)")
        return [row[column].strip() for row in rows if (row[column] or "").strip()]
    except csv.Error as exc:
        raise TaggerError(f"{source}: not a CSV list ({exc})") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) -> (K, N); ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard takes K/N with 1 <= K <= N (e.g. 2/8), not {text!r}")
    return int(match[1]), int(match[2])


def in_shard(path: str, shard: tuple[int, int]) -> bool:
    """Whether ``path`` belongs to shard K of N: by a hash of the path as given, so a file keeps
    its shard when the list is reordered or grows, and the N shards partition any list."""
    k, n = shard
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n == k - 1
