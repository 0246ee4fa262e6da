"""`tagger bench`: every path measured in its own process, strict JSON, a recommendation that
follows the measured differences, and one-line usage errors."""

from __future__ import annotations

import json

from conftest import run_tagger


def test_bench_json_lists_every_path_with_numbers_and_a_recommendation(small_model_path):
    run = run_tagger("bench", "-m", small_model_path, "--windows", "2", "--threads", "1", "-f", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    rows = {row["path"]: row for row in report["paths"]}
    assert list(rows) == ["torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"]
    for row in rows.values():
        assert row["error"] is None
        assert row["seconds_per_window"] > 0 and row["real_time_factor"] > 0
        assert 20 < row["peak_rss_mib"] < 4000
    assert rows["torch-fp32"]["max_diff"] == 0.0
    assert rows["onnx-fp32"]["max_diff"] < 1e-5  # the same model in another runtime
    assert 1e-5 < rows["torch-bf16"]["max_diff"] < 0.1 and 1e-5 < rows["onnx-int8"]["max_diff"] < 0.1
    # The ONNX path does not load torch, and it shows in its memory.
    assert rows["onnx-fp32"]["peak_rss_mib"] < rows["torch-fp32"]["peak_rss_mib"]
    exact = report["recommended"]["exact"]
    assert rows[exact]["max_diff"] <= report["limits"]["exact"]
    assert all(rows[exact]["seconds_per_window"] <= row["seconds_per_window"]
               for row in rows.values() if row["max_diff"] <= report["limits"]["exact"])
    assert report["model"] == str(small_model_path) and "cpu" in report


def test_bench_table_and_a_bad_path(small_model_path):
    run = run_tagger("bench", "-m", small_model_path, "--windows", "1", "--path", "onnx-fp32", "--path",
                     "torch-fp32")
    assert run.returncode == 0, run.stderr
    assert "onnx-fp32" in run.stdout and "torch-bf16" not in run.stdout
    assert "recommended: " in run.stdout
    bad = run_tagger("bench", "--path", "tpu-fp8")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: unknown --path tpu-fp8 (use torch-fp32, torch-bf16, onnx-fp32, onnx-int8)"
