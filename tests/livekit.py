"""Helpers for the `tagger listen` tests: a private PulseAudio server, a tiny model, test sounds, and
running the CLI as a person would (a pipe, or a pseudo-terminal read back through pyte)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pyte
import soundfile as sf
import torch

from tagger.checkpoint import save_model
from tagger.frontend import FrontendConfig
from tagger.model import AudioTagger, PaSSTConfig

LABELS = ["low tone", "high tone", "noise", "clicks", "chirp", "silence"]
# 64-dim, 1 block, a 29-column grid: a 3.05 s context that runs in milliseconds.
TINY_CONFIG = PaSSTConfig(embed_dim=64, depth=1, num_heads=2, num_classes=len(LABELS), time_patches=29)
PULSE_RATE = 48000


def tiny_live_model(path: Path) -> Path:
    torch.manual_seed(0)
    model = AudioTagger(TINY_CONFIG, FrontendConfig(), LABELS, name="tiny-live").eval()
    save_model(model, path)
    return path


def write_tone(path: Path, seconds: float, freq: float = 1000.0, amplitude: float = 0.5,
               rate: int = PULSE_RATE, lead: float = 0.0, tail: float = 0.0, channels: int = 2) -> Path:
    """A sine tone (RMS = amplitude / sqrt 2) with optional silence before and after."""
    t = np.arange(int(seconds * rate)) / rate
    tone = amplitude * np.sin(2 * np.pi * freq * t)
    x = np.concatenate([np.zeros(int(lead * rate)), tone, np.zeros(int(tail * rate))]).astype(np.float32)
    sf.write(path, np.repeat(x[:, None], channels, axis=1), rate, subtype="FLOAT")
    return path


class PulseServer:
    """PulseAudio in user space with a null sink whose monitor is the default source.

    A null source looped into the sink keeps the sink running, so capture starts within milliseconds
    (an idle null sink delays the first callback by ~2 s). Sounds played with :meth:`play` come back
    through any capture of the default source.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtime = root / "runtime"
        self.socket = root / "native"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(root / "home"),
                    "PULSE_SERVER": f"unix:{self.socket}"}

    def start(self) -> None:
        if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
            raise RuntimeError("pulseaudio and pulseaudio-utils are needed (see .ci/run)")
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        config = self.root / "server.pa"
        # The socket comes last: a client that reconnects while the server starts finds it complete.
        config.write_text("\n".join([
            f"load-module module-null-sink sink_name=vsink rate={PULSE_RATE} channels=2",
            f"load-module module-null-source source_name=hum rate={PULSE_RATE} channels=2",
            "load-module module-loopback source=hum sink=vsink latency_msec=20",
            "set-default-sink vsink",
            "set-default-source vsink.monitor",
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
        ]) + "\n")
        subprocess.run(["pulseaudio", "-n", "-F", str(config), "--daemonize=yes", "--exit-idle-time=-1",
                        "--disallow-exit=yes", "--use-pid-file=yes", f"--log-target=file:{self.root / 'log'}"],
                       env=self.env, check=True, timeout=30, capture_output=True)
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PulseAudio did not start: {(self.root / 'log').read_text()[-2000:]}")
            time.sleep(0.1)

    @property
    def pid(self) -> int | None:
        try:
            return int((self.runtime / "pulse" / "pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL: as if it crashed) and wait until it is gone."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        (self.runtime / "pulse" / "pid").unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def play(self, path: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", str(path)], env=self.env)


def read_records(process: subprocess.Popen, until: str | None = None, timeout: float = 120) -> list[dict]:
    """JSON lines from a running ``tagger listen``: up to the first of type ``until``, else to the end."""
    records = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        records.append(json.loads(line))
        if until is not None and records[-1]["type"] == until:
            break
    return records


def of_type(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["type"] == kind]


def run_in_terminal(args: list[str], env: dict[str, str], columns: int = 120, lines: int = 40,
                    timeout: float = 120, on_output=None) -> tuple[int, pyte.Screen, str]:
    """Run ``tagger ARGS`` on a pseudo-terminal; return its exit status, the final screen and raw text.

    ``on_output(raw_text_so_far)`` is called after each read (tests use it to act at the right time).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
    process = subprocess.Popen([sys.executable, "-m", "tagger", *args], stdin=slave, stdout=slave,
                               stderr=slave, env=env, close_fds=True)
    os.close(slave)
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    raw = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                raw += data
                stream.feed(data)
                if on_output:
                    on_output(raw.decode("utf-8", "replace"), process)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, screen, raw.decode("utf-8", "replace")


def screen_text(screen: pyte.Screen) -> str:
    return "\n".join(line.rstrip() for line in screen.display)
