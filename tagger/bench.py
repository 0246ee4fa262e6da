"""``tagger bench``: how fast each runtime and precision runs a model on this machine, and how far
each one's probabilities are from float32 PyTorch.

Paths: ``torch-fp32`` and ``torch-bf16`` (PyTorch), ``onnx-fp32`` (the cached graph that
``--backend auto`` runs) and ``onnx-int8`` (its int8 variant, cached beside it). The graphs are made
first, in this process; then each path runs in a child process of its own, one after the other, as
``tagger file`` would run it (one runtime per process), so its imports and its peak memory are its
own. A child tags windows of the model's context cut from the example clip (real audio), one window
per call: one untimed call, then ``windows`` timed ones.

Reported per path: seconds per window (median), the real-time factor at hop = window (seconds per
window / window length), the child's peak resident memory, and the largest probability difference
from ``torch-fp32`` over the same windows. Recommended: the fastest path within
:data:`EXACT_LIMIT` of float32 (the default path's promise) and the fastest within
:data:`FAST_LIMIT`.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .options import EXACT_LIMIT, FAST_LIMIT

PATHS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
REFERENCE_PATH = "torch-fp32"


@dataclass(frozen=True)
class PathResult:
    path: str
    seconds_per_window: float
    real_time_factor: float
    peak_rss_mib: float
    max_diff: float | None  # from torch-fp32; None when that path did not run
    error: str | None = None


def bench_windows(sample_rate: int, window: int, count: int) -> np.ndarray:
    """``count`` windows of ``window`` samples from the example clip (looped), ``[count, window]``."""
    from .audio import load_audio
    from .embedded import example_clip

    clip = load_audio(example_clip(), sample_rate)
    starts = np.linspace(0, len(clip), count, endpoint=False).astype(int)
    looped = np.concatenate([clip, clip])
    while len(looped) < len(clip) + window:
        looped = np.concatenate([looped, clip])
    return np.stack([looped[s:s + window] for s in starts]).astype(np.float32)


def open_path(path: str, model: str | None, device: str, threads: int | None):
    """The backend of one path (its graph already cached by :func:`bench`)."""
    from .backends import load_backend

    runtime, precision = path.split("-")
    return load_backend(model, device=device, precision=precision, threads=threads, progress=False,
                        runtime=runtime)


def graph_of(model: str | None, precision: str, device: str, threads: int | None) -> Path:
    from .loading import model_file
    from .onnx_cache import cached_graph

    file, name, stride = model_file(model, show_progress=False)
    return cached_graph(file, name, stride, device=device, threads=threads, precision=precision)


def run_child(path: str, model: str | None, device: str, threads: int | None, windows: int) -> dict:
    """In the child: open the path, time ``windows`` calls after one untimed call, report."""
    backend = open_path(path, model, device, threads)
    window = int(backend.context_seconds * backend.sample_rate)
    batch = bench_windows(backend.sample_rate, window, windows)
    backend.predict(batch[:1])
    seconds, probabilities = [], []
    for x in batch:
        started = time.perf_counter()
        probabilities.append(backend.predict(x[None])[0])
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds, "probabilities": np.stack(probabilities).tolist(),
            "window_seconds": window / backend.sample_rate,
            "peak_rss": peak_rss()}


def peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM (Linux), which starts afresh at exec,
    unlike ``ru_maxrss``, which a child inherits from the process that forked it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(path: str, model: str | None, device: str, threads: int | None, windows: int) -> dict:
    """One path in a fresh interpreter; its report, or ``{"error": ...}``."""
    command = [sys.executable, "-m", "tagger.bench", path, model or "", device, str(threads or 0), str(windows)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(model: str | None = None, paths: tuple[str, ...] = PATHS, device: str = "cpu",
          threads: int | None = None, windows: int = 5,
          report=lambda message: None) -> list[PathResult]:
    """Measure every path (see the module's docstring)."""
    for precision in ("fp32", "int8"):
        if f"onnx-{precision}" in paths:
            report(f"making the {precision} ONNX graph (cached)")
            graph_of(model, precision, device, threads)
    raw = {}
    for path in paths:
        report(f"measuring {path}")
        raw[path] = measure(path, model, device, threads, windows)
    reference = raw.get(REFERENCE_PATH)
    reference_p = np.array(reference["probabilities"]) if reference and "error" not in reference else None
    results = []
    for path, r in raw.items():
        if "error" in r:
            results.append(PathResult(path, float("nan"), float("nan"), float("nan"), None, r["error"]))
            continue
        per_window = statistics.median(r["seconds"])
        diff = None if reference_p is None else float(np.abs(np.array(r["probabilities"]) - reference_p).max())
        results.append(PathResult(path, per_window, per_window / r["window_seconds"], r["peak_rss"] / 2 ** 20, diff))
    return results


def recommend(results: list[PathResult]) -> dict[str, str | None]:
    """The fastest path within each limit of float32 PyTorch."""
    def fastest(limit: float) -> str | None:
        ok = [r for r in results if r.error is None and r.max_diff is not None and r.max_diff <= limit]
        return min(ok, key=lambda r: r.seconds_per_window).path if ok else None

    return {"exact": fastest(EXACT_LIMIT), "fast": fastest(FAST_LIMIT)}


def as_json(results: list[PathResult], model: str, cpu: str) -> str:
    def clean(value):
        return None if isinstance(value, float) and not np.isfinite(value) else value

    rows = [{k: clean(v) for k, v in asdict(r).items()} for r in results]
    return json.dumps({"model": model, "cpu": cpu, "limits": {"exact": EXACT_LIMIT, "fast": FAST_LIMIT},
                       "paths": rows, "recommended": recommend(results)}, allow_nan=False)


def write_table(results: list[PathResult], chosen: dict[str, str | None], model: str, cpu: str, out) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} on {cpu}", title_justify="left")
    for column in ("path", "s / window", "real-time factor", "peak MiB", "max diff vs torch-fp32"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for r in results:
        if r.error is not None:
            table.add_row(r.path, "-", "-", "-", f"failed: {r.error}")
            continue
        diff = "-" if r.max_diff is None else f"{r.max_diff:.1e}"
        table.add_row(r.path, f"{r.seconds_per_window:.3f}", f"{r.real_time_factor:.3f}", f"{r.peak_rss_mib:.0f}", diff)
    console = Console(file=out, highlight=False)
    console.print(table)
    console.print(f"recommended: {chosen['exact'] or 'none'} (within {EXACT_LIMIT:g} of fp32), "
                  f"{chosen['fast'] or 'none'} (fastest within {FAST_LIMIT:g})", markup=False)


if __name__ == "__main__":  # a child of :func:`measure`
    path_, model_, device_, threads_, windows_ = sys.argv[1:6]
    from .errors import TaggerError

    try:
        print(json.dumps(run_child(path_, model_ or None, device_, int(threads_) or None, int(windows_))))
    except (TaggerError, ValueError) as exc:
        sys.exit(f"error: {' '.join(str(exc).split())}")
