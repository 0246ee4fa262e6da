"""Benchmark ``tagger file``: throughput and peak memory on a long and a short file.

Every measurement runs the real command line in a child process::

    python -m tagger file PATH -m MODEL --format json -o OUT --no-progress --batch-size N ...

and reports its wall time (``time.perf_counter`` around the child) and the child's own peak resident
set size (``ru_maxrss`` from ``os.wait4`` on that child alone). The model is a random-weight model of
the chosen preset (default ``passt-s``: the official PaSST-S geometry, 768 dim, 12 layers, 12 heads,
12 x 99 patches, 527 classes); speed and memory do not depend on the weights. The audio is generated
(tones, chirps, noise bursts, clicks over a low hiss), written block by block as 44.1 kHz stereo
16-bit FLAC, so decoding, downmixing and resampling to 32 kHz are part of what is measured.

Runs, in this order: the model-free baseline (``import numpy, soundfile, torch, torchaudio``); per
precision, a 1 s file (start-up: imports, model load, one short window, output), the short file with
batched windows (``--batch-size 8``, the CLI default) and one window at a time (``--batch-size 1``);
then, per precision, the long file (batched; also unbatched with ``--long-unbatched``), each after
printing an estimate based on the short file. Every JSON output is checked: one file, no errors,
the expected number of windows and the expected decoded duration. Generated audio and model files
are cached in ``--workdir`` (default ``bench-out/``); the results also go to ``WORKDIR/results.json``.

Run it from the repository root, on an otherwise idle machine::

    .venv/bin/python benchmarks/bench_file.py                          # PaSST-S fp32: 2 h and 60 s files
    .venv/bin/python benchmarks/bench_file.py --precision fp32 bf16    # both precisions
    .venv/bin/python benchmarks/bench_file.py --skip-long              # 60 s file only (a few minutes)
    .venv/bin/python benchmarks/bench_file.py --preset passt-mini --hours 0.05 --seconds 20   # smoke test

Peak RSS note: on Linux a child's ``ru_maxrss`` can never read below the parent's own peak RSS at
the time it was started (the parent's high-water mark is carried through fork/vfork + exec). This
script therefore keeps itself small (it never imports torch; model creation and output checks run in
helper processes) and prints that floor; a value at the floor is marked with ``*`` in the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SOURCE_RATE = 44100
SOURCE_CHANNELS = 2
BLOCK_SECONDS = 4  # generation block: memory stays constant whatever the file length
STARTUP_SECONDS = 1.0
SEED = 20240611
BATCHED = 8  # the CLI default
UNBATCHED = 1
PRECISIONS = ("fp32", "bf16")
MIB = 1024  # ru_maxrss is in KiB on Linux


# ----------------------------------------------------------------------------- audio generation


def scene_block(index: int, frames: int, rate: int = SOURCE_RATE) -> np.ndarray:
    """``[frames, 2]`` float32 of block ``index``: hiss plus 2-4 panned events (tone, chirp, burst, clicks)."""
    rng = np.random.default_rng([SEED, index])
    out = 0.01 * rng.standard_normal((frames, SOURCE_CHANNELS))
    for _ in range(int(rng.integers(2, 5))):
        start = int(rng.integers(0, frames))
        length = min(frames - start, int(rng.uniform(0.3, 2.5) * rate))
        tau = np.arange(length) / rate
        kind = rng.choice(["tone", "chirp", "burst", "clicks"])
        if kind == "tone":
            f0 = rng.uniform(80.0, 1500.0)
            harmonics = np.arange(1, int(rng.integers(2, 7)))[:, None]
            event = (np.sin(2 * np.pi * f0 * harmonics * tau) / harmonics).sum(axis=0)
            event *= np.exp(-tau / rng.uniform(0.2, 2.0))
        elif kind == "chirp":
            f0, f1 = rng.uniform(100.0, 1000.0), rng.uniform(1500.0, 12000.0)
            if rng.random() < 0.5:  # downward sweep
                f0, f1 = f1, f0
            duration = length / rate
            ratio = f1 / f0  # exponential sweep from f0 to f1 over the event
            event = np.sin(2 * np.pi * f0 * duration / np.log(ratio) * (ratio ** (tau / duration) - 1))
        elif kind == "burst":
            event = rng.standard_normal(length) * np.exp(-tau / rng.uniform(0.05, 0.8))
            if rng.random() < 0.5:  # brighter: first difference
                event = np.diff(event, prepend=0.0)
        else:
            rate_hz = rng.uniform(2.0, 30.0)
            event = ((tau * rate_hz) % 1.0 < 0.002) * rng.choice([-1.0, 1.0], size=length)
        fade = np.minimum(1.0, np.minimum(tau, tau[::-1]) / 0.005)  # 5 ms in and out
        pan = rng.uniform(0.0, np.pi / 2)
        gain = rng.uniform(0.1, 0.4)
        out[start:start + length] += (gain * event * fade)[:, None] * np.array([np.cos(pan), np.sin(pan)])
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def ensure_audio(path: Path, seconds: float) -> int:
    """Write (or reuse) ``seconds`` of generated 44.1 kHz stereo FLAC at ``path``; return its frames."""
    frames = int(round(seconds * SOURCE_RATE))
    if path.is_file():
        info = sf.info(str(path))
        if (info.frames, info.samplerate, info.channels) == (frames, SOURCE_RATE, SOURCE_CHANNELS):
            return frames
    print(f"generating {path} ({seconds:g} s, 44.1 kHz stereo FLAC) ...", flush=True)
    started = time.perf_counter()
    block = BLOCK_SECONDS * SOURCE_RATE
    partial = path.with_name(path.name + ".partial")
    with sf.SoundFile(str(partial), "w", samplerate=SOURCE_RATE, channels=SOURCE_CHANNELS,
                      format="FLAC", subtype="PCM_16") as handle:
        for index, offset in enumerate(range(0, frames, block)):
            handle.write(scene_block(index, min(block, frames - offset)))
    partial.replace(path)
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    return frames


# ----------------------------------------------------------------------------- helper processes


def make_model(preset: str, path: Path) -> None:
    """Helper process: save a random-weight model of ``preset`` (imports torch, so never in the parent)."""
    import torch

    from tagger.checkpoint import save_model
    from tagger.frontend import FrontendConfig
    from tagger.labels import default_labels
    from tagger.model import PRESETS as MODEL_PRESETS
    from tagger.model import AudioTagger

    if preset not in MODEL_PRESETS:
        sys.exit(f"unknown preset '{preset}': choose from {', '.join(MODEL_PRESETS)}")
    config = MODEL_PRESETS[preset]
    torch.manual_seed(0)
    model = AudioTagger(config, FrontendConfig(), default_labels(config.num_classes),
                        name=f"{preset}-random")
    save_model(model, path, metadata={"note": "random weights, for benchmarks"})


def summarize(path: Path) -> None:
    """Helper process: print the parts of a ``--format json`` output that the checks need."""
    document = json.loads(path.read_text(encoding="utf-8"))
    print(json.dumps({
        "window": document["window"],
        "hop": document["hop"],
        "model_sample_rate": document["model_sample_rate"],
        "errors": document["errors"],
        "files": [{"windows": len(f["windows"]), "duration": f["duration"], "sample_rate": f["sample_rate"],
                   "channels": f["channels"]} for f in document["files"]],
    }))


def run_helper(*args: str) -> str:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"helper {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def ensure_model(preset: str, workdir: Path) -> Path:
    path = workdir / f"{preset}-random.pt"
    if not path.is_file():
        print(f"creating {path} (random weights) ...", flush=True)
        run_helper("--make-model", preset, str(path))
    return path


# ----------------------------------------------------------------------------- measuring


def own_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


@dataclass
class Measurement:
    name: str  # what ran: a file label or "baseline"
    audio_s: float  # seconds of audio tagged (0 for the baseline)
    windows: int
    batch_size: int
    precision: str
    wall_s: float
    peak_rss_mib: float
    rss_floor_mib: float  # the parent's peak when the child started: ru_maxrss cannot read below it
    startup_wall_s: float = 0.0  # wall time of the 1 s run with the same precision

    @property
    def speed(self) -> float:
        """Audio seconds per wall second, everything included."""
        return self.audio_s / self.wall_s

    @property
    def net_speed(self) -> float:
        """Audio seconds per wall second once the start-up run's wall time is taken off."""
        net = self.wall_s - self.startup_wall_s
        return self.audio_s / net if net > 0 else math.nan

    @property
    def at_floor(self) -> bool:
        return self.peak_rss_mib <= self.rss_floor_mib + 1.0


