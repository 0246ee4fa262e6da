"""``tagger train``: the PaSST recipe on a user's data, on a CPU, one GPU or many (torchrun).

One flat loop in the spirit of nanoGPT: build the data and the model, then for every step crop and
augment waveforms, compute mel spectrograms (front-end in train mode), mix them up, run PaSST with
patchout, step AdamW on a warm-up + linear-decay schedule. Every epoch ends with a validation pass,
a line in ``metrics.jsonl`` and the ``last.pt`` (and, when mAP improved, ``best.pt``) model files.

``last.pt`` also holds the training state (optimizer, loss scaler, RNG states, epoch, batch, step,
SWA average, metric history). Every file is written atomically, and the data order and augmentation
come from seeds, so a run killed at any moment continues with ``--resume`` exactly where the last
checkpoint left it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeRemainingColumn)
from rich.table import Table
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from . import __version__
from .atomic import atomic_write, remove_stale_temporaries
from .checkpoint import atomic_save, load_checkpoint, model_file_contents, read_file
from .augment import GAIN_DB, Augment, Mixup, check_conditions_available
from .data import (AudioCache, BadClip, ClipDataset, DataError, EpochSampler, Example,
                   ManifestFormat, check_labels, probe_clips, read_examples, read_labels_file,
                   sample_weights, stratified_split, target_matrix, vocabulary)
from .embedded import EMBEDDED_MODEL
from .errors import TaggerError
from .evaluate import score_clips
from .formatting import metric_cell
from .frontend import FrontendConfig
from .hardware import autocast, resolve_device, resolve_precision, setup_distributed
from .torch_backend import TorchBackend
from .metrics import Metrics, evaluate_scores
from .options import Task, values
from .model import PRESETS, AudioTagger, PaSSTConfig, grid_for_frames
from .tagging import WindowSettings

# PaSST-S drops 40 of 99 time-patch columns (10 s) and 4 of 12 frequency rows.
PATCHOUT_T_PER_99 = 40
MIN_LR_RATIO = 0.01
# Defaults that depend on where a run starts (see `start_defaults`).
FINE_TUNE_LR, SCRATCH_LR = 5e-4, 1e-3
FINE_TUNE_EPOCHS = 10
SCRATCH_MIN_UPDATES = 600  # a model from random weights needs this many updates, however small the data
# The default training window covers this share of the clips whole (the rest are cropped at random).
WINDOW_QUANTILE = 0.9
WINDOW_STEP = 0.1  # seconds: one time-patch hop (10 frames of 10 ms)
SCRATCH_MAX_CONTEXT = 10.0  # the default context of a new model is at most PaSST's 10 s grid
MODEL_FILES = ("last.pt", "best.pt", "swa.pt")
LOG_FILE = "metrics.jsonl"
TASKS = values(Task)


class TrainingError(TaggerError):
    """Training cannot start or continue."""


@dataclass
class TrainOptions:
    """Everything a run depends on; saved in ``last.pt`` and reused by ``--resume``."""

    data: str
    out: str = "runs/tagger"
    val: str | None = None
    val_split: float = 0.1
    labels_file: str | None = None
    manifest: ManifestFormat = field(default_factory=ManifestFormat)
    task: str = "auto"
    init: str | None = None  # None: the embedded default model, unless from_scratch
    from_scratch: bool = False
    arch: str = "passt-tiny"
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    context: float | None = None  # from scratch; None: the training window chosen from the data
    window: float | None = None  # None: chosen from the clip lengths (see `default_window`)
    freeze_backbone: bool = False
    backbone_lr_scale: float = 1.0
    epochs: int | None = None  # None: see `start_defaults`
    batch_size: int = 12
    accumulate: int = 1
    lr: float | None = None  # None: see `start_defaults`
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    clip_grad: float = 0.0
    patchout_t: int | None = None
    patchout_f: int = 0  # PaSST-S drops 4 of 12 rows; see the README on why not by default
    u_patchout: int = 0
    mixup: float = 0.3
    gain: bool = True
    roll: float = 0.25
    conditions: float = 0.0  # share of training clips given random recording conditions (tagger.augment)
    spec_augment: bool = False
    weighted_sampling: bool = True
    swa_start: int | None = None
    precision: str = "auto"
    device: str = "auto"
    workers: int = 2
    threads: int | None = None
    seed: int = 0
    cache_dir: str | None = None
    checkpoint_every: int = 0
    max_bad: float = 0.1  # share of the clips that may fail to decode before the run stops
    name: str | None = None
    progress: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainOptions":
        """The options saved in a ``last.pt`` (runs from before ``manifest`` kept its four fields flat)."""
        known = {f.name for f in fields(cls)}
        options = {k: v for k, v in values.items() if k in known}
        layout = values.get("manifest") or {k: v for k, v in values.items() if k in _MANIFEST_FIELDS}
        options["manifest"] = ManifestFormat(**{k: v for k, v in layout.items() if k in _MANIFEST_FIELDS})
        return cls(**options)


_MANIFEST_FIELDS = {f.name for f in fields(ManifestFormat)}


@dataclass
class Split:
    """The data of a run, resolved: label vocabulary, task, the two example lists (readable clips
    only), the training clips' durations in seconds and the clips left out because they are bad."""

    labels: list[str]
    multi_label: bool
    train: list[Example]
    val: list[Example]
    durations: list[float]
    bad_train: list[BadClip]
    bad_val: list[BadClip]


