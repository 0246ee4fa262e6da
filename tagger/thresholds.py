"""Per-label thresholds files: fitted on labelled data by ``tagger calibrate``, read by
``--thresholds FILE`` (``tagger file`` events and ``tagger listen``).

A file is CSV with a header whose first two columns are ``label`` and ``threshold`` (what
``tagger calibrate`` writes; it adds the precision, recall and F1 reached on its data, and the
number of positives), or a JSON object ``{"label": threshold, ...}``. Labels match the model's
ignoring case; a label the model does not know is an error.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .errors import TaggerError

COLUMNS = ("label", "threshold", "precision", "recall", "f1", "positives")
MIN_THRESHOLD = 1e-6  # thresholds are in (0, 1]


@dataclass(frozen=True)
class Fitted:
    label: str
    threshold: float | None  # None: no positive clip of this label in the data (nothing to fit)
    precision: float
    recall: float
    f1: float
    positives: int


def fit_label(scores: np.ndarray, truth: np.ndarray, min_precision: float = 0.0) -> tuple[float, float, float, float] | None:
    """The threshold with the best F1 on one label's clip scores, among those whose precision is at
    least ``min_precision``: (threshold, precision, recall, f1), or None without positives or when
    no threshold reaches that precision. The threshold is a score seen in the data, so every clip
    scoring at least as much is called positive."""
    positives = int(truth.sum())
    if positives == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], truth[order].astype(np.float64)
    true_positives = np.cumsum(hits)
    called = np.arange(1, len(ranked) + 1)
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold calls every tied score positive
    precision = (true_positives / called)[last_of_tie]
    recall = (true_positives / positives)[last_of_tie]
    thresholds = ranked[last_of_tie]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    allowed = precision >= min_precision
    if not allowed.any():
        return None
    best = int(np.flatnonzero(allowed)[np.argmax(f1[allowed])])
    threshold = min(1.0, max(float(thresholds[best]), MIN_THRESHOLD))
    return threshold, float(precision[best]), float(recall[best]), float(f1[best])


def fit_thresholds(labels: Sequence[str], scores: np.ndarray, truth: np.ndarray,
                   min_precision: float = 0.0) -> list[Fitted]:
    """:func:`fit_label` for every label (``scores`` and ``truth``: ``[clips, labels]``)."""
    fitted = []
    for i, label in enumerate(labels):
        found = fit_label(scores[:, i], truth[:, i], min_precision)
        positives = int(truth[:, i].sum())
        fitted.append(Fitted(label, None, math.nan, math.nan, math.nan, positives) if found is None
                      else Fitted(label, *found, positives))
    return fitted


def write_thresholds(fitted: Sequence[Fitted], stream: IO[str]) -> None:
    """The CSV that ``--thresholds`` reads; labels without a fitted threshold are left out."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in fitted:
        if f.threshold is not None:
            writer.writerow([f.label, f"{f.threshold:.6f}", f"{f.precision:.4f}", f"{f.recall:.4f}",
                             f"{f.f1:.4f}", f.positives])


def read_thresholds(path: str | Path) -> dict[str, float]:
    """{label as written: threshold} from a CSV or JSON thresholds file; TaggerError when it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaggerError(f"{path}: cannot read the thresholds ({getattr(exc, 'strerror', None) or exc})") from None
    if text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise TaggerError(f"{path}: not a JSON thresholds object ({exc})") from None
        pairs = list(values.items())
    else:
        rows = list(csv.reader(text.splitlines()))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["label", "threshold"]:
            raise TaggerError(f"{path}: a thresholds CSV starts with the header label,threshold")
        pairs = [(row[0], row[1] if len(row) > 1 else "") for row in rows[1:] if row]
    result = {}
    for label, value in pairs:
        try:
            threshold = float(value)
        except (TypeError, ValueError):
            threshold = math.nan
        if not isinstance(label, str) or not 0.0 < threshold <= 1.0:
            raise TaggerError(f"{path}: the threshold of '{label}' must be a number in (0, 1], not {value!r}")
        result[label] = threshold
    return result
