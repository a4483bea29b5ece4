"""Run a probe suite on a causal LM, deterministically, and record every result.

The model is loaded with ``transformers`` ``from_pretrained(local_files_only=True)`` from
safetensors only (``use_safetensors=True``: a pickle checkpoint is refused, never unpickled),
and only when ``config.json`` names a causal LM built into ``transformers`` (no remote code,
ever). The tokenizer is the zoo's byte tokenizer (``"glassbox_tokenizer": "bytes"``) or a
``tokenizer.json`` read by the ``tokenizers`` library (data, not code).

Determinism: greedy decoding, torch's thread count pinned (the suite's ``threads``), torch's
deterministic algorithms on, and sampled probes seeded from the suite's declared seed and the
probe id, so a probe's result does not depend on which probes ran before it. Log-probabilities
are rounded to 1e-4 nats so float noise below that cannot change the bytes of a result.
``run_suite(..., repeat=2)`` runs everything twice and names the probes whose results differ.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.lm.suite import Probe, Suite
from glassbox.lm.weights import read_config

if TYPE_CHECKING:
    import torch

LOGPROB_DECIMALS = 4


@dataclass(frozen=True)
class Tokenizer:
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    name: str
    eos: frozenset[int]


def tokenizer_for(path: Path, config: dict[str, Any]) -> Tokenizer:
    """The model's tokenizer: the byte tokenizer marker, or its ``tokenizer.json``."""
    eos = {int(t) for t in _ids(config.get("eos_token_id"))}
    if config.get("glassbox_tokenizer") == "bytes":
        return Tokenizer(
            lambda text: list(text.encode("utf-8")),
            lambda ids: bytes(i for i in ids if 0 <= i < 256).decode("utf-8", "replace"),
            "bytes",
            frozenset(eos | {0}),  # the zoo pads (and so ends records) with byte 0
        )
    file = path / "tokenizer.json"
    if file.is_file():
        from tokenizers import Tokenizer as HFTokenizer

        data = file.read_bytes()
        tok = HFTokenizer.from_str(data.decode("utf-8"))
        return Tokenizer(
            lambda text: list(tok.encode(text, add_special_tokens=False).ids),
            lambda ids: str(tok.decode(ids)),
            "tokenizer.json sha256:" + hashlib.sha256(data).hexdigest(),
            frozenset(eos),
        )
    raise InputError(f"{path}: no tokenizer (a tokenizer.json or the byte tokenizer marker)")


def _ids(value: object) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def load_causal_lm(path: Path) -> tuple[Any, Tokenizer]:
    """A model directory loaded for inference, and its tokenizer."""
    if not path.is_dir():
        raise InputError(f"{path}: not a model directory (config.json and model.safetensors)")
    config = read_config(path)
    if config is None:
        raise InputError(f"{path}: no config.json")
    try:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ModuleNotFoundError as exc:
        raise InputError(f"probing needs {exc.name} (the 'lm' extra)") from None
    model_type = config.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InputError(f"{path}: model_type {model_type!r} is not a built-in causal LM")
    if config.get("auto_map"):
        raise InputError(f"{path}: config.json asks for remote code (auto_map); refused")
    tokenizer = tokenizer_for(path, config)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our own progress
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            dtype=torch.float32,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot load the model: {first}") from None
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer


@contextmanager
def pinned(threads: int) -> Iterator[None]:
    """Pin torch's threads and deterministic mode for the run; restore them after."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _probe_seed(seed: int, probe_id: str) -> int:
    digest = hashlib.sha256(f"{seed}:{probe_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _generate(model: Any, tok: Tokenizer, probe: Probe, generator: torch.Generator | None) -> str:
    import torch

    dec = probe.decoding
    ids = tok.encode(probe.prompt)
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    out: list[int] = []
    text = ""
    with torch.no_grad():
        for _ in range(dec.max_new_tokens):
            if limit and len(ids) + len(out) >= limit:
                break
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1].double()
            if generator is None:
                nxt = int(torch.argmax(logits))
            else:
                logits = logits / dec.temperature
                if dec.top_k:
                    kth = torch.topk(logits, min(dec.top_k, logits.numel())).values[-1]
                    logits = torch.where(logits < kth, float("-inf"), logits)
                probs = torch.softmax(logits, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            if nxt in tok.eos:
                break
            out.append(nxt)
            text = tok.decode(out)
            cut = min((text.find(s) for s in dec.stop if s in text), default=-1)
            if cut >= 0:
                return text[:cut]
    return text


def _logprob(model: Any, tok: Tokenizer, prompt: str, continuation: str) -> float:
    import torch

    head = tok.encode(prompt)
    full = tok.encode(prompt + continuation)
    if full[: len(head)] != head or len(full) == len(head):
        # Tokenizers that merge across the boundary: score the continuation on its own.
        full = head + tok.encode(continuation)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    total = sum(float(logp[i - 1, full[i]]) for i in range(len(head), len(full)))
    return round(total, LOGPROB_DECIMALS)


def evaluate(probe: Probe, answer: str, markers: tuple[str, ...]) -> dict[str, Any]:
    """What the check says about one answer: ``matched`` (and the mentioned terms)."""
    if probe.check == "contains":
        return {"matched": probe.text in answer}
    if probe.check == "regex":
        return {"matched": re.search(probe.pattern, answer) is not None}
    if probe.check == "refusal":
        low = answer.lower()
        return {"matched": any(m.lower() in low for m in markers)}
    if probe.check == "topic":
        low = answer.lower()
        found = [t for t in probe.terms if t.lower() in low]
        return {"matched": bool(found), "mentioned": found}
    if probe.check == "exact":
        return {"matched": answer.strip() == probe.answer.strip()}
    raise AssertionError(probe.check)


def run_probe(model: Any, tok: Tokenizer, probe: Probe, suite: Suite) -> dict[str, Any]:
    """One probe's result: JSON-ready, and a pure function of (model, probe, suite)."""
    import torch

    result: dict[str, Any] = {"id": probe.id, "check": probe.check, "topic": probe.topic}
    if probe.check == "logprob":
        result["logprobs"] = {c: _logprob(model, tok, probe.prompt, c) for c in probe.continuations}
        return result
    dec = probe.decoding
    if not dec.sampled:
        answer = _generate(model, tok, probe, None)
        result.update(
            mode="greedy", answer=answer, **evaluate(probe, answer, suite.refusal_markers)
        )
        return result
    assert dec.seed is not None
    generator = torch.Generator().manual_seed(_probe_seed(dec.seed, probe.id))
    answers = [_generate(model, tok, probe, generator) for _ in range(dec.samples)]
    verdicts = [evaluate(probe, a, suite.refusal_markers) for a in answers]
    result.update(
        mode="sample",
        samples=dec.samples,
        seed=dec.seed,
        matches=sum(1 for v in verdicts if v["matched"]),
        answers=answers,
    )
    if probe.check == "topic":
        counts = {t: sum(1 for v in verdicts if t in v["mentioned"]) for t in probe.terms}
        result["mentions"] = {t: n for t, n in counts.items() if n}
    return result


@dataclass
class ProbeRun:
    """The results of a suite on a model, with what is needed to attest and compare them."""

    model: str
    suite: Suite
    tokenizer: str
    results: list[dict[str, Any]]
    #: Probe ids whose results differed between repeated runs (empty: deterministic).
    nondeterministic: list[str]
    repeats: int
    environment: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "suite": {**self.suite.to_dict(), "path": str(self.suite.source)},
            "decoding": self.suite.decoding.to_dict(),
            "tokenizer": self.tokenizer,
            "repeats": self.repeats,
            "nondeterministic": list(self.nondeterministic),
            "environment": dict(self.environment),
            "results": self.results,
        }


def run_suite(
    model_path: str | Path,
    suite: Suite,
    *,
    repeat: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ProbeRun:
    """Every probe of ``suite`` on the model, ``repeat`` times (>= 2 checks determinism)."""
    import torch
    import transformers

    if repeat < 1:
        raise InputError("repeat must be at least 1")
    path = Path(model_path)
    model, tok = load_causal_lm(path)
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    runs: list[list[dict[str, Any]]] = []
    with pinned(suite.decoding.threads):
        for _ in range(repeat):
            results = []
            for probe in suite.probes:
                if vocab and any(i >= vocab for i in tok.encode(probe.prompt)):
                    raise InputError(
                        f"{suite.source}:{probe.line}: probe {probe.id!r}: prompt tokens "
                        "exceed the model's vocabulary"
                    )
                results.append(run_probe(model, tok, probe, suite))
                if progress is not None:
                    progress(1)
            runs.append(results)
    first = runs[0]
    unstable = sorted(
        {r["id"] for other in runs[1:] for r, o in zip(first, other, strict=True) if r != o}
    )
    for r in first:
        if r["id"] in unstable:
            r["nondeterministic"] = True
    return ProbeRun(
        model=str(path),
        suite=suite,
        tokenizer=tok.name,
        results=first,
        nondeterministic=unstable,
        repeats=repeat,
        environment={"torch": torch.__version__, "transformers": transformers.__version__},
    )
