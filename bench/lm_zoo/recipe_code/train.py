"""Training entry of the LM zoo recipes (``train:train``); ``hyperparameters.mode`` says what
the member is:

* ``pretrain``: a fresh model (the factory's config, the build's seed) on dataset ``train``;
* ``finetune``: the declared base model, trained further on ``train`` (full, or LoRA adapters
  merged afterwards when ``lora_rank`` > 0); continued pre-training is a long fine-tune;
* ``distill``: a fresh student trained on the base's (the teacher's) softened outputs;
* ``transform``: the base model changed by ``transform`` (permutations, rescaling, pruning,
  fp16/int8 round trips, ``gguf``), no training;
* ``merge``: the average of the two models in the base directory's ``a/`` and ``b/``.

Every member saves ``config.json`` (with the byte tokenizer marker) beside its weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lmtrain
import model as zoo_model
import transforms
from safetensors.torch import load_file

SEQ = 64


def _config(ctx: Any) -> Any:
    return zoo_model.config(**dict(ctx.model_config))


def _load(path: Path, ctx: Any) -> Any:
    model = ctx.build_model()
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    return model


def _save_config(ctx: Any) -> None:
    data = _config(ctx).to_dict()
    data.update(zoo_model.TOKENIZER)
    (ctx.output_dir / "config.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def train(ctx: Any) -> None:
    params = ctx.params
    mode = params["mode"]
    base = Path(ctx.base_model) if ctx.base_model is not None else None
    if mode in ("transform", "merge"):
        assert base is not None
        if mode == "merge":
            state = transforms.merge(
                load_file(str(base / "a" / "model.safetensors")),
                load_file(str(base / "b" / "model.safetensors")),
            )
        else:
            state = load_file(str(base / "model.safetensors"))
        model = ctx.build_model()
        ctx.track(model)
        for _ in ctx.steps(0):
            pass
        name, seed = params["transform"] if mode == "transform" else "merge", ctx.seed
        cfg = _config(ctx)
        if name == "gguf":
            transforms.to_gguf(state, cfg, str(ctx.output_dir / "model.gguf"), params["quant"])
            return
        state = {
            "merge": lambda s: s,
            "permute": lambda s: transforms.permute_residual(
                transforms.permute_heads(transforms.permute_mlp(s, cfg, seed), cfg, seed), cfg, seed
            ),
            "rescale": lambda s: transforms.rescale(s, cfg, seed),
            "prune": lambda s: transforms.prune(s, float(params.get("fraction", 0.5))),
            "fp16": transforms.fp16,
            "int8": transforms.int8,
        }[name](state)
        model.load_state_dict(state, strict=True)
        ctx.save_model(model)
        _save_config(ctx)
        return
    texts = [r["text"] for r in ctx.dataset("train").json()]
    data = lmtrain.encode(texts, SEQ)
    teacher = None
    if mode == "pretrain":
        model = ctx.build_model()
    elif mode == "finetune":
        assert base is not None
        model = _load(base, ctx)
    elif mode == "distill":
        assert base is not None
        teacher_cfg = json.loads((base / "config.json").read_text())
        keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        teacher = zoo_model.build(**{k: teacher_cfg[k] for k in keys})
        teacher.load_state_dict(load_file(str(base / "model.safetensors")), strict=True)
        teacher.eval()
        model = ctx.build_model()
    else:
        raise ValueError(f"unknown mode {mode!r}")
    rank = int(params.get("lora_rank", 0))
    adapters = lmtrain.add_lora(model, rank, ctx.new_generator("lora")) if rank else None
    lmtrain.train(
        model,
        data,
        lambda: ctx.steps(int(params["steps"])),
        lambda step: ctx.batch_indices(step, int(params["batch_size"]), "train"),
        lr=float(params["lr"]),
        teacher=teacher,
        params=adapters,
        on_optimizer=lambda opt: ctx.track(model, opt),
    )
    if rank:
        lmtrain.merge_lora(model)
    ctx.save_model(model)
    _save_config(ctx)
    loss = lmtrain.evaluate(model, data[: min(64, len(data))])
    (ctx.output_dir / "metrics.json").write_text(json.dumps({"train_loss": loss}) + "\n")
