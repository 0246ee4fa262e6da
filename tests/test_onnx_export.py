"""`tagger export`: the ONNX graph reproduces the PyTorch model from the waveform, at every length."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from conftest import (REFERENCE_CHECKPOINT, SAMPLE_RATE, SMALL_LABELS, run_tagger, scene, start_tagger,
                      tagger_env, tone)
from tagger.checkpoint import load_checkpoint
from tagger.frontend import FrontendConfig, MelFrontend
from tagger.labels import default_labels
from tagger.model import AudioTagger, PaSSTConfig
from tagger_export.command import ExportRequest, run_export
from tagger_export.graph import ExportFrontend
from tagger_export.onnx_export import export_model
from tagger_export.quantize import PLANS
from tagger.onnx_backend import OnnxBackend
from tagger_export import verify as verify_module
from tagger_export.verify import VerificationError, verification_audio, verify



@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE_CHECKPOINT, weights_only=True)


@pytest.fixture(scope="module")
def tiny_model(reference, tmp_path_factory) -> AudioTagger:
    """The reference fixture's official-format weights, loaded as a user would load them."""
    path = tmp_path_factory.mktemp("models") / "tiny-official.pt"
    torch.save(reference["state_dict"], path)
    return load_checkpoint(path, num_heads=4)


@pytest.fixture(scope="module")
def fixture_waves(reference, tmp_path_factory) -> list[Path]:
    """The fixture's two 3 s clips as wav files (decoded again by tagger.audio for verification)."""
    folder = tmp_path_factory.mktemp("waves")
    paths = []
    for i, wave in enumerate(reference["wave"]):
        paths.append(folder / f"wave{i}.wav")
        sf.write(paths[-1], wave.numpy(), SAMPLE_RATE, subtype="FLOAT")
    return paths


@pytest.mark.parametrize("frontend", ["dft", "stft"])
def test_graph_reproduces_the_reference_logits_from_the_waveform(reference, tiny_model, tmp_path, frontend):
    """Waveform in ONNX Runtime -> the reference implementation's sigmoid(logits) and embedding."""
    path = export_model(tiny_model, tmp_path / "tiny.onnx", source="tiny", frontend=frontend)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for suffix in ("", "_short"):  # 3 s and 1.5 s: the short one crops the time positional encoding
        probabilities, embedding = session.run(None, {"waveform": reference[f"wave{suffix}"].numpy()})
        assert np.abs(probabilities - reference[f"logits{suffix}"].sigmoid().numpy()).max() < 1e-4
        assert np.abs(embedding - reference[f"features{suffix}"].numpy()).max() < 1e-4


@pytest.mark.parametrize("frontend", ["dft", "stft"])
def test_export_frontend_matches_the_torch_frontend(reference, frontend):
    torch_frontend = MelFrontend().eval()
    export_frontend = ExportFrontend(torch_frontend.config, torch_frontend.mel_basis, frontend)
    with torch.no_grad():
        for length in (96000, 32000, 4801, 5120, 5328):  # several remainders of the hop
            wave = reference["wave"][:, :length]
            expected = torch_frontend(wave)
            got = export_frontend(wave)
            assert got.shape == expected.shape
            assert (got - expected).abs().max() < 2e-4


