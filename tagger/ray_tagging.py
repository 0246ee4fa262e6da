"""Tagging on a Ray cluster with Ray Data (``tagger file --ray ADDRESS``; the ``tagger[ray]`` extra).

The pipeline: the input paths -> decode and resample in CPU tasks (one file each, anywhere in the
cluster) -> the model in a pool of actors (``--ray-actors``; one GPU each when the cluster has GPUs)
-> results streamed back, in the input order, to the process that started the run, which writes
them through the same sinks as a single-process run (Parquet, JSONL, ...) and so resumes the same way.

Every node needs tagger installed and the model reachable by the same name or path (an official
name downloads into each node's cache; a file path must exist on every node, e.g. shared storage).
Audio paths, likewise, must be readable from every node.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .audio import AudioInfo, OpenedAudio
from .errors import TaggerError
from .events import EventOptions
from .files import Reporter, Target
from .prefetch import decode_whole
from .tagging import FileResult, WindowResult, WindowSettings, tag_opened


# Memory each decoding task reserves (a 10-minute file decoded whole at 32 kHz, with the decoder's
# buffers). Being a different request from the model actors', it also keeps Ray from fusing the
# decoding into the actors: files decode in parallel tasks while the actors run the model.
DECODE_MEMORY = 512 * 2**20
CONNECT_TIMEOUT = 10.0  # seconds


def require_ray() -> None:
    try:
        importlib.import_module("ray.data")
    except ImportError:
        raise TaggerError("--ray needs Ray Data: pip install 'tagger[ray]'") from None


@dataclass(frozen=True)
class ModelSpec:
    """How each actor opens the model: the arguments of :func:`tagger.backends.load_backend`."""

    model: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    runtime: str = "auto"
    threads: int | None = None
    num_heads: int | None = None
    rollup: bool = False

    def open(self):
        from .backends import load_backend

        backend = load_backend(self.model, self.device, self.precision, self.threads, self.num_heads, False,
                               self.runtime)
        if self.rollup:
            from .ontology import RollupBackend

            backend = RollupBackend(backend)
        return backend


def _decode(row: dict, rate: int) -> dict:
    """Ray task: one file decoded whole, as float32 bytes, or its error."""
    out = {"path": row["path"], "error": row["problem"], "audio": b"", "sample_rate": 0, "channels": 0,
           "frames": -1, "format": "", "warnings": "[]"}
    if row["problem"]:
        return out
    outcome = decode_whole(row["path"], None, rate, max_seconds=None)
    if isinstance(outcome, str):
        return {**out, "error": outcome}
    info, audio, warnings = outcome
    return {**out, "audio": audio.astype("<f4").tobytes(), "sample_rate": info.sample_rate,
            "channels": info.channels, "frames": -1 if info.frames is None else info.frames,
            "format": info.format, "warnings": json.dumps(warnings)}


class _Tagger:
    """Ray actor: one model, tagging decoded files one after another."""

    def __init__(self, spec: ModelSpec, settings: WindowSettings, batch_size: int | None, pooling: str,
                 events: EventOptions | None) -> None:
        self.backend = spec.open()
        self.settings, self.batch_size, self.pooling, self.events = settings, batch_size, pooling, events

    def __call__(self, row: dict) -> dict:
        out = {"path": row["path"], "error": row["error"], "sample_rate": row["sample_rate"],
               "channels": row["channels"], "frames": row["frames"], "format": row["format"],
               "warnings": row["warnings"], "duration": 0.0, "starts": b"", "ends": b"", "probabilities": b"",
               "clip": b"", "events": ""}
        if row["error"]:
            return out
        info = AudioInfo(row["path"], int(row["sample_rate"]), int(row["channels"]),
                         None if row["frames"] < 0 else int(row["frames"]), row["format"])
        audio = np.frombuffer(row["audio"], dtype="<f4")
        try:
            result = tag_opened(row["path"], OpenedAudio(info, [audio], json.loads(row["warnings"])), self.backend,
                                self.settings, self.batch_size, self.pooling, events=self.events)
        except TaggerError as exc:
            return {**out, "error": str(exc)}
        windows = result.windows
        return {**out, "duration": result.duration,
                "starts": np.array([w.start for w in windows], "<f8").tobytes(),
                "ends": np.array([w.end for w in windows], "<f8").tobytes(),
                "probabilities": np.stack([w.probabilities for w in windows]).astype("<f4").tobytes(),
                "clip": result.clip.astype("<f4").tobytes(),
                "events": "" if result.events is None else json.dumps(result.events)}


def connect(address: str) -> None:
    """``local`` starts Ray on this machine; ``auto`` joins the cluster this machine is part of
    (``ray start``); ``ray://HOST:PORT`` is a Ray Client address."""
    import logging

    import ray

    if ray.is_initialized():
        return
    _check_reachable(address)
    # Ray's C++ core logs a spurious error for every Ray Data actor pool (ray-project/ray#53727);
    # its session logs keep the rest. Set RAY_BACKEND_LOG_LEVEL to see everything.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with _stderr_discarded():  # Ray's start-up chatter; its failures come back as exceptions
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise TaggerError(f"--ray {address}: cannot connect ({' '.join(str(exc).split())})") from None


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address in ("local", "auto") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise TaggerError(f"--ray {address}: cannot connect ({exc.strerror or exc})") from None


