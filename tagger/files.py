"""Tag many files into one output: expand the paths, probe each file once, tag it, and report each
result, failure and warning through a :class:`Reporter` (the command line's prints and progress
bar; a script's own callbacks). Torch-free: the backend does the model work."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .audio import AUDIO_SUFFIXES, AudioInfo, probe
from .backends import Backend
from .errors import TaggerError
from .events import EventOptions
from .tagging import FileResult, WindowSettings, tag_file


@dataclass(frozen=True)
class Target:
    """A file to tag, with its header, or the reason it cannot be tagged (known before decoding)."""

    path: str
    info: AudioInfo | None = None
    problem: str | None = None

    @property
    def seconds(self) -> float:
        """Length by the header; 0 when unknown or unreadable."""
        return (self.info.duration or 0.0) if self.info else 0.0


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


def probe_targets(paths: Iterable[Path]) -> list[Target]:
    """Every file to tag, its header read once (an unreadable file carries the decoder's message)."""
    targets = []
    for path, problem in expand_paths(paths):
        if problem:
            targets.append(Target(path, problem=problem))
            continue
        try:
            targets.append(Target(path, info=probe(path)))
        except TaggerError as exc:
            targets.append(Target(path, problem=str(exc)))
    return targets


class Reporter(Protocol):
    """Where :func:`tag_files` reports, file by file."""

    def starting(self, target: Target) -> None: ...
    def advanced(self, seconds: float) -> None: ...  # decoded audio, as it goes
    def finished(self, result: FileResult) -> None: ...
    def failed(self, path: str, message: str) -> None: ...


def tag_files(targets: Iterable[Target], backend: Backend, settings: WindowSettings, batch_size: int | None,
              pooling: str, reporter: Reporter, events: EventOptions | None = None) -> int:
    """Tag every target in order (with ``events``, also its events), reporting each; returns how
    many failed (one bad file never stops the others)."""
    rate = backend.sample_rate
    failures = 0
    for target in targets:
        reporter.starting(target)
        try:
            if target.problem:
                raise TaggerError(target.problem)
            result = tag_file(target.path, backend, settings, batch_size, pooling,
                              on_samples=lambda n: reporter.advanced(n / rate), info=target.info, events=events)
        except TaggerError as exc:
            failures += 1
            reporter.failed(target.path, str(exc))
            continue
        reporter.finished(result)
    return failures
