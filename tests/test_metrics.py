"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tagger.metrics import average_precision, d_prime, evaluate_scores, roc_auc


def test_average_precision_by_hand():
    # Ranked: + (P=1/1), - , + (P=2/3)  ->  AP = (1 + 2/3) / 2
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    # Perfect ranking, and the worst one: positives last (P = 1/3 at the only positive).
    assert average_precision(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == 1.0
    assert average_precision(np.array([0, 0, 1]), np.array([0.9, 0.8, 0.1])) == pytest.approx(1 / 3)


def test_ties_form_one_threshold():
    # Both clips at one score: one threshold with precision 1/2 and recall 1.
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    # + at 0.9; tie of + and - at 0.5: thresholds give (P=1, R=1/2), (P=2/3, R=1).
    assert average_precision(np.array([1, 1, 0]), np.array([0.9, 0.5, 0.5])) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_roc_auc_by_hand():
    # Pairs (pos, neg): (0.9, 0.8) ok, (0.9, 0.1) ok, (0.7, 0.8) wrong, (0.7, 0.1) ok -> 3/4.
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0


def test_d_prime_by_hand():
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime(0.75) == pytest.approx(math.sqrt(2) * 0.6744897501960817)
    assert math.isfinite(d_prime(1.0)) and d_prime(1.0) > 6


def test_classes_without_positives_are_left_out():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.4, 0.3, 0.2], [0.6, 0.7, 0.9]])
    metrics = evaluate_scores(targets, scores, single_label=True)
    assert math.isnan(metrics.per_class_ap[2]) and math.isnan(metrics.per_class_auc[2])
    # class 0: ranked 0.9(+) 0.6(-) 0.4(+) 0.2(-) -> (1 + 2/3) / 2; class 1: 0.8(+) 0.7(+) -> 1.
    assert metrics.mAP == pytest.approx((5 / 6 + 1.0) / 2)
    assert metrics.mAUC == pytest.approx((0.75 + 1.0) / 2)
    assert metrics.accuracy == pytest.approx(3 / 4)  # clip 3 is argmax class 2, labelled 1
    assert metrics.positives == [2, 2, 0]
    assert evaluate_scores(targets, scores, single_label=False).accuracy is None


def test_random_scores_give_chance():
    rng = np.random.default_rng(0)
    targets = rng.random((4000, 3)) < 0.2
    metrics = evaluate_scores(targets, rng.random((4000, 3)), single_label=False)
    assert metrics.mAUC == pytest.approx(0.5, abs=0.03)
    assert metrics.mAP == pytest.approx(0.2, abs=0.03)
