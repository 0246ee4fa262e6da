"""The speed table: ``tagger file`` on each path against the reference PaSST code, in one run.

What it measures (PaSST-S geometry: 768 dim, 12 layers, 12 heads, 527 classes; random weights in the
official key layout, the same weights for every path; a 60 s file, ``--window 10 --hop 10``):

* **reference**: the official code (``hear21passt``, fp32 eager) when it is importable, else this
  project's own PyTorch model in fp32 eager: model already loaded, pure forward time of the
  windows, one window per call (their probabilities are the yardstick for every path);
* **each path**: ``tagger file`` as a whole process (interpreter start, imports, model or graph
  loading, decoding, windows, JSON output), wall time and the child's peak RSS, and the largest
  absolute probability difference from the reference over all windows and classes. The cached
  ONNX graphs are made by one untimed run first (its wall time is printed as "first run").
* **cold start**: the same command on a 10 s clip (one window) for each path: time to the first
  result.
* optionally (``--hours``) a long file on the paths named by ``--long-paths``: peak RSS over hours.

Paths: ``default`` (no option: the cached fp32 ONNX Runtime graph on a CPU), ``torch-fp32``
(``--backend torch``), ``torch-bf16`` (``--precision bf16``), ``int8`` (``--precision int8``: the
cached int8 graph) and ``fast`` (``--precision fast``: what this machine's features pick).

Run it from the repository root on an otherwise idle machine (the load average is printed)::

    .venv/bin/python benchmarks/bench_speed.py                       # the table (about 3 minutes)
    .venv/bin/python benchmarks/bench_speed.py --hours 2 --long-paths default int8   # + 2 h file
    .venv/bin/python benchmarks/bench_speed.py --preset passt-tiny --seconds 20       # smoke test

The reference code: ``pip install --no-deps hear21passt`` (its only use of timm, a download helper
for ImageNet weights, is never called here; the script provides a stand-in so timm is not needed).
Models, audio, outputs and ``results.json`` go to ``--workdir`` (default ``bench-out/speed``); the
cache of ONNX graphs goes to ``WORKDIR/cache`` (``TAGGER_CACHE_DIR``), so your own cache is untouched.
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
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 32000
SEED = 20261203
PATH_OPTIONS = {
    "default": [],
    "torch-fp32": ["--backend", "torch"],
    "torch-bf16": ["--precision", "bf16"],
    "int8": ["--precision", "int8"],
    "fast": ["--precision", "fast"],
}

# ----------------------------------------------------------------------------- helpers (children)

MAKE_MODEL = r"""
import sys, types, torch
preset, out, want_reference = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
torch.manual_seed(int(sys.argv[4]))
source = "tagger"
if want_reference:
    try:
        stand_in = types.ModuleType("timm.models._hub")
        stand_in.download_cached_file = None  # only for ImageNet weights, never used here
        for name in ("timm", "timm.models"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["timm.models._hub"] = stand_in
        from hear21passt.models.passt import get_model
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=527,
                        fstride=10, tstride=10, input_fdim=128, input_tdim=998)
        state = net.state_dict()
        source = "hear21passt"
    except ImportError:
        want_reference = False
if not want_reference:
    from tagger.model import PRESETS, AudioTagger
    from tagger.frontend import FrontendConfig
    from tagger.labels import default_labels
    config = PRESETS[preset]
    state = AudioTagger(config, FrontendConfig(), default_labels(config.num_classes)).passt.state_dict()
    state = {k: v for k, v in state.items()}
generator = torch.Generator().manual_seed(int(sys.argv[4]) + 1)
for key, value in state.items():  # zero-initialised heads would give every class the same score
    if value.is_floating_point() and value.dim() >= 1 and not value.any():
        value.copy_(0.02 * torch.randn(value.shape, generator=generator))