# --- setup ---------------------------------------------------------------------------------------


def resolve_data(opts: TrainOptions, model_labels: list[str] | None) -> Split:
    """Read the training (and validation) data; choose the vocabulary and the task; leave out the
    files whose header cannot be read (stopping when more than ``--max-bad`` of them are bad)."""
    fmt = opts.manifest
    examples = read_examples(opts.data, fmt)
    if opts.val:
        train, val = examples, read_examples(opts.val, fmt)
    else:
        train, val = stratified_split(examples, opts.val_split, opts.seed)
    used = vocabulary(train + val)
    if opts.labels_file:
        labels = read_labels_file(opts.labels_file)
    elif model_labels is not None and set(used) <= set(model_labels):
        labels = list(model_labels)  # fine-tuning on a subset of the model's own classes
    else:
        labels = used
    check_labels(train, labels, opts.data)
    check_labels(val, labels, opts.val or opts.data)
    if len(labels) < 2:
        raise DataError(f"{opts.data}: training needs at least 2 labels, found {len(labels)}")
    one_each = all(len(e.labels) == 1 for e in train + val)
    if opts.task not in TASKS:
        raise TrainingError(f"unknown task '{opts.task}' (use {', '.join(TASKS)})")
    multi_label = opts.task == "multi-label" or (opts.task == "auto" and not one_each)
    if not multi_label and not one_each:
        raise DataError(f"{opts.data}: a single-label task needs exactly one label per clip")
    train, durations, bad_train = probe_clips(train)
    val, _, bad_val = probe_clips(val)
    check_bad_share(bad_train, len(train) + len(bad_train), opts.max_bad, "training")
    check_bad_share(bad_val, len(val) + len(bad_val), opts.max_bad, "validation")
    return Split(labels, multi_label, train, val, durations, bad_train, bad_val)


def check_bad_share(bad: list[BadClip], total: int, max_bad: float, which: str) -> None:
    """Stop when more than ``max_bad`` of the clips (or every clip) cannot be used."""
    if bad and (len(bad) > max_bad * total or len(bad) == total):
        first = bad[0]
        raise DataError(f"{len(bad)} of {total} {which} clips cannot be used (more than --max-bad "
                        f"{max_bad:g}), e.g. {first.path}: {first.reason}")


def default_window(durations: list[float], context: float) -> float:
    """The training window for clips of these lengths: long enough to hold 90 % of them whole,
    rounded up to a tenth of a second, and no longer than the model's context."""
    if not durations:
        return context
    quantile = float(np.quantile(np.asarray(durations, dtype=np.float64), WINDOW_QUANTILE,
                                  method="inverted_cdf"))
    seconds = math.ceil(round(quantile / WINDOW_STEP, 6)) * WINDOW_STEP
    return round(min(context, max(WINDOW_STEP, seconds)), 3)


def start_defaults(opts: TrainOptions, updates_per_epoch: int) -> tuple[int, float, str]:
    """Epochs and peak learning rate when not given, and how they were chosen.

    Fine-tuning a pretrained model: 10 epochs at 5e-4. From random weights: 1e-3, and enough
    epochs for at least 600 updates (a small data set gives few updates per epoch)."""
    chosen = []
    epochs, lr = opts.epochs, opts.lr
    if lr is None:
        lr = SCRATCH_LR if opts.from_scratch else FINE_TUNE_LR
        chosen.append(f"lr {lr:g}")
    if epochs is None:
        epochs = FINE_TUNE_EPOCHS
        if opts.from_scratch:
            epochs = max(epochs, math.ceil(SCRATCH_MIN_UPDATES / max(1, updates_per_epoch)))
        chosen.append(f"{epochs} epochs")
    return epochs, lr, ", ".join(chosen)


