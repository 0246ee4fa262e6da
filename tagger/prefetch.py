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


def decode_whole(path: str, info: AudioInfo | None, rate: int
                 ) -> tuple[AudioInfo, np.ndarray | None, list[str]] | str:
    """In a worker: (header, mono audio at ``rate`` or None for a long file, warnings), or the
    error message."""
    try:
        info = info or probe(path)
        if info.duration is None or info.duration > PREFETCH_MAX_SECONDS:
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
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker)
    pending: deque[tuple[object, Future | None]] = deque()
    remaining = iter(targets)

    def submit() -> None:
        target = next(remaining, None)
        if target is not None:
            pending.append((target, None if target.problem else pool.submit(decode_whole, target.path,
                                                                          target.info, rate)))
    try:
        for _ in range(2 * jobs):
            submit()
        while pending:
            target, future = pending.popleft()
            try:
                outcome = future.result() if future is not None else target.problem
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker)
                outcome = _alone(target, rate, context)
                pending = deque((t, None if t.problem else pool.submit(decode_whole, t.path, t.info, rate))
                                for t, _ in pending)
            submit()
            yield target, (lambda outcome=outcome, target=target: _opened(target, outcome, rate))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _alone(target, rate: int, context) -> object:
    """Decode one file again in a fresh process, to tell whether it is the file that kills workers."""
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker) as single:
        try:
            return single.submit(decode_whole, target.path, target.info, rate).result()
        except BrokenProcessPool:
            return f"{target.path}: cannot decode audio (the decoding process died on this file)"


def _opened(target, outcome: object, rate: int) -> OpenedAudio:
    if isinstance(outcome, str):
        raise TaggerError(outcome)
    info, audio, warnings = outcome
    if audio is None:  # long: stream it here
        return open_audio(target.path, rate, info)
    return OpenedAudio(info, [audio], warnings)
