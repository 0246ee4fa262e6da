"""Bulk tagging (`tagger file --from-list/--shard/--resume/--jobs/--ray`, `-f parquet`): real runs of
the command on generated audio, interrupted with SIGKILL where the issue asks for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from tagger.inputs import in_shard, parse_shard, read_list

from conftest import SAMPLE_RATE, run_tagger, scene, start_tagger, tagger_env


def _folder(path: Path, count: int, seconds: float, rate: int = SAMPLE_RATE) -> list[Path]:
    path.mkdir()
    files = []
    for i in range(count):
        files.append(path / f"{i:03d}.wav")
        sf.write(files[-1], scene(seconds, rate, seed=i), rate)
    return files


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _kill_when(process: subprocess.Popen, ready) -> None:
    deadline = time.monotonic() + 120
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed: " + process.stderr.read()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _group_gone(pgid: int, seconds: float = 20) -> bool:
    """Whether every process of the group (the decoding workers included) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_shards_partition_any_list():
    paths = [f"/data/{i}/clip {i}.wav" for i in range(300)]
    for n in (1, 2, 3, 7):
        owners = [[k for k in range(1, n + 1) if in_shard(p, (k, n))] for p in paths]
        assert all(len(o) == 1 for o in owners)  # every path in exactly one shard
        if n > 1:
            sizes = np.bincount([o[0] for o in owners])[1:]
            assert sizes.min() > 300 / n / 2  # no shard left (nearly) empty
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/4", "5/4", "2", "a/b", "-1/3"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


def test_lists_skip_comments_and_read_csv_columns_relative_to_their_folder(tmp_path):
    (tmp_path / "lists").mkdir()
    plain = tmp_path / "lists" / "files.txt"
    plain.write_text("# field recordings\na.wav\n\n  sub/b.flac  \n/abs/c.ogg\n")
    assert read_list(plain) == [tmp_path / "lists" / "a.wav", tmp_path / "lists" / "sub" / "b.flac", Path("/abs/c.ogg")]
    table = tmp_path / "lists" / "files.csv"
    table.write_text("id;file\n1;x.wav\n2;\n3;y.wav\n")
    assert read_list(table, "file", ";") == [tmp_path / "lists" / "x.wav", tmp_path / "lists" / "y.wav"]


def test_shards_of_a_list_tag_each_file_once(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 12, 1.0)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"clips/{f.name}\n" for f in files) + f"clips/{files[0].name}\n")  # one twice
    tagged = []
    for k in (1, 2, 3):
        out = tmp_path / f"shard{k}.jsonl"
        result = run_tagger("file", "--from-list", listing, "--shard", f"{k}/3", "-m", small_model_path,
                            "-f", "jsonl", "-o", out, "--no-progress")
        assert result.returncode == 0, result.stderr
        tagged += [r["path"] for r in _jsonl(out)]
    assert sorted(tagged) == sorted(str(f) for f in files)  # a partition, the duplicate entry once


def test_resume_after_sigkill_skips_finished_files_and_duplicates_none(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 30, 8.0)
    out = tmp_path / "out.jsonl"
    command = ("file", tmp_path / "clips", "-m", small_model_path, "-f", "jsonl", "-o", out, "--resume",
               "--window", "1", "--hop", "0.5", "--jobs", "2", "--no-progress")
    process = start_tagger(*command, start_new_session=True)
    _kill_when(process, lambda: out.exists() and out.read_text().count("\n") >= 3)
    assert _group_gone(process.pid), "decoding workers outlived the killed run"
    first = _jsonl(out) if out.read_text().endswith("\n") else _jsonl(out)[:-1]
    assert 3 <= len(first) < 30
    with open(out, "a") as handle:  # as if the kill had cut a line short
        handle.write('{"path": "' + str(files[-1]) + '", "dur')

    result = run_tagger(*command)
    assert result.returncode == 0, result.stderr
    assert f"resuming: {len(first)} of 30 inputs are already in {out}" in result.stderr
    records = _jsonl(out)
    assert [r["path"] for r in records] == [str(f) for f in files]  # each once, in order
    assert records[:len(first)] == first  # the finished ones were kept, not redone
    single = run_tagger("file", files[-1], "-m", small_model_path, "-f", "jsonl", "--window", "1", "--hop", "0.5")
    assert _jsonl_text(single.stdout)[0]["clip"] == records[-1]["clip"]


