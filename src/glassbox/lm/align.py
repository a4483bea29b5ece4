"""Weight-space matching that ignores the changes which keep a network's function.

A transformer's function survives: permuting the hidden units of an MLP (rows of the up/gate
projections with the columns of the down projection), reordering attention heads, permuting
the residual stream's coordinates everywhere at once, rescaling a unit's input weights by ``a``
and its output weights by ``1/a``, or folding a norm's scale into the next matrix. A derived
model hides its base behind any of these for free, so lineage compares what they leave alone:

* every weight matrix is read as a set of *units*, each a vector over the residual stream
  (rows of in-projections, columns of out-projections);
* residual coordinates are normalised to unit RMS over the units (undoes norm folding), and
  each unit is centred and normalised (undoes per-unit rescaling; correlations are
  sign-blind, so a flipped unit still matches);
* the residual permutation is solved once, from the embedding's columns (vectors over the
  vocabulary, which no function-preserving change can permute), and applied to every matrix;
* the unit permutation of each matrix is solved with an optimal one-to-one assignment
  (``scipy.optimize.linear_sum_assignment``) on absolute correlations. Head reordering is a
  special case of a row permutation, so it needs no extra step.

The matched correlation is then compared with what the same assignment finds between
vectors whose residual alignment has been destroyed (a shuffled copy of the base): the
*null*. ``(matched - null) / (1 - null)`` is near 1 for a copy, stays high through
fine-tuning, pruning and quantisation, and is near 0 for unrelated weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Above this many units (rows), a seeded sample of the candidate's units is matched against
#: all of the base's: the assignment costs O(n^3), the estimate needs a few hundred.
MAX_UNITS = 1024
#: Above this many vocabulary rows, the residual alignment uses a seeded sample of them.
MAX_VOCAB_ROWS = 8192
#: Above this many base units, each candidate unit takes its best match (see ``_assign``).
MAX_ASSIGN = 4096
_EPS = 1e-12
_SINKHORN_ROUNDS = 3


@dataclass(frozen=True)
class Match:
    """The result of matching one matrix's units. ``score`` is the normalised similarity."""

    matched: float
    null: float
    units: int

    @property
    def score(self) -> float:
        if self.null >= 1.0:
            return 0.0
        return float(min(1.0, max(0.0, (self.matched - self.null) / (1.0 - self.null))))


def units_of(weight: np.ndarray, residual_axis: int) -> np.ndarray:
    """The matrix as ``[units, residual]``."""
    import numpy as np

    if weight.ndim != 2:
        raise ValueError(f"expected a matrix, got shape {weight.shape}")
    return np.ascontiguousarray(weight if residual_axis == 1 else weight.T)


def normalise(units: np.ndarray, *, columns: bool = True) -> np.ndarray:
    """Rows centred and unit-norm; with ``columns``, first a few alternating row / column
    scalings (Sinkhorn-style) so that both a per-unit rescale and a per-residual-coordinate
    rescale (a folded norm) are undone. Rows are scaled first, so a pure per-unit rescale
    gives exactly the same result."""
    import numpy as np

    x = units.astype(np.float64, copy=True)
    if columns:
        for _ in range(_SINKHORN_ROUNDS):
            x /= _safe(np.sqrt(np.mean(x * x, axis=1, keepdims=True)))
            x /= _safe(np.sqrt(np.mean(x * x, axis=0, keepdims=True)))
    x -= x.mean(axis=1, keepdims=True)
    return x / _safe(np.linalg.norm(x, axis=1, keepdims=True))  # type: ignore[no-any-return]


