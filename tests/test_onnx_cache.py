"""The automatic ONNX path (`--backend auto`, the default on the CPU): a PyTorch model file is
exported once into the cache, later runs use the graph without importing torch, a changed file
gets a new graph, and a run killed while the graph is built leaves nothing half-made behind."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SMALL_CONFIG, SMALL_LABELS, run_python, run_tagger, start_tagger, tagger_env
from tagger.checkpoint import save_model
from tagger.frontend import FrontendConfig
from tagger.model import AudioTagger


def _probabilities(stdout: str) -> np.ndarray:
    (result,) = json.loads(stdout)["files"]
    return np.array([window["probabilities"] for window in result["windows"]])


def _graphs(cache: Path) -> list[Path]:
    return sorted((cache / "onnx").glob("*.onnx"))


def _save_random_model(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    save_model(AudioTagger(SMALL_CONFIG, FrontendConfig(), SMALL_LABELS, name=f"seed-{seed}").eval(), path)


def test_the_second_run_uses_the_cached_graph_and_never_imports_torch(small_model_path, scene_wav, tmp_path):
    env = tagger_env({"TAGGER_CACHE_DIR": str(tmp_path / "cache")})
    args = ("file", scene_wav, "-m", small_model_path, "-f", "json", "--window", "2", "--hop", "1")
    first = run_tagger(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "preparing the ONNX Runtime graph" in first.stderr
    assert len(_graphs(tmp_path / "cache")) == 1
    second = run_python("-X", "importtime", "-m", "tagger", *args, env=env)
    assert second.returncode == 0, second.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in second.stderr.splitlines() if "|" in line}
    assert "onnxruntime" in imported and "torch" not in imported
    assert "preparing" not in second.stderr
    assert np.array_equal(_probabilities(first.stdout), _probabilities(second.stdout))
    torch_run = run_tagger(*args, "--backend", "torch", env=env)
    assert torch_run.returncode == 0, torch_run.stderr
    assert np.abs(_probabilities(torch_run.stdout) - _probabilities(second.stdout)).max() < 1e-4


def test_a_changed_model_file_gets_a_new_graph(scene_wav, tmp_path):
    env = tagger_env({"TAGGER_CACHE_DIR": str(tmp_path / "cache")})
    model = tmp_path / "model.pt"
    outputs = []
    for seed in (1, 2):
        _save_random_model(model, seed)
        run = run_tagger("file", scene_wav, "-m", model, "-f", "json", env=env)
        assert run.returncode == 0, run.stderr
        assert "preparing the ONNX Runtime graph of seed-" in run.stderr
        outputs.append(_probabilities(run.stdout))
    assert len(_graphs(tmp_path / "cache")) == 2
    assert not np.allclose(outputs[0], outputs[1])
    direct = run_tagger("file", scene_wav, "-m", model, "-f", "json", "--backend", "torch", env=env)
    assert np.abs(_probabilities(direct.stdout) - outputs[1]).max() < 1e-4


def test_a_run_killed_while_the_graph_is_built_leaves_no_graph_and_the_next_run_builds_it(
        small_model_path, scene_wav, tmp_path):
    cache = tmp_path / "cache"
    env = tagger_env({"TAGGER_CACHE_DIR": str(cache), "TMPDIR": str(tmp_path)})
    process = start_tagger("file", scene_wav, "-m", small_model_path, "-f", "json", env=env)
    line = process.stderr.readline()  # the notice comes just before the export starts
    assert "preparing the ONNX Runtime graph" in line
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert _graphs(cache) == []
    again = run_tagger("file", scene_wav, "-m", small_model_path, "-f", "json", env=env)
    assert again.returncode == 0, again.stderr
    assert len(_graphs(cache)) == 1
    from tagger.onnx_cache import DIGESTS

    assert [p.name for p in (cache / "onnx").iterdir() if p.suffix != ".onnx"] == [DIGESTS]  # no temporaries


@pytest.mark.parametrize("args, message", [
    (("--backend", "onnx", "--precision", "bf16"), "--backend onnx runs float32 graphs"),
    (("--backend", "torch", "-m", "model.onnx"), "runs on ONNX Runtime only"),
])
def test_contradictory_backend_options_are_one_line_usage_errors(scene_wav, tmp_path, args, message):
    if "model.onnx" in args:
        (tmp_path / "model.onnx").write_bytes(b"")
    run = run_tagger("file", scene_wav, *args, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_a_model_file_is_hashed_once_per_version(tmp_path, monkeypatch):
    import hashlib
    import os

    from tagger import onnx_cache

    monkeypatch.setenv("TAGGER_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model.pt"
    model.write_bytes(b"a" * 1000)
    assert onnx_cache.model_digest(model) == hashlib.sha256(b"a" * 1000).hexdigest()
    index = tmp_path / "cache" / "onnx" / onnx_cache.DIGESTS
    remembered = json.loads(index.read_text())
    (entry,) = remembered.values()
    entry["sha256"] = "remembered"  # an unchanged file is not read again: the index answers
    index.write_text(json.dumps(remembered))
    assert onnx_cache.model_digest(model) == "remembered"
    model.write_bytes(b"b" * 1000)  # same size, new contents and modification time
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert onnx_cache.model_digest(model) == hashlib.sha256(b"b" * 1000).hexdigest()
    index.write_text("{damaged")
    assert onnx_cache.model_digest(model) == hashlib.sha256(b"b" * 1000).hexdigest()
