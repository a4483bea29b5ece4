"""STRIP-style input-perturbation entropy (Gao et al., ACSAC 2019), the second signal.

Superimposing a clean input on a genuine one makes the prediction uncertain; on an input that
carries a trigger, the trigger still wins and the prediction stays confidently on the target.
Low entropy under superimposition therefore marks triggered records. It needs no feature layer
and does not care whether the trigger is a patch or a blend, so its blind spots differ from the
trigger search (which wants small masks) and the representation detectors (which want a clean
split in the penultimate layer).
"""

from __future__ import annotations

import numpy as np

from glassbox.scan.behavior.loading import ProbedModel


def strip_entropy(
    model: ProbedModel,
    images: np.ndarray,
    *,
    overlays: np.ndarray | None = None,
    n: int = 16,
    seed: int = 0,
    batch: int = 4096,
    mix: float | None = None,
) -> np.ndarray:
    """Mean prediction entropy of each image superimposed on ``n`` random overlay images.

    ``mix`` replaces the clipped sum with a convex blend ``(1 - mix) * x + mix * overlay``: for
    feature vectors (``tabular``), where a sum clipped to the box saturates every feature that
    is above the middle of its range in both records, so every blend looks alike.
    """
    rng = np.random.default_rng(seed)
    pool = images if overlays is None else overlays
    picks = rng.integers(0, len(pool), size=(len(images), n))
    out = np.empty(len(images), dtype=np.float64)
    per = max(1, batch // n)
    for start in range(0, len(images), per):
        stop = min(start + per, len(images))
        if mix is None:
            x = images[start:stop, None] + pool[picks[start:stop]]
        else:
            x = (1.0 - mix) * images[start:stop, None] + mix * pool[picks[start:stop]]
        x = np.clip(x, 0.0, 1.0).astype(np.float32)
        probs = model.predict(x.reshape((-1, *images.shape[1:]))).astype(np.float64)
        ent = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(1)
        out[start:stop] = ent.reshape(stop - start, n).mean(1)
    return out


def class_low_quantile(
    entropy: np.ndarray, labels: np.ndarray, num_classes: int, q: float = 0.2
) -> np.ndarray:
    """Per class, the ``q``-quantile of entropy: a triggered share of a class pulls it down."""
    stat = np.full(num_classes, np.nan)
    for c in range(num_classes):
        sel = entropy[labels == c]
        if len(sel):
            stat[c] = float(np.quantile(sel, q))
    fill = float(np.nanmedian(stat)) if np.isfinite(stat).any() else 1.0
    return np.where(np.isfinite(stat), stat, fill)
