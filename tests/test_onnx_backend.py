"""`tagger file -m model.onnx`: ONNX Runtime, same results and formats as PyTorch, no torch import."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, SMALL_LABELS, run_python, run_tagger, scene
from tagger.onnx_backend import OnnxBackend
from tagger_export.onnx_export import export_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_onnx(small_model, tmp_path_factory) -> Path:
    return export_model(small_model, tmp_path_factory.mktemp("onnx") / "small.onnx", source="small.pt")


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory) -> list[Path]:
    """A 23 s 44.1 kHz stereo file (sliding windows, resampling), a 7 s clip and a 0.1 s clip."""
    folder = tmp_path_factory.mktemp("audio")
    long = scene(23.0, rate=44100, seed=1)
    sf.write(folder / "long.flac", np.stack([long, 0.5 * long], axis=1), 44100)
    sf.write(folder / "clip.wav", scene(7.0, seed=2), SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "tiny.wav", scene(0.1, seed=3), SAMPLE_RATE, subtype="FLOAT")
    return [folder / "long.flac", folder / "clip.wav", folder / "tiny.wav"]


def window_probabilities(document: dict) -> list[np.ndarray]:
    return [np.array([w["probabilities"] for w in f["windows"]]) for f in document["files"]]


def test_onnx_and_pytorch_give_the_same_json(small_model_path, small_onnx, audio_files):
    results = [run_tagger("file", *audio_files, "-m", model, "-f", "json", "--hop", "3")
               for model in (small_model_path, small_onnx)]
    for result in results:
        assert result.returncode == 0, result.stderr
    torch_doc, onnx_doc = (json.loads(r.stdout) for r in results)
    assert onnx_doc["labels"] == torch_doc["labels"] == SMALL_LABELS
    assert onnx_doc["model"] == torch_doc["model"] == "small-test"
    for key in ("window", "hop", "model_sample_rate", "pooling"):
        assert onnx_doc[key] == torch_doc[key]
    for ours, theirs in zip(onnx_doc["files"], torch_doc["files"]):
        assert [(w["start"], w["end"]) for w in ours["windows"]] == [(w["start"], w["end"]) for w in theirs["windows"]]
        assert ours["top"][0]["label"] == theirs["top"][0]["label"]
    assert [len(p) for p in window_probabilities(onnx_doc)] == [6, 1, 1]  # 0, 3, ..., 12 s, end-aligned
    for ours, theirs in zip(window_probabilities(onnx_doc), window_probabilities(torch_doc)):
        assert np.abs(ours - theirs).max() < 1e-4


NO_TORCH_PROBE = """
import json, sys
sys.argv = ["tagger", *sys.argv[2:]]
from tagger.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(SENTINEL, "w") as handle:
    json.dump({"code": code, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}, handle)
"""


def test_the_onnx_path_never_imports_torch(small_onnx, small_model_path, audio_files, tmp_path):
    """The exact CLI entry point, in a fresh interpreter: torch must not be in sys.modules after it."""
    sentinel = tmp_path / "modules.json"
    probe = NO_TORCH_PROBE.replace("SENTINEL", repr(str(sentinel)))
    result = run_python("-c", probe, "--", "file", *audio_files, "-m", small_onnx, "-f", "jsonl",
                        "--threads", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = json.loads(sentinel.read_text())
    assert report["code"] in (0, None), result.stderr
    assert report["torch"] == []
    assert len(result.stdout.strip().splitlines()) == 3  # it did tag the files
    # The probe can fail: the PyTorch path run the same way does import torch.
    result = run_python("-c", probe, "--", "file", audio_files[1], "-m", small_model_path, "-f", "json",
                        "--backend", "torch")
    assert result.returncode == 0, result.stderr
    assert "torch" in json.loads(sentinel.read_text())["torch"]


def readme_snippet() -> str:
    """The python block of the README's ONNX section, verbatim."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## ONNX export", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's ONNX section should hold exactly one python snippet"
    return blocks[0]


def test_readme_snippet_tags_a_file_without_tagger(small_onnx, tmp_path):
    snippet = readme_snippet()
    (tmp_path / "model.onnx").symlink_to(small_onnx)
    audio = scene(7.0, seed=4)
    sf.write(tmp_path / "audio.wav", audio, SAMPLE_RATE, subtype="FLOAT")
    (tmp_path / "snippet.py").write_text(snippet)
    no_tagger = "import sys; sys.modules['tagger'] = None; exec(open('snippet.py').read())"
    result = run_python("-c", no_tagger, cwd=tmp_path)  # importing tagger would fail
    assert result.returncode == 0, result.stderr
    printed = [line.split(None, 1) for line in result.stdout.strip().splitlines()]
    assert len(printed) == 5
    expected = OnnxBackend(small_onnx, device="cpu").predict(audio[None])[0]  # one window: the clip
    assert [label for _, label in printed] == [SMALL_LABELS[i] for i in np.argsort(-expected)[:5]]
    for probability, label in printed:
        assert abs(float(probability) - expected[SMALL_LABELS.index(label)]) < 1e-4
    # The snippet refuses audio at another rate instead of giving wrong numbers.
    sf.write(tmp_path / "audio.wav", scene(2.0, rate=16000), 16000)
    result = run_python("snippet.py", cwd=tmp_path)
    assert result.returncode != 0 and "resample to 32000 Hz" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--precision", "bf16"], 2, "--precision applies to PyTorch models"),
    (["--num-heads", "4"], 2, "--num-heads applies to official PyTorch checkpoints"),
    (["--device", "tpu"], 2, "unknown device 'tpu'"),
    (["--window", "11"], 2, "longer than the model's context"),
])
def test_bad_options_with_an_onnx_model(small_onnx, audio_files, args, code, message):
    result = run_tagger("file", audio_files[1], "-m", small_onnx, *args)
    assert result.returncode == code
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(any(Path("/dev").glob("nvidia[0-9]*")), reason="a GPU is present here")
def test_asking_for_cuda_without_a_gpu_is_one_line(small_onnx, audio_files):
    result = run_tagger("file", audio_files[1], "-m", small_onnx, "--device", "cuda")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cuda" in result.stderr and "Traceback" not in result.stderr


def test_bad_onnx_files_give_one_line_errors(audio_files, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(_plain_onnx_model())
    for model, message in ((tmp_path / "missing.onnx", "no such model file"),
                           (garbage, "not a readable ONNX model"),
                           (foreign, "not an ONNX model made by `tagger export`")):
        result = run_tagger("file", audio_files[1], "-m", model)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def _plain_onnx_model() -> bytes:
    """A valid ONNX model (Identity on a waveform) without tagger metadata."""
    from onnx import TensorProto, helper

    tensor = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", "samples"])
    graph = helper.make_graph([helper.make_node("Identity", ["waveform"], ["probabilities"])], "plain",
                              [tensor], [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()
