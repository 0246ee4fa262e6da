"""Decoding ahead in worker processes (``tagger file --jobs N``): N processes read, downmix and
resample the next files while the model tags the current one, in the input order.

A worker returns a file decoded whole (mono float32 at the model's rate); files longer than
PREFETCH_MAX_SECONDS by their header are streamed in the tagging process instead, so memory stays
bounded by about ``2 x jobs`` decoded files. Workers die with the tagging process (Linux), so a
killed run leaves no decoders behind; a worker that crashes on a file (a decoder bug, the kernel's
OOM killer) fails that file only.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import numpy as np

from .audio import AudioInfo, OpenedAudio, open_audio, probe
from .errors import TaggerError

# Longest file (by its header) that a worker decodes whole: 10 minutes is 77 MB at 32 kHz.
PREFETCH_MAX_SECONDS = 600.0
_PR_SET_PDEATHSIG = 1


def _start_worker() -> None:
    """In each worker: exit when the parent dies; leave Ctrl-C to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers end when the pool's pipes close
        pass


def decode_whole(path: str, info: AudioInfo | None, rate: int, max_seconds: float | None = PREFETCH_MAX_SECONDS
                 ) -> tuple[AudioInfo, np.ndarray | None, list[str]] | str:
    """In a worker: (header, mono audio at ``rate``, warnings), the audio None for a file longer than
    ``max_seconds`` by its header (or of unknown length; None: decode any file), or the error message."""
    try:
        info = info or probe(path)
        if max_seconds is not None and (info.duration is None or info.duration > max_seconds):
            return info, None, []
        opened = open_audio(path, rate, info)
        blocks = list(opened.blocks)
        audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        return info, audio, opened.warnings
    except TaggerError as exc:
        return str(exc)


def decoded_ahead(targets: Iterable, rate: int, jobs: int) -> Iterator[tuple[object, Callable[[], OpenedAudio]]]:
    """Like :func:`tagger.files.opened_here`, with ``jobs`` processes decoding ahead."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs model threads
    pools = [_pool(jobs, context)]
    pending: deque[tuple[object, Future | None]] = deque()
    remaining = iter(targets)

    def submit(target) -> Future | None:
        if target.problem:
            return None
        try:
            return pools[0].submit(decode_whole, target.path, target.info, rate)
        except BrokenProcessPool:  # a worker died since the last result: collected below
            broken: Future = Future()
            broken.set_exception(BrokenProcessPool())
            return broken

    try:
        while True:
            while len(pending) < 2 * jobs and (target := next(remaining, None)) is not None:
                pending.append((target, submit(target)))
            if not pending:
                return
            target, future = pending.popleft()
            try:
                outcome = future.result() if future is not None else target.problem
            except BrokenProcessPool:  # a worker died: which file killed it is not known yet
                pools[0].shutdown(wait=True, cancel_futures=True)
                pools[0] = _pool(jobs, context)
                pending = deque((t, f if _decoded(f) else submit(t)) for t, f in pending)
                outcome = _alone(target, rate, context)
            yield target, partial(_opened, target, outcome, rate)
    finally:
        pools[0].shutdown(wait=True, cancel_futures=True)


def _pool(jobs: int, context) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker)


def _decoded(future: Future | None) -> bool:
    """Whether a pending file needs no new submission (no future, or one that finished well)."""
    return future is None or (future.done() and not future.cancelled() and future.exception() is None)


def _alone(target, rate: int, context) -> object:
    """Decode one file again in a fresh process, to tell whether it is the file that kills workers."""
    with _pool(1, context) as single:
        try:
            return single.submit(decode_whole, target.path, target.info, rate).result()
        except BrokenProcessPool:
            return f"{target.path}: cannot decode audio (the decoding process died on this file)"


def _opened(target, outcome: object, rate: int) -> OpenedAudio:
    """The file as the tagging path takes it (raises its decoding error when its turn comes)."""
    if isinstance(outcome, str):
        raise TaggerError(outcome)
    info, audio, warnings = outcome
    if audio is None:  # long: stream it here
        return open_audio(target.path, rate, info)
    return OpenedAudio(info, [audio], warnings)
