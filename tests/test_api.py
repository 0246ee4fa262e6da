"""The Python API (`import tagger`, `tagger.hear`) used the way a user's script uses it: run as a
script in a fresh interpreter, its numbers checked against the command line's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_python, run_tagger

EXAMPLE = Path(__file__).resolve().parents[1] / "tagger" / "assets" / "example.ogg"

SCRIPT = """
import json, sys
import numpy as np, soundfile as sf
import tagger
light = "torch" not in sys.modules
model = tagger.load_model()
result = tagger.tag_file(model, sys.argv[1])
audio, rate = sf.read(sys.argv[1], dtype="float32")
windows, clip = tagger.tag(model, audio, rate)
pcm_windows, pcm_clip = tagger.tag(model, (audio * 32767).astype(np.int16), rate, window=2.0, hop=1.0)
json.dump({"light": light, "names": tagger.available_models(), "labels": model.labels,
           "clip": result.clip.tolist(), "windows": [[w.start, w.end] for w in result.windows],
           "array_clip": clip.tolist(), "array_windows": [[w.start, w.end] for w in windows],
           "pcm_windows": len(pcm_windows), "top": tagger.top_labels(model, result.clip, 3)}, sys.stdout)
"""

HEAR_SCRIPT = """
import json, sys
import numpy as np, soundfile as sf, torch
from tagger import hear
model = hear.load_model()
audio, rate = sf.read(sys.argv[1], dtype="float32")
assert rate == model.sample_rate
batch = torch.from_numpy(np.stack([audio[:rate * 10], audio[rate:rate * 11]]))
scene = hear.get_scene_embeddings(batch, model)
again = hear.get_scene_embeddings(batch[:1], model)
stamps, times = hear.get_timestamp_embeddings(batch[:, :rate * 2], model)
json.dump({"scene": list(scene.shape), "size": model.scene_embedding_size,
           "timestamp_size": model.timestamp_embedding_size, "classes": len(model.tagger.labels),
           "logits": scene[0, -len(model.tagger.labels):].tolist(), "same": torch.allclose(scene[:1], again, atol=1e-5),
           "stamps": list(stamps.shape), "times": times[0].tolist(), "distinct": bool((scene[0] - scene[1]).abs().max() > 1e-3)},
          sys.stdout)
"""


def run(script: str, *args: str) -> dict:
    done = run_python("-c", script, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def cli_json() -> dict:
    done = run_tagger("file", EXAMPLE, "-f", "json", "--no-progress")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_tag_file_and_tag_give_the_command_lines_numbers(cli_json):
    out = run(SCRIPT, str(EXAMPLE))
    assert out["light"]  # `import tagger` loads no torch
    assert out["names"][0] == "offline-50" and "passt-s-swa" in out["names"]
    (entry,) = cli_json["files"]
    cli_clip = np.array([entry["clip"][label] for label in out["labels"]])
    np.testing.assert_allclose(out["clip"], cli_clip, atol=1e-6)
    np.testing.assert_allclose(out["windows"], [[w["start"], w["end"]] for w in entry["windows"]], atol=1e-3)
    np.testing.assert_allclose(out["array_clip"], out["clip"], atol=1e-6)  # same audio, same path
    assert out["array_windows"] == out["windows"]
    assert out["pcm_windows"] == 19  # 20 s in 2 s windows every second
    assert [label for label, _ in out["top"]] == [item["label"] for item in entry["top"][:3]]


def test_hear_api_shapes_and_numbers():
    out = run(HEAR_SCRIPT, str(EXAMPLE))
    assert out["size"] == out["timestamp_size"] == 128 + 50  # offline-50: embedding 128, 50 classes
    assert out["scene"] == [2, out["size"]] and out["stamps"] == [2, 41, out["size"]]
    assert out["times"] == pytest.approx([50.0 * k for k in range(41)])
    assert out["same"] and out["distinct"]