def _jsonl_text(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_decoding_processes_give_the_same_results(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 5, 3.0, rate=44100)
    (tmp_path / "clips" / "bad.wav").write_bytes(b"RIFF....WAVEfmt ")
    runs = {}
    for jobs in ("0", "2"):
        result = run_tagger("file", tmp_path / "clips", "-m", small_model_path, "-f", "jsonl", "--jobs", jobs,
                            "--no-progress")
        assert result.returncode == 1 and result.stderr.count("error: ") == 1, result.stderr
        runs[jobs] = result.stdout
    assert runs["0"] == runs["2"]
    assert len(_jsonl_text(runs["0"])) == len(files) + 1


def test_parquet_round_trips_with_its_metadata(small_model_path, tmp_path):
    _folder(tmp_path / "clips", 3, 12.0)
    (tmp_path / "clips" / "empty.wav").write_bytes(b"")
    out = tmp_path / "results"
    common = ("-m", small_model_path, "--hop", "2", "--no-progress")
    result = run_tagger("file", tmp_path / "clips", *common, "-f", "parquet", "-o", out, "--events")
    assert result.returncode == 1, result.stderr
    reference = _jsonl_text(run_tagger("file", tmp_path / "clips", *common, "-f", "jsonl", "--events").stdout)

    windows, clips = pq.read_table(out / "windows"), pq.read_table(out / "clips")
    meta = json.loads(windows.schema.metadata[b"tagger"])
    assert meta["labels"] == ["low tone", "high tone", "noise", "clicks", "chirp", "silence"]
    assert (meta["model"], meta["window"], meta["hop"], meta["pooling"]) == ("small-test", 10.05, 2.0, "max")
    assert json.loads(clips.schema.metadata[b"tagger"]) == meta
    rows = clips.to_pylist()
    assert [r["path"] for r in rows] == [r["path"] for r in reference]
    for row, ref in zip(rows, reference):
        if "error" in ref:
            assert row["error"] == ref["error"] and row["probabilities"] is None
            continue
        assert row["error"] is None and row["duration"] == pytest.approx(ref["duration"])
        assert np.allclose(row["probabilities"], [ref["clip"][label] for label in meta["labels"]], atol=1e-6)
        assert json.loads(row["events"]) == ref["events"]
        mine = [w for w in windows.to_pylist() if w["path"] == ref["path"]]
        assert [(w["start"], w["end"]) for w in mine] == [(w["start"], w["end"]) for w in ref["windows"]]
        assert np.allclose([w["probabilities"] for w in mine], [w["probabilities"] for w in ref["windows"]], atol=1e-6)


def test_parquet_resume_after_sigkill_keeps_committed_parts_and_duplicates_none(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 200, 1.0)
    out = tmp_path / "results"
    command = ("file", tmp_path / "clips", "-m", small_model_path, "-f", "parquet", "-o", out, "--resume",
               "--window", "0.5", "--hop", "0.1", "--no-progress")
    process = start_tagger(*command)
    _kill_when(process, lambda: any((out / "clips").glob("*.parquet")))
    (out / "windows" / "part-000099.parquet").write_bytes(b"uncommitted")  # as if killed between the writes
    committed = pq.read_table(out / "clips").num_rows
    assert 0 < committed < 200

    result = run_tagger(*command)
    assert result.returncode == 0, result.stderr
    assert f"resuming: {committed} of 200" in result.stderr
    paths = pq.read_table(out / "clips").column("path").to_pylist()
    assert sorted(paths) == sorted(str(f) for f in files)
    windows = pq.read_table(out / "windows")
    assert windows.num_rows == 200 * 6  # 1 s at 0.5 s windows, 0.1 s hop: each file's windows once
    assert not (out / "windows" / "part-000099.parquet").exists()


def test_bulk_usage_errors_name_the_problem(small_model_path, tmp_path, scene_wav):
    out = tmp_path / "out.jsonl"
    assert run_tagger("file", scene_wav, "-m", small_model_path, "-f", "jsonl", "-o", out).returncode == 0
    cases = [
        (("--resume",), 2, "--resume adds to an output file: use -f jsonl or -f parquet with -o"),
        (("-f", "csv", "-o", tmp_path / "x.csv", "--resume"), 2, "--resume adds to an output file"),
        (("-f", "parquet"), 2, "-f parquet writes a folder: name it with -o"),
        (("-f", "parquet", "-o", out), 2, f"{out}: -f parquet writes a folder, and this is a file"),
        (("--jobs", "2", "--ray", "local"), 2, "--jobs and --ray exclude each other"),
        (("--from-list", tmp_path / "none.txt"), 1, f"{tmp_path / 'none.txt'}: cannot read the list"),
        (("-f", "jsonl", "-o", tmp_path / "x.jsonl", "--ray", "127.0.0.1:9"), 1,
         "--ray 127.0.0.1:9: cannot connect (Connection refused)"),
    ]
    for args, code, message in cases:
        result = run_tagger("file", scene_wav, "-m", small_model_path, *args, "--no-progress")
        assert result.returncode == code and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run_tagger("file", scene_wav, "-f", "jsonl", "-o", out, "--resume")  # the embedded model
    assert result.returncode == 1 and "holds results of model 'small-test', this run uses 'offline-50'" in result.stderr
    result = run_tagger("file", "-m", small_model_path)
    assert result.returncode == 2 and "give audio files or folders, or --from-list FILE" in result.stderr


def test_ray_local_run_equals_the_single_process_run(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 6, 4.0, rate=22050)
    (tmp_path / "clips" / "bad.wav").write_bytes(b"RIFF nothing")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"clips/{f.name}\n" for f in files) + "clips/bad.wav\nclips/missing.wav\n")
    common = ("file", "--from-list", listing, "-m", small_model_path, "-f", "parquet", "--hop", "1", "--no-progress")
    single = run_tagger(*common, "-o", tmp_path / "single")
    on_ray = run_tagger(*common, "-o", tmp_path / "ray", "--ray", "local")
    assert single.returncode == on_ray.returncode == 1, on_ray.stderr
    errors = [line for line in single.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    # the same two error lines, nothing from Ray (the first-use notice of the cached graph aside)
    assert [line for line in on_ray.stderr.splitlines() if not line.startswith("preparing")] == errors
    for table in ("windows", "clips"):
        a, b = pq.read_table(tmp_path / "single" / table), pq.read_table(tmp_path / "ray" / table)
        assert a.schema == b.schema and a.num_rows == b.num_rows
        rows_a, rows_b = a.to_pylist(), b.to_pylist()
        for x, y in zip(rows_a, rows_b):
            assert {k: v for k, v in x.items() if k != "probabilities"} == \
                   {k: v for k, v in y.items() if k != "probabilities"}
            if x["probabilities"] is not None:
                assert np.abs(np.subtract(x["probabilities"], y["probabilities"])).max() <= 1e-4


CRASHING_DECODER = '''
import os, soundfile
_open = soundfile.SoundFile.__init__
def _crash_on_some_files(self, file, *args, **kwargs):
    if "crash-me" in str(file):
        os._exit(9)  # as a decoder bug or the OOM killer would end the process
    return _open(self, file, *args, **kwargs)
soundfile.SoundFile.__init__ = _crash_on_some_files
'''


def test_a_file_that_kills_its_decoding_process_fails_alone(small_model_path, tmp_path):
    files = _folder(tmp_path / "clips", 6, 2.0)
    crash = tmp_path / "clips" / "003-crash-me.wav"
    sf.write(crash, scene(2.0), SAMPLE_RATE)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_DECODER)  # loaded by every process, workers too
    env = tagger_env({"PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])})
    result = run_tagger("file", tmp_path / "clips", "-m", small_model_path, "-f", "jsonl", "--jobs", "2",
                        "--no-progress", env=env)
    assert result.returncode == 1, result.stderr
    said = [line for line in result.stderr.splitlines() if not line.startswith("preparing")]  # first-use notice
    assert said == [f"error: {crash}: cannot decode audio (the decoding process died on this file)"]
    records = _jsonl_text(result.stdout)
    assert [r["path"] for r in records] == sorted(str(p) for p in [*files, crash])  # in order, none lost
    assert [r["path"] for r in records if "error" in r] == [str(crash)]


def test_help_names_the_extras_to_install():
    text = run_tagger("file", "--help", env=tagger_env({"COLUMNS": "250"})).stdout
    assert "needs tagger[ray]" in text and "needs matplotlib: tagger[plot]" in text  # not eaten as markup
