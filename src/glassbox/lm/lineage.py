"""Lineage fingerprints: does a candidate model's weights derive from a named base model?

The weight comparison (``glassbox.lm.align``) is invariant to the changes that keep a
network's function (unit and head permutations, residual permutation, rescaling between
layers), and robust to pruning and int8/fp16/GGUF round trips, because it compares normalised
unit vectors after solving the permutations. Its score is the median, over the weight matrices
both models have, of the normalised matched correlation: near 1 for a copy or a fine-tune,
near 0 for unrelated weights.

Weights cannot tell a distillation (new weights, behaviour learnt from the base) from an
unrelated model. For that the comparison runs both models on probe text, when it can
(``glassbox.lm.represent``): linear CKA of hidden states and agreement of next-token
distributions. That evidence is reported beside the score and never changes the verdict:
on the zoo, independent models trained on the same data agree with each other at least as
much as a distilled student agrees with its teacher, so behaviour alone cannot name a parent
(see the bench's distillation row).

Models are read one tensor at a time (``glassbox.lm.weights``), so memory stays at about two
tensors, not two models.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import InputError
from glassbox.lm.align import (
    Match,
    ResidualAlignment,
    align_residual,
    identity_alignment,
    match_rows_fixed,
    match_units,
    units_of,
)
from glassbox.lm.weights import Role, WeightReader, iter_matrices, open_weights

#: Version of the method: a change to what the score means gets a new number.
METHOD = "glassbox-lineage/1"
#: At or above this score the candidate's weights derive from the base.
DERIVED_AT = 0.5
#: Below this score the weights are unrelated (and "not derived", unless behaviour says
#: otherwise); between the two thresholds the verdict is "inconclusive".
UNRELATED_BELOW = 0.2

DERIVED = "derived"
NOT_DERIVED = "not derived"
INCONCLUSIVE = "inconclusive"
_TOKEN_ROWS = ("embed", "lm_head", "pos_embed")


@dataclass(frozen=True)
class TensorEvidence:
    """How one weight matrix of the candidate compares with the base's."""

    key: str
    layer: int | None
    kind: str
    candidate_shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    match: Match | None
    note: str = ""

    @property
    def score(self) -> float:
        return self.match.score if self.match is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tensor": self.key,
            "layer": self.layer,
            "kind": self.kind,
            "candidateShape": list(self.candidate_shape),
            "baseShape": list(self.base_shape),
            "score": round(self.score, 4),
        }
        if self.match is not None:
            out["matchedCorrelation"] = round(self.match.matched, 4)
            out["nullCorrelation"] = round(self.match.null, 4)
            out["units"] = self.match.units
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class LineageResult:
    """The answer to "does CANDIDATE derive from BASE?", with its evidence."""

    candidate: str
    base: str
    score: float
    verdict: str
    reason: str
    tensors: list[TensorEvidence]
    residual: dict[str, Any]
    formats: dict[str, str]
    seconds: float
    representation: dict[str, Any] | None = None
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"derived": DERIVED_AT, "unrelated": UNRELATED_BELOW}
    )

    @property
    def derived(self) -> bool:
        return self.verdict == DERIVED

    def layers(self) -> list[dict[str, Any]]:
        """Per-layer summary: the mean score of the layer's matrices."""
        groups: dict[str, list[TensorEvidence]] = {}
        for t in self.tensors:
            groups.setdefault("-" if t.layer is None else str(t.layer), []).append(t)
        out = []
        for name, items in sorted(groups.items(), key=lambda kv: (kv[0] != "-", _num(kv[0]))):
            out.append(
                {
                    "layer": None if name == "-" else int(name),
                    "score": round(statistics.fmean(t.score for t in items), 4),
                    "tensors": {t.kind: round(t.score, 4) for t in items},
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "candidate": self.candidate,
            "base": self.base,
            "score": round(self.score, 4),
            "verdict": self.verdict,
            "reason": self.reason,
            "thresholds": dict(self.thresholds),
            "residualAlignment": self.residual,
            "layers": self.layers(),
            "tensors": [t.to_dict() for t in self.tensors],
            "representation": self.representation,
            "formats": dict(self.formats),
            "seconds": round(self.seconds, 3),
        }


def _num(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _shape_note(cand: tuple[int, ...], base: tuple[int, ...]) -> str:
    return f"shapes differ ({'x'.join(map(str, cand))} vs {'x'.join(map(str, base))})"


def _compare_tensor(
    key: str,
    role: Role,
    cand: Any,
    base: Any,
    base_role: Role,
    residual: ResidualAlignment | None,
) -> TensorEvidence:
    cshape, bshape = tuple(cand.shape), tuple(base.shape)
    evidence = TensorEvidence(key, role.layer, role.kind, cshape, bshape, None)
    if cand.ndim != 2 or base.ndim != 2 or role.residual_axis is None:
        return evidence
    a = units_of(cand, role.residual_axis)
    b = units_of(base, base_role.residual_axis or 0)
    if a.shape[1] != b.shape[1] or residual is None:
        return TensorEvidence(
            key, role.layer, role.kind, cshape, bshape, None, _shape_note(cshape, bshape)
        )
    a = residual.apply(a)
    seed = sum(key.encode())
    if role.kind in _TOKEN_ROWS:
        if a.shape[0] != b.shape[0]:
            note = _shape_note(cshape, bshape) + "; compared on the shared token ids"
        else:
            note = ""
        return TensorEvidence(
            key, role.layer, role.kind, cshape, bshape, match_rows_fixed(a, b, seed=seed), note
        )
    note = "" if a.shape[0] == b.shape[0] else f"{a.shape[0]} units vs {b.shape[0]}"
    return TensorEvidence(
        key, role.layer, role.kind, cshape, bshape, match_units(a, b, seed=seed), note
    )


def _residual(
    cand: WeightReader, base: WeightReader
) -> tuple[ResidualAlignment | None, dict[str, Any]]:
    croles, broles = cand.roles(), base.roles()
    for kind in ("embed", "lm_head"):
        if kind in croles and kind in broles:
            a = cand.read(croles[kind][0])
            b = base.read(broles[kind][0])
            if a.ndim != 2 or b.ndim != 2:
                continue
            if a.shape[1] != b.shape[1]:
                return None, {
                    "from": kind,
                    "solved": False,
                    "note": f"residual widths differ ({a.shape[1]} vs {b.shape[1]}): no weight "
                    "of one can be a transformed weight of the other",
                }
            alignment = align_residual(a, b)
            return alignment, {
                "from": kind,
                "solved": True,
                "width": int(a.shape[1]),
                "coordinatesMoved": alignment.moved,
                "matchedCorrelation": round(alignment.match.matched, 4),
                "nullCorrelation": round(alignment.match.null, 4),
                "score": round(alignment.match.score, 4),
            }
    return None, {"solved": False, "note": "no embedding or output head in both models"}


def compare_weights(candidate: str | Path, base: str | Path) -> LineageResult:
    """Weight-space lineage of ``candidate`` against ``base`` (no representation step)."""
    start = time.perf_counter()
    with open_weights(candidate) as cand, open_weights(base) as basew:
        residual, residual_info = _residual(cand, basew)
        if residual is None and residual_info.get("note", "").startswith("no embedding"):
            residual = _fallback_identity(cand, basew)
            if residual is not None:
                residual_info["note"] += "; compared in the stored coordinates"
        broles = basew.roles()
        tensors: list[TensorEvidence] = []
        for key, name, role in iter_matrices(cand):
            if key not in broles:
                tensors.append(
                    TensorEvidence(key, role.layer, role.kind, (), (), None, "not in the base")
                )
                continue
            a = cand.read(name)
            b = basew.read(broles[key][0])
            tensors.append(_compare_tensor(key, role, a, b, broles[key][1], residual))
            del a, b
        formats = {"candidate": cand.format, "base": basew.format}
    if not tensors:
        raise InputError(
            f"{candidate}: no transformer weight matrices recognised (expected Llama-, "
            "GPT-2- or GGUF-style tensor names)"
        )
    scores = [t.score for t in tensors]
    score = float(statistics.median(scores))
    verdict, reason = _verdict(score, tensors, residual_info)
    return LineageResult(
        candidate=str(candidate),
        base=str(base),
        score=score,
        verdict=verdict,
        reason=reason,
        tensors=tensors,
        residual=residual_info,
        formats=formats,
        seconds=time.perf_counter() - start,
    )


def _fallback_identity(cand: WeightReader, base: WeightReader) -> ResidualAlignment | None:
    """Without an embedding, assume the stored residual coordinates (no permutation solved)."""
    del base
    for _key, name, role in iter_matrices(cand):
        if role.residual_axis is None:
            continue
        shape = cand.read(name).shape
        return identity_alignment(int(shape[role.residual_axis]))
    return None


def _verdict(
    score: float, tensors: list[TensorEvidence], residual: dict[str, Any]
) -> tuple[str, str]:
    compared = sum(1 for t in tensors if t.match is not None)
    strong = sum(1 for t in tensors if t.score >= DERIVED_AT)
    if compared == 0:
        note = residual.get("note") or "no weight matrix of the candidate has a counterpart"
        return NOT_DERIVED, f"no comparable weights: {note}"
    if score >= DERIVED_AT:
        return DERIVED, (
            f"weights match the base after alignment: median score {score:.3f} >= "
            f"{DERIVED_AT} ({strong}/{len(tensors)} matrices at or above it)"
        )
    if score < UNRELATED_BELOW:
        return NOT_DERIVED, (
            f"weights are unrelated to the base: median score {score:.3f} < {UNRELATED_BELOW}"
        )
    return INCONCLUSIVE, (
        f"median score {score:.3f} is between {UNRELATED_BELOW} and {DERIVED_AT} "
        f"({strong}/{len(tensors)} matrices match)"
    )


def lineage(
    candidate: str | Path,
    base: str | Path,
    *,
    representation: bool = True,
) -> LineageResult:
    """Weight lineage plus, where both models can be run (a ``config.json`` of a built-in
    ``transformers`` architecture and a shared tokenizer), representation evidence."""
    result = compare_weights(candidate, base)
    if not representation:
        return result
    from glassbox.lm.represent import compare_representations

    start = time.perf_counter()
    evidence = compare_representations(candidate, base)
    result.seconds += time.perf_counter() - start
    result.representation = evidence
    return result


def rank(
    candidate: str | Path, bases: list[Path], *, representation: bool = False
) -> list[LineageResult]:
    """Lineage of ``candidate`` against each of ``bases``, best score first."""
    results = [lineage(candidate, b, representation=representation) for b in bases]
    return sorted(results, key=lambda r: -r.score)


def models_in(directory: str | Path, *, exclude: str | Path | None = None) -> list[Path]:
    """The models under ``directory``: its sub-directories holding weights, and weight files
    directly in it (``exclude``, usually the candidate itself, is skipped)."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: --among needs a directory of models")
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for entry in sorted(root.iterdir()):
        if skip is not None and entry.resolve() == skip:
            continue
        if entry.is_dir():
            if (
                any(entry.glob("*.safetensors"))
                or any(entry.glob("*.gguf"))
                or any((entry / n).is_file() for n in ("pytorch_model.bin", "model.pt"))
            ):
                found.append(entry)
        elif entry.suffix in (".safetensors", ".gguf", ".pt", ".bin", ".pth"):
            found.append(entry)
    if not found:
        raise InputError(f"{root}: no models found (sub-directories or files with weights)")
    return found