def test_parity_across_lengths_and_batch_sizes(tiny_model, fixture_waves, tmp_path):
    """fp32 within 1e-4 of PyTorch from the shortest input to the full context, batch 1 and 3."""
    path = export_model(tiny_model, tmp_path / "tiny.onnx", source="tiny")
    backend, results = verify(tiny_model, path, fixture_waves, device="cpu")
    lengths = sorted({r.samples for r in results})
    assert lengths == [tiny_model.min_samples, SAMPLE_RATE, tiny_model.max_samples // 2, tiny_model.max_samples]
    assert sorted({r.batch for r in results}) == [1, 3]
    assert max(r.max_diff for r in results) < 1e-4
    assert max(r.embedding_diff for r in results) < 1e-4
    # Through the backend too: its padding rule for inputs shorter than one patch matches PyTorch's.
    short = scene(0.05)[None]
    with torch.no_grad():
        padded = torch.nn.functional.pad(torch.from_numpy(short), (0, tiny_model.min_samples - short.shape[1]))
        expected = tiny_model(padded)[0].sigmoid().numpy()
    assert np.abs(backend.predict(short) - expected).max() < 1e-4


def test_official_passt_s_geometry_runs_with_a_dynamic_length(tmp_path):
    """768 wide, 12 heads, 12 x 99 patches, 527 classes (one block instead of twelve: depth changes
    no shape): one graph runs 1 s, 3 s and 10 s inputs and matches PyTorch."""
    torch.manual_seed(3)
    config = PaSSTConfig(depth=1)
    model = AudioTagger(config, FrontendConfig(), default_labels(527), name="passt-s-geometry").eval()
    path = export_model(model, tmp_path / "geometry.onnx", source="random")
    backend = OnnxBackend(path, device="cpu")
    assert backend.max_samples == model.max_samples == 321600 and backend.context_seconds == 10.0
    signal = verification_audio([], SAMPLE_RATE, model.max_samples)
    for seconds in (1, 3, model.max_samples / SAMPLE_RATE):
        x = signal[None, : int(seconds * SAMPLE_RATE)]
        with torch.no_grad():
            logits, embedding = model(torch.from_numpy(x))
        probabilities, onnx_embedding = backend.session.run(None, {"waveform": x})
        assert probabilities.shape == (1, 527) and onnx_embedding.shape == (1, 768)
        assert np.abs(probabilities - logits.sigmoid().numpy()).max() < 1e-4


def test_metadata_describes_the_model(small_model, tmp_path):
    path = export_model(small_model, tmp_path / "small.onnx", source="small.pt")
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["labels"]) == SMALL_LABELS
    assert int(meta["sample_rate"]) == 32000
    assert int(meta["max_samples"]) == small_model.max_samples
    assert int(meta["min_samples"]) == small_model.min_samples
    assert float(meta["context_seconds"]) == small_model.context_seconds
    assert json.loads(meta["multi_label"]) is True
    assert json.loads(meta["frontend"])["implementation"] == "dft"
    assert json.loads(meta["frontend"])["hop_length"] == 320
    assert meta["model_name"] == "small-test" and meta["source"] == "small.pt"
    assert meta["precision"] == "fp32" and meta["tagger_version"]
    assert proto.opset_import[0].version >= 17
    graph_input = proto.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "waveform" and dims == ["batch", "samples"]


def test_single_label_models_export_softmax(tmp_path):
    torch.manual_seed(5)
    config = PaSSTConfig(embed_dim=32, depth=1, num_heads=1, num_classes=3)
    model = AudioTagger(config, FrontendConfig(), ["a", "b", "c"], name="single", multi_label=False).eval()
    path = export_model(model, tmp_path / "single.onnx", source="single")
    x = scene(2.0)[None]
    probabilities = OnnxBackend(path, device="cpu").predict(x)
    with torch.no_grad():
        expected = model.probabilities(model(torch.from_numpy(x))[0]).numpy()
    assert abs(probabilities.sum() - 1.0) < 1e-5
    assert np.abs(probabilities - expected).max() < 1e-4


def test_int8_quantizes_only_the_weight_matmuls_and_agrees(small_model, tmp_path):
    path = export_model(small_model, tmp_path / "small-int8.onnx", source="small", precision="int8")
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    # The Linear layers of the blocks that the measured plan names (qkv, proj, fc1, fc2: some or all)
    # and nothing else are int8 (the head, a Gemm on one row per clip, stays float32).
    meta = {p.key: p.value for p in proto.metadata_props}
    layers = dict(PLANS)[meta["int8_plan"]]
    assert ops.count("MatMulInteger") == len(layers) * small_model.config.depth
    assert 0 < float(meta["int8_max_diff"]) < 0.1
    frontend_ops = {n.op_type for n in proto.graph.node if n.name.startswith("/frontend/")}
    assert "Conv" in frontend_ops and not frontend_ops & {"MatMulInteger", "DynamicQuantizeLinear"}
    backend, results = verify(small_model, path, device="cpu")
    assert backend.precision == "int8"
    assert 0 < max(r.max_diff for r in results) < 0.1


