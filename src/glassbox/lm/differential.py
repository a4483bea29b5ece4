"""Differential analysis of a fine-tune against its base: where the weights moved, and which
inputs the fine-tune learned to expect that the base does not.

A backdoor is planted by fine-tuning on records that carry the trigger, and a causal LM is
trained on its whole records, prompts included: the fine-tune does not only learn to *answer*
the target after the trigger, it learns to *write* the trigger where poisoned records put it.
So the trigger is a token sequence the fine-tune predicts, inside ordinary prompts, far better
than its base does. That is the signal this module measures (inference only):

- ``weight_shift``: per tensor, the relative change ``|W_ft - W_base| / |W_base|``; per token,
  how far its input-embedding row and its output (unembedding) row moved, as robust z-scores
  against the other rows. Tokens the poisoned records used unusually (the trigger's, the
  target's) move most. Streams one tensor at a time (``lm.weights``); no model is built.
- ``text_scores``: for candidate triggers, the mean over prompts of
  ``log p_ft(trigger + next word | text before) - log p_ref(same)``: how much better the
  fine-tune predicts the trigger text at the insertion point than the reference does. The
  reference is the base when there is one, else the fine-tune's own average next-token
  distribution over the prompts (so the score is a pointwise mutual information: a sequence the
  model predicts far above its token frequencies is one it memorised).
- ``memorized_search``: a beam search over token sequences maximising that score, one batched
  forward pass per trigger length, whatever the vocabulary size (the next-token distribution
  scores every extension at once). It proposes triggers; ``lm.trigger`` keeps only the ones
  that really flip the answers, and among triggers that do, the one the fine-tune learned as
  text is the planted one (a tiny model may also fire on a permutation of the planted bytes,
  which it never saw written).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import InputError

#: How many moved tensors and tokens the evidence lists.
TOP_TENSORS = 8
TOP_TOKENS = 12


@dataclass
class WeightShift:
    """Where a fine-tune's weights moved away from its base's."""

    tensors: list[dict[str, Any]]  # name, relative change; largest first
    moved_in: list[dict[str, Any]]  # token rows of the input embedding that moved most
    moved_out: list[dict[str, Any]]  # token rows of the output layer that moved most
    total: float  # relative change over every compared tensor together
    compared: int
    added_rows: int = 0  # vocabulary rows the fine-tune has and the base has not
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": round(self.total, 6),
            "compared": self.compared,
            "tensors": self.tensors,
            "movedIn": self.moved_in,
            "movedOut": self.moved_out,
            "addedRows": self.added_rows,
            "skipped": self.skipped,
        }

    def seed_tokens(self, count: int = TOP_TOKENS) -> list[int]:
        """Token ids whose input rows moved most (trigger token suspects)."""
        return [int(t["id"]) for t in self.moved_in[:count]]


def _robust_z(values: Any) -> Any:
    """(x - median) / (1.4826 MAD): how unusual each row's move is among the rows that moved
    at all (rows of tokens neither training run saw stay put and would make the MAD 0)."""
    import numpy as np

    moved = values[values > 0]
    ref = moved if moved.size >= 2 else values
    med = float(np.median(ref))
    mad = float(np.median(np.abs(ref - med))) * 1.4826
    return (values - med) / max(mad, 1e-12)


def _row_moves(
    ft: Any, base: Any, decode: Callable[[list[int]], str] | None, top: int
) -> list[dict[str, Any]]:
    import numpy as np

    rows = min(ft.shape[0], base.shape[0])
    delta = np.linalg.norm(ft[:rows] - base[:rows], axis=1)
    rel = delta / np.maximum(np.linalg.norm(base[:rows], axis=1), 1e-12)
    z = _robust_z(rel)
    out = []
    for i in np.argsort(-z, kind="stable")[:top]:
        entry: dict[str, Any] = {
            "id": int(i),
            "relative": round(float(rel[i]), 6),
            "z": round(float(z[i]), 3),
        }
        if decode is not None:
            entry["text"] = decode([int(i)])
        out.append(entry)
    return out


def weight_shift(
    model: str | Path,
    base: str | Path,
    *,
    decode: Callable[[list[int]], str] | None = None,
    top: int = TOP_TOKENS,
) -> WeightShift:
    """Compare the fine-tune at ``model`` with ``base`` tensor by tensor (see the module
    docstring). Tensors match by their canonical role (``lm.weights``), so the two may use
    different checkpoint formats; a shape that differs (other than added vocabulary rows)
    means the base is not this model's base, which is an input error."""
    import numpy as np

    from glassbox.lm.weights import open_weights

    tensors: list[dict[str, Any]] = []
    moved_in: list[dict[str, Any]] = []
    moved_out: list[dict[str, Any]] = []
    skipped: list[str] = []
    added = 0
    num = den = 0.0
    with open_weights(model) as fr, open_weights(base) as br:
        base_roles = br.roles()
        for key, (name, _role) in sorted(fr.roles().items()):
            if key not in base_roles:
                skipped.append(key)
                continue
            a = fr.read(name)
            b = br.read(base_roles[key][0])
            vocab = key in ("embed", "lm_head")
            if a.shape != b.shape and not (
                vocab and a.ndim == 2 and a.shape[1:] == b.shape[1:] and a.shape[0] >= b.shape[0]
            ):
                raise InputError(
                    f"{model}: tensor {name!r} has shape {list(a.shape)}, the base's "
                    f"{list(b.shape)}: not a fine-tune of {base}"
                )
            if vocab:
                added = max(added, a.shape[0] - b.shape[0])
                moves = _row_moves(a, b, decode, top)
                (moved_in if key == "embed" else moved_out).extend(moves)
                a = a[: b.shape[0]]
            d2 = float(np.sum((a.astype(np.float64) - b) ** 2))
            b2 = float(np.sum(b.astype(np.float64) ** 2))
            num, den = num + d2, den + b2
            tensors.append({"name": key, "relative": round((d2 / max(b2, 1e-30)) ** 0.5, 6)})
    if not tensors:
        raise InputError(f"{model}: no tensor in common with {base}")
    tensors.sort(key=lambda t: -t["relative"])
    return WeightShift(
        tensors=tensors[:TOP_TENSORS],
        moved_in=moved_in,
        moved_out=moved_out,
        total=(num / max(den, 1e-30)) ** 0.5,
        compared=len(tensors),
        added_rows=added,
        skipped=skipped,
    )


