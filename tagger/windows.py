"""Sliding windows over a stream of audio blocks: one engine for files and live audio.

Windows start every ``hop`` samples and are ``window`` samples long. Memory is bounded by one window
plus one block, whatever the stream's length. At the end of a stream :meth:`WindowEngine.flush`
emits what a file needs: the whole clip when it is shorter than one window (no padding), or one
last full window aligned to the end when the regular windows stopped short of it. With
``warmup=True`` (live audio) the engine also emits growing partial windows every hop until the first
full window is available, so tags appear before the buffer fills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A window of mono audio; ``start`` and ``end`` are sample indices in the stream."""

    start: int
    samples: np.ndarray
    warmup: bool = False  # a growing partial window before the first full one (warmup=True engines)

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


class WindowEngine:
    def __init__(self, window: int, hop: int, warmup: bool = False) -> None:
        if window <= 0 or hop <= 0:
            raise ValueError("window and hop must be positive")
        self.window = window
        self.hop = hop
        self.warmup = warmup
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream index of self._buffer[0]
        self._next_start = 0  # stream index where the next full window starts
        self._next_warmup_end = hop
        self._emitted_end = 0  # end of the last emitted window

    @property
    def received(self) -> int:
        """Samples pushed so far."""
        return self._buffer_start + len(self._buffer)

    def push(self, block: np.ndarray) -> list[Window]:
        """Add samples; return the windows that became complete."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float32)])
        windows = self._warmup_windows() if self.warmup else []
        while self._next_start + self.window <= self.received:
            windows.append(self._take(self._next_start, self.window))
            self._next_start += self.hop
        self._drop_consumed()
        return windows

    def flush(self) -> list[Window]:
        """End of stream: the short clip, or a last window aligned to the end, if not yet covered."""
        total = self.received
        if total == 0 or self._emitted_end >= total:
            return []
        if total <= self.window:
            return [self._take(0, total)]
        return [self._take(total - self.window, self.window)]

    def _warmup_windows(self) -> list[Window]:
        windows = []
        while self._next_warmup_end < self.window and self._next_warmup_end <= self.received:
            windows.append(self._take(0, self._next_warmup_end, warmup=True))
            self._next_warmup_end += self.hop
        return windows

    def _take(self, start: int, length: int, warmup: bool = False) -> Window:
        offset = start - self._buffer_start
        self._emitted_end = max(self._emitted_end, start + length)
        return Window(start, self._buffer[offset:offset + length].copy(), warmup)

    def _drop_consumed(self) -> None:
        """Keep only what a future window (regular, warm-up or the final one) can still need."""
        keep_from = min(self._next_start, max(0, self.received - self.window))
        if self.warmup and self._next_warmup_end < self.window:
            keep_from = 0
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start = keep_from
