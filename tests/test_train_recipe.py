"""The training recipe on a small, easy multi-label set, through the real CLI on real files.

Four classes that differ in where their energy sits in the spectrum (a low hum, a high whistle, hiss,
mid-band chirps), 56 training clips of 0.8-1.6 s (22.05 kHz stereo wav/flac, a quarter mixing two
classes, labels separated by ';'), 20 validation clips of 0.8-2.5 s. A linear probe on the mean and
deviation of each mel band separates them; so must the default recipe (fine-tuning the embedded
model) and a small PaSST from random weights.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from audio_classes import BAND_CLASSES, write_band_set
from tagger.checkpoint import load_checkpoint
from test_train import history, tagger

SMALL = ["--embed-dim", "64", "--depth", "2", "--num-heads", "2"]


@pytest.fixture(scope="module")
def band_set(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bands")
    return (write_band_set(root / "train", 56, seed=0),
            write_band_set(root / "val", 20, seed=1, seconds=(0.8, 2.5)))


def _train(band_set, out: Path, *args: object):
    train, val = band_set
    return tagger("train", train, "--val", val, "--label-separator", ";", "--out", out, "--no-progress",
                  *args)


@pytest.fixture(scope="module")
def scratch_run(band_set, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scratch") / "run"
    result = _train(band_set, out, "--from-scratch", *SMALL)
    assert result.returncode == 0, result.stderr
    return out


def test_default_options_fine_tune_the_embedded_model(band_set, tmp_path):
    out = tmp_path / "default"
    result = _train(band_set, out)  # the fine-tuning defaults (10 epochs)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "fine-tuning offline-50" in said
    chosen = re.search(r"window ([\d.]+) s from the clip lengths", said)
    assert chosen and 1.2 <= float(chosen[1]) <= 1.6, said  # not padded to the model's 10 s
    rows = history(out)
    assert max(r["mAP"] for r in rows) >= 0.95, rows
    model = load_checkpoint(out / "best.pt")
    assert model.labels == sorted(BAND_CLASSES) and model.multi_label
    assert model.config.embed_dim == 128  # the embedded model's backbone


def test_a_small_model_learns_from_scratch(scratch_run):
    rows = history(scratch_run)
    assert len(rows) >= 100  # enough epochs chosen for 600 updates on 4 updates an epoch
    assert max(r["mAP"] for r in rows) >= 0.90, [r["mAP"] for r in rows]
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    model = load_checkpoint(scratch_run / "best.pt")
    assert (model.config.embed_dim, model.config.depth) == (64, 2)
    assert model.metadata["init"] is None


def _clip_seconds(manifest: Path) -> list[float]:
    with open(manifest, newline="") as handle:
        return [sf.info(manifest.parent / row["path"]).duration for row in csv.DictReader(handle)]


def test_validation_map_is_what_eval_reports(scratch_run, band_set, tmp_path):
    _, val = band_set
    model = load_checkpoint(scratch_run / "best.pt")
    context = model.max_samples / model.sample_rate
    lengths = _clip_seconds(val)
    assert min(lengths) < context < max(lengths)  # some clips are windowed, others tagged whole
    report = tmp_path / "eval.json"
    result = tagger("eval", scratch_run / "best.pt", val, "--label-separator", ";", "-o", report,
                    "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["overall"]["mAP"] == pytest.approx(
        model.metadata["best_val_mAP"], abs=1e-6)


def test_eval_scores_an_onnx_export(scratch_run, band_set, tmp_path):
    _, val = band_set
    onnx_file = tmp_path / "scratch.onnx"
    exported = tagger("export", scratch_run / "best.pt", "-o", onnx_file)
    assert exported.returncode == 0, exported.stderr
    reports = {}
    for name, model in (("torch", scratch_run / "best.pt"), ("onnx", onnx_file)):
        report = tmp_path / f"{name}.json"
        result = tagger("eval", model, val, "--label-separator", ";", "-o", report, "--no-progress")
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads(report.read_text())
    assert reports["onnx"]["clips"] == 20
    assert reports["onnx"]["overall"]["mAP"] == pytest.approx(reports["torch"]["overall"]["mAP"], abs=1e-3)
