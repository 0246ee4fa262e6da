"""Benchmark bulk tagging: files per second of ``tagger file`` on one folder, in one process
(decoding in the tagging process), with ``--jobs 1``, ``--jobs 2`` (and more with ``--jobs``) and
with ``--ray local``.

The folder is generated once into ``--workdir`` (default ``bench-out/bulk``): ``--short`` files of
10 s and ``--long`` files of 3 minutes, 44.1 kHz stereo FLAC (tones, chirps and noise bursts), so
decoding, downmixing and resampling to 32 kHz are part of the work, as in a real archive. Every
run is the real command line in a child process, timed as a whole (start-up, model loading, Ray's
start included)::

    python -m tagger file --from-list LIST -m MODEL -f parquet -o OUT --no-progress [--jobs N | --ray local]

and its Parquet output is checked: every file once, no errors, and the same clip scores as the
first run (within 1e-4). Run it from the repository root on an otherwise idle machine::

    .venv/bin/python benchmarks/bench_bulk.py                         # the embedded model, 40 + 4 files
    .venv/bin/python benchmarks/bench_bulk.py --model passt-s.pt --short 8 --long 0
    .venv/bin/python benchmarks/bench_bulk.py --short 6 --long 1       # smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100
SHORT_SECONDS = 10.0
LONG_SECONDS = 180.0


def signal(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed % 400) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    x += 0.2 * np.sin(2 * np.pi * (200 + 300 * (t % 5)) * t)
    x += 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.3 * t) > 0.7)
    stereo = np.stack([x, np.roll(x, 50)], axis=1)
    return (stereo / np.abs(stereo).max() * 0.8).astype(np.float32)


def make_folder(workdir: Path, short: int, long: int) -> tuple[Path, float]:
    folder = workdir / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    names = [(f"short-{i:03d}.flac", SHORT_SECONDS) for i in range(short)]
    names += [(f"long-{i:02d}.flac", LONG_SECONDS) for i in range(long)]
    for i, (name, seconds) in enumerate(names):
        if not (folder / name).exists():
            sf.write(folder / name, signal(seconds, i), RATE, subtype="PCM_16")
    listing = workdir / "list.txt"
    listing.write_text("".join(f"audio/{name}\n" for name, _ in names))
    return listing, sum(seconds for _, seconds in names)


def run(listing: Path, out: Path, model: list[str], extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "tagger", "file", "--from-list", str(listing), *model, "-f", "parquet",
               "-o", str(out), "--no-progress", *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    return elapsed


def clip_scores(out: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(out / "clips").to_pydict()
    assert not any(table["error"]), "a file failed"
    return {p: np.array(s) for p, s in zip(table["path"], table["probabilities"])}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model for -m (default: the embedded model)")
    parser.add_argument("--short", type=int, default=40, help="10 s files (default 40)")
    parser.add_argument("--long", type=int, default=4, help="3-minute files (default 4)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to run (default 1 2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray local-mode run")
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/bulk"))
    args = parser.parse_args()

    listing, audio_seconds = make_folder(args.workdir, args.short, args.long)
    files = args.short + args.long
    model = ["-m", args.model] if args.model else []
    print(f"{files} files ({args.short} x 10 s, {args.long} x 3 min; 44.1 kHz stereo FLAC), "
          f"{audio_seconds / 60:.1f} min of audio; {cpu_name()}, {os.cpu_count()} CPUs")
    runs = [("one process (decoding inline)", [])]
    runs += [(f"--jobs {n}", ["--jobs", str(n)]) for n in args.jobs]
    if not args.no_ray:
        runs.append(("--ray local", ["--ray", "local"]))
    run(listing, args.workdir / "warm-up", model, ["--jobs", "0"])  # builds the cached ONNX graph once
    reference = clip_scores(args.workdir / "warm-up")
    rows = []
    for name, extra in runs:
        out = args.workdir / f"out-{len(rows)}"
        seconds = run(listing, out, model, extra)
        scores = clip_scores(out)
        assert scores.keys() == reference.keys(), f"{name}: not every file once"
        worst = max(float(np.abs(scores[p] - reference[p]).max()) for p in reference)
        assert worst <= 1e-4, f"{name}: clip scores differ by {worst}"
        rows.append((name, seconds, worst))
    base = rows[0][1]
    print("\n| run | wall | files/s | audio s/s | vs one process | max clip diff |\n|---|---|---|---|---|---|")
    for name, seconds, worst in rows:
        print(f"| {name} | {seconds:.1f} s | {files / seconds:.2f} | {audio_seconds / seconds:.0f} | "
              f"{base / seconds:.2f}x | {worst:.1e} |")


if __name__ == "__main__":
    main()
