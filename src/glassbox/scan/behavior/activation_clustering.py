"""Activation clustering (Chen et al., 2018): two-means per class on reduced features.

Features of each class are reduced to a few principal components and split by k-means (k=2).
A class the model learned "two ways" (genuine digits and triggered other digits) splits
cleanly, which the silhouette coefficient measures without regard to feature scale. The
suspect cluster is chosen by evidence, not by being smaller (see ``splitting``).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from glassbox.scan.behavior.splitting import ClassSplit, Marker, resolve_side, splittable_classes


def activation_splits(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    components: int = 10,
    seed: int = 0,
    marker: Marker | None = None,
) -> list[ClassSplit]:
    splits: list[ClassSplit] = []
    name = marker.name if marker is not None else "none"
    for label, idx, flags in splittable_classes(labels, marker):
        feats = features[idx]
        n_comp = max(1, min(components, feats.shape[1], len(idx) - 1))
        reduced = PCA(n_components=n_comp, random_state=seed).fit_transform(feats)
        km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(reduced)
        assign = km.labels_.astype(bool)
        if assign.all() or (~assign).all():
            splits.append(ClassSplit(label, idx, np.zeros(len(idx)), ~assign, 0.0, "none"))
            continue
        sil = float(silhouette_score(reduced, km.labels_))
        one_is_suspect, cue = resolve_side(assign, flags, name)
        suspect = assign if one_is_suspect else ~assign
        centre_bad = km.cluster_centers_[1 if one_is_suspect else 0]
        centre_good = km.cluster_centers_[0 if one_is_suspect else 1]
        scores = np.linalg.norm(reduced - centre_good, axis=1) - np.linalg.norm(
            reduced - centre_bad, axis=1
        )
        splits.append(ClassSplit(label, idx, scores, suspect, max(sil, 0.0), cue))
    return splits