def run_child(command: list[str], log: Path) -> tuple[float, float, float]:
    """Run ``command``; return (wall s, the child's peak RSS MiB, the RSS floor MiB). Exits if it fails."""
    floor = own_peak_mib()
    with open(log, "w", encoding="utf-8") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # rusage of this child only
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-20:])
        sys.exit(f"failed (exit {process.returncode}): {' '.join(command)}\n{tail}")
    return wall, usage.ru_maxrss / MIB, floor


def expected_windows(source_frames: int, model_rate: int, window: int, hop: int) -> tuple[int, int]:
    """(windows, decoded samples at the model rate) that ``tag_file`` must produce for this file."""
    total = -(-model_rate * source_frames // SOURCE_RATE)  # the resampler's output length
    if total <= window:
        return 1, total
    regular = (total - window) // hop + 1
    return regular + ((regular - 1) * hop + window < total), total


@dataclass(frozen=True)
class Geometry:
    """Window and hop in samples at the model rate, as the CLI resolved them (from its JSON header)."""

    model_rate: int
    window: int
    hop: int


def check_output(out: Path, source_frames: int, requested_hop: float | None) -> tuple[int, Geometry]:
    """Check a JSON output against the input file; return (windows, geometry)."""
    summary = json.loads(run_helper("--summarize", str(out)))
    rate = summary["model_sample_rate"]
    geometry = Geometry(rate, round(summary["window"] * rate), round(summary["hop"] * rate))
    problems = []
    if summary["errors"] or len(summary["files"]) != 1:
        problems.append(f"expected one tagged file and no errors, got {summary}")
    else:
        record = summary["files"][0]
        windows, total = expected_windows(source_frames, rate, geometry.window, geometry.hop)
        if record["windows"] != windows:
            problems.append(f"{record['windows']} windows, expected {windows}")
        if abs(record["duration"] - total / rate) > 1e-5:
            problems.append(f"decoded {record['duration']} s, expected {total / rate} s")
        if (record["sample_rate"], record["channels"]) != (SOURCE_RATE, SOURCE_CHANNELS):
            problems.append(f"read as {record['sample_rate']} Hz x {record['channels']}")
    if requested_hop is not None and abs(summary["hop"] - requested_hop) > 1 / rate:
        problems.append(f"hop {summary['hop']} s, asked for {requested_hop} s")
    if problems:
        sys.exit(f"{out}: " + "; ".join(problems))
    return summary["files"][0]["windows"], geometry


class Bench:
    def __init__(self, args: argparse.Namespace, model: Path) -> None:
        self.args = args
        self.model = model
        self.results: list[Measurement] = []
        self.startup: dict[str, float] = {}  # precision -> wall s of the 1 s run
        self.geometry: Geometry | None = None

    def baseline(self) -> Measurement:
        print("baseline: import numpy, soundfile, torch, torchaudio ...", end=" ", flush=True)
        command = [sys.executable, "-c", "import numpy, soundfile, torch, torchaudio"]
        wall, peak, floor = run_child(command, self.args.workdir / "baseline.log")
        result = Measurement("baseline (imports)", 0.0, 0, 0, "-", wall, peak, floor)
        print(f"{wall:.1f} s, {peak:.0f} MiB", flush=True)
        self.results.append(result)
        return result

    def tag(self, name: str, path: Path, frames: int, batch_size: int, precision: str) -> Measurement:
        """Tag one file with the real CLI, check its output and record the measurement."""
        a = self.args
        stem = f"{path.stem}-b{batch_size}-{precision}"
        out = a.workdir / f"{stem}.json"
        command = [sys.executable, "-m", "tagger", "file", str(path), "-m", str(self.model),
                   "--format", "json", "-o", str(out), "--no-progress",
                   "--batch-size", str(batch_size), "--precision", precision, "--device", a.device]
        if a.hop is not None:
            command += ["--hop", str(a.hop)]
        if a.threads is not None:
            command += ["--threads", str(a.threads)]
        print(f"{name}, batch {batch_size}, {precision} ...", end=" ", flush=True)
        wall, peak, floor = run_child(command, a.workdir / f"{stem}.log")
        windows, self.geometry = check_output(out, frames, a.hop)
        result = Measurement(name, frames / SOURCE_RATE, windows, batch_size, precision, wall, peak, floor,
                             self.startup.get(precision, 0.0))
        print(f"{wall:.1f} s, {result.speed:.1f} audio s/s, {peak:.0f} MiB, {windows} windows", flush=True)
        self.results.append(result)
        return result

    def estimate(self, short: Measurement, frames: int) -> str:
        """Estimated wall time of the long file, from the short file's time per window."""
        assert self.geometry is not None
        g = self.geometry
        windows, _ = expected_windows(frames, g.model_rate, g.window, g.hop)
        per_window = max(short.wall_s - short.startup_wall_s, 0.0) / short.windows
        seconds = short.startup_wall_s + windows * per_window
        return (f"{windows} windows x {per_window:.2f} s + {short.startup_wall_s:.1f} s start-up"
                f" ~ {seconds / 60:.1f} min")


# ----------------------------------------------------------------------------- report


def number(value: float) -> str:
    """Two decimals, or n/a where start-up noise exceeded the run's own time."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def print_table(results: list[Measurement], baseline: Measurement) -> None:
    header = ("run", "audio s", "windows", "batch", "precision", "wall s", "audio s/wall s",
              "excl. start-up", "peak RSS MiB", "over baseline")
    rows = [header]
    for r in results:
        is_baseline = r is baseline
        rows.append((
            r.name,
            "-" if is_baseline else f"{r.audio_s:g}",
            "-" if is_baseline else str(r.windows),
            "-" if is_baseline else str(r.batch_size),
            r.precision,
            f"{r.wall_s:.1f}",
            "-" if is_baseline else f"{r.speed:.2f}",
            "-" if is_baseline or not r.startup_wall_s or r.audio_s <= STARTUP_SECONDS else number(r.net_speed),
            f"{r.peak_rss_mib:.0f}{'*' if r.at_floor else ''}",
            "-" if is_baseline else f"{r.peak_rss_mib - baseline.peak_rss_mib:+.0f}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = (cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def batching_lines(results: list[Measurement]) -> list[str]:
    """One line per (file, precision) measured both batched and unbatched, from the same run."""
    lines = []
    for batched in (r for r in results if r.batch_size == BATCHED and r.audio_s > STARTUP_SECONDS):
        single = next((r for r in results if r.name == batched.name and r.precision == batched.precision
                       and r.batch_size == UNBATCHED), None)
        if single is None:
            continue
        batched_net = batched.wall_s - batched.startup_wall_s
        net = (single.wall_s - single.startup_wall_s) / batched_net if batched_net > 0 else math.nan
        lines.append(
            f"{batched.name}, {batched.precision}: batch {BATCHED} vs batch {UNBATCHED}: "
            f"{single.wall_s / batched.wall_s:.2f}x the speed in wall time "
            f"({number(net)}x excluding start-up); "
            f"peak RSS {batched.peak_rss_mib:.0f} vs {single.peak_rss_mib:.0f} MiB"
        )
    return lines


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=2.0, help="Length of the long file (default 2.0).")
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the short file (default 60).")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32"],
                        help="One or more precisions to measure (default fp32).")
    parser.add_argument("--hop", type=float, default=None, help="--hop for the CLI (default: the CLI's).")
    parser.add_argument("--threads", type=int, default=None, help="--threads for the CLI (default: torch's).")
    parser.add_argument("--device", default="cpu", help="--device for the CLI (default cpu).")
    parser.add_argument("--preset", default="passt-s",
                        help="A tagger.model.PRESETS name; random weights (default passt-s).")
    parser.add_argument("--skip-long", action="store_true", help="Only the short file.")
    parser.add_argument("--long-unbatched", action="store_true",
                        help=f"Also tag the long file with --batch-size {UNBATCHED} (doubles the long runs).")
    parser.add_argument("--workdir", type=Path, default=Path("bench-out"),
                        help="Cache for audio, models and outputs (default bench-out/).")
    parser.add_argument("--make-model", nargs=2, metavar=("PRESET", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--summarize", type=Path, metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.seconds <= 0:
        parser.error("--hours and --seconds must be positive")
    args.precision = list(dict.fromkeys(args.precision))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.make_model:
        make_model(args.make_model[0], Path(args.make_model[1]))
        return
    if args.summarize:
        summarize(args.summarize)
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"tagger file benchmark: preset {args.preset} (random weights), precision {' '.join(args.precision)}, "
          f"device {args.device}, threads {args.threads or 'default'}, hop {args.hop or 'default'}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; python {sys.executable}")
    model = ensure_model(args.preset, args.workdir)
    long_seconds = args.hours * 3600
    startup_path, short_path, long_path = (args.workdir / f"scene-{s:g}s.flac"
                                           for s in (STARTUP_SECONDS, args.seconds, long_seconds))
    startup_frames = ensure_audio(startup_path, STARTUP_SECONDS)
    short_frames = ensure_audio(short_path, args.seconds)
    long_frames = 0 if args.skip_long else ensure_audio(long_path, long_seconds)

    bench = Bench(args, model)
    baseline = bench.baseline()
    short_batched: dict[str, Measurement] = {}
    short_single: dict[str, Measurement] = {}
    for precision in args.precision:
        bench.startup[precision] = bench.tag("1 s (start-up)", startup_path, startup_frames, BATCHED,
                                             precision).wall_s
        short_name = f"{args.seconds:g} s"
        short_batched[precision] = bench.tag(short_name, short_path, short_frames, BATCHED, precision)
        short_single[precision] = bench.tag(short_name, short_path, short_frames, UNBATCHED, precision)
    if not args.skip_long:
        long_name = f"{args.hours:g} h"
        for precision in args.precision:
            for batch_size, short in ((BATCHED, short_batched), (UNBATCHED, short_single)):
                if batch_size == UNBATCHED and not args.long_unbatched:
                    continue
                print(f"estimate for {long_name}, batch {batch_size}, {precision}: "
                      f"{bench.estimate(short[precision], long_frames)}", flush=True)
                bench.tag(long_name, long_path, long_frames, batch_size, precision)

    print()
    print_table(bench.results, baseline)
    print()
    for line in batching_lines(bench.results):
        print(line)
    floor = max(r.rss_floor_mib for r in bench.results)
    print(f"RSS floor (this script's own peak; no child can read below it): {floor:.0f} MiB"
          + ("; * marks values at the floor" if any(r.at_floor for r in bench.results) else ""))
    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "cpus": os.cpu_count(),
               "results": [asdict(r) | {"audio_s_per_wall_s": r.speed} for r in bench.results]}
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.workdir / 'results.json'}")


if __name__ == "__main__":
    main()
