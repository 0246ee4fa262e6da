"""The file loop (`tagger.files`): targets probed once, results and failures reported in order,
one bad file never stopping the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tagger import audio, files
from tagger.files import probe_targets, tag_files
from tagger.tagging import WindowSettings
from tagger.torch_backend import TorchBackend

from conftest import SAMPLE_RATE, scene


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def starting(self, target) -> None:
        self.events.append(("start", Path(target.path).name))

    def advanced(self, seconds: float) -> None:
        self.events.append(("advance", seconds))

    def finished(self, result) -> None:
        self.events.append(("done", Path(result.path).name, len(result.windows)))

    def failed(self, path: str, message: str) -> None:
        self.events.append(("failed", Path(path).name, message))


def test_each_file_is_probed_once_and_reported_in_order(small_model, tmp_path, monkeypatch):
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "a.wav", scene(3.0, seed=1), SAMPLE_RATE)
    sf.write(folder / "b.flac", scene(12.0, seed=2), SAMPLE_RATE)
    (folder / "c.wav").write_bytes(b"RIFF not really a wave file")
    calls: list[str] = []
    real_probe = audio.probe
    monkeypatch.setattr(files, "probe", lambda path: calls.append(Path(path).name) or real_probe(path))
    monkeypatch.setattr("tagger.audio.probe", lambda path: calls.append(Path(path).name) or real_probe(path))

    targets = probe_targets([folder, tmp_path / "missing.wav"])
    assert [Path(t.path).name for t in targets] == ["a.wav", "b.flac", "c.wav", "missing.wav"]
    assert targets[1].seconds == 12.0 and targets[2].problem and targets[3].problem
    recorder = Recorder()
    failures = tag_files(targets, TorchBackend(small_model, device="cpu"), WindowSettings(), 8, "max", recorder)

    assert failures == 2
    assert sorted(calls) == ["a.wav", "b.flac", "c.wav"]  # once each, never again while tagging
    steps = [e for e in recorder.events if e[0] != "advance"]
    assert [e[:2] for e in steps] == [("start", "a.wav"), ("done", "a.wav"), ("start", "b.flac"),
                                      ("done", "b.flac"), ("start", "c.wav"), ("failed", "c.wav"),
                                      ("start", "missing.wav"), ("failed", "missing.wav")]
    assert steps[3][2] == 2  # 12 s: windows at 0 and 5.02 s (10.05 s long, the second ends the file)
    assert "no such file" in steps[7][2]
    advanced = sum(e[1] for e in recorder.events if e[0] == "advance")
    assert np.isclose(advanced, 15.0, atol=1e-6)
