"""Benchmark ``tagger listen``: per-update latency and CPU use of the live engine.

Each configuration runs the real live path in this process: a generated 44.1 kHz stereo file is
played into the audio queue at real-time pace by ``--input``'s reader thread (the same queue a
microphone callback writes to), the inference worker downmixes, resamples, windows and tags it, and
the updates are collected as the display thread would. Reported per configuration:

- latency p50 / p95: from the arrival of a window's last sample to its update (tagged updates);
- inference p50: model time per window; RTF = inference / hop (below 1: keeps up);
- CPU: process CPU seconds / wall seconds over the run (1.0 = one core busy), all threads;
- updates, windows skipped to stay current (a model slower than the hop), and audio lost (ring-buffer
  overflow when inference cannot keep up, plus clock shortfall).

Models: ``offline-50``, the embedded default model (128/6/2, 50 classes), and random-weight models of
a preset (speed does not depend on the weights), by default ``passt-s`` (768/12/12, the official
PaSST-S geometry, 527 classes), both with a 10 s context, or any model file (``--model``). Backends:
the paths of ``tagger bench`` (``torch-fp32``, ``torch-bf16``, ``onnx-fp32``, ``onnx-int8``), opened
as ``tagger listen`` opens them (ONNX graphs from the tagger cache, made on first use). Run from the
repository root on an otherwise idle machine::

    .venv/bin/python benchmarks/bench_listen.py                           # both models, all backends
    .venv/bin/python benchmarks/bench_listen.py --preset passt-s --backend torch-bf16 --seconds 20
    .venv/bin/python benchmarks/bench_listen.py --model bench-out/speed/passt-s-ref.pt --backend onnx-int8 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tagger.bench import PATHS  # noqa: E402
from tagger.capture import FileSource  # noqa: E402
from tagger.events import EventDecoder, EventOptions  # noqa: E402
from tagger.live import Finished, LiveSettings, LiveTagger, Update, Worker  # noqa: E402
from tagger.tagging import WindowSettings  # noqa: E402



def make_audio(path: Path, seconds: float) -> Path:
    if not path.exists():
        rate = 44100
        t = np.arange(int(seconds * rate)) / rate
        rng = np.random.default_rng(0)
        x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (300 + 200 * np.sin(t)) * t)
        x += 0.05 * rng.standard_normal(len(t))
        sf.write(path, np.stack([x, 0.8 * x], axis=1).astype(np.float32), rate)
    return path


def make_model(preset: str, workdir: Path) -> Path:
    if preset == "offline-50":
        from tagger.embedded import embedded_model_path

        return embedded_model_path()
    path = workdir / f"{preset}-random.pt"
    if not path.exists():
        from tagger.checkpoint import save_model
        from tagger.frontend import FrontendConfig
        from tagger.labels import audioset_labels
        from tagger.model import PRESETS, AudioTagger

        import torch

        torch.manual_seed(0)
        save_model(AudioTagger(PRESETS[preset], FrontendConfig(), audioset_labels(), name=f"{preset}-random"), path)
    return path


def make_backend(model: Path, path: str, threads: int | None):
    """One path of ``tagger bench`` (``runtime-precision``), as ``tagger listen`` opens it."""
    from tagger.backends import load_backend

    runtime, precision = path.split("-")
    return load_backend(str(model), device="cpu", precision=precision, threads=threads, runtime=runtime,
                        progress=False)


def run(backend, audio: Path, seconds: float, hop: float) -> dict:
    window, hop_samples = WindowSettings(None, hop).resolve(backend)
    labels = backend.labels
    source = FileSource(str(audio), capacity_seconds=max(10.0, 2 * window / backend.sample_rate))
    tagger = LiveTagger(backend, LiveSettings(window, hop_samples), EventDecoder(labels, EventOptions(), hop),
                        source.rate)
    updates: queue.Queue = queue.Queue()
    worker = Worker(source.queue, tagger, updates, queue.Queue())  # events are not measured
    cpu0, wall0 = time.process_time(), time.perf_counter()
    source.start()
    worker.start()
    collected: list[Update] = []
    while time.perf_counter() - wall0 < seconds:
        try:
            item = updates.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, Finished):
            break
        if isinstance(item, Update):
            collected.append(item)
    source.stop()
    worker.stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    full = [u for u in collected if not u.warmup] or collected
    latency = np.array([u.latency for u in full]) * 1000
    inference = np.array([u.inference for u in full]) * 1000
    return {"updates": len(collected), "skipped": tagger.skipped, "full_windows": len([u for u in collected if not u.warmup]),
            "latency_p50_ms": float(np.percentile(latency, 50)), "latency_p95_ms": float(np.percentile(latency, 95)),
            "inference_p50_ms": float(np.percentile(inference, 50)),
            "rtf": float(np.percentile(inference, 50)) / 1000 / hop, "cpu_cores": cpu / wall,
            "lost_seconds": source.queue.lost, "window": window / backend.sample_rate, "hop": hop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="+", default=["offline-50", "passt-s"],
                        help="offline-50 (the embedded model) or a preset of tagger.model.PRESETS")
    parser.add_argument("--backend", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--model", type=Path, default=None,
                        help="a model file instead of --preset (e.g. the reference-layout PaSST-S of bench_speed.py)")
    parser.add_argument("--seconds", type=float, default=30.0, help="listening time per configuration")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench-out")
    args = parser.parse_args()
    args.workdir.mkdir(exist_ok=True)
    audio = make_audio(args.workdir / "listen-input.wav", args.seconds + 15)
    results = []
    print(f"{'model':<12} {'backend':<11} {'window':>6} {'updates':>7} {'skipped':>7} {'lat p50':>8} {'lat p95':>8} "
          f"{'infer':>7} {'RTF':>5} {'CPU':>5} {'lost s':>6}")
    models = [(args.model.stem, args.model)] if args.model else [(p, make_model(p, args.workdir)) for p in args.preset]
    for preset, model in models:
        for name in args.backend:
            try:
                backend = make_backend(model, name, args.threads)
            except Exception as exc:  # noqa: BLE001 - report and go on with the other backends
                print(f"{preset:<12} {name:<11} skipped: {exc}")
                continue
            r = run(backend, audio, args.seconds, args.hop)
            results.append({"preset": preset, "backend": name, **r})
            print(f"{preset:<12} {name:<11} {r['window']:>5.2f}s {r['updates']:>7} {r['skipped']:>7} {r['latency_p50_ms']:>6.0f}ms "
                  f"{r['latency_p95_ms']:>6.0f}ms {r['inference_p50_ms']:>5.0f}ms {r['rtf']:>5.2f} "
                  f"{r['cpu_cores']:>5.2f} {r['lost_seconds']:>6.1f}", flush=True)
    (args.workdir / "listen-results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
