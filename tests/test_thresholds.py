"""Thresholds that mean something: `tagger calibrate` fits one per label on labelled audio (best F1,
optionally at a minimum precision), and `--thresholds FILE` uses them for events."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import run_tagger
from tagger.audio import load_audio
from tagger.embedded import example_clip
from tagger.errors import TaggerError
from tagger.thresholds import fit_label, read_thresholds

# The example clip: 0-7 s piano, 7-13 s a siren, 13-20 s DTMF dialing.
SECTIONS = [(0.5, 3.5, "Music;Piano"), (3.5, 6.5, "Music;Piano"), (7.5, 10.0, "Siren"), (10.0, 12.5, "Siren"),
            (13.5, 16.5, "Telephone dialing, DTMF"), (16.5, 19.5, "Telephone dialing, DTMF")]


def test_fit_label_picks_the_best_f1_threshold():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2])
    truth = np.array([1, 1, 0, 1, 0, 0, 1])
    # Calling the top 4 positive: precision 3/4, recall 3/4 (F1 .75); the top 2: 1.0 and 0.5 (F1 .667).
    assert fit_label(scores, truth) == pytest.approx((0.6, 0.75, 0.75, 0.75))
    # At a precision of at least 0.9 only the top 2 (or top 1) qualify: the top 2 has the better F1.
    assert fit_label(scores, truth, min_precision=0.9) == pytest.approx((0.8, 1.0, 0.5, 2 / 3))
    assert fit_label(scores, np.zeros(7)) is None
    # Tied scores are called together: the threshold 0.5 calls both clips positive.
    assert fit_label(np.array([0.5, 0.5, 0.1]), np.array([1, 0, 0])) == pytest.approx((0.5, 0.5, 1.0, 2 / 3))


def test_thresholds_files_read_as_csv_or_json_and_refuse_nonsense(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("label,threshold,precision\nDog,0.3,0.9\nSiren,0.8,1\n")
    json_file = tmp_path / "t.json"
    json_file.write_text('{"Dog": 0.3, "Siren": 0.8}')
    assert read_thresholds(csv_file) == read_thresholds(json_file) == {"Dog": 0.3, "Siren": 0.8}
    for text, message in [("name,value\nDog,0.3\n", "starts with the header label,threshold"),
                          ("label,threshold\nDog,1.5\n", "must be a number in (0, 1]"),
                          ('{"Dog": "high"}', "must be a number in (0, 1]"), ("{oops", "not a JSON")]:
        (tmp_path / "bad").write_text(text)
        with pytest.raises(TaggerError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_thresholds(tmp_path / "bad")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    audio = load_audio(example_clip(), 32000)
    rows = []
    for n, (start, end, labels) in enumerate(SECTIONS):
        path = root / f"clip{n}.wav"
        sf.write(path, audio[int(start * 32000):int(end * 32000)], 32000)
        rows.append({"path": path.name, "labels": labels})
    manifest = root / "labels.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_calibrate_writes_thresholds_that_reach_the_f1_it_reports(labelled, tmp_path):
    out = tmp_path / "thresholds.csv"
    run = run_tagger("calibrate", "offline-50", labelled, "--label-separator", ";", "-o", out, "--no-progress")
    assert run.returncode == 0, run.stderr
    with open(out, newline="") as handle:
        rows = {row["label"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"Music", "Piano", "Siren", "Telephone dialing, DTMF"}  # the labels with positives
    assert "labels left out (no positive clip)" in run.stderr.replace("label(s)", "labels")
    clips = [labelled.parent / f"clip{n}.wav" for n in range(len(SECTIONS))]
    tagged = run_tagger("file", *clips, "-f", "json")
    assert tagged.returncode == 0, tagged.stderr
    files = json.loads(tagged.stdout)["files"]
    for label, row in rows.items():
        called = np.array([f["clip"][label] >= float(row["threshold"]) for f in files])
        truth = np.array([label in labels.split(";") for _, _, labels in SECTIONS])
        tp = int((called & truth).sum())
        precision, recall = tp / called.sum(), tp / truth.sum()
        assert precision == pytest.approx(float(row["precision"]), abs=1e-3)
        assert recall == pytest.approx(float(row["recall"]), abs=1e-3)
        assert int(row["positives"]) == truth.sum()
    # The file drives events: every label at its own threshold.
    events = run_tagger("file", example_clip(), "--thresholds", out, "--hop", 1, "-f", "json")
    assert events.returncode == 0, events.stderr
    assert "events" not in json.loads(events.stdout)["files"][0]  # --thresholds alone does not turn events on
    events = run_tagger("file", example_clip(), "--thresholds", out, "--hop", 1, "-f", "audacity",
                        "--label-threshold", "Siren=0.99")
    assert events.returncode == 0, events.stderr
    for line in events.stdout.splitlines():
        label = line.split("\t")[2].rsplit(" ", 1)[0]
        peak = float(line.rsplit(" ", 1)[1])
        limit = 0.99 if label == "Siren" else float(rows[label]["threshold"]) if label in rows else 0.5
        assert peak >= round(limit, 2) - 0.005


def test_a_thresholds_file_with_an_unknown_label_is_a_usage_error(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"Doggo": 0.3}')
    run = run_tagger("file", example_clip(), "--events", "--thresholds", bad)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if not line.startswith("preparing the ")]  # first-use notice
    assert len(lines) == 1 and "unknown label 'Doggo' (did you mean 'Dog'" in lines[0]


def test_a_model_file_carries_its_own_thresholds(small_model, scene_wav, tmp_path):
    from tagger.checkpoint import save_model

    thresholds = {"low tone": 0.2, "noise": 0.9, "chirp": 0.35}
    plain, carrying = tmp_path / "plain.pt", tmp_path / "carrying.pt"
    save_model(small_model, plain)
    save_model(small_model, carrying, metadata={"thresholds": thresholds})
    as_file = tmp_path / "thresholds.json"
    as_file.write_text(json.dumps(thresholds))
    common = ("--events", "--hop", "0.5", "--window", "2", "-f", "json")

    def events(*args) -> list:
        run = run_tagger("file", scene_wav, *common, *args)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["files"][0]["events"]

    own = events("-m", carrying)  # the cached ONNX graph carries the model file's metadata
    assert own == events("-m", plain, "--thresholds", as_file)
    assert own == events("-m", carrying, "--backend", "torch")
    assert own != events("-m", plain)  # 0.5 everywhere differs on this scene
    # A --threshold given for every label replaces the model's own.
    assert events("-m", carrying, "--threshold", "0.5") == events("-m", plain)
