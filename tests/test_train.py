"""`tagger train` and `tagger eval` as a user runs them: real audio files, real subprocesses.

A tiny PaSST (64-dim, 2 blocks, 1 s context) learns five signal classes written as wav/flac files at
16 kHz (decoded and resampled by the `tagger file` reader), is killed with SIGKILL and resumed,
runs under torchrun with two gloo processes, and is fine-tuned from official-format weights.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from audio_classes import CLASSES, write_folders
from conftest import REFERENCE_CHECKPOINT, run_python, run_tagger, start_tagger, tagger_env
from tagger.checkpoint import load_checkpoint, read_file
from tagger.model import AudioTagger, PaSSTConfig
from tagger.frontend import FrontendConfig
from tagger.train import Split, TrainOptions, default_window, initial_model, learning_rate

TINY = ["--embed-dim", "64", "--depth", "2", "--num-heads", "2", "--context", "1", "--batch-size", "4",
        "--lr", "2e-3", "--workers", "0", "--threads", "2", "--no-progress"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def tagger(*args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_tagger(*args, env=tagger_env(ONE_THREAD), timeout=timeout)


def history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("classes")
    write_folders(root / "train", per_class=9, seconds=1.0, seed=0)
    write_folders(root / "val", per_class=4, seconds=1.0, seed=1)
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "classes"
    # bf16 autocast (as `--precision auto` picks on bf16-capable CPUs): validation must still score
    # the model in float32, as `tagger eval` does (test_eval_reproduces_the_validation_map).
    result = tagger("train", dataset / "train", "--val", dataset / "val", "--out", out, "--epochs", 8,
                    "--mixup", 0, "--no-spec-augment", "--cache-dir", out.parent / "cache",
                    "--precision", "bf16", *TINY)
    assert result.returncode == 0, result.stderr
    return out


def test_validation_map_rises_far_above_chance(trained):
    rows = history(trained)
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    best = max(r["mAP"] for r in rows)
    # Chance: AP of random scores with 4 positives in 20 clips is about 0.3.
    assert best >= 0.8, rows
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all({"mAUC", "d_prime", "accuracy", "lr", "val_loss"} <= r.keys() for r in rows)
    model = load_checkpoint(trained / "best.pt")
    assert model.labels == sorted(CLASSES) and not model.multi_label
    assert model.metadata["best_val_mAP"] == pytest.approx(best, abs=1e-6)
    assert "training_state" in read_file(trained / "last.pt")
    assert len(list((trained.parent / "cache").glob("*.npy"))) == 9 * 5  # training clips only


def test_eval_reproduces_the_validation_map(trained, dataset, tmp_path):
    report = tmp_path / "report.json"
    result = tagger("eval", trained / "best.pt", dataset / "val", "--output", report, "--no-progress")
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    best = load_checkpoint(trained / "best.pt").metadata["best_val_mAP"]
    # 1 s clips and a 1 s window: `tagger file` sees the same samples as validation did.
    assert data["overall"]["mAP"] == pytest.approx(best, abs=1e-4)
    assert sorted(c["label"] for c in data["classes"]) == sorted(CLASSES)
    assert all(c["positives"] == 4 for c in data["classes"])
    assert "Average precision per class" in result.stdout
    csv_report = tmp_path / "report.csv"
    assert tagger("eval", trained / "best.pt", dataset / "val", "-o", csv_report, "-f", "csv",
                  "--no-progress").returncode == 0
    assert csv_report.read_text().splitlines()[0] == "label,positives,ap,auc"


def test_the_trained_model_tags_files(trained, dataset):
    clip = next((dataset / "val" / "noise").glob("*.wav"))
    result = tagger("file", clip, "-m", trained / "best.pt", "-f", "json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"][0]["top"][0]["label"] == "noise"


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    return read_file(out / "last.pt")["state_dict"]


def test_sigkill_mid_epoch_then_resume_finishes_exactly(dataset, tmp_path):
    # with recording conditions on: their random chains are seeded by the draw, as the crops are
    args = ["train", dataset / "train", "--val", dataset / "val", "--epochs", 2, "--checkpoint-every", 2,
            "--conditions", 0.5, *TINY]
    reference = tmp_path / "reference"
    assert tagger(*args, "--out", reference).returncode == 0

    out = tmp_path / "killed"
    process = start_tagger(*args, "--out", out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=tagger_env(ONE_THREAD))
    deadline = time.monotonic() + 300
    while not (out / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # a little past that checkpoint, into a later step (an idle machine does ~50 steps/s)
    still_running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert still_running, "the run finished before it could be killed"
    state = read_file(out / "last.pt")["training_state"]
    assert state["step"] < 2 * 11  # killed before the end (11 updates per epoch)
    for model_file in out.glob("*.pt"):
        load_checkpoint(model_file)  # every visible model file is complete

    result = tagger("train", "--resume", "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert [r["epoch"] for r in history(out)] == [1, 2]
    assert not list(out.glob(".*.tmp"))
    resumed, expected = _final_weights(out), _final_weights(reference)
    assert all(torch.allclose(resumed[k], expected[k], atol=1e-5) for k in expected)
    assert [r["mAP"] for r in history(out)] == pytest.approx([r["mAP"] for r in history(reference)], abs=1e-4)


def test_torchrun_two_cpu_processes(dataset, tmp_path):
    out = tmp_path / "ddp"
    result = run_python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "tagger", "train", dataset / "train", "--val", dataset / "val",
                        "--out", out, "--epochs", "2", *TINY[:-5], "--workers", "0", "--threads", "1",
                        "--no-progress", env=tagger_env(ONE_THREAD))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("best validation mAP") == 1  # rank 0 only
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "metrics.jsonl"]
    model = load_checkpoint(out / "last.pt")
    assert model.metadata["processes"] == 2
    # 45 clips dealt to 2 ranks (23 each, batch 4): 5 updates per epoch, each on 2 x 4 clips.
    assert [r["step"] for r in history(out)] == [5, 10]
    assert read_file(out / "last.pt")["training_state"]["world_size"] == 2


def test_fine_tune_official_weights_to_new_labels(dataset, tmp_path):
    out = tmp_path / "finetuned"
    result = tagger("train", dataset / "train", "--val", dataset / "val", "--out", out, "--init", REFERENCE_CHECKPOINT,
                    "--num-heads", "4", "--freeze-backbone", "--window", "1", "--epochs", "2",
                    "--batch-size", "8", "--lr", "1e-3", "--workers", "0", "--no-progress")
    assert result.returncode == 0, result.stderr
    official = torch.load(REFERENCE_CHECKPOINT, weights_only=True)["state_dict"]
    model = load_checkpoint(out / "last.pt")
    assert model.labels == sorted(CLASSES)
    assert (model.config.embed_dim, model.config.depth, model.config.num_heads) == (64, 2, 4)
    assert model.config.time_patches == 29  # the 3 s grid of the fixture; trained on 1 s crops
    state = model.passt.state_dict()
    backbone = [k for k in official if not k.startswith(("head", "head_dist"))]
    assert all(torch.equal(state[k], official[k]) for k in backbone)  # frozen
    assert state["head.1.weight"].shape == (len(CLASSES), 64)
    result = tagger("file", next((dataset / "val" / "tone").glob("*.wav")), "-m", out / "best.pt",
                    "--no-progress")
    assert result.returncode == 0, result.stderr


def test_the_head_is_kept_when_the_labels_match():
    config = PaSSTConfig(embed_dim=64, depth=1, num_heads=1, time_patches=9, num_classes=3)
    base = AudioTagger(config, FrontendConfig(), ["a", "b", "c"])
    head = base.passt.head[1].weight.clone()
    split = Split(["a", "b", "c"], True, [], [], [], [], [])
    assert torch.equal(initial_model(TrainOptions(data="x"), split, base).passt.head[1].weight, head)
    other = initial_model(TrainOptions(data="x"), Split(["a", "b"], False, [], [], [], [], []), base)
    assert other.passt.head[1].weight.shape == (2, 64) and other.labels == ["a", "b"]
    assert not other.multi_label


def test_learning_rate_warms_up_then_decays():
    rates = [learning_rate(step, total=10, warmup=2, peak=1.0) for step in range(10)]
    assert rates[:3] == [0.5, 1.0, 1.0]
    assert rates[3:] == sorted(rates[3:], reverse=True) and rates[-1] >= 0.01


@pytest.mark.parametrize("args, message", [
    (["train", "nowhere"], "nowhere: no such manifest or folder"),
    (["train"], "DATA is required"),
    (["train", "--resume", "--out", "nowhere-run"], "no last.pt to resume from"),
    (["train", "{data}", "--precision", "fp16", "--device", "cpu"], "fp16 training needs a CUDA GPU"),
    (["train", "{data}", "--patchout-t", "50", "--context", "1"], "--patchout-t 50 must be below"),
    (["eval", "{model}", "nowhere"], "nowhere: no such manifest or folder"),
])
def test_bad_input_is_one_line(args, message, dataset, trained, tmp_path):
    filled = [a.format(data=dataset / "train", model=trained / "best.pt") for a in args]
    if filled[0] == "train" and "--out" not in filled:
        filled += ["--out", str(tmp_path / "run")]
    result = tagger(*filled)
    assert result.returncode in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_conditions_without_pedalboard_is_one_line(dataset, tmp_path):
    blocker = tmp_path / "site" / "pedalboard"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run_tagger("train", dataset / "train", "--out", tmp_path / "run", "--conditions", "0.5", *TINY,
                        env=tagger_env({**ONE_THREAD, "PYTHONPATH": str(blocker.parent)}), timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --conditions needs pedalboard (a training extra): pip install 'tagger[augment]'"
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_existing_run_is_not_overwritten(trained, dataset):
    result = tagger("train", dataset / "train", "--out", trained, *TINY)
    assert result.returncode == 1
    assert "already holds a run" in result.stderr


def test_resume_extends_a_finished_run(dataset, tmp_path):
    out = tmp_path / "extended"
    first = tagger("train", dataset / "train", "--val", dataset / "val", "--out", out, "--epochs", 2, *TINY)
    assert first.returncode == 0, first.stderr
    shorter = tagger("train", "--resume", "--out", out, "--epochs", 1, "--no-progress")
    assert shorter.returncode == 1 and "already trained 2 epochs" in shorter.stderr
    result = tagger("train", "--resume", "--out", out, "--epochs", 4, "--no-progress")
    assert result.returncode == 0, result.stderr
    rows = history(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["step"] for r in rows] == [11, 22, 33, 44]  # 45 clips, batch 4
    state = read_file(out / "last.pt")["training_state"]
    assert state["epoch"] == 4 and state["options"]["epochs"] == 4
    # The schedule was recomputed for 4 epochs: epoch 3 ran at a higher rate than the end of epoch 2.
    assert rows[2]["lr"] > rows[1]["lr"]


def _bad_files(root: Path) -> tuple[Path, Path]:
    import numpy as np
    import soundfile as sf

    corrupt = root / "tone" / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    nan = root / "noise" / "nan.wav"
    samples = np.zeros(16000, dtype=np.float32)
    samples[100] = np.nan
    sf.write(nan, samples, 16000, subtype="FLOAT")
    return corrupt, nan


def test_corrupt_and_nan_files_are_skipped_and_named(dataset, tmp_path):
    import shutil

    train, val = tmp_path / "train", tmp_path / "val"
    shutil.copytree(dataset / "train", train)
    shutil.copytree(dataset / "val", val)
    corrupt, nan = _bad_files(train)
    _, nan_val = _bad_files(val)
    # 45 good clips + the NaN one, batch 2 without weighted sampling: every clip is drawn each epoch.
    args = ["train", train, "--val", val, *TINY, "--epochs", 2, "--batch-size", 2, "--no-weighted-sampling",
            "--workers", 2]
    result = tagger(*args, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert f"left out {corrupt}: cannot decode audio" in err
    assert f"{nan}: cannot decode audio (holds NaN or infinite samples)" in err
    assert "skipped 1 training clip(s) that failed to decode" in err
    assert f"{nan_val}: cannot decode audio (holds NaN or infinite samples)" in err
    assert "Traceback" not in result.stderr and "AudioDecodeError" not in result.stderr
    assert [r["epoch"] for r in history(tmp_path / "run")] == [1, 2]
    assert all(r["mAP"] == r["mAP"] for r in history(tmp_path / "run"))  # not NaN

    strict = tagger(*args, "--max-bad", 0.02, "--out", tmp_path / "strict")
    assert strict.returncode == 1
    lines = strict.stderr.strip().splitlines()
    assert "cannot be used (more than --max-bad 0.02)" in lines[-1] and len(lines[-1]) < 400
    assert "Traceback" not in strict.stderr


def test_init_and_size_options_exclude_each_other(dataset, tmp_path):
    result = tagger("train", dataset / "train", "--init", "offline-50", "--depth", 2, "--out", tmp_path / "x")
    assert result.returncode == 2
    assert "--init and --depth exclude each other" in result.stderr


def test_the_default_window_holds_most_clips_whole():
    assert default_window([0.8, 1.0, 1.2, 1.55], context=10.0) == pytest.approx(1.6)
    assert default_window([1.0] * 9 + [60.0], context=10.05) == pytest.approx(1.0)
    assert default_window([30.0, 40.0], context=10.05) == pytest.approx(10.05)
    assert default_window([0.01], context=10.0) == pytest.approx(0.1)