def scratch_config(opts: TrainOptions, num_classes: int, context: float) -> PaSSTConfig:
    if opts.arch not in PRESETS:
        raise TrainingError(f"unknown --arch '{opts.arch}' (use {', '.join(PRESETS)})")
    if context <= 0:
        raise TrainingError("--context must be longer than 0 s")
    frontend = FrontendConfig()
    frames = frontend.n_frames(int(round(context * frontend.sample_rate)))
    base = PRESETS[opts.arch]
    time_patches = grid_for_frames(frames, base.patch_size, base.stride)
    if time_patches < 1:
        raise TrainingError(f"a {context:g} s context is shorter than one patch")
    overrides = {k: v for k, v in (("embed_dim", opts.embed_dim), ("depth", opts.depth),
                                   ("num_heads", opts.num_heads)) if v is not None}
    config = replace(base, time_patches=time_patches, num_classes=num_classes, **overrides)
    if config.embed_dim % config.num_heads:
        raise TrainingError(f"--embed-dim {config.embed_dim} is not divisible by {config.num_heads} heads")
    return config


def initial_model(opts: TrainOptions, split: Split, base: AudioTagger | None) -> AudioTagger:
    """A fresh model (``base`` None: from scratch, its context ``--context``, else ``--window``, else
    chosen from the data), or ``base`` with a new head unless its labels are the run's."""
    if base is None:
        context = opts.context if opts.context is not None else opts.window if opts.window is not None \
            else default_window(split.durations, SCRATCH_MAX_CONTEXT)
        config = scratch_config(opts, len(split.labels), context)
        model = AudioTagger(config, FrontendConfig(), split.labels, multi_label=split.multi_label)
    else:
        model = base
        if list(model.labels) != split.labels:
            model.passt.replace_head(len(split.labels))
            model.labels = list(split.labels)
        model.multi_label = split.multi_label
    model.name = opts.name or Path(opts.out).name
    return model


def with_patchout(model: AudioTagger, opts: TrainOptions, window: int) -> None:
    """Set structured/unstructured patchout for this window (time patchout scaled from PaSST-S)."""
    c = model.config
    frames = model.frontend.config.n_frames(window)
    time_patches = grid_for_frames(frames, c.patch_size, c.stride)
    patch_t = opts.patchout_t
    if patch_t is None:
        patch_t = round(PATCHOUT_T_PER_99 * time_patches / 99)
    if not 0 <= patch_t < time_patches:
        raise TrainingError(f"--patchout-t {patch_t} must be below the window's {time_patches} time patches")
    patch_f = opts.patchout_f
    if not 0 <= patch_f < c.freq_patches:
        raise TrainingError(f"--patchout-f {patch_f} must be below {c.freq_patches} frequency patches")
    kept = (time_patches - patch_t) * (c.freq_patches - patch_f)
    if not 0 <= opts.u_patchout < kept:
        raise TrainingError(f"--u-patchout {opts.u_patchout} must be below the {kept} patches left")
    model.passt.config = replace(c, s_patchout_t=patch_t, s_patchout_f=patch_f,
                                 u_patchout=opts.u_patchout)


def window_samples(opts: TrainOptions, model: AudioTagger, durations: list[float]) -> int:
    """The training crop in samples: ``--window``, else chosen from the clip lengths."""
    seconds = opts.window if opts.window is not None else \
        default_window(durations, model.max_samples / model.sample_rate)
    window = int(round(seconds * model.sample_rate))
    if window > model.max_samples:
        raise TrainingError(f"--window {seconds:g} s is longer than the model's context "
                            f"({model.context_seconds:g} s)")
    if window < model.min_samples:
        raise TrainingError(f"--window {seconds:g} s is shorter than one patch")
    return window


