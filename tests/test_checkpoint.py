"""Model files: official checkpoints and the project's own self-describing files."""

import os
import stat
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from tagger.atomic import atomic_write
from tagger.checkpoint import atomic_save, load_checkpoint, read_file, save_model
from tagger.errors import ModelLoadError
from tagger.labels import audioset_labels
from tagger.loading import load_model
from tagger.registry import MODELS


def logits_of(model, seconds: float = 2.0) -> torch.Tensor:
    torch.manual_seed(3)
    with torch.no_grad():
        return model(torch.randn(1, int(seconds * 32000)) * 0.1)[0]


def test_audioset_label_list_is_complete_and_ordered():
    labels = audioset_labels()
    assert len(labels) == 527
    assert labels[0] == "Speech" and labels[137] == "Music"


def test_official_checkpoint_gets_audioset_names_and_ignores_head_dist(official_527_path):
    model = load_checkpoint(official_527_path)
    assert model.labels == list(audioset_labels())
    assert model.config.embed_dim == 64 and model.config.num_heads == 1
    assert model.config.depth == 1 and model.config.time_patches == 99
    assert model.context_seconds == 10.0
    assert logits_of(model).shape == (1, 527)


def test_own_model_file_round_trips(small_model, small_model_path):
    loaded = load_checkpoint(small_model_path)
    assert loaded.labels == small_model.labels
    assert loaded.config == small_model.config
    assert loaded.frontend.config == small_model.frontend.config
    assert loaded.metadata == {"purpose": "tests"}
    torch.testing.assert_close(logits_of(loaded), logits_of(small_model), atol=0, rtol=0)


def test_half_precision_storage_loads_close_to_the_original(small_model, tmp_path):
    path = tmp_path / "half.pt"
    save_model(small_model, path, half=True)
    assert read_file(path)["state_dict"]["blocks.0.attn.qkv.weight"].dtype == torch.float16
    loaded = load_checkpoint(path)
    assert (logits_of(loaded) - logits_of(small_model)).abs().max() < 1e-2


class NotATensor:
    pass


def test_pickled_python_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": NotATensor()}, path)
    with pytest.raises(ModelLoadError, match="refused to load") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a zip or pickle"])
def test_unreadable_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(path)
    assert "broken.pt" in str(info.value) and "\n" not in str(info.value)


def test_incomplete_state_dict_is_reported(official_527_path, tmp_path):
    state = torch.load(official_527_path, weights_only=True)
    del state["blocks.0.mlp.fc2.weight"]
    path = tmp_path / "incomplete.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match="blocks.0.mlp.fc2.weight"):
        load_checkpoint(path)


def test_not_a_passt_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(OrderedDict(weight=torch.zeros(3)), path)
    with pytest.raises(ModelLoadError, match="not a PaSST checkpoint"):
        load_checkpoint(path)


def test_atomic_save_leaves_only_the_final_file(tmp_path):
    target = tmp_path / "sub" / "model.pt"
    atomic_save({"x": torch.ones(2)}, target)
    atomic_save({"x": torch.zeros(2)}, target)
    assert os.listdir(target.parent) == ["model.pt"]
    assert torch.load(target, weights_only=True)["x"].sum() == 0


@pytest.mark.parametrize("fail_at", ["open", "write"])
def test_an_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch, fail_at):
    """Ctrl-C can land right after the temporary file is created, before a line of the body runs."""
    from tagger import atomic

    real_open = os.open

    def open_then_interrupt(path, flags, mode=0o777):
        real_open(path, flags, mode)
        raise KeyboardInterrupt

    if fail_at == "open":
        monkeypatch.setattr(atomic.os, "open", open_then_interrupt)
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_write(target) as handle:
            handle.write(b"partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["model.pt"]
    assert target.read_bytes() == b"old"


def test_load_model_by_path_and_errors(small_model_path, tmp_path):
    assert load_model(str(small_model_path)).name == "small-test"
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(str(tmp_path / "missing.pt"))
    with pytest.raises(ModelLoadError, match="unknown model 'no-such-model'"):
        load_model("no-such-model")


def test_load_model_by_registry_name_uses_the_cache(official_527_path, tmp_path, monkeypatch):
    """A registry name resolves to the cached download (no network needed once cached)."""
    remote = MODELS["passt-s-kd"]  # no published hash: trust on first use
    monkeypatch.setenv("TAGGER_CACHE_DIR", str(tmp_path))
    (tmp_path / remote.filename).write_bytes(Path(official_527_path).read_bytes())
    model = load_model("passt-s-kd", show_progress=False)
    assert model.name == "passt-s-kd" and model.config.stride == remote.stride
    assert len(model.labels) == 527


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask_like_open(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "model.pt") as handle:
            handle.write(b"weights")
        with open(tmp_path / "plain.bin", "wb") as handle:
            handle.write(b"weights")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model.pt").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == expected


def test_atomic_write_removes_the_temporaries_of_killed_writers_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".x.onnx.{dead.pid}.0a1b2c3d.tmp"
    live = tmp_path / f".x.onnx.{os.getpid()}.0a1b2c3d.tmp"  # another write in progress
    other = tmp_path / f".y.onnx.{dead.pid}.0a1b2c3d.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    with atomic_write(tmp_path / "x.onnx") as handle:
        handle.write(b"model")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "x.onnx").read_bytes() == b"model"


def test_random_bytes_are_refused_without_advice_to_load_them_unsafely(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(np_random_bytes(5000)))
    with pytest.raises(ModelLoadError) as info:
        read_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "weights_only" not in message and "will likely succeed" not in message


def np_random_bytes(n: int) -> bytes:
    import numpy as np

    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("key, field, value", [
    ("config", "patch_size", 0), ("config", "num_heads", -1), ("config", "embed_dim", "x"),
    ("frontend", "sample_rate", 0), ("frontend", "hop_length", 3.5), ("frontend", "n_fft", 0),
    ("frontend", "fmin", -1), ("labels", None, "abc"), ("format_version", None, "1"),
])
def test_hand_edited_settings_are_a_damaged_model_file(small_model_path, tmp_path, key, field, value):
    obj = read_file(small_model_path)
    if field is None:
        obj[key] = value
    else:
        obj[key][field] = value
    path = tmp_path / "edited.pt"
    torch.save(obj, path)
    with pytest.raises(ModelLoadError, match=r"edited.pt: damaged model file \("):
        load_checkpoint(path)
