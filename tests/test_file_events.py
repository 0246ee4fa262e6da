"""Events for files: `tagger file --events` decodes the windows as `tagger listen` does (same
events for the same audio, within one hop), and the event formats read back as their tools read
them: an Audacity label track, a Raven selection table, WebVTT captions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import run_tagger
from tagger.audio import load_audio
from tagger.embedded import example_clip

HOP = 1.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first 16 s of the example clip (music, the siren from 7 s, the dialing from 13 s) at 32 kHz: the
    siren passes the model's own threshold (0.70) only once it fills most of a 10 s window."""
    path = tmp_path_factory.mktemp("events") / "clip.wav"
    sf.write(path, load_audio(example_clip(), 32000)[: 16 * 32000], 32000)
    return path


@pytest.fixture(scope="module")
def file_events(clip) -> dict:
    run = run_tagger("file", clip, "--events", "--hop", HOP, "-f", "json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["files"][0]


def test_file_and_listen_give_the_same_events(clip, file_events):
    live = run_tagger("listen", "--input", clip, "--hop", HOP, "--format", "jsonl", timeout=120)
    assert live.returncode == 0, live.stderr
    ended = [r for r in map(json.loads, live.stdout.splitlines()) if r.get("event") == "offset"]
    from_listen = sorted((r["label"], r["onset"], r["offset"]) for r in ended)
    from_file = sorted((e["label"], e["onset"], e["offset"]) for e in file_events["events"])
    assert from_file and [label for label, *_ in from_file] == [label for label, *_ in from_listen]
    for (_, onset, offset), (_, live_onset, live_offset) in zip(from_file, from_listen):
        assert abs(onset - live_onset) <= HOP and abs(offset - live_offset) <= HOP
    assert {"Music", "Siren"} <= {label for label, *_ in from_file}


def test_events_leave_the_windows_and_clip_scores_as_they_were(clip, file_events):
    plain = run_tagger("file", clip, "--hop", HOP, "-f", "json")
    assert plain.returncode == 0, plain.stderr
    without = json.loads(plain.stdout)["files"][0]
    assert "events" not in without
    assert without["windows"] == file_events["windows"] and without["clip"] == file_events["clip"]
    for event in file_events["events"]:
        assert 0 <= event["onset"] < event["offset"] <= file_events["duration"] + 1e-6
        assert event["duration"] == pytest.approx(event["offset"] - event["onset"], abs=2e-3)
        assert event["peak"] >= 0.5  # it started at the threshold


def test_a_clip_shorter_than_the_window_keeps_its_one_window(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, load_audio(example_clip(), 32000)[: 3 * 32000], 32000)
    run = run_tagger("file", path, "--events", "--hop", HOP, "-f", "json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)["files"][0]
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0.0, 3.0)]
    assert isinstance(result["events"], list)


def test_the_audacity_label_track_reads_back(clip, file_events):
    run = run_tagger("file", clip, "-f", "audacity", "--hop", HOP)
    assert run.returncode == 0, run.stderr
    labels = []
    for line in run.stdout.splitlines():  # Audacity: start<TAB>end<TAB>label, seconds
        start, end, text = line.split("\t")
        labels.append((float(start), float(end), text))
    assert labels == [(e["onset"], e["offset"], f"{e['label']} {e['peak']:.2f}") for e in file_events["events"]]


def test_the_raven_selection_table_numbers_events_across_files(clip, file_events, tmp_path):
    out = tmp_path / "selections.txt"
    run = run_tagger("file", clip, clip, "-f", "raven", "--hop", HOP, "-o", out)
    assert run.returncode == 0, run.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [int(r["Selection"]) for r in rows] == list(range(1, 2 * len(file_events["events"]) + 1))
    for row, event in zip(rows, file_events["events"] * 2):
        assert row["View"] == "Spectrogram 1" and row["Channel"] == "1"
        assert float(row["Begin Time (s)"]) == pytest.approx(event["onset"])
        assert float(row["End Time (s)"]) == pytest.approx(event["offset"])
        assert float(row["Low Freq (Hz)"]) == 0 and float(row["High Freq (Hz)"]) == 16000
        assert row["Label"] == event["label"] and row["Begin File"] == str(clip)
        assert float(row["Probability"]) == pytest.approx(event["peak"], abs=1e-4)


