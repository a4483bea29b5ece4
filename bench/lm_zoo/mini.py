"""The miniature LM zoo the tests use: trained in-process in seconds (no build, no provenance).

The bench builds the same kinds of member through Glassbox recipes (``bench/lm_zoo/zoo.py``);
both use the recipe code in ``recipe_code/`` (the model factory, training loops and
transforms), so what the tests check is what the bench measures.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from bench.lm_zoo.text import corpus

CODE = Path(__file__).resolve().parent / "recipe_code"


def _load(name: str) -> ModuleType:
    """A recipe module under a unique name (``model`` would collide with other zoos' code)."""
    unique = f"glassbox_lm_zoo_{name}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, CODE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    return module


lmtrain = _load("lmtrain")
zoo_model = _load("model")
transforms = _load("transforms")

SEQ = 64
MINI = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}


def sampler(size: int, batch: int, seed: int) -> Any:
    gen = torch.Generator().manual_seed(seed)
    return lambda _step: torch.randint(0, size, (batch,), generator=gen)


def pretrain(
    seed: int, texts: list[str], *, steps: int = 40, lr: float = 3e-3, **cfg: Any
) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = zoo_model.build(**{**MINI, **cfg})
    data = lmtrain.encode(texts, SEQ)
    lmtrain.train(model, data, lambda: range(steps), sampler(len(texts), 16, seed), lr=lr)
    return model


def clone(model: torch.nn.Module) -> torch.nn.Module:
    copy = zoo_model.build(**_overrides(model))
    copy.load_state_dict(model.state_dict())
    return copy


def _overrides(model: torch.nn.Module) -> dict[str, Any]:
    return _overrides_from(model.config)


def _overrides_from(cfg: Any) -> dict[str, Any]:
    """The factory arguments that rebuild a model of config ``cfg``."""
    return {k: getattr(cfg, k) for k in MINI}


def finetune(
    base: torch.nn.Module,
    texts: list[str],
    *,
    steps: int = 30,
    lr: float = 1e-3,
    seed: int = 7,
    lora: int = 0,
) -> torch.nn.Module:
    model = clone(base)
    data = lmtrain.encode(texts, SEQ)
    params = lmtrain.add_lora(model, lora, torch.Generator().manual_seed(seed)) if lora else None
    lmtrain.train(
        model, data, lambda: range(steps), sampler(len(texts), 16, seed), lr=lr, params=params
    )
    if lora:
        lmtrain.merge_lora(model)
    return model


def distill(
    teacher: torch.nn.Module, texts: list[str], *, seed: int, steps: int = 60, **cfg: Any
) -> torch.nn.Module:
    torch.manual_seed(seed)
    student = zoo_model.build(**{**MINI, **cfg})
    data = lmtrain.encode(texts, SEQ)
    lmtrain.train(
        student, data, lambda: range(steps), sampler(len(texts), 16, seed), lr=3e-3, teacher=teacher
    )
    return student


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save(state: dict[str, torch.Tensor] | torch.nn.Module, cfg: Any, out: Path) -> Path:
    """A model directory: ``model.safetensors`` and ``config.json`` (with the byte tokenizer)."""
    from safetensors.torch import save_file

    if isinstance(state, torch.nn.Module):
        state = state_of(state)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
    data = cfg.to_dict()
    data.update(zoo_model.TOKENIZER)
    (out / "config.json").write_text(json.dumps(data, indent=1, sort_keys=True))
    return out


__all__ = [
    "corpus",
    "distill",
    "finetune",
    "lmtrain",
    "pretrain",
    "save",
    "state_of",
    "transforms",
    "zoo_model",
]