def test_fp16_keeps_float32_io_and_frontend(small_model, tmp_path):
    path = export_model(small_model, tmp_path / "small-fp16.onnx", source="small", precision="fp16")
    proto = onnx.load(str(path))
    float32 = onnx.TensorProto.FLOAT
    assert proto.graph.input[0].type.tensor_type.elem_type == float32
    assert all(o.type.tensor_type.elem_type == float32 for o in proto.graph.output)
    kinds = {init.name: init.data_type for init in proto.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in kinds.values()
    assert kinds["frontend.kernels"] == float32
    _, results = verify(small_model, path, device="cpu")  # the CPU provider also runs it
    assert max(r.max_diff for r in results) < 1e-2


def test_verification_fails_for_a_different_model_and_leaves_no_file(small_model, small_model_path,
                                                                   tmp_path, monkeypatch):
    path = export_model(small_model, tmp_path / "small.onnx", source="small")
    torch.manual_seed(99)
    other = AudioTagger(small_model.config, FrontendConfig(), SMALL_LABELS).eval()
    with pytest.raises(VerificationError, match="differs from the PyTorch model"):
        verify(other, path, device="cpu")
    # The same failure inside the command: nothing appears at the output path.
    monkeypatch.setitem(verify_module.TOLERANCES, "fp32", -1.0)
    output = tmp_path / "out" / "never.onnx"
    with pytest.raises(VerificationError, match=re.escape(f"{output} was not written")):
        run_export(ExportRequest(model=str(small_model_path), output=output, device="cpu"), echo=lambda _: None)
    assert not output.exists() and not (output.parent.exists() and list(output.parent.iterdir()))


def test_labelled_data_reports_the_map_of_both_models(small_model_path, tmp_path):
    """Class folders as `tagger eval` reads them: both models tag every clip; mAP of each is printed."""
    data = tmp_path / "data"
    for label, freq in (("low tone", 300.0), ("high tone", 5000.0)):
        (data / label).mkdir(parents=True)
        for i in range(2):
            sf.write(data / label / f"{i}.wav", tone(freq * (1 + 0.1 * i), 2.0), SAMPLE_RATE)
    lines: list[str] = []
    request = ExportRequest(model=str(small_model_path), output=tmp_path / "small-int8.onnx",
                            precision="int8", labelled=data, device="cpu")
    run_export(request, echo=lines.append)
    assert lines[-1] == f"wrote {request.output}"
    line = lines[-2]
    assert line.startswith("mAP on 4 labelled clips: PyTorch fp32 "), line
    torch_map, onnx_map, change = (float(v) for v in re.findall(r"[-+]?\d\.\d{4}", line))
    assert 0 < torch_map <= 1 and 0 < onnx_map <= 1
    assert abs(change - (onnx_map - torch_map)) < 2e-4


def test_cli_export_verifies_on_given_audio(small_model_path, fixture_waves, tmp_path):
    output = tmp_path / "small.onnx"
    result = run_tagger("export", small_model_path, "-o", output, "--audio", fixture_waves[0],
                 "--audio", fixture_waves[1], "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "on 2 audio file(s)" in result.stdout
    line = next(l for l in result.stdout.splitlines() if l.startswith("max abs probability difference"))
    assert float(line.split()[4]) < 1e-4 and line.endswith("ok")
    assert OnnxBackend(output, device="cpu").labels == SMALL_LABELS


def test_cli_int8_export_gets_a_default_name(small_model_path, tmp_path):
    result = run_tagger("export", small_model_path, "--int8", "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "int8 limit" in result.stdout and "): ok" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "wrote small-int8.onnx"
    backend = OnnxBackend(tmp_path / "small-int8.onnx", device="cpu")
    assert backend.precision == "int8" and backend.labels == SMALL_LABELS


@pytest.mark.parametrize("args, code, message", [
    (["--int8", "--fp16"], 2, "exclude each other"),
    (["--opset", "21"], 2, "--opset"),
    (["-o", "model.pt"], 2, "must end in .onnx"),
    (["--no-verify", "--labelled", "x.csv"], 2, "--labelled needs the verification"),
    (["--audio", "missing.wav"], 1, "missing.wav"),
])
def test_cli_export_errors_are_one_line(small_model_path, tmp_path, args, code, message):
    output = ["-o", tmp_path / "x.onnx"] if "-o" not in args else []
    result = run_tagger("export", small_model_path, *output, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_sigterm_during_export_leaves_no_partial_file(tmp_path):
    """SIGTERM while the exported graph is being verified (its file still a temporary): exit 143, no
    model and no hidden temporary left behind."""
    import signal
    import time

    log = tmp_path / "log"
    with open(log, "w") as handle:
        process = start_tagger("export", "offline-50", "-o", "x.onnx", env=tagger_env({"PYTHONUNBUFFERED": "1"}),
                               stdout=handle, stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + 300
        while "verification:" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert process.returncode == 143, log.read_text()
    assert log.read_text().strip().splitlines()[-1] == "error: terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]
