"""The AudioSet ontology: parent classes of a model's labels (``--rollup``) and the labels under a
class (``--only Animal``). Shipped as ``tagger/assets/audioset_ontology.json``, reduced to ids,
names and child ids (AudioSet ontology by Google, CC BY-SA 4.0).

A class may have several parents (the ontology is a directed acyclic graph): a class's
descendants are every class reachable through child ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np


@lru_cache(maxsize=1)
def _ontology() -> tuple[dict[str, str], dict[str, list[str]]]:
    """(name by id, child ids by id)."""
    text = resources.files("tagger.assets").joinpath("audioset_ontology.json").read_text(encoding="utf-8")
    classes = json.loads(text)["classes"]
    return {c["id"]: c["name"] for c in classes}, {c["id"]: list(c["children"]) for c in classes}


def _id_of(name: str) -> str | None:
    names, _ = _ontology()
    wanted = name.strip().lower()
    return next((i for i, n in names.items() if n.lower() == wanted), None)


def descendants(name: str) -> list[str]:
    """The names of every class under ``name`` (not itself), in ontology order; [] for a leaf or an
    unknown name."""
    names, children = _ontology()
    root = _id_of(name)
    seen: list[str] = []
    stack = list(children.get(root, [])) if root else []
    while stack:
        current = stack.pop(0)
        if current not in seen:
            seen.append(current)
            stack.extend(children.get(current, []))
    return [names[i] for i in seen]


def is_class(name: str) -> bool:
    return _id_of(name) is not None


def labels_under(labels: Sequence[str], name: str) -> list[int]:
    """Indices of the model's labels that are ``name`` or lie under it (case ignored)."""
    wanted = {name.strip().lower(), *(n.lower() for n in descendants(name))}
    return [i for i, label in enumerate(labels) if label.lower() in wanted]


class RollupBackend:
    """A backend whose outputs also hold the parent classes of its labels (``--rollup``): each
    parent's score is the highest of the model's labels under it, so every output, the events and
    ``--only`` treat parents like labels. Everything else is the wrapped backend's."""

    def __init__(self, backend) -> None:
        self.backend = backend
        parents = [(name, labels_under(backend.labels, name)) for name in _parent_names(backend.labels)]
        self.groups = [np.array(indices) for _, indices in parents]
        self.labels = [*backend.labels, *(name for name, _ in parents)]

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        probabilities = self.backend.predict(waveforms)
        if not self.groups:
            return probabilities
        parents = np.stack([probabilities[:, group].max(axis=1) for group in self.groups], axis=1)
        return np.concatenate([probabilities, parents.astype(probabilities.dtype)], axis=1)


def _parent_names(labels: Sequence[str]) -> list[str]:
    """The ontology classes that are not labels but have labels under them, in ontology order."""
    names, _ = _ontology()
    known = {label.lower() for label in labels}
    return [name for name in names.values() if name.lower() not in known and labels_under(labels, name)]
