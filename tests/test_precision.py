"""Precisions: what `--precision fast` picks on which hardware, the int8 graph's layers chosen by
measured error (after activation smoothing, which must not change the float32 model), and what
`--verbose` says."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from conftest import run_tagger
from tagger.precision import native_bf16, resolve
from tagger_export import quantize
from tagger_export.onnx_export import choice_windows, export_model
from tagger_export.quantize import PLANS, graph_probabilities, quantize_int8, smooth_activations

AVX2 = {"avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16", "avx512_vnni"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}


@pytest.mark.parametrize("flags, on_gpu, runtime, expected", [
    (AVX2, True, "auto", "bf16"),
    (AMX, False, "auto", "bf16"),
    (AVX512_BF16, False, "auto", "int8"),  # bf16 without AMX is slower than int8 with VNNI
    (AVX2, False, "auto", "int8"),
    (AVX512_BF16, False, "torch", "bf16"),  # int8 needs ONNX Runtime
    (AVX2, False, "torch", "fp32"),  # and bf16 is emulated on AVX2
    (AMX, False, "onnx", "fp32"),  # bf16 needs PyTorch
])
def test_fast_picks_by_hardware_and_says_why(flags, on_gpu, runtime, expected):
    choice = resolve("fast", on_gpu, runtime, flags)
    assert choice.precision == expected
    assert choice.reason.startswith(f"fast: {expected}") and not choice.warning


def test_bf16_on_a_cpu_without_bf16_arithmetic_is_warned_about():
    assert not native_bf16(AVX2) and native_bf16(AVX512_BF16)
    assert "emulated" in resolve("bf16", False, "auto", AVX2).warning
    assert resolve("bf16", False, "auto", AVX512_BF16).warning == ""
    assert resolve("bf16", True, "auto", AVX2).warning == ""
    assert resolve("fp32", False, "auto", AVX2) == resolve("fp32", False, "auto", AMX)


def test_smoothing_keeps_the_float32_model_and_moves_the_ranges(small_model):
    windows = choice_windows(small_model, count=3)
    smoothed = smooth_activations(small_model, windows)
    with torch.no_grad():
        x = torch.from_numpy(windows)
        before, embedding_before = small_model(x)
        after, embedding_after = smoothed(x)
    assert torch.allclose(before, after, atol=1e-4) and torch.allclose(embedding_before, embedding_after, atol=1e-4)
    block, original = smoothed.passt.blocks[0], small_model.passt.blocks[0]
    assert not torch.equal(block.norm1.weight, original.norm1.weight)  # the model given is not touched
    assert not torch.equal(block.attn.qkv.weight, original.attn.qkv.weight)
    assert torch.equal(block.mlp.fc2.weight, original.mlp.fc2.weight)  # nothing can absorb it


def test_int8_keeps_the_most_quantized_plan_within_the_limit(small_model, tmp_path, monkeypatch):
    fp32 = export_model(small_model, tmp_path / "fp32.onnx", source="small")
    windows = choice_windows(small_model, count=3)
    expected = graph_probabilities(fp32, windows)
    errors = {}
    for name, layers in PLANS:
        quantize.quantize_nodes(fp32, tmp_path / f"{name}.onnx", quantize.plan_nodes(onnx.load(str(fp32)), layers))
        errors[name] = float(np.abs(graph_probabilities(tmp_path / f"{name}.onnx", windows) - expected).max())
    # A limit between the plans' errors: the first plan under it is kept, with its own error.
    ordered = [name for name, _ in PLANS]
    target = min(ordered, key=lambda name: errors[name])
    monkeypatch.setattr(quantize, "FAST_LIMIT", errors[target])
    seen = []
    choice = quantize_int8(fp32, tmp_path / "chosen.onnx", windows, expected, seen.append)
    first_within = next(name for name in ordered if errors[name] <= errors[target])
    assert choice.plan == first_within and choice.max_diff == pytest.approx(errors[first_within])
    assert len(seen) == ordered.index(first_within) + 1
    # No plan within the limit: the fastest (every layer) is kept, with its error reported.
    monkeypatch.setattr(quantize, "FAST_LIMIT", 0.0)
    choice = quantize_int8(fp32, tmp_path / "fastest.onnx", windows, expected)
    assert choice.plan == "all" and choice.max_diff == pytest.approx(errors["all"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "fastest.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 4 * small_model.config.depth


def test_verbose_says_what_runs_and_fast_falls_back_to_fp32_when_int8_is_too_far(small_model_path, scene_wav,
                                                                                  isolated_cache):
    args = ("file", scene_wav, "-m", small_model_path, "-f", "json", "--window", "2", "--hop", "1", "-v")
    exact = run_tagger(*args, "--backend", "onnx")
    assert exact.returncode == 0, exact.stderr
    assert "model: small-test, ONNX Runtime fp32 on the CPU" in exact.stderr
    int8 = run_tagger(*args, "--precision", "int8")
    assert int8.returncode == 0, int8.stderr
    assert "ONNX Runtime int8 on the CPU, measured within" in int8.stderr
    # The measured difference is also beside the cached graph, for `fast` to decide without opening it.
    sides = [json.loads(p.read_text())["int8_max_diff"] for p in (isolated_cache / "onnx").glob("small-*-int8.json")]
    assert sides and f"measured within {sides[0]:.1e}" in int8.stderr
    fast = run_tagger(*args, "--precision", "fast")
    assert fast.returncode == 0, fast.stderr
    line = next(line for line in fast.stderr.splitlines() if line.startswith("model:"))
    measured = float(line.split("measured within ")[1].split()[0]) if "measured within" in line else None
    if "int8" in line.split("(")[0]:  # int8 chosen: it must be within the limit
        assert measured is not None and measured <= 5e-3
    else:  # fp32 chosen: the reason names the int8 graph's difference
        assert "fast: fp32 (this model's int8 graph differs from fp32 by up to" in line
        probabilities = [w["probabilities"] for w in json.loads(fast.stdout)["files"][0]["windows"]]
        reference = [w["probabilities"] for w in json.loads(exact.stdout)["files"][0]["windows"]]
        assert np.array_equal(probabilities, reference)


def test_int8_on_pytorch_is_a_usage_error(scene_wav):
    run = run_tagger("file", scene_wav, "--precision", "int8", "--backend", "torch")
    assert run.returncode == 2
    assert "int8 runs the int8 ONNX Runtime graph" in run.stderr and len(run.stderr.strip().splitlines()) == 1
