"""Pairwise precision and recall of predicted groups against labelled groups.

A *predicted pair* is two images in one predicted group, a *true pair* two images of one
ground-truth group. Precision = correct predicted pairs / predicted pairs (1.0 when nothing
is grouped); recall = correct predicted pairs / true pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TierScore:
    name: str
    threshold: float
    precision: float
    recall: float
    f1: float
    groups: int
    largest: int
    predicted_pairs: int
    correct_pairs: int
    true_pairs: int


def pairwise_scores(
    groups: Sequence[Sequence[str]], truth: Mapping[str, str | None]
) -> tuple[float, float, float, int, int, int]:
    """(precision, recall, f1, predicted pairs, correct pairs, true pairs)."""
    predicted = correct = 0
    for group in groups:
        predicted += len(group) * (len(group) - 1) // 2
        labels: dict[str, int] = {}
        for image_id in group:
            label = truth.get(image_id)
            if label is not None:
                labels[label] = labels.get(label, 0) + 1
        correct += sum(c * (c - 1) // 2 for c in labels.values())
    sizes: dict[str, int] = {}
    for label in truth.values():
        if label is not None:
            sizes[label] = sizes.get(label, 0) + 1
    true = sum(c * (c - 1) // 2 for c in sizes.values())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, predicted, correct, true


def score_tier(
    name: str, threshold: float, groups: Sequence[Sequence[str]], truth: Mapping[str, str | None]
) -> TierScore:
    precision, recall, f1, predicted, correct, true = pairwise_scores(groups, truth)
    return TierScore(
        name,
        threshold,
        round(precision, 4),
        round(recall, 4),
        round(f1, 4),
        len(groups),
        max((len(g) for g in groups), default=0),
        predicted,
        correct,
        true,
    )
