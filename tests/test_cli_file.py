"""`tagger file` as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REFERENCE_CHECKPOINT, SAMPLE_RATE, SMALL_LABELS, run_tagger, scene, start_tagger, tone
from tagger.audio import load_audio
from tagger.checkpoint import load_checkpoint
from tagger.labels import audioset_labels



def assert_one_line_errors(stderr: str) -> None:
    assert "Traceback" not in stderr
    for line in stderr.strip().splitlines():
        assert line.startswith("error: "), line


def model_probabilities(model_path: Path, audio_path: Path) -> np.ndarray:
    model = load_checkpoint(model_path)
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(load_audio(audio_path))[None])
    return logits.sigmoid()[0].numpy()


def test_reference_parity_through_the_cli(tmp_path):
    """The fixture's official weights, the fixture's audio, the CLI: the reference probabilities."""
    reference = torch.load(REFERENCE_CHECKPOINT, weights_only=True)
    checkpoint = tmp_path / "tiny-official.pt"
    torch.save(reference["state_dict"], checkpoint)
    paths = []
    for key in ("wave", "wave_short"):
        path = tmp_path / f"{key}.wav"
        sf.write(path, reference[key][0].numpy(), SAMPLE_RATE, subtype="FLOAT")
        paths.append(path)
    result = run_tagger("file", *paths, "-m", checkpoint, "--num-heads", "4", "--format", "json")
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    for record, key in zip(files, ("logits", "logits_short")):
        assert len(record["windows"]) == 1  # no longer than the context: one pass, no padding
        expected = reference[key][0].sigmoid().numpy()
        got = np.array([record["clip"][f"class_{i}"] for i in range(10)])
        assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("seconds", [7.3, 10.05])  # 10.05 s: the longest input the 99-column grid takes
def test_clip_within_the_context_is_one_forward_pass_without_padding(small_model_path, tmp_path, seconds):
    path = tmp_path / "clip.wav"
    sf.write(path, scene(seconds), SAMPLE_RATE, subtype="FLOAT")
    result = run_tagger("file", path, "-m", small_model_path, "-f", "json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)["files"][0]
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0.0, seconds)]
    expected = model_probabilities(small_model_path, path)
    got = np.array([record["clip"][label] for label in SMALL_LABELS])
    assert np.abs(got - expected).max() < 1e-5


def test_long_file_uses_sliding_windows_and_max_pooling(small_model_path, tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, scene(23.0, rate=44100), 44100)
    result = run_tagger("file", path, "-m", small_model_path, "-f", "json", "--window", "4", "--hop", "3")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["window"], document["hop"]) == (4.0, 3.0)
    record = document["files"][0]
    assert record["sample_rate"] == 44100 and record["duration"] == pytest.approx(23.0, abs=1e-3)
    spans = [(w["start"], w["end"]) for w in record["windows"]]
    assert spans == [(s, s + 4.0) for s in range(0, 19, 3)] + [(19.0, 23.0)]
    windows = np.array([w["probabilities"] for w in record["windows"]])
    clip = np.array([record["clip"][label] for label in document["labels"]])
    np.testing.assert_allclose(clip, windows.max(axis=0), atol=1e-6)
    mean = run_tagger("file", path, "-m", small_model_path, "-f", "json", "--window", "4", "--hop", "3",
                  "--pooling", "mean")
    mean_clip = json.loads(mean.stdout)["files"][0]["clip"]
    np.testing.assert_allclose([mean_clip[label] for label in document["labels"]], windows.mean(axis=0),
                               atol=1e-5)


def test_batching_does_not_change_results(small_model_path, tmp_path):
    path = tmp_path / "batch.wav"
    sf.write(path, scene(30.0), SAMPLE_RATE)
    outputs = []
    for batch in ("1", "5"):
        result = run_tagger("file", path, "-m", small_model_path, "-f", "json", "--batch-size", batch)
        assert result.returncode == 0, result.stderr
        outputs.append(np.array([w["probabilities"] for w in json.loads(result.stdout)["files"][0]["windows"]]))
    assert outputs[0].shape == (5, len(SMALL_LABELS))  # 0-10, 5-15, 10-20, 15-25, 20-30
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


FORMATS = [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]


def test_formats_rates_and_channels_in_one_batch_with_bad_files(small_model_path, tmp_path):
    written = []
    for (ext, subtype), rate, channels in zip(
            FORMATS * 2, [8000, 16000, 22050, 44100, 48000, 88200, 96000, 32000], [1, 2, 3, 4, 5, 6, 7, 8]):
        if ext == "mp3":  # MPEG audio: at most 48 kHz and 2 channels
            rate, channels = min(rate, 48000), min(channels, 2)
        data = np.stack([tone(440 * (c + 1), 2.5, rate) for c in range(channels)], axis=1)
        path = tmp_path / f"{ext}_{rate}_{channels}ch.{ext}"
        sf.write(path, data, rate, subtype=subtype)
        written.append((path, rate, channels))
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (tmp_path / "notes.txt.mp3").write_text("this is text")
    args = [p for p, _, _ in written[:4]] + [tmp_path / "broken.wav", tmp_path / "notes.txt.mp3",
                                             tmp_path / "missing.wav"] + [p for p, _, _ in written[4:]]
    result = run_tagger("file", *args, "-m", small_model_path, "-f", "jsonl")
    assert result.returncode == 1
    assert_one_line_errors(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 3
    records = [json.loads(line) for line in result.stdout.splitlines()]
    tagged = {r["path"]: r for r in records if "error" not in r}
    assert {r["path"] for r in records if "error" in r} == {
        str(tmp_path / "broken.wav"), str(tmp_path / "notes.txt.mp3"), str(tmp_path / "missing.wav")}
    for path, rate, channels in written:
        record = tagged[str(path)]
        assert (record["sample_rate"], record["channels"]) == (rate, channels)
        assert record["duration"] == pytest.approx(2.5, abs=0.06)  # mp3 may add decoder padding
        assert len(record["clip"]) == len(SMALL_LABELS)


def test_directories_are_searched_recursively_and_written_to_a_file(small_model_path, tmp_path):
    root = tmp_path / "collection"
    (root / "a" / "b").mkdir(parents=True)
    sf.write(root / "one.wav", tone(300, 1.0), SAMPLE_RATE)
    sf.write(root / "a" / "b" / "two.flac", tone(600, 1.5), SAMPLE_RATE)
    (root / "a" / "readme.txt").write_text("not audio, ignored")
    out = tmp_path / "results.csv"
    result = run_tagger("file", root, "-m", small_model_path, "-f", "csv", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {(Path(r["path"]).name, r["scope"]) for r in rows} == {("one.wav", "clip"), ("one.wav", "window"),
                                                                  ("two.flac", "clip"), ("two.flac", "window")}
    assert set(SMALL_LABELS) <= set(rows[0])
    clip_ends = {Path(r["path"]).name: float(r["end"]) for r in rows if r["scope"] == "clip"}
    assert clip_ends == pytest.approx({"one.wav": 1.0, "two.flac": 1.5})


def test_table_output_shows_labels_and_timeline(small_model_path, tmp_path):
    path = tmp_path / "scene.wav"
    sf.write(path, scene(25.0), SAMPLE_RATE)
    result = run_tagger("file", path, "-m", small_model_path, "--top-k", "3")
    assert result.returncode == 0, result.stderr
    assert "scene.wav" in result.stdout and "timeline" in result.stdout
    shown = [label for label in SMALL_LABELS if label in result.stdout]
    assert len(shown) >= 3


def test_official_checkpoint_prints_audioset_names(official_527_path, scene_wav):
    result = run_tagger("file", scene_wav, "-m", official_527_path, "-f", "json", "-k", "5")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)["files"][0]
    assert list(record["clip"]) == list(audioset_labels())
    assert all(t["label"] in audioset_labels() for t in record["top"])


@pytest.mark.parametrize("args, code, message", [
    (["--format", "xml"], 2, "'xml' is not one of"),
    (["--window", "12"], 2, "longer than the model's context"),
    (["--hop", "0"], 2, "--hop must be a number of seconds above 0"),
    (["--hop", "inf"], 2, "--hop must be a number of seconds above 0"),
    (["--window", "nan"], 2, "--window must be a number of seconds above 0"),
    (["--pooling", "median"], 2, "'median' is not one of"),
])
def test_bad_options_give_one_line_errors(small_model_path, scene_wav, args, code, message):
    result = run_tagger("file", scene_wav, "-m", small_model_path, *args)
    assert result.returncode == code
    assert message in result.stderr
    assert_one_line_errors(result.stderr)


def test_bad_model_gives_one_line_error(scene_wav, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_text("nope")
    for model in (broken, tmp_path / "absent.pt", "no-such-model"):
        result = run_tagger("file", scene_wav, "-m", model)
        assert result.returncode == 1
        assert_one_line_errors(result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_offline_registry_model_gives_one_line_error(scene_wav, tmp_path, monkeypatch):
    """Naming a registry model that is not cached, with no network: a clear error, no traceback."""
    monkeypatch.setenv("TAGGER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # a closed port: behave as offline
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    result = run_tagger("file", scene_wav, "-m", "passt-s-swa", "--no-progress")
    assert result.returncode == 1
    assert_one_line_errors(result.stderr)
    assert "cannot download passt-s-swa" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_non_finite_audio_is_an_error_and_the_output_stays_strict(small_model_path, scene_wav, tmp_path, fmt):
    bad = tmp_path / "nan.wav"
    samples = np.zeros(SAMPLE_RATE, np.float32)
    samples[123] = np.nan
    sf.write(bad, samples, SAMPLE_RATE, subtype="FLOAT")
    result = run_tagger("file", str(bad), str(scene_wav), "-m", str(small_model_path), "-f", fmt, "--no-progress")
    assert result.returncode == 1
    assert_one_line_errors(result.stderr)
    assert f"{bad}: cannot decode audio (holds NaN or infinite samples)" in result.stderr
    if fmt == "json":
        document = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
        assert [f["path"] for f in document["files"]] == [str(scene_wav)]
        assert [e["path"] for e in document["errors"]] == [str(bad)]
    else:
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert len(rows) > 1 and all(row[0] == str(scene_wav) for row in rows[1:])
        assert not any(cell.lower() in ("nan", "inf", "-inf") for row in rows for cell in row)


def _interrupt_when(process: subprocess.Popen, ready, sig: int) -> None:
    import time

    deadline = time.monotonic() + 120
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(sig)
    process.wait(timeout=120)


@pytest.mark.parametrize("sig, code, said", [(15, 143, "terminated"), (2, 130, "interrupted")])
def test_an_interrupted_output_file_keeps_the_finished_results(small_model_path, tmp_path, sig, code, said):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        sf.write(folder / f"{i:02d}.wav", scene(8.0), SAMPLE_RATE)
    out = tmp_path / "out.jsonl"
    out.write_text("the old results\n")
    process = start_tagger("file", folder, "-m", small_model_path, "-f", "jsonl", "-o", out, "--window", "1",
                           "--hop", "0.5", "--no-progress")

    def one_result_written() -> bool:
        return any(p.read_text().count("\n") >= 1 for p in tmp_path.glob(".out.jsonl.*.tmp"))

    _interrupt_when(process, one_result_written, sig)
    stderr = process.stderr.read()
    assert process.returncode == code, stderr
    lines = out.read_text().splitlines()
    assert 1 <= len(lines) < 40
    assert all(json.loads(line)["path"].startswith(str(folder)) for line in lines)
    assert not list(tmp_path.glob(".out.jsonl.*"))
    assert f"error: interrupted: {out} holds the results finished so far" in stderr
    assert stderr.strip().splitlines()[-1] == f"error: {said}" and "Traceback" not in stderr


def test_output_to_a_device_is_written_in_place(small_model_path, scene_wav):
    result = run_tagger("file", str(scene_wav), "-m", str(small_model_path), "-f", "json", "-o", "/dev/full",
                    "--no-progress")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: /dev/full: cannot write (No space left on device)"
    assert Path("/dev/full").is_char_device()


def test_links_pipes_and_devices_are_named_for_what_they_are(small_model_path, scene_wav, tmp_path):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "broken").symlink_to(tmp_path / "missing.wav")
    os.mkfifo(tmp_path / "fifo")
    result = run_tagger("file", tmp_path / "loop1", tmp_path / "broken", tmp_path / "fifo", "/dev/stdin",
                    scene_wav, "-m", small_model_path, "-f", "json", "--no-progress")
    assert result.returncode == 1
    assert_one_line_errors(result.stderr)
    reasons = {Path(e["path"]).name: e["error"] for e in json.loads(result.stdout)["errors"]}
    assert reasons["loop1"].endswith("cannot decode audio (symbolic link loop)")
    assert reasons["broken"].endswith("cannot decode audio (broken symbolic link)")
    for name in ("fifo", "stdin"):
        assert reasons[name].endswith("(not a regular file: a pipe, socket or device)"), reasons
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == [str(scene_wav)]


def test_no_arguments_print_the_help_without_an_error_line():
    result = run_tagger()
    assert result.returncode == 2
    assert "Usage:" in result.stdout and "listen" in result.stdout and result.stderr == ""


def _bad_input_corpus(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Generated bad inputs: {file: expected error} and the truncated files (tagged with a warning)."""
    folder.mkdir()
    sound = scene(4.0)
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        samples = sound.copy()
        samples[500] = value
        sf.write(folder / name, samples, SAMPLE_RATE, subtype="FLOAT")
    truncated = []
    for suffix in ("wav", "flac", "ogg"):
        sf.write(folder / f"whole.{suffix}", sound, SAMPLE_RATE)
        data = (folder / f"whole.{suffix}").read_bytes()
        (folder / f"half.{suffix}").write_bytes(data[: len(data) // 2])
        (folder / f"whole.{suffix}").unlink()
        truncated.append(f"half.{suffix}")
    (folder / "fake.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"not really audio" * 8)
    (folder / "text.flac").write_text("hello, I am not a FLAC file\n")
    os.mkfifo(folder / "pipe.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    errors = {"nan.wav": "holds NaN or infinite samples", "inf.wav": "holds NaN or infinite samples",
              "fake.wav": "cannot decode audio", "text.flac": "cannot decode audio",
              "pipe.wav": "not a regular file", "loop.wav": "symbolic link loop"}
    return errors, truncated


def test_a_batch_of_bad_inputs_gives_strict_json_and_names_every_bad_file_once(small_model_path, scene_wav,
                                                                             tmp_path):
    errors, truncated = _bad_input_corpus(tmp_path / "bad")
    paths = [tmp_path / "bad" / name for name in sorted([*errors, *truncated])]
    result = run_tagger("file", *paths, scene_wav, "-m", small_model_path, "-f", "json", "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    failed = {Path(e["path"]).name: e["error"] for e in document["errors"]}
    assert sorted(failed) == sorted(errors)
    for name, reason in errors.items():
        assert reason in failed[name], (name, failed[name])
    tagged = {Path(f["path"]).name: f for f in document["files"]}
    assert sorted(tagged) == sorted([*truncated, scene_wav.name])
    for name in truncated:  # what decodes is tagged, with a warning
        assert tagged[name]["warnings"] and 0.5 < tagged[name]["duration"] < 3.5, tagged[name]
    assert tagged[scene_wav.name]["warnings"] == []
    lines = result.stderr.strip().splitlines()
    for name in [*errors, *truncated]:
        assert sum(f"/{name}: " in line for line in lines) == 1, (name, lines)
    assert all(line.startswith(("error: ", "warning: ")) for line in lines)


def test_the_progress_bar_does_not_stick_to_the_results_in_a_terminal(tmp_path):
    """In a terminal (a pty from `script`, rendered by pyte) each table starts on a line of its own.
    The embedded model on the 20 s example clip takes long enough for the bar to be drawn."""
    import shlex
    import shutil

    import pyte

    shutil.copy(Path(__file__).resolve().parents[1] / "tagger" / "assets" / "example.ogg", tmp_path / "clip.ogg")
    command = " ".join(shlex.quote(str(a)) for a in
                       (sys.executable, "-m", "tagger", "file", "clip.ogg", "clip.ogg", "--window", "2"))
    raw = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=300,
                         cwd=tmp_path, env={**os.environ, "COLUMNS": "120", "LINES": "60"}).stdout
    screen = pyte.Screen(120, 200)
    pyte.ByteStream(screen).feed(raw.replace(b"\n", b"\r\n"))
    lines = [line.rstrip() for line in screen.display if line.strip()]
    titles = [line for line in lines if "(0:20.0, 32 kHz" in line]
    assert len(titles) == 2 and all(line.startswith("clip.ogg") for line in titles), lines[:6]
    assert not any("%" in line for line in lines), lines


def test_output_into_a_missing_folder_creates_it_as_export_does(small_model_path, scene_wav, tmp_path):
    out = tmp_path / "new" / "folder" / "tags.json"
    result = run_tagger("file", scene_wav, "-m", small_model_path, "-f", "json", "-o", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["files"][0]["path"] == str(scene_wav)
    assert [p.name for p in out.parent.iterdir()] == ["tags.json"]


def test_shell_completion_completes_commands_options_and_values():
    import os
    import subprocess
    import sys
    from pathlib import Path

    tagger = Path(sys.executable).parent / "tagger"  # the console script, as a shell calls it

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_TAGGER_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        done = subprocess.run([str(tagger)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("tagger fi") == ["file"]
    assert complete("tagger file --prec") == ["--precision"]
    assert complete("tagger file --precision ") == ["fp32", "bf16", "int8", "fast"]
    script = subprocess.run([str(tagger), "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert "_TAGGER_COMPLETE" in script.stdout and "complete " in script.stdout
