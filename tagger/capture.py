"""Audio input for ``tagger listen``: sound devices (PortAudio via sounddevice) or a file at real-time pace.

A source writes ``[frames, channels]`` float32 blocks into an :class:`AudioQueue` from its own thread
(the PortAudio callback, or a file reader); the tagger reads from the queue on another thread, so
capture never waits for inference. The queue also keeps the books on lost audio: PulseAudio never
reports an input overflow, so the frames received are compared with the monotonic clock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any, Protocol

import numpy as np

from .audio import probe, stream_audio
from .errors import TaggerError

BLOCK_FRAMES = 1024  # per PortAudio callback (0 would give 1-5 frame callbacks on PulseAudio)
MAX_CHANNELS = 2  # channels opened on a device; everything is downmixed to mono anyway


class AudioDeviceError(TaggerError):
    """No usable input device, or PortAudio is missing."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    channels: int
    default_rate: int
    is_default: bool


@dataclass(frozen=True)
class Chunk:
    """Audio read from the queue: ``gap`` seconds are missing right before it (0 when contiguous)."""

    frames: np.ndarray  # [n, channels] float32
    rate: int
    arrival: float  # time.monotonic() when its last frame arrived
    gap: float


class AudioQueue:
    """A bounded ring of frames between a capture thread and the tagger, with loss accounting.

    Loss is counted three ways, all in seconds: ``overflow`` (the ring was full because the reader
    fell behind: the oldest audio is dropped), ``missing`` (fewer frames arrived than the clock says
    should have, for longer than ``settle`` seconds: the driver or the server dropped them) and gaps
    between a source failing and coming back. ``flags`` counts callbacks that reported an overflow.
    """

    def __init__(self, rate: int, channels: int, capacity_seconds: float,
                 tolerance: float = 0.25, settle: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._clock = clock
        self.tolerance = tolerance
        self.settle = settle
        self.overflow = 0.0
        self.missing = 0.0
        self.gaps = 0.0
        self.invalid = 0.0  # seconds of frames that held NaN or infinity (replaced by silence)
        self.flags = 0
        self.late = 0.0  # current shortfall against the clock, seconds
        self.ended = False
        self.configure(rate, channels, capacity_seconds)

    def configure(self, rate: int, channels: int, capacity_seconds: float | None = None) -> None:
        """Start a new segment (a source opened or reopened) at this rate and channel count."""
        with self._lock:
            if capacity_seconds is not None:
                self._capacity_seconds = capacity_seconds
            self.rate = rate
            self.channels = channels
            self._ring = np.zeros((max(1, int(self._capacity_seconds * rate)), channels), np.float32)
            self._head = 0  # frames ever written in this segment
            self._tail = 0  # frames ever read in this segment
            self._t0: float | None = None  # clock time of this segment's first frame
            self._counted = 0  # frames that count against the clock
            self._late_since: float | None = None
            self._pending_gap = 0.0
            self._last_arrival = 0.0
            self.late = 0.0

    def add_gap(self, seconds: float) -> None:
        """Audio is missing before the next frames (the source was away for ``seconds``)."""
        with self._lock:
            self._pending_gap += max(0.0, seconds)
            self.gaps += max(0.0, seconds)

    def note_overflow_flag(self) -> None:
        with self._lock:
            self.flags += 1

    def write(self, frames: np.ndarray) -> None:
        """Called from the capture thread: copy frames in (never blocks on the reader). Frames that
        hold NaN or infinity become silence and count as lost audio."""
        now = self._clock()
        n = len(frames)
        finite = np.isfinite(frames).all(axis=1)
        if not finite.all():
            frames = np.where(finite[:, None], frames, np.float32(0.0))
        with self._lock:
            self.invalid += int(n - finite.sum()) / self.rate
            self._account(n, now)
            capacity = len(self._ring)
            kept = frames[-capacity:]
            position = (self._head + n - len(kept)) % capacity
            first = min(len(kept), capacity - position)
            self._ring[position:position + first] = kept[:first]
            self._ring[:len(kept) - first] = kept[first:]
            self._head += n
            excess = self._head - self._tail - capacity
            if excess > 0:  # the reader fell behind: the oldest frames are gone
                self._tail += excess
                self.overflow += excess / self.rate
                self._pending_gap += excess / self.rate
            self._last_arrival = now
            self._ready.notify_all()

    def _account(self, n: int, now: float) -> None:
        """Frames received against the clock; shortfalls that last ``settle`` s count as missing."""
        if self._t0 is None:
            self._t0 = now - n / self.rate
        self._counted += n
        behind = (now - self._t0) - self._counted / self.rate
        if behind < 0:  # the device clock runs ahead, or a burst of buffered audio: rebase
            self._t0 += behind
            behind = 0.0
        if behind <= self.tolerance:
            self._late_since = None
        elif self._late_since is None:
            self._late_since = now
        elif now - self._late_since >= self.settle:
            self.missing += behind
            self._t0 += behind
            self._late_since = None
            behind = 0.0
        self.late = behind

    def read(self, timeout: float) -> Chunk | None:
        """Everything written since the last read, or None after ``timeout`` seconds without audio."""
        with self._lock:
            if self._head == self._tail:
                self._ready.wait(timeout)
            if self._head == self._tail:
                return None
            capacity = len(self._ring)
            indices = np.arange(self._tail, self._head) % capacity
            chunk = Chunk(self._ring[indices], self.rate, self._last_arrival, self._pending_gap)
            self._tail = self._head
            self._pending_gap = 0.0
            return chunk

    def finish(self) -> None:
        """The source has no more audio (end of an input file)."""
        with self._lock:
            self.ended = True
            self._ready.notify_all()

    @property
    def lost(self) -> float:
        """Seconds of audio lost so far (overflow + missing + gaps + non-finite frames)."""
        return self.overflow + self.missing + self.gaps + self.invalid


class Source(Protocol):
    """Where live audio comes from; it writes into ``queue`` once started.

    A source that has a ``fault`` either ends the run (``recoverable`` is False: a file that stopped
    decoding) or is asked to ``reopen`` until it comes back (a device, the audio server); the time
    it was away counts as lost audio."""

    name: str
    rate: int
    channels: int
    queue: AudioQueue
    recoverable: bool

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def fault(self) -> str | None: ...
    def reopen(self) -> bool: ...


# --- PortAudio -----------------------------------------------------------------------------------


def import_sounddevice() -> ModuleType:
    """sounddevice, or a one-line error when the PortAudio library is missing."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioDeviceError(f"cannot load PortAudio ({exc}); install libportaudio2") from None
    return sounddevice


def list_input_devices(sd: ModuleType) -> list[InputDevice]:
    """Every device with input channels, as PortAudio sees it now."""
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default = sd.default.device[0]
    except sd.PortAudioError:
        return []
    return [
        InputDevice(index=i, name=d["name"], host_api=apis[d["hostapi"]]["name"],
                    channels=int(d["max_input_channels"]), default_rate=int(d["default_samplerate"]),
                    is_default=i == default)
        for i, d in enumerate(devices) if d["max_input_channels"] > 0
    ]


def find_device(devices: list[InputDevice], spec: str | None) -> InputDevice:
    """The input device named by ``spec``: an index, an exact name, or a unique part of a name."""
    if not devices:
        raise AudioDeviceError(
            "no audio input devices found (is a sound server running, and PULSE_SERVER set if it "
            "is a private one?); see `tagger devices`")
    if spec is None:
        default = [d for d in devices if d.is_default]
        if not default:
            raise AudioDeviceError("no default input device; choose one with --device (see `tagger devices`)")
        return default[0]
    if spec.strip().isdigit():
        matches = [d for d in devices if d.index == int(spec)]
        if not matches:
            raise AudioDeviceError(f"no input device with index {spec} (see `tagger devices`)")
        return matches[0]
    wanted = spec.strip().lower()
    matches = [d for d in devices if d.name.lower() == wanted] or \
              [d for d in devices if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(f"{d.index}: {d.name}" for d in (matches or devices))
    if matches:
        raise AudioDeviceError(f"input device '{spec}' is ambiguous ({names}); give an index")
    raise AudioDeviceError(f"no input device matches '{spec}' (inputs: {names})")


class MicrophoneSource:
    """A PortAudio input stream in callback mode; reopens after the device or server comes back."""

    recoverable = True

    def __init__(self, spec: str | None, capacity_seconds: float) -> None:
        self._sd = import_sounddevice()
        self._spec = spec
        self.device = find_device(list_input_devices(self._sd), spec)
        self.name = self.device.name
        self.rate = self.device.default_rate
        self.channels = min(self.device.channels, MAX_CHANNELS)
        self.queue = AudioQueue(self.rate, self.channels, capacity_seconds)
        self._stream: Any = None
        self._finished = threading.Event()
        self._stopping = False
        self._lost_at = 0.0

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.queue.note_overflow_flag()
        self.queue.write(indata)

    def _open(self) -> None:
        self._finished.clear()
        stream = self._sd.InputStream(
            device=self.device.index, samplerate=self.rate, channels=self.channels, dtype="float32",
            blocksize=BLOCK_FRAMES, callback=self._callback, finished_callback=self._finished.set)
        try:
            stream.start()
        except self._sd.PortAudioError:
            stream.close(ignore_errors=True)
            raise
        self._stream = stream

    def start(self) -> None:
        try:
            self._open()
        except self._sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot open input device '{self.name}': {_portaudio_text(exc)}") from None

    def fault(self) -> str | None:
        """Why the stream stopped on its own (device unplugged, server gone), else None."""
        if self._stopping or self._stream is None:
            return None
        if self._finished.is_set() or not self._stream.active:
            return f"input '{self.name}' stopped (device or audio server gone)"
        return None

    def reopen(self) -> bool:
        """Re-initialise PortAudio, find the device again by name and restart; False if not back yet.
        The first call closes the stream that failed; the gap is counted from then."""
        self._lost_at = self._lost_at or time.monotonic()
        if self._stream is not None:
            self._close_stream()
        sd = self._sd
        try:
            sd._terminate()
            sd._initialize()
            devices = list_input_devices(sd)
            self.device = next((d for d in devices if d.name == self.name), None) or find_device(devices, self._spec)
            self.rate = self.device.default_rate
            self.channels = min(self.device.channels, MAX_CHANNELS)
            self.queue.configure(self.rate, self.channels)
            self.queue.add_gap(time.monotonic() - self._lost_at)
            self._open()
        except (sd.PortAudioError, AudioDeviceError):
            return False
        self._lost_at = 0.0
        return True

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except self._sd.PortAudioError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._close_stream()


def _portaudio_text(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class FileSource:
    """An audio file played into the queue at real-time pace (``--input``), from its own thread.
    A decoding error ends the run (the file will not decode better the next time)."""

    recoverable = False

    def __init__(self, path: str, capacity_seconds: float) -> None:
        info = probe(path)
        self.path = path
        self.name = os.path.basename(path)
        self.rate = info.sample_rate
        self.channels = info.channels
        self.queue = AudioQueue(self.rate, 1, capacity_seconds)
        self._blocks = stream_audio(path, target_rate=self.rate, block_seconds=BLOCK_FRAMES / self.rate)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="tagger-input", daemon=True)
        self.error: str | None = None

    def _play(self) -> None:
        start = time.monotonic()
        played = 0
        try:
            for block in self._blocks:
                played += len(block)
                delay = start + played / self.rate - time.monotonic()
                if self._stop.wait(max(0.0, delay)):
                    return
                self.queue.write(block[:, None])
        except TaggerError as exc:
            self.error = str(exc)
        finally:
            self.queue.finish()

    def start(self) -> None:
        self._thread.start()

    def fault(self) -> str | None:
        return self.error

    def reopen(self) -> bool:
        return False  # never asked: the source is not recoverable

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def write_device_table(devices: list[InputDevice], stream: IO[str]) -> None:
    """A plain aligned table of input devices (the default marked with *)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Audio input devices (use the index or a part of the name with --device)",
                  title_justify="left", show_edge=False)
    for column, justify in (("", "left"), ("index", "right"), ("name", "left"), ("host API", "left"),
                            ("channels", "right"), ("default rate", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for d in devices:
        table.add_row("*" if d.is_default else "", str(d.index), d.name, d.host_api, str(d.channels),
                      f"{d.default_rate} Hz")
    Console(file=stream, highlight=False).print(table)
