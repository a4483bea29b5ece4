"""Configs that make a loader import and run code: ``auto_map`` (transformers'
``trust_remote_code`` imports the named ``*.py`` shipped beside the weights) and ``_target_`` /
``class_path`` instantiation (Hydra, NeMo, Lightning CLI call whatever dotted path they name with
the config's arguments).

Code beside the weights is a finding naming the file: it runs with the user's rights as soon as
the model is loaded with remote code allowed, and only a signature and a policy entry can vouch
for it. Instantiation targets are judged like a pickle's callables, as *called* (the loader calls
them with arguments), against the same allowlist plus the user's reviewed entries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from glassbox.scan.callables import Verdict, classify
from glassbox.scan.context import ScanContext, Source
from glassbox.scan.findings import Severity

_TARGET_KEYS = ("_target_", "class_path")
MAX_NODES = 200_000


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    stack = [data]
    seen = 0
    while stack and seen < MAX_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _auto_map_refs(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _auto_map_refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _auto_map_refs(item)


def check_config(ctx: ScanContext, src: Source, data: Any) -> None:
    """Report remote-code references and instantiation targets anywhere in a parsed config."""
    for node in _walk(data):
        auto_map = node.get("auto_map")
        if auto_map is not None:
            _report_auto_map(ctx, src, auto_map)
        for key in _TARGET_KEYS:
            target = node.get(key)
            if isinstance(target, str):
                _report_target(ctx, src, key, target)


def _report_auto_map(ctx: ScanContext, src: Source, auto_map: Any) -> None:
    files: dict[str, str] = {}
    for ref in _auto_map_refs(auto_map):
        repo, _, path = ref.rpartition("--")
        module = path.rpartition(".")[0]
        if not module:
            continue
        code = module.replace(".", "/") + ".py"
        files[f"{repo}:{code}" if repo else code] = ref
    for code, ref in sorted(files.items()):
        where = "from another repository " if ":" in code else "shipped beside the weights "
        ctx.report(
            "GBX-CODE-001",
            f"auto_map names {ref}: loading with trust_remote_code imports and runs {code} "
            f"({where}); it is unreviewed code unless signed and listed in the trust policy",
            member=src.member,
            subject=code,
            evidence={"reference": ref},
        )


def _report_target(ctx: ScanContext, src: Source, key: str, target: str) -> None:
    module, _, name = target.rpartition(".")
    if not module or not name:
        module, name = target, ""
    verdict = classify(module, name) if name else None
    if verdict is not None and verdict.verdict is Verdict.ALLOWED:
        return
    if (
        verdict is not None
        and verdict.verdict is not Verdict.DANGEROUS
        and ctx.limits.allows(module, name)
    ):
        return
    dangerous = verdict is not None and verdict.verdict is Verdict.DANGEROUS
    reason = verdict.reason if verdict is not None else "not a dotted path"
    ctx.report(
        "GBX-CFG-001",
        f"{key} {target!r}: instantiating the config calls it with the config's arguments "
        f"({reason})",
        member=src.member,
        subject=target,
        evidence={"key": key},
        severity=Severity.CRITICAL if dangerous else None,
    )


def scan_yaml(ctx: ScanContext, src: Source) -> None:
    """YAML configs (NeMo ``model_config.yaml``, Hydra): parsed with ``yaml.safe_load`` only
    (no tags that build objects), then checked like a JSON config."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ModuleNotFoundError:  # pragma: no cover - pyyaml is a dependency
        return
    if src.size is not None and src.size > ctx.limits.max_json:
        return
    with contextlib.closing(src.open()) as f:
        raw = f.read(ctx.limits.max_json + 1)
    if len(raw) > ctx.limits.max_json:
        return
    try:
        data = yaml.safe_load(raw)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        # The loaders use yaml.safe_load or full load; either way an unparseable config
        # does not instantiate anything, and YAML-named text need not be a config.
        ctx.report(
            "GBX-CFG-002",
            f"YAML config unreadable ({str(exc).splitlines()[0]})",
            member=src.member,
        )
        return
    ctx.formats.add("yaml")
    check_config(ctx, src, data)
