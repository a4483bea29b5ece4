"""Robust spectral scores after SPECTRE (Hayase, Kong, Somani and Oh, ICML 2021).

Plain spectral signatures look for poison along the top singular vector of a class's features;
a few poisoned records (under 1% of the data, a few percent of the target class) barely move
that direction, so low-rate poisoning hides. SPECTRE instead estimates the class's *clean*
mean and covariance robustly (so the poison does not contaminate them), whitens the features
with that estimate, and scores each record with the QUantum Entropy (QUE) score: after
whitening the clean records are isotropic, and any direction where the class has excess
variance, which is where the poison sits, is weighted exponentially.

The robust estimate here is iterative trimming: fit, drop the records farthest in Mahalanobis
distance (a fixed share, more than the poison one wants to catch), refit on the rest. The
suspect records are the QUE outliers (Tukey's far-out rule on the scores), and the class's
evidence is, as for the other representation detectors, how much more often an independent
marker fires on them than on the rest of the class (see ``splitting``).
"""

from __future__ import annotations

import numpy as np

from glassbox.scan.behavior.splitting import ClassSplit, Marker, splittable_classes

#: Dimensions kept (top principal directions of the class) before the robust fit.
DIMS = 8
#: Share of the class trimmed at each robust refit (an upper bound on the poison to find).
TRIM = 0.2
#: QUE's exponent: how strongly the directions of excess variance are weighted.
ALPHA = 4.0
#: Tukey's far-out fence on the QUE scores, in interquartile ranges above the third quartile.
FENCE = 1.5
#: Fewer suspects than this are not a cluster (a marker rate on two records means little).
MIN_SUSPECTS = 3


def robust_whiten(x: np.ndarray, *, trim: float = TRIM, rounds: int = 5) -> np.ndarray:
    """Whiten ``x`` (n, d) with a mean and covariance fitted on its inlying ``1 - trim``."""
    n, d = x.shape
    keep = np.ones(n, dtype=bool)
    mu = np.median(x, axis=0)
    cov = np.cov(x, rowvar=False).reshape(d, d)
    for _ in range(rounds):
        reg = cov + 1e-6 * (np.trace(cov) / d + 1e-12) * np.eye(d)
        inv = np.linalg.inv(reg)
        diff = x - mu
        dist = np.einsum("ij,jk,ik->i", diff, inv, diff)
        keep = dist <= np.quantile(dist, 1.0 - trim)
        mu = x[keep].mean(0)
        cov = np.cov(x[keep], rowvar=False).reshape(d, d)
    evals, evecs = np.linalg.eigh(cov)
    evals = np.maximum(evals, 1e-9 * max(float(evals.max()), 1e-12))
    out: np.ndarray = (x - mu) @ evecs / np.sqrt(evals)
    return out


def que_scores(z: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """QUE scores of whitened records ``z`` (n, d): ``z_i^T Q z_i / tr(Q)``.

    ``Q = exp(alpha (S - I) / (||S|| - 1))`` with ``S`` the covariance of ``z``: after robust
    whitening the clean part has ``S = I``, so only excess-variance directions are weighted.
    """
    d = z.shape[1]
    s = (z.T @ z) / max(len(z), 1)
    evals, evecs = np.linalg.eigh(s)
    top = float(evals.max())
    scale = max(top - 1.0, 1e-6)
    weights = np.exp(alpha * (evals - 1.0) / scale)
    proj = z @ evecs
    scores: np.ndarray = (proj**2 @ weights) / float(weights.sum()) * d
    return scores


def robust_spectral_splits(
    features: np.ndarray, labels: np.ndarray, *, marker: Marker | None = None
) -> list[ClassSplit]:
    """Per class: QUE scores after robust whitening; suspects are the far-out scores."""
    splits: list[ClassSplit] = []
    for label, idx, _flags in splittable_classes(labels, marker):
        f = features[idx]
        centred = f - f.mean(0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        rank = int(np.sum(sv > 1e-9 * max(float(sv.max()), 1e-12)))
        k = min(DIMS, rank, len(idx) // 4)
        if k < 1:
            continue
        z = robust_whiten(centred @ vt[:k].T)
        scores = np.log(que_scores(z) + 1e-12)
        q1, q3 = np.quantile(scores, [0.25, 0.75])
        cut = q3 + FENCE * (q3 - q1)
        suspect = scores > cut
        if suspect.sum() < MIN_SUSPECTS:
            suspect = np.zeros(len(idx), dtype=bool)
        # Strength: how far the top of the scores sits above the fence, in IQRs.
        strength = float((scores.max() - cut) / max(q3 - q1, 1e-9))
        splits.append(ClassSplit(label, idx, scores - cut, suspect, strength, "que-fence"))
    return splits


def shared_shift(
    inputs: np.ndarray, splits: list[ClassSplit], *, min_classes: int = 3
) -> tuple[np.ndarray, dict[int, float], float]:
    """All-to-all evidence: do the QUE suspects of *different* classes differ in the same way?

    In an all-to-all attack every class holds poisoned records (another class's inputs with the
    one trigger), so in each class the suspects minus the rest, in input space, carries the
    same trigger; the outliers a clean model's classes have (unusual writing styles) differ in
    unrelated ways. Per class with suspects: the median cosine between its input shift and the
    other classes' shifts (0 where a class has no suspects, or fewer than ``min_classes`` do),
    capped by the median over all pairs: all-to-all is a property of the model, so one class
    whose outliers happen to resemble two others' is not evidence. Also returns that median.
    """
    flat = inputs.reshape(len(inputs), -1)
    shifts: dict[int, np.ndarray] = {}
    for s in splits:
        if s.suspect.sum() >= MIN_SUSPECTS and (~s.suspect).any():
            d = flat[s.indices[s.suspect]].mean(0) - flat[s.indices[~s.suspect]].mean(0)
            norm = float(np.linalg.norm(d))
            if norm > 1e-12:
                shifts[s.label] = d / norm
    out: dict[int, float] = {}
    overall = 0.0
    if len(shifts) >= min_classes:
        labels = sorted(shifts)
        u = np.stack([shifts[c] for c in labels])
        cos = u @ u.T
        overall = float(np.median(cos[~np.eye(len(labels), dtype=bool)]))
        for i, c in enumerate(labels):
            out[c] = min(float(np.median(np.delete(cos[i], i))), overall)
    num = int(max((s.label for s in splits), default=-1)) + 1
    scores = np.zeros(num)
    for c, v in out.items():
        scores[c] = v
    return scores, out, overall
