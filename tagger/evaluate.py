"""``tagger eval``: score a model on a labelled dataset with the exact inference path of ``tagger file``.

Each clip is decoded, windowed and pooled as ``tagger file`` does it, so the numbers are those of the
scores a user gets; then per-class average precision and ROC-AUC are computed against the labels.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np
from rich.console import Console
from rich.table import Table

from .data import BadClip, ManifestFormat, check_labels, error_reason, read_examples, target_matrix
from .errors import TaggerError
from .formatting import metric_cell
from .metrics import Metrics, evaluate_scores
from .backends import Backend
from .tagging import WindowSettings, tag_file


@dataclass
class EvalResult:
    model: str
    labels: list[str]
    clips: int
    multi_label: bool
    metrics: Metrics
    skipped: list[BadClip]

    def classes(self) -> list[dict]:
        """Per-class rows, best AP first; classes without positives (no AP) last."""
        rows = [{"label": label, "positives": n, "ap": _number(ap), "auc": _number(auc)}
                for label, n, ap, auc in zip(self.labels, self.metrics.positives,
                                             self.metrics.per_class_ap, self.metrics.per_class_auc)]
        return sorted(rows, key=lambda r: (r["ap"] is None, -(r["ap"] or 0.0), r["label"]))

    def to_json(self) -> dict:
        return {"model": self.model, "clips": self.clips,
                "task": "multi-label" if self.multi_label else "single-label",
                "overall": self.metrics.summary(), "classes": self.classes(),
                "skipped": [{"path": bad.path, "reason": bad.reason} for bad in self.skipped]}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def score_clips(backend: Backend, paths: list[str], settings: WindowSettings, batch_size: int | None,
                pooling: str, on_clip: Callable[[], None] | None = None
                ) -> tuple[np.ndarray, list[int], list[BadClip]]:
    """Clip scores of every file as ``tagger file`` computes them (``[scored, classes]``), the indices
    of the scored files, and the files that could not be decoded (left out, with the reason)."""
    scores, scored, bad = [], [], []
    for index, path in enumerate(paths):
        try:
            scores.append(tag_file(path, backend, settings, batch_size, pooling).clip)
            scored.append(index)
        except TaggerError as exc:
            bad.append(BadClip(path, error_reason(exc, path)))
        if on_clip:
            on_clip()
    matrix = np.stack(scores) if scores else np.zeros((0, len(backend.labels)), np.float32)
    return matrix, scored, bad


def labelled_scores(backend: Backend, data: str, fmt: ManifestFormat, settings: WindowSettings,
                    batch_size: int | None, pooling: str, on_clip: Callable[[], None] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[BadClip]]:
    """Clip scores of every clip of ``data`` (manifest or class folders) as ``tagger file`` computes
    them and the true labels, both ``[clips, classes]``; clips that cannot be decoded are left out
    and listed."""
    examples = read_examples(data, fmt)
    check_labels(examples, backend.labels, data)
    scores, scored, skipped = score_clips(backend, [e.path for e in examples], settings, batch_size,
                                          pooling, on_clip)
    if not scored:
        raise TaggerError(f"{data}: none of the {len(examples)} clips could be decoded "
                          f"(e.g. {skipped[0].path}: {skipped[0].reason})")
    return scores, target_matrix([examples[i] for i in scored], backend.labels), skipped


def evaluate_dataset(backend: Backend, data: str, fmt: ManifestFormat,
                     settings: WindowSettings, batch_size: int | None, pooling: str,
                     on_clip: Callable[[], None] | None = None) -> EvalResult:
    """Tag every clip of ``data`` and score it against its labels (see :func:`labelled_scores`)."""
    scores, targets, skipped = labelled_scores(backend, data, fmt, settings, batch_size, pooling, on_clip)
    metrics = evaluate_scores(targets, scores, single_label=not backend.multi_label)
    return EvalResult(backend.name, list(backend.labels), len(scores), backend.multi_label, metrics, skipped)


def print_report(result: EvalResult, console: Console, top: int | None) -> None:
    overall = Table(title=f"{result.model} on {result.clips} clips", title_justify="left")
    summary = result.metrics.summary()
    for key in summary:
        overall.add_column(key, justify="right")
    overall.add_row(*("-" if v is None else f"{v:.4f}" for v in summary.values()))
    console.print(overall)
    per_class = Table(title="Average precision per class", title_justify="left")
    for column in ("label", "positives", "AP", "ROC-AUC"):
        per_class.add_column(column, justify="left" if column == "label" else "right")
    rows = [r for r in result.classes() if r["positives"]]
    for row in rows[:top] if top else rows:
        per_class.add_row(row["label"], str(row["positives"]), metric_cell(row["ap"]), metric_cell(row["auc"]))
    console.print(per_class)


def write_report(result: EvalResult, output_format: str, stream: IO[str]) -> None:
    """JSON (overall + classes) or CSV (one row per class, the overall numbers first as ``(all)``)."""
    if output_format == "json":
        json.dump(result.to_json(), stream, indent=2)
        stream.write("\n")
        return
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["label", "positives", "ap", "auc"])
    summary = result.metrics.summary()
    writer.writerow(["(all)", sum(result.metrics.positives), _csv(summary["mAP"]), _csv(summary["mAUC"])])
    for row in result.classes():
        writer.writerow([row["label"], row["positives"], _csv(row["ap"]), _csv(row["auc"])])


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"