@contextmanager
def _stderr_discarded() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tag_files_on_ray(targets: Iterable[Target], spec: ModelSpec, rate: int, settings: WindowSettings,
                     batch_size: int | None, pooling: str, reporter: Reporter, events: EventOptions | None = None,
                     actors: int = 1) -> int:
    """:func:`tagger.files.tag_files` on the connected Ray cluster: every target tagged there and
    reported here, in order; returns how many failed."""
    import logging

    import ray
    import ray.data

    targets = list(targets)
    if not targets:
        return 0
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress lines; errors still show
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    resources = ray.cluster_resources()
    gpus = 1 if resources.get("GPU", 0) >= actors and spec.device != "cpu" else 0
    # An actor reserves the CPU threads it runs (--threads; 1 by default), leaving one for decoding.
    cpus = 1 if gpus else min(spec.threads or 1, max(1, int(resources.get("CPU", 1)) - 1))

    class Tagger(_Tagger):  # the arguments travel with the class, not through the object store
        def __init__(self) -> None:
            super().__init__(spec, settings, batch_size, pooling, events)

    dataset = (ray.data.from_items([{"path": t.path, "problem": t.problem or ""} for t in targets])
               .map(_decode, fn_kwargs={"rate": rate}, memory=DECODE_MEMORY)
               .map(Tagger, compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus, num_cpus=cpus))
    failures = 0
    for target, row in zip(targets, dataset.iter_rows()):  # in order: preserve_order
        reporter.starting(target)
        if row["error"]:
            failures += 1
            reporter.failed(row["path"], row["error"])
        else:
            reporter.finished(_result(row))
    return failures


def _result(row: dict) -> FileResult:
    clip = np.frombuffer(row["clip"], dtype="<f4").copy()
    probabilities = np.frombuffer(row["probabilities"], dtype="<f4").reshape(-1, len(clip))
    windows = [WindowResult(float(s), float(e), p.copy()) for s, e, p in
               zip(np.frombuffer(row["starts"], "<f8"), np.frombuffer(row["ends"], "<f8"), probabilities)]
    info = AudioInfo(row["path"], int(row["sample_rate"]), int(row["channels"]),
                     None if row["frames"] < 0 else int(row["frames"]), row["format"])
    return FileResult(path=row["path"], info=info, duration=float(row["duration"]), windows=windows, clip=clip,
                      warnings=json.loads(row["warnings"]),
                      events=json.loads(row["events"]) if row["events"] else None)