torch.save(state, out)
print(source)
"""

REFERENCE = r"""
import json, sys, time, types, numpy as np, soundfile as sf, torch
model_path, audio_path, window_s, out, source = sys.argv[1:6]
torch.set_grad_enabled(False)
state = torch.load(model_path, weights_only=True)
if source == "hear21passt":
    stand_in = types.ModuleType("timm.models._hub")
    stand_in.download_cached_file = None
    for name in ("timm", "timm.models"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["timm.models._hub"] = stand_in
    import hear21passt.models.passt as passt
    passt.first_RUN = False
    from hear21passt.models.preprocess import AugmentMelSTFT
    net = passt.get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=527,
                          fstride=10, tstride=10, input_fdim=128, input_tdim=998)
    net.load_state_dict(state)
    mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48,
                         timem=192, htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10,
                         fmax_aug_range=2000)
    net.eval(); mel.eval()
    def forward(x):
        return torch.sigmoid(net(mel(x).unsqueeze(1))[0])
else:
    from tagger.checkpoint import load_checkpoint
    model = load_checkpoint(model_path)
    def forward(x):
        return model.probabilities(model(x)[0])
audio, rate = sf.read(audio_path, dtype="float32")
window = int(float(window_s) * rate)
windows = [torch.from_numpy(audio[s:s + window])[None] for s in range(0, len(audio) - window + 1, window)]
forward(windows[0])  # warm-up, untimed
seconds, probabilities = [], []
for x in windows:
    started = time.perf_counter()
    probabilities.append(forward(x)[0].numpy())
    seconds.append(time.perf_counter() - started)
