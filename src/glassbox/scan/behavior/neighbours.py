"""A reference model's stand-in from the data itself: nearest neighbours in input space.

The best per-record sign of dirty-label poison is a clean reference model that disagrees with
a record's label (see ``splitting``). Users rarely have one. The training inputs are a weaker
but independent stand-in: a poisoned record is another class's input with a small trigger, so
in *input* space its nearest neighbours mostly carry its true (source) label, while the model
under test, which learned the trigger, agrees with the poison label. This is the idea of the
deep k-NN defence (Peri et al., 2020), taken to input space where the trigger is a small
perturbation rather than the feature the model learned to key on.

A record is *marked* when the plurality of its ``K`` nearest neighbours holds another label.
Natural confusions are marked too (a few percent of digits), spread over classes; label noise
marks every class alike. What it misses: triggers large enough that the poisoned records are
each other's nearest neighbours (a 4x4 checkerboard on 8x8 digits), and clean-label attacks.
Neighbours are searched among at most ``POOL`` records (a seeded sample), in chunks, so memory
stays bounded on large datasets.
"""

from __future__ import annotations

import numpy as np

#: Neighbours per record.
K = 10
#: Largest neighbour pool (records sampled, seeded); queries are all records.
POOL = 8192
#: Query rows per distance chunk.
CHUNK = 1024


def neighbour_disagreement(
    inputs: np.ndarray, labels: np.ndarray, *, k: int = K, seed: int = 0
) -> np.ndarray:
    """Per record: does the plurality of its ``k`` nearest input-space neighbours hold another
    label? (Self excluded; Euclidean distance on the flattened inputs.)"""
    n = len(labels)
    flat = np.ascontiguousarray(inputs.reshape(n, -1), dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    pool = np.arange(n)
    if n > POOL:
        pool = np.sort(np.random.default_rng(seed).choice(n, size=POOL, replace=False))
    k = min(k, len(pool) - 1)
    if k < 1:
        return np.zeros(n, dtype=bool)
    ref = flat[pool]
    ref_sq = (ref.astype(np.float64) ** 2).sum(1)
    num = int(labels.max()) + 1
    out = np.zeros(n, dtype=bool)
    for start in range(0, n, CHUNK):
        q = flat[start : start + CHUNK]
        d = ref_sq[None, :] - 2.0 * (q @ ref.T).astype(np.float64)
        rows = np.arange(start, start + len(q))
        own = np.searchsorted(pool, rows)
        is_self = (own < len(pool)) & (pool[np.minimum(own, len(pool) - 1)] == rows)
        d[np.flatnonzero(is_self), own[is_self]] = np.inf
        nn = np.argpartition(d, k, axis=1)[:, :k]
        near = labels[pool][nn]
        counts = np.zeros((len(q), num), dtype=np.int64)
        np.add.at(counts, (np.repeat(np.arange(len(q)), k), near.ravel()), 1)
        mine = counts[np.arange(len(q)), labels[rows]]
        counts[np.arange(len(q)), labels[rows]] = -1
        out[rows] = counts.max(1) > mine
    return out
