"""Deciding which half of a split class is the poison, and whether the split means anything.

Both representation detectors split each class in two. Which half is suspect is not given by
the split itself: the paper's "larger |score|" rule and the activation-clustering "smaller
cluster" rule both assume poison is a minority of its class, and at 10% poisoning of digits
poison is about half of the target class, where those rules are a coin toss. And a strong split
is not evidence either: naturally bimodal classes (9s with and without a closed loop) split as
cleanly as poisoned ones.

So both questions are answered with a *marker*: a per-record sign of poison that does not come
from the split. The best marker is a clean reference model (a rebuild from the declared sources):
poisoned records are other digits with a trigger, so a model that never saw the trigger
disagrees with their (target) label, while the two genuine modes of a bimodal class are both
agreed with. Without a reference, the marker is the model's own STRIP behaviour (records whose
prediction survives superimposition), which is independent of the penultimate-layer geometry the
split comes from. The marker's rate differs between the halves of a poisoned class, and not
between the halves of a merely bimodal one; that difference is the class's evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Below this difference in marker rate between the halves, the marker does not choose a side.
SIDE_MARGIN = 0.25
#: Classes with fewer records are not split: too few records for a split to mean anything.
MIN_CLASS_RECORDS = 8


@dataclass
class ClassSplit:
    """One class of the training data, split in two, with per-record suspicion scores."""

    label: int
    indices: np.ndarray  # dataset indices of the records labelled ``label``
    scores: np.ndarray  # per record, higher = more likely poison
    suspect: np.ndarray  # bool per record: in the half judged poisoned
    strength: float  # scale-free strength of the split (detector specific)
    cue: str  # what decided the suspect side

    @property
    def suspect_indices(self) -> np.ndarray:
        picked: np.ndarray = self.indices[self.suspect]
        return picked


@dataclass(frozen=True)
class Marker:
    """A per-record sign of poison from outside the split, aligned with the dataset."""

    name: str
    flags: np.ndarray  # bool per dataset record


def splittable_classes(
    labels: np.ndarray, marker: Marker | None
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield (label, dataset indices, marker flags over them) for each class big enough to split.

    One definition for both detectors, so they skip the same small classes.
    """
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) >= MIN_CLASS_RECORDS:
            yield int(label), idx, (marker.flags[idx] if marker is not None else None)


def resolve_side(group: np.ndarray, marker: np.ndarray | None, name: str) -> tuple[bool, str]:
    """Return (``group`` is the suspect side, the cue that decided).

    ``group`` and ``marker`` are aligned over the records of one class.
    """
    other = ~group
    if not group.any() or not other.any():
        return bool(group.any()), "degenerate"
    if marker is not None:
        a, b = float(marker[group].mean()), float(marker[other].mean())
        if abs(a - b) >= SIDE_MARGIN:
            return a > b, name
    return bool(group.sum() < other.sum()), "smaller-group"


def split_contrast(suspect: np.ndarray, marker: np.ndarray | None) -> float:
    """How much more often the marker fires on the suspect half than on the rest.

    Near 0 for the two genuine modes of a naturally bimodal class, near 1 for poison against
    genuine records; robust to impure splits, since it is a difference of rates.
    """
    if marker is None or suspect.all() or not suspect.any():
        return 0.0
    return float(marker[suspect].mean() - marker[~suspect].mean())


def two_means_1d(values: np.ndarray) -> tuple[float, float]:
    """Exact optimal two-group split of 1-D values; returns (threshold, separation).

    Values ``<= threshold`` form one group and ``> threshold`` the other.
    Separation is the squared gap between group means over the pooled within-group variance,
    so it does not depend on the scale of the features (about 7 for a single normal).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n < 4:
        return float(np.median(v)) if n else 0.0, 0.0
    csum = np.cumsum(v)
    csq = np.cumsum(v * v)
    i = np.arange(1, n)  # left group sizes
    left_mean = csum[:-1] / i
    right_mean = (csum[-1] - csum[:-1]) / (n - i)
    left_ss = csq[:-1] - i * left_mean**2
    right_ss = (csq[-1] - csq[:-1]) - (n - i) * right_mean**2
    within = left_ss + right_ss
    # At least 2 records per side, so one outlier is not a "cluster"; never cut between ties.
    within[:1] = np.inf
    within[-1:] = np.inf
    within[v[:-1] == v[1:]] = np.inf
    if not np.isfinite(within).any():  # too few distinct values for a real split
        steps = np.flatnonzero(v[:-1] < v[1:])
        if not len(steps):
            return float(v[0]), 0.0
        j = int(steps[len(steps) // 2])
        return float(v[j]), 0.0
    best = int(np.argmin(within))
    thr = float(v[best])  # the largest value on the low side: exact, whatever the rounding
    pooled = max(float(within[best]) / n, 1e-12)
    gap = float(right_mean[best] - left_mean[best])
    return thr, gap * gap / pooled