np.save(out, np.stack(probabilities))
print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))
"""


def run_python(code: str, *args: str, env: dict | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env)
    if done.returncode != 0:
        sys.exit(f"helper failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def write_audio(path: Path, seconds: float) -> None:
    """Real audio: the example clip, looped to ``seconds``, at the model's rate (no resampling, so the
    reference reads the very samples ``tagger file`` decodes)."""
    sys.path.insert(0, str(ROOT))
    from tagger.audio import load_audio

    clip = load_audio(ROOT / "tagger" / "assets" / "example.ogg", SAMPLE_RATE)
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(clip)))
    audio = np.tile(clip, reps)[: int(seconds * SAMPLE_RATE)]
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")


def long_audio(path: Path, hours: float) -> None:
    """A long file written block by block (noise and tones over the looped clip), 16-bit FLAC."""
    sys.path.insert(0, str(ROOT))
    from tagger.audio import load_audio

    clip = load_audio(ROOT / "tagger" / "assets" / "example.ogg", SAMPLE_RATE)
    rng = np.random.default_rng(SEED)
    total = int(hours * 3600 * SAMPLE_RATE)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16", format="FLAC") as out:
        written = 0
        while written < total:
            block = clip[: min(len(clip), total - written)] * rng.uniform(0.2, 1.0)
            block = block + 0.01 * rng.standard_normal(len(block)).astype(np.float32)
            out.write(np.clip(block, -1, 1))
            written += len(block)


def peak_of(args: list[str], env: dict) -> tuple[float, float, str]:
    """:func:`run_tagger` with the peak RSS of this child alone (wait4 on its pid)."""
    command = [sys.executable, "-m", "tagger", *args]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"tagger {' '.join(args)} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, err


def window_probabilities(out: Path) -> np.ndarray:
    result = json.loads(out.read_text())["files"][0]
    return np.array([w["probabilities"] for w in result["windows"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="passt-s", help="Model geometry (the reference code builds passt-s only).")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--paths", nargs="+", default=list(PATH_OPTIONS), choices=list(PATH_OPTIONS))
    parser.add_argument("--hours", type=float, default=0.0, help="Also tag a long file of this many hours.")
    parser.add_argument("--long-paths", nargs="+", default=["default"], choices=list(PATH_OPTIONS))
    parser.add_argument("--no-reference-code", action="store_true",
                        help="Compare with this project's own fp32 eager model even when hear21passt is there.")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench-out" / "speed")
    args = parser.parse_args()

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TAGGER_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    use_reference = args.preset == "passt-s" and not args.no_reference_code
    model = work / f"{args.preset}-{'ref' if use_reference else 'own'}.pt"
    source_file = model.with_suffix(".source")
    if not model.is_file():
        print("making the model ...", flush=True)
        source_file.write_text(run_python(MAKE_MODEL, args.preset, str(model), "1" if use_reference else "0",
                                          str(SEED), env=env))
    source = source_file.read_text().strip()
    audio = work / f"audio-{args.seconds:g}s.wav"
    clip = work / "audio-10s.wav"
    for path, seconds in ((audio, args.seconds), (clip, 10.0)):
        if not path.is_file():
            write_audio(path, seconds)

    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    print(f"reference ({source}, fp32 eager, pure forward) ...", flush=True)
    reference = json.loads(run_python(REFERENCE, str(model), str(audio), str(args.window),
                                      str(work / "reference.npy"), source, env=env))
    ref_p = np.load(work / "reference.npy")
    ref_total = sum(reference["seconds"])
    ref_window = float(np.median(reference["seconds"]))
    windows = len(reference["seconds"])

    common = ["--window", str(args.window), "--hop", str(args.window), "-m", str(model), "-f", "json",
              "--no-progress"]
    rows = []
    for name in args.paths:
        options = PATH_OPTIONS[name]
        out = work / f"{name}.json"
        first = ""
        if name in ("default", "int8", "fast"):  # the first run makes the cached graph
            wall, _, _ = peak_of(["file", str(clip), *common, "-o", str(out), *options], env)
            first = f"{wall:.1f}"
        wall, peak, _ = peak_of(["file", str(audio), *common, "-o", str(out), *options, "-v"], env)
        diff = float(np.abs(window_probabilities(out) - ref_p).max())
        cold, cold_peak, err = peak_of(["file", str(clip), *common, "-o", str(work / f"{name}-10s.json"),
                                        *options, "-v"], env)
        chosen = next((line for line in err.splitlines() if line.startswith("model:")), "")
        rows.append({"path": name, "wall_s": wall, "vs_reference": ref_total / wall, "max_diff": diff,
                     "peak_rss_mib": peak, "cold_start_s": cold, "cold_peak_rss_mib": cold_peak,
                     "first_run_s": first, "runs_as": chosen})
        print(f"  {name}: {wall:.1f} s, diff {diff:.1e}, cold start {cold:.2f} s  {chosen}", flush=True)

    long_rows = []
    if args.hours > 0:
        long_file = work / f"audio-{args.hours:g}h.flac"
        if not long_file.is_file():
            print(f"writing the {args.hours:g} h file ...", flush=True)
            long_audio(long_file, args.hours)
        for name in args.long_paths:
            print(f"  {args.hours:g} h file, {name} ...", flush=True)
            wall, peak, _ = peak_of(["file", str(long_file), *common, "-o", str(work / f"{name}-long.json"),
                                     *PATH_OPTIONS[name]], env)
            long_rows.append({"path": name, "hours": args.hours, "wall_s": wall, "peak_rss_mib": peak})
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)

    cpu = cpu_line()
    print(f"\n{args.preset}, {args.seconds:g} s file, --window {args.window:g} --hop {args.window:g} "
          f"({windows} windows), {cpu}")
    print(f"reference ({source}, fp32 eager, model loaded, pure forward): {ref_window:.2f} s per window, "
          f"{ref_total:.1f} s for {windows}\n")
    print("| path | runs as | wall | vs reference | max abs prob. difference | peak RSS | 10 s clip: first result |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['runs_as'].removeprefix('model: ')} | {r['wall_s']:.1f} s | "
              f"{r['vs_reference']:.2f}x | {r['max_diff']:.1e} | {r['peak_rss_mib']:.0f} MiB | "
              f"{r['cold_start_s']:.2f} s ({r['cold_peak_rss_mib']:.0f} MiB) |")
    for r in long_rows:
        print(f"\n{r['hours']:g} h file, {r['path']}: {r['wall_s']:.0f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    (work / "results.json").write_text(json.dumps({"cpu": cpu, "reference_source": source,
                                                   "reference_seconds": reference["seconds"],
                                                   "paths": rows, "long": long_rows}, indent=1))


def cpu_line() -> str:
    sys.path.insert(0, str(ROOT))
    from tagger.precision import cpu_summary

    return f"{cpu_summary()}, {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
