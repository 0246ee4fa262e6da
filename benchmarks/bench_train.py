"""Training throughput and peak memory: PaSST with and without patchout, and a CNN14-like baseline.

The paper's claims (Koutini et al. 2022): patchout makes PaSST train much faster, and PaSST is
faster than a CNN of similar size (no-overlap PaSST 184 samples/s vs CNN14 131 on one GPU).

Every configuration runs in its own process, on the same random waveforms, through the same
training step as ``tagger train`` (mel front-end, mixup, forward, BCE, backward, AdamW), so peak
memory is that process's own (CUDA: max allocated; CPU: peak RSS). Four configurations: PaSST with
the paper's patchout (time 40/99 columns and frequency 4/12 rows), with ``tagger train``'s default
(time columns only), without patchout, and the CNN with PaSST's parameter count. The CPU model and
whether it has native bf16 (AVX512-BF16 or AMX) are printed first: bf16 is emulated, and slower than
fp32, on CPUs without them.

    python benchmarks/bench_train.py                      # CPU-sized default: 192/12/3 on 10 s
    python benchmarks/bench_train.py --embed-dim 768 --depth 12 --heads 12 --batch 12 --device cuda

Not a test; prints a table and, with --json, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cnn14_like(base: int, num_classes: int):
    """CNN14's layout (6 blocks of two 3x3 conv + BN + ReLU, 2x2 average pooling, channels
    base..32*base, mean over frequency, max + mean over time, FC) at a chosen width."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, pool: bool) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.AvgPool2d(2) if pool else nn.Identity())

        def forward(self, x):
            return self.layers(x)

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [1] + [base * 2 ** i for i in range(6)]
            self.blocks = nn.Sequential(*(Block(widths[i], widths[i + 1], i < 5) for i in range(6)))
            self.fc = nn.Sequential(nn.Linear(widths[-1], widths[-1]), nn.ReLU(), nn.Linear(widths[-1], num_classes))

        def forward(self, mel):
            x = self.blocks(mel).mean(dim=2)  # [batch, channels, time]
            return self.fc(x.amax(dim=2) + x.mean(dim=2)), None

    return CNN()


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def cnn_base_matching(params: int, num_classes: int) -> int:
    """The CNN width whose parameter count is closest to ``params``."""
    return min(range(4, 129, 2), key=lambda b: abs(count(cnn14_like(b, num_classes)) - params))


def run_one(args: argparse.Namespace) -> dict:
    """Time one configuration in this process."""
    import torch

    from tagger.frontend import FrontendConfig, MelFrontend
    from tagger.hardware import autocast, resolve_device, resolve_precision
    from tagger.model import PaSST, PaSSTConfig, grid_for_frames
    from tagger.augment import Mixup

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    frontend_config = FrontendConfig()
    samples = int(args.seconds * frontend_config.sample_rate)
    time_patches = grid_for_frames(frontend_config.n_frames(samples))
    patchout_t = round(40 * time_patches / 99) if args.patchout in ("tf", "t") else 0
    patchout_f = 4 if args.patchout == "tf" else 0
    config = PaSSTConfig(embed_dim=args.embed_dim, depth=args.depth, num_heads=args.heads,
                         time_patches=time_patches, num_classes=527, s_patchout_t=patchout_t,
                         s_patchout_f=patchout_f)
    passt_params = count(PaSST(config))
    if args.model == "cnn":
        model = cnn14_like(args.cnn_base or cnn_base_matching(passt_params, 527), 527)
    else:
        model = PaSST(config)
    model = model.to(device).train()
    frontend = MelFrontend(frontend_config).to(device).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    waves = torch.randn(args.batch, samples, device=device) * 0.1
    targets = (torch.rand(args.batch, 527, device=device) < 0.02).float()

    def step() -> None:
        mix = Mixup.draw(args.batch, 0.3, device)
        with torch.no_grad():
            mel = mix(frontend(waves))
        with autocast(device, precision):
            logits, _ = model(mel.unsqueeze(1))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), mix(targets))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    times.sort()
    median = times[len(times) // 2]
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"model": args.model, "patchout": args.patchout if args.model == "passt" else None,
            "params": count(model), "samples_per_s": args.batch / median, "step_s": median,
            "peak_mib": peak / 2 ** 20, "precision": precision, "device": str(device),
            "tokens": (time_patches - patchout_t) * (12 - patchout_f) if args.model == "passt" else None}


def cpu_description() -> str:
    """The CPU model and whether bf16 is native on it (what decides bf16's speed on a CPU)."""
    import platform

    import torch

    from tagger.hardware import cpu_has_fast_bf16

    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    native = "native bf16 (AVX512-BF16 or AMX)" if cpu_has_fast_bf16() else "no native bf16 (emulated)"
    return f"{name}, {torch.get_num_threads()} threads, {native}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=192)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cnn-base", type=int, default=None, help="CNN width (default: PaSST's parameter count)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", choices=["passt", "cnn"], help=argparse.SUPPRESS)
    parser.add_argument("--patchout", default="t", choices=["tf", "t", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.model = args.one
        print(json.dumps(run_one(args)))
        return
    forwarded = [a for a in sys.argv[1:] if not a.startswith("--json")]
    if args.json:
        forwarded = [a for a in forwarded if a != str(args.json)]
    print(f"cpu: {cpu_description()}; {args.seconds:g} s windows, batch {args.batch}, precision "
          f"{args.precision}", flush=True)
    results = []
    for model, patchout in (("passt", "tf"), ("passt", "t"), ("passt", "none"), ("cnn", "none")):
        out = subprocess.run([sys.executable, __file__, *forwarded, "--one", model, "--patchout", patchout],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{model:5} patchout={patchout:4}: {results[-1]['samples_per_s']:.2f} samples/s, "
              f"peak {results[-1]['peak_mib']:.0f} MiB, {results[-1]['params']:,} parameters "
              f"({results[-1]['precision']})", flush=True)
    paper, time_only, without, cnn = results
    ratios = {"patchout_tf_speedup": paper["samples_per_s"] / without["samples_per_s"],
              "patchout_t_speedup": time_only["samples_per_s"] / without["samples_per_s"],
              "patchout_tf_memory_ratio": paper["peak_mib"] / without["peak_mib"],
              "passt_patchout_tf_vs_cnn": paper["samples_per_s"] / cnn["samples_per_s"],
              "passt_patchout_t_vs_cnn": time_only["samples_per_s"] / cnn["samples_per_s"],
              "passt_no_patchout_vs_cnn": without["samples_per_s"] / cnn["samples_per_s"]}
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2, default=str))


if __name__ == "__main__":
    main()
