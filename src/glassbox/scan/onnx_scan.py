"""ONNX: external-data paths that leave the model directory, and custom operator domains.

The protobuf is parsed with ``onnx`` (external data is never loaded: the whole point is to check
where it would be read from). A runtime loading ``location: ../../etc/passwd`` reads that file
into a tensor; a custom domain needs a native library registered by the runtime.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from glassbox.digest.walk import is_model_file
from glassbox.scan.context import ScanContext, Source
from glassbox.scan.findings import Severity

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
# Built into onnxruntime (no user library), but not part of the ONNX standard.
KNOWN_RUNTIME_DOMAINS = frozenset({"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc"})


def _graphs(graph: Any) -> Iterator[Any]:
    stack = [graph]
    seen = 0
    while stack and seen < 100_000:
        g = stack.pop()
        seen += 1
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _tensors(model: Any) -> Iterator[Any]:
    for g in _graphs(model.graph):
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield sp.values
            yield sp.indices
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def _escape_reason(location: str, base: Path | None) -> str | None:
    norm = location.replace("\\", "/")
    if "\x00" in norm:
        return "contains a NUL byte"
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or norm.startswith("//"):
        return "is absolute"
    if posixpath.normpath(norm).split("/")[0] == "..":
        return "climbs out of the model directory"
    if base is not None:
        target = (base / norm).resolve()
        try:
            target.relative_to(base.resolve())
        except ValueError:
            # In a Hugging Face cache snapshot every file is a link into the repository's
            # blobs; such a storage link, in a directory of the model, is the model's own
            # file (digest's rule decides).
            candidate = base / norm
            in_model = Path(os.path.realpath(candidate.parent)).is_relative_to(base.resolve())
            if not (in_model and candidate.is_symlink() and is_model_file(candidate)):
                return "resolves (through a symlink) outside the model directory"
    return None


def scan_onnx(ctx: ScanContext, src: Source) -> None:
    try:
        import onnx
    except ImportError:  # pragma: no cover - optional extra
        return
    if src.size is not None and src.size > ctx.limits.max_onnx:
        ctx.report("GBX-LIM-002", "ONNX file larger than the scan limit", member=src.member)
        return
    try:
        with src.seekable(ctx.limits) as f:
            model = onnx.load_model(f, load_external_data=False)
    except Exception as exc:
        ctx.report(
            "GBX-ONNX-003", f"ONNX protobuf unreadable ({type(exc).__name__})", member=src.member
        )
        return
    base = src.local_path.parent if src.local_path is not None else None
    for tensor in _tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            why = _escape_reason(entry.value, base)
            if why:
                ctx.report(
                    "GBX-ONNX-001",
                    f"tensor {tensor.name!r} reads external data from {entry.value!r}, which {why}",
                    member=src.member,
                    subject=entry.value,
                )
    # Model-local functions (torch's exporter emits them under its own domains) are built from
    # other nodes in the file, so calling one needs no native library; their bodies are checked.
    local = {(f.domain, f.name) for f in model.functions}
    nodes = [n for g in _graphs(model.graph) for n in g.node]
    nodes += [n for f in model.functions for n in f.node]
    domains: dict[str, str] = {}
    for node in nodes:
        if (node.domain, node.op_type) not in local:
            domains.setdefault(node.domain, f"node {node.name or node.op_type}")
    for domain, where in sorted(domains.items()):
        if domain in STANDARD_DOMAINS:
            continue
        known = domain in KNOWN_RUNTIME_DOMAINS
        ctx.report(
            "GBX-ONNX-002",
            f"operator domain {domain!r} ({where}) is not standard ONNX"
            + ("; built into onnxruntime" if known else "; needs a custom operator library"),
            member=src.member,
            subject=domain,
            severity=Severity.LOW if known else None,
        )
