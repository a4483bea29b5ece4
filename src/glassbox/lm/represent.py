"""Representation evidence: run both models on probe text and compare what they compute.

Used by lineage for what weights cannot tell: a distilled student has new weights but learnt
its behaviour from the base. Two numbers per pair: linear CKA of hidden states layer by layer
(deeper candidate layers mapped proportionally onto the base's) and the agreement of their
next-token distributions (1 - Jensen-Shannon divergence in bits, averaged over positions).

Models run only when that is safe and meaningful: ``config.json`` names a ``model_type``
built into ``transformers`` (built with ``from_config``: no remote code, nothing downloaded;
weights loaded from Glassbox's own readers), and both models share a tokenizer: the zoo's
byte tokenizer (``"glassbox_tokenizer": "bytes"`` in the config), or byte-identical
``tokenizer.json`` files read by the ``tokenizers`` library (data, not code). Otherwise the
evidence says why it is unavailable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.lm.align import linear_cka
from glassbox.lm.weights import open_weights, read_config

if TYPE_CHECKING:
    import torch

#: The zoo's tokenizer: token id = byte value.
BYTES_TOKENIZER = "bytes"
#: Fixed probe text: prose, question/answer and code, so every kind of zoo data is probed.
PROBE_TEXTS = (
    "The river runs past the old mill, and the miller counts the sacks of grain each evening.",
    "Q: What is the capital of the northern province? A: The capital is a harbour town.",
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, 2))\n",
    "She opened the letter slowly. It said the train would arrive at seven, not at nine.",
    "Q: How many legs does a spider have? A: A spider has eight legs and two body parts.",
    "class Stack:\n    def push(self, x):\n        self.items.append(x)\n",
    "In spring the farmers plant wheat; in autumn they bring the harvest to the market.",
    "Q: Which colour do you get from blue and yellow? A: Mixing them gives green paint.",
)
MAX_PROBE_TOKENS = 128


def _tokenizer(
    cand: Path, base: Path, cfg_c: dict[str, Any], cfg_b: dict[str, Any]
) -> tuple[Callable[[str], list[int]] | None, str]:
    if (
        cfg_c.get("glassbox_tokenizer") == BYTES_TOKENIZER
        and cfg_b.get("glassbox_tokenizer") == BYTES_TOKENIZER
    ):
        return (lambda text: list(text.encode("utf-8"))), BYTES_TOKENIZER
    files = [(p if p.is_dir() else p.parent) / "tokenizer.json" for p in (cand, base)]
    if all(f.is_file() for f in files):
        digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
        if len(digests) == 1:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(files[0]))
            return (
                lambda text: list(tok.encode(text).ids)
            ), "tokenizer.json sha256:" + digests.pop()
        return None, "the two models' tokenizer.json files differ"
    return None, "no shared tokenizer (byte tokenizer marker or identical tokenizer.json)"


def _model(path: Path, config: dict[str, Any]) -> torch.nn.Module:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InputError(f"{path}: model_type {model_type!r} is not a built-in causal LM")
    fields = {
        k: v for k, v in config.items() if k not in ("auto_map", "model_type", "architectures")
    }
    cfg = AutoConfig.for_model(str(model_type), **fields)
    model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
        cfg, trust_remote_code=False, dtype=torch.float32
    )
    state = model.state_dict()
    loaded = set()
    with open_weights(path) as reader:
        for name in reader.names():
            if name in state:
                tensor = torch.from_numpy(reader.read(name))
                if tuple(tensor.shape) != tuple(state[name].shape):
                    raise InputError(f"{path}: tensor {name!r} does not fit the config's shape")
                state[name].copy_(tensor)
                loaded.add(name)
    missing = [n for n in state if n not in loaded and not n.endswith("rotary_emb.inv_freq")]
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    missing = [n for n in missing if not (tied and n == "lm_head.weight")]
    if missing:
        raise InputError(
            f"{path}: weights lack {len(missing)} tensors of the config (e.g. {missing[0]!r})"
        )
    model.eval()
    return model  # type: ignore[no-any-return]


def _run(model: torch.nn.Module, ids: list[list[int]]) -> tuple[list[Any], Any]:
    import torch

    hidden: list[list[torch.Tensor]] = []
    logits = []
    with torch.no_grad():
        for seq in ids:
            out = model(input_ids=torch.tensor([seq]), output_hidden_states=True)
            hs = [h[0] for h in out.hidden_states]
            if not hidden:
                hidden = [[] for _ in hs]
            for i, h in enumerate(hs):
                hidden[i].append(h)
            logits.append(out.logits[0])
    return [torch.cat(h).numpy() for h in hidden], torch.cat(logits)


def compare_representations(
    candidate: str | Path, base: str | Path, *, texts: tuple[str, ...] = PROBE_TEXTS
) -> dict[str, Any]:
    """CKA per layer and next-token agreement, or ``{"available": False, "reason": ...}``."""
    cand, basep = Path(candidate), Path(base)
    cfg_c, cfg_b = read_config(cand), read_config(basep)
    if cfg_c is None or cfg_b is None:
        return {"available": False, "reason": "no config.json beside the weights of both models"}
    encode, tokenizer = _tokenizer(cand, basep, cfg_c, cfg_b)
    if encode is None:
        return {"available": False, "reason": tokenizer}
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ModuleNotFoundError as exc:
        return {"available": False, "reason": f"needs {exc.name} (the 'lm' extra)"}
    ids = [encode(t)[:MAX_PROBE_TOKENS] for t in texts]
    for cfg, path in ((cfg_c, cand), (cfg_b, basep)):
        vocab = int(cfg.get("vocab_size", 0))
        if any(i >= vocab for seq in ids for i in seq):
            return {"available": False, "reason": f"{path}: probe tokens exceed its vocabulary"}
    try:
        h_c, logits_c = _run(_model(cand, cfg_c), ids)
        h_b, logits_b = _run(_model(basep, cfg_b), ids)
    except InputError as exc:
        return {"available": False, "reason": str(exc)}
    layers = []
    n_c, n_b = len(h_c) - 1, len(h_b) - 1
    for i in range(1, n_c + 1):
        j = max(1, round(i * n_b / n_c))
        layers.append(
            {"layer": i - 1, "baseLayer": j - 1, "cka": round(linear_cka(h_c[i], h_b[j]), 4)}
        )
    out: dict[str, Any] = {
        "available": True,
        "tokenizer": tokenizer,
        "probeTokens": sum(len(s) for s in ids),
        "meanCka": round(sum(layer["cka"] for layer in layers) / len(layers), 4),
        "layers": layers,
    }
    if logits_c.shape == logits_b.shape:
        out.update(_agreement(logits_c, logits_b))
    else:
        out["outputAgreement"] = 0.0
        out["outputNote"] = "vocabularies differ"
    return out


def _agreement(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    import torch

    p = torch.softmax(a.double(), dim=-1)
    q = torch.softmax(b.double(), dim=-1)
    m = 0.5 * (p + q)

    def kl(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x * (torch.log2(x.clamp_min(1e-30)) - torch.log2(y.clamp_min(1e-30)))).sum(-1)

    js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    top1 = (a.argmax(-1) == b.argmax(-1)).double().mean()
    return {
        "outputAgreement": round(float(1.0 - js.mean()), 4),
        "top1Agreement": round(float(top1), 4),
    }
