"""Label vocabularies shipped with the package."""

from __future__ import annotations

import csv
import functools
from importlib import resources

AUDIOSET_CLASS_COUNT = 527


@functools.cache
def audioset_labels() -> tuple[str, ...]:
    """The 527 AudioSet display names in the output order of AudioSet-trained models."""
    text = resources.files("tagger.assets").joinpath("audioset_labels.csv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))


def default_labels(num_classes: int) -> list[str]:
    """AudioSet names for 527-class models, numbered placeholders otherwise."""
    if num_classes == AUDIOSET_CLASS_COUNT:
        return list(audioset_labels())
    return [f"class_{i}" for i in range(num_classes)]
