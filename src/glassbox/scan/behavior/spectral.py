"""Spectral signatures (Tran et al., NeurIPS 2018) with the signed projection.

The paper scores each record by its *squared* projection on the top singular vector of its
class's centred features. When poison is about half of the class the two groups sit
symmetrically around the mean and have the same squared score: the ranking is at chance. The
signed projection separates them; its sign is arbitrary (an SVD property), so the side is chosen
by evidence (``splitting.resolve_side``), and the split point is the optimal 1-D two-means cut.
"""

from __future__ import annotations

import numpy as np

from glassbox.scan.behavior.splitting import (
    ClassSplit,
    Marker,
    resolve_side,
    split_contrast,
    splittable_classes,
    two_means_1d,
)


def top_directions(features: np.ndarray, k: int = 1) -> np.ndarray:
    """Signed projections ``(k, N)`` of centred features on the top ``k`` singular vectors."""
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj: np.ndarray = vt[:k] @ centred.T
    return proj


def spectral_splits(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    marker: Marker | None = None,
    directions: int = 3,
) -> list[ClassSplit]:
    """Split every class along a top spectral direction; score records by signed projection.

    The top direction is the paper's; when poison is most of its class, the largest variance
    can instead run between the poison's many source digits. So the top ``directions`` are
    each split, and the one whose halves differ most in the marker is kept (with no marker,
    the paper's top direction).
    """
    splits: list[ClassSplit] = []
    name = marker.name if marker is not None else "none"
    for label, idx, flags in splittable_classes(labels, marker):
        best: ClassSplit | None = None
        best_contrast = -np.inf
        for proj in top_directions(features[idx], directions if flags is not None else 1):
            thr, sep = two_means_1d(proj)
            high = proj > thr
            high_is_suspect, cue = resolve_side(high, flags, name)
            scores = (1.0 if high_is_suspect else -1.0) * (proj - thr)
            contrast = split_contrast(scores > 0, flags)
            if contrast > best_contrast:
                best_contrast = contrast
                best = ClassSplit(label, idx, scores, scores > 0, sep, cue)
        if best is not None:
            splits.append(best)
    return splits
