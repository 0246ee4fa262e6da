"""Tagging metrics in numpy: average precision, ROC-AUC, d-prime and accuracy.

``targets`` are ``[clips, classes]`` arrays of 0/1 (soft mixup targets are not metrics inputs) and
``scores`` the model's probabilities of the same shape. A class with no positive (or no negative) clip
has no AP (or AUC): it is reported as NaN and left out of the means, as AudioSet evaluations do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

# d' = sqrt(2) * probit(AUC) is infinite for a perfect AUC; AUC is clipped to keep it finite.
_AUC_CLIP = 1e-6


def average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class: the mean of the precision at each positive, ties counted as one threshold.

    Equals ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds (scikit-learn's
    definition). NaN when there is no positive.
    """
    targets = np.asarray(targets, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(targets.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    scores, targets = scores[order], targets[order]
    # The last index of each run of equal scores closes one threshold.
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(targets)[last]
    precision = true_pos / (last + 1)
    recall_step = np.diff(np.r_[0, true_pos]) / positives
    return float(np.sum(recall_step * precision))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of one class (Mann-Whitney U, ties count one half); NaN if undefined."""
    targets = np.asarray(targets, dtype=bool)
    positives = int(targets.sum())
    negatives = len(targets) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[targets].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def d_prime(auc: float) -> float:
    """Sensitivity index ``sqrt(2) * probit(AUC)`` (AUC clipped to [1e-6, 1 - 1e-6])."""
    if math.isnan(auc):
        return math.nan
    clipped = min(max(auc, _AUC_CLIP), 1.0 - _AUC_CLIP)
    return math.sqrt(2.0) * NormalDist().inv_cdf(clipped)


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


@dataclass
class Metrics:
    """Summary of one evaluation. ``accuracy`` is set for single-label tasks only."""

    mAP: float
    mAUC: float
    d_prime: float
    accuracy: float | None
    per_class_ap: list[float] = field(default_factory=list)
    per_class_auc: list[float] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """The overall numbers (no per-class lists), NaN as None so that the result is valid JSON."""
        values = {"mAP": self.mAP, "mAUC": self.mAUC, "d_prime": self.d_prime}
        if self.accuracy is not None:
            values["accuracy"] = self.accuracy
        return {k: (None if math.isnan(v) else round(v, 6)) for k, v in values.items()}


def evaluate_scores(targets: np.ndarray, scores: np.ndarray, single_label: bool) -> Metrics:
    """Per-class AP and AUC, their means over the classes that have them, d' of the mean AUC."""
    targets = np.asarray(targets)
    scores = np.asarray(scores)
    if targets.shape != scores.shape or targets.ndim != 2:
        raise ValueError(f"targets {targets.shape} and scores {scores.shape} must be equal 2-D shapes")
    aps = [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    aucs = [roc_auc(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    mean_auc = _nanmean(aucs)
    accuracy = None
    if single_label and len(targets):
        accuracy = float(np.mean(targets.argmax(axis=1) == scores.argmax(axis=1)))
    return Metrics(mAP=_nanmean(aps), mAUC=mean_auc, d_prime=d_prime(mean_auc), accuracy=accuracy,
                   per_class_ap=aps, per_class_auc=aucs,
                   positives=[int(n) for n in (targets > 0.5).sum(axis=0)])
