"""Tag many files into one output: expand the paths, probe each file once, tag it, and report each
result, failure and warning through a :class:`Reporter` (the command line's prints and progress
bar; a script's own callbacks). Torch-free: the backend does the model work."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from .audio import AudioInfo, OpenedAudio, open_audio, probe
from .backends import Backend
from .errors import TaggerError
from .events import EventOptions
from .inputs import expand_paths
from .tagging import FileResult, WindowSettings, tag_opened


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


def probe_targets(paths: Iterable[Path], read_headers: bool = True) -> list[Target]:
    """Every file to tag, its header read once (an unreadable file carries the decoder's message);
    without ``read_headers`` (bulk runs) the header is read when the file's turn comes."""
    targets = []
    for path, problem in expand_paths(paths):
        if problem or not read_headers:
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


def opened_here(targets: Iterable[Target], rate: int) -> Iterator[tuple[Target, Callable[[], OpenedAudio]]]:
    """Each target with a function that opens it for streaming in this process, when its turn comes."""
    for target in targets:
        yield target, partial(_open_target, target, rate)


def _open_target(target: Target, rate: int) -> OpenedAudio:
    if target.problem:
        raise TaggerError(target.problem)
    return open_audio(target.path, rate, target.info)


def tag_files(targets: Iterable[Target], backend: Backend, settings: WindowSettings, batch_size: int | None,
              pooling: str, reporter: Reporter, events: EventOptions | None = None, jobs: int = 0) -> int:
    """Tag every target in order (with ``events``, also its events), reporting each; returns how
    many failed (one bad file never stops the others). With ``jobs``, that many worker processes
    decode the next files while the model runs (:mod:`tagger.prefetch`)."""
    rate = backend.sample_rate
    settings.resolve(backend)  # a bad window fails before decoding
    if jobs:
        from .prefetch import decoded_ahead

        opened = decoded_ahead(targets, rate, jobs)
    else:
        opened = opened_here(targets, rate)
    failures = 0
    for target, open_ in opened:
        reporter.starting(target)
        try:
            result = tag_opened(target.path, open_(), backend, settings, batch_size, pooling,
                                on_samples=lambda n: reporter.advanced(n / rate), events=events)
        except TaggerError as exc:
            failures += 1
            reporter.failed(target.path, str(exc))
            continue
        reporter.finished(result)
    return failures
