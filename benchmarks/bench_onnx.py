"""Benchmark the inference backends: time per window and cold start, PyTorch vs ONNX Runtime.

Each backend runs in its own child process, as ``tagger file`` would run it (one runtime per
process). For each model preset (random weights: speed does not depend on them):

* **cold start**: the child's time from just before the parent starts it to its first
  probabilities (interpreter, imports, model load, one window of the first ``--seconds`` length):
  what ``tagger file`` pays before its first result. Children start one after the other.
* **per window**: the parent then asks the children in turn, round after round, to tag one window
  (batch 1) and report the seconds ``predict`` took; ``--warmup`` untimed rounds, ``--runs`` timed
  rounds, median per backend; in each turn the child runs two windows back to back and times the
  second (steady state, as in a long file). Interleaving the backends makes a change in machine load
  hit all of them alike; a 0.5 s pause before each turn lets the previous child's spin-waiting
  threads go idle.
* **agreement**: max and mean absolute probability difference from PyTorch fp32 on the same window
  (tones, a chirp and noise bursts).

Backends: ``torch-fp32``, ``torch-bf16`` (bfloat16 weights, :class:`tagger.torch_backend.TorchBackend`),
``ort-fp32`` and ``ort-int8`` (exports written with :mod:`tagger_export`, run by
:class:`tagger.onnx_backend.OnnxBackend` on the CPU provider). The same ONNX file serves every window
length, so the PaSST-S run also shows the dynamic length of the exported graph.

    .venv/bin/python benchmarks/bench_onnx.py                                    # passt-s + passt-tiny, 10 s and 3 s
    .venv/bin/python benchmarks/bench_onnx.py --presets passt-tiny --runs 3      # quick
    .venv/bin/python benchmarks/bench_onnx.py --backends torch-fp32 ort-fp32 ort-int8 --threads 2

Models and exports are cached in ``--workdir`` (default ``bench-out/onnx``). Run it on an otherwise
idle machine; the load average before and after is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BACKENDS = ("torch-fp32", "torch-bf16", "ort-fp32", "ort-int8")
SAMPLE_RATE = 32000
PAUSE_S = 0.5


def bench_audio(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (200 + 300 * t) * t)
    x += 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.3 * t) > 0.5)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)[None]


def prepare(preset: str, workdir: Path) -> dict[str, Path]:
    """Random-weight model file and its fp32 / int8 exports (made once, then reused)."""
    paths = {"pt": workdir / f"{preset}.pt", "fp32": workdir / f"{preset}.onnx",
             "int8": workdir / f"{preset}-int8.onnx"}
    if all(p.is_file() for p in paths.values()):
        return paths
    import torch

    from tagger.checkpoint import save_model
    from tagger.frontend import FrontendConfig
    from tagger.labels import default_labels
    from tagger.model import PRESETS, AudioTagger
    from tagger_export.onnx_export import export_model

    torch.manual_seed(0)
    config = PRESETS[preset]
    model = AudioTagger(config, FrontendConfig(), default_labels(config.num_classes), name=preset).eval()
    save_model(model, paths["pt"])
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        export_model(model, paths[precision], source=preset, precision=precision)
        print(f"  exported {paths[precision].name} in {time.perf_counter() - started:.1f} s", flush=True)
    return paths


def make_backend(backend: str, model: Path, threads: int):
    from tagger.backends import load_backend

    precision = backend.split("-")[1] if backend.startswith("torch") else "fp32"
    return load_backend(str(model), device="cpu", precision=precision, threads=threads)


def model_for(backend: str, paths: dict[str, Path]) -> Path:
    return paths["pt"] if backend.startswith("torch") else paths[backend.split("-")[1]]


def child(backend: str, model: str, seconds: float, threads: int, spawned: float) -> None:
    """A fresh interpreter serving one backend: prints its cold start, then for every window length
    read from stdin runs ``predict`` twice back to back (the first call takes the wake-up of idle
    threads, as only the first window of a file would) and prints the seconds of the second call and
    the probabilities (JSON lines).

    ``spawned`` is the parent's ``time.time()`` just before it started this process.
    """
    runner = make_backend(backend, Path(model), threads)
    runner.predict(bench_audio(seconds))
    print(json.dumps({"cold_s": time.time() - spawned}), flush=True)
    windows: dict[float, np.ndarray] = {}
    for line in sys.stdin:
        x = windows.setdefault(float(line), bench_audio(float(line)))
        runner.predict(x)
        tick = time.perf_counter()
        probabilities = runner.predict(x)
        print(json.dumps({"s": time.perf_counter() - tick, "p": probabilities[0].tolist()}), flush=True)


class Child:
    """The parent's handle on one backend's child process."""

    def __init__(self, backend: str, model: Path, seconds: float, threads: int) -> None:
        command = [sys.executable, __file__, "--child", backend, str(model), str(seconds), str(threads),
                   repr(time.time())]
        self.name = backend
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        self.cold_s = self._read()["cold_s"]

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the child process failed (see its stderr above)")
        return json.loads(line)

    def predict(self, seconds: float) -> tuple[float, np.ndarray]:
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        reply = self._read()
        return reply["s"], np.array(reply["p"])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def per_window(children: list[Child], seconds: float, runs: int, warmup: int) -> dict[str, tuple]:
    """Median seconds per window of each backend over interleaved rounds, and its probabilities."""
    times: dict[str, list[float]] = {child.name: [] for child in children}
    outputs = {}
    for round_number in range(warmup + runs):
        for child in children:
            time.sleep(PAUSE_S)
            elapsed, outputs[child.name] = child.predict(seconds)
            if round_number >= warmup:
                times[child.name].append(elapsed)
    return {name: (float(np.median(times[name])), outputs[name]) for name in times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["passt-s", "passt-tiny"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10.0, 3.0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before the timed ones")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/onnx"))
    args = parser.parse_args()
    args.backends = [b for b in BACKENDS if b in args.backends]  # torch-fp32, the reference, first
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; threads {args.threads}", flush=True)
    rows = []
    for preset in args.presets:
        print(f"{preset}: preparing models", flush=True)
        paths = prepare(preset, args.workdir)
        children = []
        for backend in args.backends:
            children.append(Child(backend, model_for(backend, paths), args.seconds[0], args.threads))
            print(f"  {backend:<10} cold start {children[-1].cold_s:6.2f} s "
                  f"({args.seconds[0]:g} s window)", flush=True)
        for seconds in args.seconds:
            timed = per_window(children, seconds, args.runs, args.warmup)
            reference = timed["torch-fp32"][1] if "torch-fp32" in timed else None
            for child in children:
                window_s, output = timed[child.name]
                diff = None if reference is None else np.abs(output - reference)
                cold = child.cold_s if seconds == args.seconds[0] else None
                rows.append((preset, seconds, child.name, window_s, cold, diff))
                agreement = "" if diff is None else f"  max|dp| {diff.max():.1e} mean {diff.mean():.1e}"
                print(f"  {seconds:g} s {child.name:<10} window {window_s * 1000:8.1f} ms{agreement}",
                      flush=True)
        for child in children:
            child.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\n| model | window | backend | ms per window (median of {args.runs}) | cold start s | "
          f"max abs dp vs torch-fp32 | mean abs dp |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for preset, seconds, backend, window_s, cold_s, diff in rows:
        agreement = "| - | -" if diff is None else f"| {diff.max():.1e} | {diff.mean():.1e}"
        cold = "" if cold_s is None else f"{cold_s:.2f}"
        print(f"| {preset} | {seconds:g} s | {backend} | {window_s * 1000:.1f} | {cold} {agreement} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        backend, model, seconds, threads, spawned = sys.argv[2:7]
        child(backend, model, float(seconds), int(threads), float(spawned))
    else:
        main()