def test_webvtt_captions_parse(clip, file_events, tmp_path):
    import webvtt

    out = tmp_path / "captions.vtt"
    run = run_tagger("file", clip, "-f", "webvtt", "--hop", HOP, "-o", out)
    assert run.returncode == 0, run.stderr
    captions = webvtt.read(str(out))
    assert [(c.start_in_seconds, c.end_in_seconds, c.text) for c in captions] == [
        (int(e["onset"]), int(e["offset"]), f"[{e['label']}] {e['peak']:.2f}") for e in file_events["events"]]
    assert [c.start for c in captions][0] == "00:00:00.000"


@pytest.mark.parametrize("args, message", [
    (["-f", "csv", "--events"], "-f csv holds the windows' probabilities"),
    (["-f", "audacity", "SECOND"], "-f audacity describes one audio file and 2 were given"),
    (["-f", "raven", "--only", "Doggo"], "unknown label 'Doggo' (did you mean 'Dog'"),
    (["--events", "--threshold", "1.5"], "threshold 1.5 is not in (0, 1]"),
])
def test_bad_event_options_are_one_line_usage_errors(clip, args, message):
    args = [str(clip) if a == "SECOND" else a for a in args]
    run = run_tagger("file", clip, *args)
    assert run.returncode == 2, run.stdout
    lines = [line for line in run.stderr.splitlines() if not line.startswith("preparing the ")]  # first-use notice
    assert len(lines) == 1 and message in lines[0]


def test_only_limits_the_events_to_the_labels_named(clip):
    run = run_tagger("file", clip, "--events", "--hop", HOP, "-f", "json", "--only", "music", "--smooth", "2",
                     "--min-duration", "2")
    assert run.returncode == 0, run.stderr
    events = json.loads(run.stdout)["files"][0]["events"]
    assert events and {e["label"] for e in events} == {"Music"}
    assert all(e["duration"] >= 2 - 1e-6 for e in events)
    assert np.isfinite([e["peak"] for e in events]).all()


def test_plot_draws_the_top_labels_and_the_events(clip, tmp_path):
    from matplotlib.image import imread

    out = tmp_path / "plots" / "clip.png"
    run = run_tagger("file", clip, "--hop", HOP, "--plot", out, "-k", 3, "-f", "json")
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 600
    gray = image[..., :3].mean(axis=2)
    assert (gray < 0.2).mean() > 0.01  # lines, bars and text drawn in black on white
    assert "events" in json.loads(run.stdout)["files"][0]  # the plot's events are in the output too


@pytest.mark.parametrize("setup, message", [
    ("two files", "--plot draws one audio file and 2 were given"),
    ("no matplotlib", "--plot needs matplotlib: pip install 'tagger[plot]'"),
])
def test_plot_refuses_what_it_cannot_draw(clip, tmp_path, setup, message):
    from conftest import run_python

    if setup == "two files":
        run = run_tagger("file", clip, clip, "--plot", tmp_path / "x.png")
    else:  # matplotlib hidden, as on a machine without the extra
        code = ("import sys; sys.modules['matplotlib'] = None; from tagger.cli import main; "
                f"sys.argv = ['tagger', 'file', {str(clip)!r}, '--plot', {str(tmp_path / 'x.png')!r}]; main()")
        run = run_python("-c", code)
    assert run.returncode == 2, run.stdout
    lines = [line for line in run.stderr.splitlines() if not line.startswith("preparing the ")]  # first-use notice
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_audacity_and_webvtt_write_one_file_per_input_into_a_folder(clip, file_events, tmp_path):
    twin = tmp_path / "other" / clip.name  # the same stem in another folder
    twin.parent.mkdir()
    twin.write_bytes(clip.read_bytes())
    for fmt, suffix in (("audacity", ".txt"), ("webvtt", ".vtt")):
        folder = tmp_path / fmt
        run = run_tagger("file", clip, twin, "-f", fmt, "--hop", HOP, "-o", folder)
        assert run.returncode == 0, run.stderr
        written = sorted(p.name for p in folder.iterdir())
        assert written == sorted([f"clip{suffix}", f"clip-2{suffix}"])
        single = run_tagger("file", clip, "-f", fmt, "--hop", HOP)
        assert (folder / f"clip{suffix}").read_text() == (folder / f"clip-2{suffix}").read_text() == single.stdout
    without = run_tagger("file", clip, twin, "-f", "webvtt")
    assert without.returncode == 2 and "name a folder with -o" in without.stderr