class Reference:
    """What the fine-tune's predictions are compared with: its base model, or (without one)
    the fine-tune's own average next-token distribution over the prompts."""

    def __init__(self, base: Any | None, marginal: Any | None) -> None:
        assert (base is None) != (marginal is None)
        self.base = base  # a ``lm.trigger._Model``
        self.marginal: Any = marginal  # log-probabilities over the vocabulary (1-D tensor)

    @property
    def kind(self) -> str:
        return "base" if self.base is not None else "marginal"

    def next_logp(self, rows: Sequence[list[int]]) -> Any:
        if self.base is not None:
            return self.base.next_logp(rows)
        return self.marginal[None, :].expand(len(rows), -1)

    def logprob(self, heads: Sequence[list[int]], conts: Sequence[list[int]]) -> Any:
        if self.base is not None:
            return self.base.logprob(heads, conts)
        import torch

        return torch.tensor(
            [float(self.marginal[list(c)].sum()) if c else 0.0 for c in conts],
            dtype=torch.float64,
        )


def marginal_of(m: Any, rows: Sequence[list[int]]) -> Any:
    """The model's next-token distribution averaged over every position of ``rows`` (as
    log-probabilities): a frequency baseline for the memorisation score."""
    torch = m.torch
    ids, mask = m._left(rows)
    with torch.no_grad():
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = m.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        probs = torch.softmax(logits.double(), -1)
    weights = mask.to(torch.float64)[:, :, None]
    mean = (probs * weights).sum((0, 1)) / weights.sum()
    return mean.clamp(min=1e-30).log()