def param_groups(passt: nn.Module, opts: TrainOptions) -> list[dict[str, Any]]:
    """AdamW groups: head vs backbone (lr scale) x weight decay (matrices) or none (biases, norms,
    tokens, positional embeddings). Frozen parameters are left out."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in passt.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.ndim >= 2 and "pos_embed" not in name and "token" not in name
        groups.setdefault((name.startswith("head."), decay), []).append(param)
    return [{"params": params, "weight_decay": opts.weight_decay if decay else 0.0,
             "lr_scale": 1.0 if head else opts.backbone_lr_scale}
            for (head, decay), params in sorted(groups.items())]


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then linear decay to 1% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * max(MIN_LR_RATIO, 1.0 - progress * (1.0 - MIN_LR_RATIO))


def loss_of(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)
    return nn.functional.cross_entropy(logits, targets)  # soft (mixed-up) class probabilities


def validation_loss(scores: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """The training loss on clip probabilities: BCE (multi-label) or cross-entropy (single-label)."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1.0 - 1e-7)
    if multi_label:
        return float(-(targets * np.log(p) + (1.0 - targets) * np.log1p(-p)).mean())
    return float(-(targets * np.log(p)).sum(axis=1).mean())


# --- the run ---------------------------------------------------------------------------------------


class Trainer:
    """One training run (one per process under torchrun)."""

    def __init__(self, opts: TrainOptions, resume: bool, console: Console) -> None:
        self.out = Path(opts.out)
        self.console = console
        self.opts, saved = self._resolve_run(opts, resume)
        self._check_numbers()
        self._setup_device()
        self._build_model(resumed=saved is not None)
        self._build_loaders()
        self._build_optimizer()
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best_map = -math.inf
        self.history: list[dict[str, Any]] = []
        self.loss_sum, self.loss_count = 0.0, 0
        self.swa: dict[str, torch.Tensor] | None = None
        self.swa_count = 0
        self.skipped: dict[str, str] = {}  # training clips that failed to decode: path -> reason
        if saved is not None:
            self._restore(saved)
            if self.epoch > self.opts.epochs:
                raise TrainingError(f"{self.out} has already trained {self.epoch} epochs; "
                                    f"--epochs must be at least that")

    # --- setup, in order ---

    def _resolve_run(self, opts: TrainOptions, resume: bool) -> tuple[TrainOptions, dict[str, Any] | None]:
        """The run's options and, when resuming, its saved training state: a resumed run keeps
        its saved options (only --epochs, --out and the progress display may change)."""
        state_file = self.out / "last.pt"
        if not resume:
            if state_file.exists():
                raise TrainingError(f"{self.out} already holds a run; add --resume to continue it, "
                                    "or choose another --out")
            opts = replace(opts, **{k: os.path.abspath(v) for k in ("data", "val", "labels_file", "cache_dir")
                                    if (v := getattr(opts, k))})
            if opts.from_scratch and opts.init:
                raise TrainingError("--init and --from-scratch exclude each other")
            if not opts.from_scratch and opts.init is None:
                opts = replace(opts, init=EMBEDDED_MODEL)
            return opts, None
        if not state_file.is_file():
            raise TrainingError(f"{self.out}: no last.pt to resume from")
        saved = read_file(state_file).get("training_state")
        if not isinstance(saved, dict):
            raise TrainingError(f"{state_file}: holds no training state (not written by tagger train)")
        requested = opts
        opts = replace(TrainOptions.from_dict(saved["options"]), out=requested.out, progress=requested.progress)
        if requested.data and Path(requested.data).resolve() != Path(opts.data).resolve():
            raise TrainingError(f"{self.out} was trained on {opts.data}, not {requested.data}")
        if requested.epochs is not None:  # extend (or shorten) the run: the schedule follows
            opts = replace(opts, epochs=requested.epochs)
        return opts, saved

    def _setup_device(self) -> None:
        """Device, process group, threads, precision and the seed."""
        opts = self.opts
        self.device = resolve_device(opts.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = setup_distributed(self.device)
        threads = opts.threads or (max(1, (os.cpu_count() or 1) // self.dist.world_size)
                                   if self.dist.enabled and self.device.type == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        self.precision = resolve_precision(opts.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        torch.manual_seed(opts.seed + self.dist.rank)

    def _build_model(self, resumed: bool) -> None:
        """The data split, the model (the saved one, the --init one or a new one), the training
        window and patchout; the model wrapped for DDP when several processes train."""
        opts = self.opts
        if resumed:
            state_file = self.out / "last.pt"
            base = load_checkpoint(state_file)
            self.split = resolve_data(opts, base.labels)
            if base.labels != self.split.labels:
                raise TrainingError(f"{state_file}: its labels do not match the data any more")
            self.model = base
        else:
            base = None
            if not opts.from_scratch:
                from .loading import load_model

                base = load_model(opts.init, num_heads=opts.num_heads,
                                  show_progress=opts.progress and self.dist.is_main)
            self.split = resolve_data(opts, base.labels if base is not None else None)
            self.model = initial_model(opts, self.split, base)
        self.window = window_samples(opts, self.model, self.split.durations)
        self.chosen = "" if opts.window is not None else \
            f"window {self.window / self.model.sample_rate:g} s from the clip lengths"
        self.opts = opts = replace(opts, window=self.window / self.model.sample_rate)
        with_patchout(self.model, opts, self.window)
        self.model.to(self.device)
        if opts.freeze_backbone:
            for name, param in self.model.passt.named_parameters():
                param.requires_grad = name.startswith("head.")
        # The front-end's buffers are constants: nothing for DDP to broadcast.
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                            if self.device.type == "cuda" else None, broadcast_buffers=False)
                    if self.dist.enabled else None)

    def _build_optimizer(self) -> None:
        """AdamW over the model's parameter groups, after the epochs and peak rate are settled."""
        epochs, lr, chosen = start_defaults(self.opts, self.updates_per_epoch)
        self.chosen = ", ".join(part for part in (self.chosen, chosen) if part)
        self.opts = replace(self.opts, epochs=epochs, lr=lr)
        self.optimizer = torch.optim.AdamW(param_groups(self.model.passt, self.opts), lr=self.opts.lr,
                                           betas=(0.9, 0.999))

    def _check_numbers(self) -> None:
        o = self.opts
        for value, option in ((o.epochs or 1, "--epochs"), (o.batch_size, "--batch-size"),
                              (o.accumulate, "--accumulate")):
            if value < 1:
                raise TrainingError(f"{option} must be at least 1")
        if not 0 <= o.max_bad < 1:
            raise TrainingError("--max-bad must be at least 0 and below 1")
        if (o.lr is not None and o.lr <= 0) or o.mixup < 0 or o.clip_grad < 0 or o.warmup_epochs < 0 \
                or o.roll < 0:
            raise TrainingError("--lr must be positive; --mixup, --clip-grad, --warmup-epochs and "
                                "--roll cannot be negative")
        if not 0 <= o.backbone_lr_scale:
            raise TrainingError("--backbone-lr-scale cannot be negative")
        if not 0 <= o.conditions <= 1:
            raise TrainingError("--conditions must be between 0 and 1")
        if o.conditions > 0:
            check_conditions_available()

    def _build_loaders(self) -> None:
        o, split = self.opts, self.split
        rate = self.model.sample_rate
        cache = AudioCache(o.cache_dir, rate) if o.cache_dir else None
        augment = Augment(gain_db=GAIN_DB if o.gain else None, roll_samples=int(o.roll * rate),
                          conditions=o.conditions)
        self.train_set = ClipDataset(split.train, split.labels, self.window, rate, o.seed, augment, cache)
        weights = sample_weights(self.train_set.targets) if o.weighted_sampling else None
        self.sampler = EpochSampler(len(self.train_set), o.seed, self.dist.rank, self.dist.world_size,
                                    weights)
        if self.sampler.per_rank < o.batch_size:
            raise TrainingError(f"--batch-size {o.batch_size} is larger than the {self.sampler.per_rank} "
                                "training clips each process gets")
        self.steps_per_epoch = self.sampler.per_rank // o.batch_size  # micro-batches (drop_last)
        self.updates_per_epoch = math.ceil(self.steps_per_epoch / o.accumulate)
        # Validation tags whole clips as `tagger eval` does (each rank a share of them).
        self.val_indices = list(range(self.dist.rank, len(split.val), self.dist.world_size))
        self.train_loader = DataLoader(self.train_set, batch_size=o.batch_size, sampler=self.sampler,
                                       num_workers=o.workers, drop_last=True, persistent_workers=o.workers > 0,
                                       generator=torch.Generator())

    # --- checkpoints ---

    def _gather(self, value: Any) -> list[Any]:
        if not self.dist.enabled:
            return [value]
        values: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(values, value)
        return values

    def _rng_state(self) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _metadata(self) -> dict[str, Any]:
        return {
            "trained_with": f"tagger {__version__}",
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "epoch": self.epoch, "step": self.step, "data": self.opts.data,
            "train_clips": len(self.split.train), "val_clips": len(self.split.val),
            "window_seconds": self.window / self.model.sample_rate,
            "init": self.opts.init, "precision": self.precision, "processes": self.dist.world_size,
            "best_val_mAP": None if self.best_map == -math.inf else self.best_map,
            "history": self.history, "options": asdict(self.opts),
        }

    def save_last(self) -> None:
        """Write ``last.pt`` (model + training state) and the metrics log, on rank 0."""
        rng = self._gather(self._rng_state())
        if not self.dist.is_main:
            return
        contents = model_file_contents(self.model, self._metadata())
        contents["training_state"] = {
            "options": asdict(self.opts), "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "world_size": self.dist.world_size, "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rng, "best_map": self.best_map,
            "history": self.history, "loss_sum": self.loss_sum, "loss_count": self.loss_count,
            "swa": self.swa, "swa_count": self.swa_count, "skipped": self.skipped,
        }
        atomic_save(contents, self.out / "last.pt")

    def _write_log(self) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        with atomic_write(self.out / LOG_FILE, "w") as handle:
            handle.write(lines)

    def _restore(self, saved: dict[str, Any]) -> None:
        if saved["world_size"] != self.dist.world_size:
            raise TrainingError(f"the run used {saved['world_size']} process(es); resume it with as many")
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        rng = saved["rng"][self.dist.rank]
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.epoch, self.batch, self.step = saved["epoch"], saved["batch"], saved["step"]
        self.best_map = saved["best_map"]
        self.history = list(saved["history"])
        self.loss_sum, self.loss_count = saved["loss_sum"], saved["loss_count"]
        self.swa = saved["swa"]
        self.swa_count = saved["swa_count"]
        self.skipped = dict(saved.get("skipped", {}))

    # --- training ---

    def _forward_loss(self, waves: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mix = Mixup.draw(len(waves), self.opts.mixup, self.device) if self.opts.mixup > 0 else None
        with autocast(self.device, self.precision):
            logits, _ = (self.ddp or self.model)(waves, mel_transform=mix)
        if mix is not None:
            targets = mix(targets)
        return loss_of(logits.float(), targets, self.split.multi_label)

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=self.device)
        if self.dist.enabled:
            dist.all_reduce(bad)
        if bad.item():
            last = self.out / "last.pt"
            kept = f"; {last} holds the last good state" if last.is_file() else ""
            raise TrainingError(
                f"the loss became NaN or infinite at epoch {self.epoch + 1}, step {self.step}: lower "
                f"--lr, set --clip-grad or use --precision fp32{kept}"
            )

    def _update(self) -> float:
        o = self.opts
        total = o.epochs * self.updates_per_epoch
        lr = learning_rate(self.step, total, round(o.warmup_epochs * self.updates_per_epoch), o.lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        if o.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.passt.parameters(), o.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return lr

    def train_epoch(self, progress: Progress) -> None:
        o = self.opts
        self.model.train()
        self.model.frontend.train(o.spec_augment)  # SpecAugment and filterbank jitter, or the plain front-end
        self.sampler.set_epoch(self.epoch, skip=self.batch * o.batch_size)
        task = progress.add_task("train", total=self.steps_per_epoch, completed=self.batch,
                                 epoch=f"{self.epoch + 1}/{o.epochs}", loss=float("nan"), lr=0.0, sps=0.0)
        started, seen, lr = time.perf_counter(), 0, 0.0
        loader = iter(self.train_loader)
        while self.batch < self.steps_per_epoch:
            try:
                waves, targets, indices, errors = next(loader)
            except TaggerError as exc:  # re-raised from a worker: keep only the message
                raise TaggerError(str(exc).strip().splitlines()[-1]) from None
            waves, targets, weight = self._replace_bad(waves, targets, indices, errors)
            waves, targets = waves.to(self.device), targets.to(self.device)
            last_micro = (self.batch + 1) % o.accumulate == 0 or self.batch + 1 == self.steps_per_epoch
            sync = contextlib.nullcontext() if (self.ddp is None or last_micro) else self.ddp.no_sync()
            with sync:
                loss = self._forward_loss(waves, targets)
                self._check_finite(loss)
                self.scaler.scale(loss * (weight / o.accumulate)).backward()
            self.batch += 1
            if weight:
                self.loss_sum += loss.item()
                self.loss_count += 1
            seen += len(waves) * self.dist.world_size
            if last_micro:
                lr = self._update()
                if o.checkpoint_every and self.step % o.checkpoint_every == 0 \
                        and self.batch < self.steps_per_epoch:
                    self.save_last()
            sps = seen / max(1e-9, time.perf_counter() - started)
            progress.update(task, completed=self.batch, loss=self.loss_sum / max(1, self.loss_count), lr=lr,
                            sps=sps)
        progress.remove_task(task)

    def _replace_bad(self, waves: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor,
                     errors: list[str]) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Note the clips of the batch that failed to decode and put good clips of the same batch in
        their places (every process keeps its batch size, as DDP needs). Returns the batch and the
        weight of its loss: 0 when no clip of it could be decoded."""
        bad = [i for i, error in enumerate(errors) if error]
        if not bad:
            return waves, targets, 1.0
        for i in bad:
            self.skipped[self.train_set.examples[int(indices[i])].path] = errors[i]
        good = [i for i, error in enumerate(errors) if not error]
        if not good:
            return waves, targets, 0.0
        fill = torch.tensor([good[k % len(good)] for k in range(len(bad))])
        waves[bad], targets[bad] = waves[fill], targets[fill]
        return waves, targets, 1.0

    def _report_skipped(self) -> None:
        """List the training clips left out so far (every process's), and stop the run when more
        than --max-bad of the training clips are bad (unreadable headers included)."""
        skipped: dict[str, str] = {}
        for part in self._gather(self.skipped):
            skipped.update(part)
        self.skipped = skipped
        if not skipped:
            return
        if self.dist.is_main:
            self.console.print(f"skipped {len(skipped)} training clip(s) that failed to decode:",
                               style="yellow")
            for path, reason in sorted(skipped.items()):
                self.console.print(f"  {path}: {reason}", markup=False, highlight=False)
        bad = self.split.bad_train + [BadClip(path, reason) for path, reason in sorted(skipped.items())]
        check_bad_share(bad, len(self.split.train) + len(self.split.bad_train), self.opts.max_bad,
                        "training")

    def predict(self) -> tuple[np.ndarray, np.ndarray, list[BadClip]]:
        """Clip probabilities and targets of the validation set (gathered over the ranks), scored as
        `tagger eval` scores them: whole clips, the model's context as window, half of it as hop,
        maximum over windows, in float32 whatever the training precision. Clips that fail to decode
        are left out and returned."""
        backend = TorchBackend(self.model, device=str(self.device))
        paths = [self.split.val[i].path for i in self.val_indices]
        scores, scored, bad = score_clips(backend, paths, WindowSettings(), None, "max")
        local = ([self.val_indices[i] for i in scored], scores, bad)
        order, all_scores, all_bad = [], [], []
        for part in self._gather(local):
            order += part[0]
            all_scores.append(part[1])
            all_bad += part[2]
        if not order:
            raise DataError(f"none of the {len(self.split.val)} validation clips could be decoded "
                            f"(e.g. {all_bad[0].path}: {all_bad[0].reason})")
        rank = np.argsort(order)
        targets = target_matrix([self.split.val[i] for i in order], self.split.labels)
        return np.concatenate(all_scores)[rank], targets[rank], all_bad

    def validate(self) -> tuple[Metrics, float]:
        scores, targets, bad = self.predict()
        if bad and self.dist.is_main:
            self.console.print(f"[yellow]left {len(bad)} validation clip(s) out that failed to decode:[/]")
            for clip in bad:
                self.console.print(f"  {clip.path}: {clip.reason}", markup=False, highlight=False)
        return evaluate_scores(targets, scores, single_label=not self.split.multi_label), \
            validation_loss(scores, targets, self.split.multi_label)

    def _swa_update(self) -> None:
        if self.opts.swa_start is None or self.epoch + 1 < self.opts.swa_start:
            return
        current = {k: v.detach().float().cpu() for k, v in self.model.passt.state_dict().items()}
        if self.swa is None:
            self.swa = current
        else:
            for key, value in current.items():
                self.swa[key] += (value - self.swa[key]) / (self.swa_count + 1)
        self.swa_count += 1

    def run(self) -> dict[str, Any]:
        o = self.opts
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in (*MODEL_FILES, LOG_FILE):  # what a killed run never renamed into place
                remove_stale_temporaries(self.out / name)
            self._write_log()  # the history as of the checkpoint (drops epochs logged after it)
            self._announce()
        show = o.progress and self.dist.is_main and self.console.is_terminal
        columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  "
                              "{task.fields[sps]:.1f} samples/s"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True, disable=not show) as progress:
            while self.epoch < o.epochs:
                started = time.perf_counter()
                self.train_epoch(progress)
                self._report_skipped()
                metrics, val_loss = self.validate()
                self._swa_update()
                row = {"epoch": self.epoch + 1, "step": self.step,
                       "train_loss": round(self.loss_sum / max(1, self.loss_count), 6),
                       "val_loss": round(val_loss, 6), **metrics.summary(),
                       "lr": self.optimizer.param_groups[-1]["lr"],
                       "seconds": round(time.perf_counter() - started, 2)}
                improved = not math.isnan(metrics.mAP) and metrics.mAP > self.best_map
                if improved:
                    self.best_map = metrics.mAP
                self.history.append(row)
                self.epoch, self.batch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
                if improved and self.dist.is_main:
                    atomic_save(model_file_contents(self.model, self._metadata()), self.out / "best.pt")
                self.save_last()
                if self.dist.is_main:
                    self._write_log()
                    self._epoch_table(row, improved)
        result = {"best_mAP": self.best_map, "epochs": self.epoch, "out": str(self.out)}
        if self.swa is not None:
            result["swa_mAP"] = self._finish_swa()
        if self.dist.enabled:
            dist.barrier()
        return result

    def _finish_swa(self) -> float:
        """Evaluate the averaged weights and save them as ``swa.pt``."""
        current = {k: v.clone() for k, v in self.model.passt.state_dict().items()}
        self.model.passt.load_state_dict(self.swa)
        metrics, _ = self.validate()
        if self.dist.is_main:
            metadata = {**self._metadata(), "swa_epochs": self.swa_count, "swa_val": metrics.summary()}
            atomic_save(model_file_contents(self.model, metadata), self.out / "swa.pt")
            self.console.print(f"SWA over {self.swa_count} epoch(s): val mAP {metrics.mAP:.4f} -> "
                               f"{self.out / 'swa.pt'}")
        self.model.passt.load_state_dict(current)
        return metrics.mAP

    def _announce(self) -> None:
        o, c = self.opts, self.model.config
        task = "multi-label (sigmoid + BCE)" if self.split.multi_label else "single-label (softmax + CE)"
        where = f"{self.device}" + (f" x {self.dist.world_size} processes" if self.dist.enabled else "")
        start = "from scratch (random weights)" if o.from_scratch else f"fine-tuning {o.init}"
        bad = len(self.split.bad_train) + len(self.split.bad_val)
        lines = [
            f"{len(self.split.train)} training / {len(self.split.val)} validation clips, "
            f"{len(self.split.labels)} labels, {task}",
            f"{start}: model {c.embed_dim}/{c.depth}/{c.num_heads} "
            f"({sum(p.numel() for p in self.model.parameters()):,} parameters, context "
            f"{self.model.context_seconds:g} s), window {self.window / self.model.sample_rate:g} s, "
            f"patchout t={c.s_patchout_t} f={c.s_patchout_f} u={c.u_patchout}",
            f"{where}, {self.precision}, batch {o.batch_size} x {o.accumulate} accumulated, "
            f"{self.updates_per_epoch} updates per epoch, {o.epochs} epochs, lr {o.lr:g}"
            + (f"; resuming at epoch {self.epoch + 1}, batch {self.batch}" if self.step else ""),
        ]
        if self.chosen:
            lines.append(f"chosen for this data: {self.chosen} (set them with --window, --epochs, --lr)")
        self.console.print("\n".join(lines), markup=False, highlight=False)
        for clip in self.split.bad_train + self.split.bad_val if bad and self.dist.is_main else []:
            self.console.print(f"left out {clip.path}: {clip.reason}", style="yellow", markup=False,
                               highlight=False)

    def _epoch_table(self, row: dict[str, Any], improved: bool) -> None:
        table = Table(title=f"epoch {row['epoch']}/{self.opts.epochs}", title_justify="left")
        keys = [k for k in ("train_loss", "val_loss", "mAP", "mAUC", "d_prime", "accuracy", "lr", "seconds")
                if k in row]
        for key in keys:
            table.add_column(key, justify="right")
        table.add_column("saved")
        cells = [metric_cell(row[k], k in ("lr", "seconds")) for k in keys]
        table.add_row(*cells, "last, best" if improved else "last")
        self.console.print(table)


def train(opts: TrainOptions, resume: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) a training run; returns the best validation mAP and where the files are."""
    console = console or Console(stderr=True, highlight=False)
    trainer = Trainer(opts, resume, console)
    try:
        return trainer.run()
    finally:
        if trainer.dist.enabled and dist.is_initialized():
            dist.destroy_process_group()