def _safe(scale: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.where(scale > _EPS, scale, 1.0)


def _assign(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one assignment of rows to columns with the largest total similarity.

    When every row's best column is a different column, that is the optimum (the sum of row
    maxima bounds every assignment), so derived models, where it usually holds, skip the
    O(n^3) solver. Above ``MAX_ASSIGN`` columns the solver is too slow and each row takes its
    best column (not one-to-one; the null is computed the same way, so scores stay comparable).
    """
    import numpy as np

    best = similarity.argmax(axis=1)
    rows = np.arange(similarity.shape[0])
    if len(np.unique(best)) == len(best) or similarity.shape[1] > MAX_ASSIGN:
        return rows, best
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(similarity, maximize=True)
    return r, c


def _rng(seed: int) -> np.random.Generator:
    import numpy as np

    return np.random.default_rng(seed)


def match_units(candidate: np.ndarray, base: np.ndarray, *, seed: int = 0) -> Match:
    """Optimal one-to-one matching of unit vectors (both ``[units, residual]``, already in the
    same residual coordinates), with its null level."""
    import numpy as np

    if candidate.shape[1] != base.shape[1]:
        raise ValueError("units of different length cannot be matched")
    rng = _rng(seed)
    a = normalise(candidate)
    b = normalise(base)
    if a.shape[0] > MAX_UNITS:
        a = a[np.sort(rng.choice(a.shape[0], MAX_UNITS, replace=False))]
    sim = np.abs(a @ b.T)
    rows, cols = _assign(sim)
    matched = float(sim[rows, cols].mean())
    shuffled = b[:, rng.permutation(b.shape[1])]
    null_sim = np.abs(a @ normalise(shuffled, columns=False).T)
    nrows, ncols = _assign(null_sim)
    null = float(null_sim[nrows, ncols].mean())
    return Match(matched, null, int(a.shape[0]))


def match_rows_fixed(candidate: np.ndarray, base: np.ndarray, *, seed: int = 0) -> Match:
    """Row ``i`` against row ``i`` (rows that no function-preserving change can permute, such
    as the embedding's tokens), with a null from mismatched rows."""
    import numpy as np

    rng = _rng(seed)
    n = min(candidate.shape[0], base.shape[0])
    idx = np.arange(n)
    if n > MAX_VOCAB_ROWS:
        idx = np.sort(rng.choice(n, MAX_VOCAB_ROWS, replace=False))
    a = normalise(candidate[idx])
    b = normalise(base[idx])
    matched = float(np.abs(np.sum(a * b, axis=1)).mean())
    shift = np.roll(np.arange(len(idx)), 1 + int(rng.integers(max(1, len(idx) - 1))))
    null = float(np.abs(np.sum(a * b[shift], axis=1)).mean())
    return Match(matched, null, len(idx))


@dataclass(frozen=True)
class ResidualAlignment:
    """Candidate residual coordinate ``i`` is base coordinate ``order[i]``."""

    order: np.ndarray
    match: Match
    moved: int

    def apply(self, units: np.ndarray) -> np.ndarray:
        """Units (``[n, residual]``) in candidate coordinates, re-expressed in the base's."""
        import numpy as np

        out = np.empty_like(units)
        out[:, self.order] = units
        return out


def identity_alignment(size: int) -> ResidualAlignment:
    import numpy as np

    return ResidualAlignment(np.arange(size), Match(1.0, 0.0, 0), 0)


def align_residual(
    candidate_embed: np.ndarray, base_embed: np.ndarray, *, seed: int = 0
) -> ResidualAlignment:
    """Solve the residual-stream permutation from two embeddings (``[vocab, residual]``).

    Each residual coordinate is a column: a vector over tokens. The vocabulary is the one axis
    no function-preserving change permutes, so matching columns recovers the permutation.
    """
    import numpy as np

    vocab = min(candidate_embed.shape[0], base_embed.shape[0])
    rng = _rng(seed)
    rows = np.arange(vocab)
    if vocab > MAX_VOCAB_ROWS:
        rows = np.sort(rng.choice(vocab, MAX_VOCAB_ROWS, replace=False))
    a = normalise(candidate_embed[rows].T, columns=False)
    b = normalise(base_embed[rows].T, columns=False)
    sim = np.abs(a @ b.T)
    r, c = _assign(sim)
    order = np.empty(a.shape[0], dtype=np.int64)
    order[r] = c
    matched = float(sim[r, c].mean())
    shuffled = b[:, rng.permutation(b.shape[1])]
    null_sim = np.abs(a @ shuffled.T)
    nr, nc = _assign(null_sim)
    null = float(null_sim[nr, nc].mean())
    moved = int(np.count_nonzero(order != np.arange(len(order))))
    return ResidualAlignment(order, Match(matched, null, int(a.shape[0])), moved)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two representations of the same inputs (rows).

    Invariant to orthogonal transforms and isotropic scaling of either side, so two networks
    whose hidden states differ by a rotation or permutation of units score 1.
    """
    import numpy as np

    a = x.astype(np.float64) - x.mean(axis=0, keepdims=True)
    b = y.astype(np.float64) - y.mean(axis=0, keepdims=True)
    cross = np.linalg.norm(b.T @ a) ** 2
    norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / norm) if norm > _EPS else 0.0