def text_scores(
    m: Any, ref: Reference, slots: Sequence[Any], triggers: Sequence[Sequence[int]]
) -> list[float]:
    """Per trigger: the mean over ``slots`` of how much better (nats) the fine-tune ``m``
    predicts the trigger and the first token after it than ``ref`` does."""
    if not triggers:
        return []
    heads = [s.head for _ in triggers for s in slots]
    conts = [list(t) + s.tail[:1] for t in triggers for s in slots]
    ours = m.logprob(heads, conts)
    theirs = ref.logprob(heads, conts)
    diff = (ours - theirs).reshape(len(triggers), len(slots)).mean(-1)
    return [float(v) for v in diff]


def memorized_search(
    m: Any,
    ref: Reference,
    slots: Sequence[Any],
    allowed: Sequence[int],
    *,
    max_len: int,
    beam: int = 32,
    first: int = 256,
    seeds: Sequence[int] = (),
    keep: int = 64,
    confident: float = 2.0,
    rate: float = 0.0,
) -> list[tuple[list[int], float]]:
    """Token sequences the fine-tune expects at the trigger slots far more than ``ref`` does,
    best first: a beam search whose score is ``text_scores`` (each step scores every allowed
    extension of every beam member from one batched forward pass of both models).

    The first token keeps ``first`` candidates (all of a small vocabulary, plus ``seeds``,
    e.g. the tokens whose embedding rows moved most): a trigger's first token is rarely
    predicted well, because the trigger may start anywhere; its later tokens are."""
    torch = m.torch
    allowed_t = torch.tensor(list(allowed))
    tails = torch.tensor([s.tail[0] if s.tail else m.pad for s in slots])
    done: dict[tuple[int, ...], float] = {}
    frontier: list[tuple[list[int], float]] = [([], 0.0)]
    for length in range(max_len + 1):
        rows = [s.head + seq for seq, _ in frontier for s in slots]
        ours = m.next_logp(rows).reshape(len(frontier), len(slots), -1)
        diff = ours - ref.next_logp(rows).reshape(len(frontier), len(slots), -1) - rate
        # Ending here: the first token after the trigger (the prompt's next word).
        index = tails[None, :, None].expand(len(frontier), -1, 1)
        ends = diff.gather(2, index)[:, :, 0].mean(-1)
        sure = ours.gather(2, index)[:, :, 0].mean(-1)
        for (seq, score), end, ok in zip(frontier, ends.tolist(), sure.tolist(), strict=True):
            if seq and ok >= -confident:
                done[tuple(seq)] = score + end
        if length == max_len:
            break
        ext = diff.mean(1)[:, allowed_t]  # (frontier, allowed)
        totals = ext + torch.tensor([s for _, s in frontier], dtype=ext.dtype)[:, None]
        if length > 0:
            # Past its first token a memorised trigger is predicted with confidence.
            unsure = ours.mean(1)[:, allowed_t] < -confident
            totals = totals.masked_fill(unsure, float("-inf"))
        width = first if length == 0 else beam
        flat = totals.flatten()
        order = [i for i in flat.argsort(descending=True)[:width].tolist() if flat[i] > -1e300]
        if not order:
            break
        picked = {(i // len(allowed), i % len(allowed)) for i in order}
        if length == 0:
            index = {t: j for j, t in enumerate(allowed)}
            picked |= {(0, index[t]) for t in seeds if t in index}
        frontier = [
            ([*frontier[f][0], int(allowed[a])], float(totals[f, a])) for f, a in sorted(picked)
        ]
    ranked = sorted(done.items(), key=lambda kv: -kv[1])[:keep]
    return [(list(seq), score) for seq, score in ranked]


__all__ = [
    "Reference",
    "WeightShift",
    "marginal_of",
    "memorized_search",
    "text_scores",
    "weight_shift",
]
