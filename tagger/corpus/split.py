"""The source-disjoint train/held-out split: whole groups of recordings go to one side.

For every class, about ``fraction`` of its groups (at least one, never all) are held out. Classes
with the fewest groups are split first, because a group with several labels counts for each of
them. The order inside a class is a hash of (seed, group), so the split is stable and seeded.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from .classes import CLASSES
from .source import Source

TRAIN, HELDOUT = "train", "heldout"


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def split_groups(sources: list[Source], fraction: float, seed: int) -> dict[str, str]:
    """``{group: "train" | "heldout"}`` for every group of the sources.

    A fraction of 0 holds nothing out: every group trains (the final model, once the recipe has been
    measured on a split).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError("the held-out fraction must be at least 0 and below 1")
    if fraction == 0.0:
        return {source.group: TRAIN for source in sources}
    labels_of: dict[str, set[str]] = defaultdict(set)
    for source in sources:
        labels_of[source.group].update(source.labels)
    groups_of: dict[str, list[str]] = defaultdict(list)
    for group, labels in labels_of.items():
        for label in labels or {""}:  # "" gathers the distractors
            groups_of[label].append(group)
    assigned: dict[str, str] = {}
    order = sorted(groups_of, key=lambda label: (len(groups_of[label]), label))
    for label in order:
        groups = sorted(groups_of[label], key=lambda group: _rank(seed, group))
        if len(groups) < 2:
            continue  # one recording: it can only teach, the class gets no held-out measure
        wanted = max(1, round(len(groups) * fraction))
        held = sum(assigned.get(group) == HELDOUT for group in groups)
        free = [group for group in groups if group not in assigned]
        if not any(assigned.get(group) == TRAIN for group in groups):
            free = free[:-1]  # keep at least one recording to train on
        for group in free[: max(0, wanted - held)]:
            assigned[group] = HELDOUT
    for group in labels_of:
        assigned.setdefault(group, TRAIN)
    return assigned


def split_summary(sources: list[Source], assignment: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per class, how many groups each side has (for the corpus report)."""
    counts: dict[str, dict[str, set[str]]] = {label: {TRAIN: set(), HELDOUT: set()} for label in CLASSES}
    for source in sources:
        for label in source.labels:
            counts[label][assignment[source.group]].add(source.group)
    return {label: {side: len(groups) for side, groups in sides.items()} for label, sides in counts.items()}
