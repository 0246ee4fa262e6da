"""The AudioSet ontology: `--rollup` adds parent classes (the highest label under each) to every
output, and `--only Animal` stands for every label under Animal."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_tagger
from tagger.embedded import example_clip
from tagger.labels import audioset_labels
from tagger.ontology import RollupBackend, descendants, labels_under


class Fixed:
    """A backend that returns fixed probabilities over the 527 AudioSet labels."""

    labels = audioset_labels()
    name = "fixed"

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        return np.tile(self.probabilities, (len(waveforms), 1))


def test_the_ontology_knows_parents_and_children():
    assert {"Dog", "Cat", "Bark", "Purr"} <= set(descendants("Domestic animals, pets"))
    assert "Dog" in descendants("Animal") and "Dog" not in descendants("Music")
    assert descendants("Bark") == [] and descendants("no such class") == []
    labels = audioset_labels()
    under = {labels[i] for i in labels_under(labels, "animal")}  # case ignored; the class itself counts
    assert {"Animal", "Dog", "Bark", "Bird", "Insect"} <= under and "Speech" not in under


def test_rollup_scores_each_parent_with_its_highest_label():
    labels = audioset_labels()
    p = np.full(len(labels), 0.01, np.float32)
    p[labels.index("Cough")] = 0.9
    p[labels.index("Purr")] = 0.4
    backend = RollupBackend(Fixed(p))
    out = backend.predict(np.zeros((2, 10), np.float32))
    assert out.shape == (2, len(backend.labels)) and backend.labels[: len(labels)] == list(labels)
    parents = dict(zip(backend.labels[len(labels):], out[0, len(labels):]))
    assert parents and "Animal" not in parents  # a label of the model already keeps its own score
    for name, score in parents.items():
        assert score == p[labels_under(labels, name)].max()
    assert parents["Respiratory sounds"] == parents["Human sounds"] == np.float32(0.9)  # above Cough
    assert backend.name == "fixed"  # everything else is the wrapped backend's


def test_file_rollup_and_only_a_parent_class():
    run = run_tagger("file", example_clip(), "--rollup", "-f", "json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    labels, result = document["labels"], document["files"][0]
    assert "Animal" in labels and "Musical instrument" in labels and len(labels) > 50
    model_labels = labels[:50]
    for parent in ("Animal", "Musical instrument", "Sounds of things"):
        children = [model_labels[i] for i in labels_under(model_labels, parent)]
        assert children and result["clip"][parent] == max(result["clip"][c] for c in children)
    assert all(len(w["probabilities"]) == len(labels) for w in result["windows"])
    only = run_tagger("file", example_clip(), "--events", "--hop", "1", "--only", "Musical instrument", "-f", "json")
    assert only.returncode == 0, only.stderr
    events = json.loads(only.stdout)["files"][0]["events"]
    instruments = {model_labels[i] for i in labels_under(model_labels, "Musical instrument")}
    assert events and {e["label"] for e in events} <= instruments and "Acoustic guitar" in {e["label"] for e in events}
