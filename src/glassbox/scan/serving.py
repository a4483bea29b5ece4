"""Serving formats whose loaders run code the archive names: TorchServe ``.mar`` archives (the
handler and model files are Python, imported by the server) and TensorFlow SavedModel graphs
(ops that read or write files, or call back into Python, run when the graph does).

A ``.mar`` is a zip, walked like any other; its ``MAR-INF/MANIFEST.json`` is read here. A
SavedModel's ``saved_model.pb`` is a protobuf: the scanner looks for the op names of ``NodeDef``
fields (field 2, a length-delimited string) rather than decoding the whole graph, so it needs
no TensorFlow.
"""

from __future__ import annotations

import contextlib
from typing import Any

from glassbox.scan.context import ScanContext, Source

# TorchServe's built-in handlers (a name, not a file): anything else is code from the archive.
_BUILTIN_HANDLERS = frozenset(
    {"image_classifier", "image_segmenter", "object_detector", "text_classifier"}
)
# Ops that touch files or call Python when the graph runs.
RISKY_TF_OPS = (
    b"PyFunc",
    b"PyFuncStateless",
    b"EagerPyFunc",
    b"ReadFile",
    b"WriteFile",
    b"MatchingFiles",
    b"Save",
    b"SaveSlices",
    b"PrintV2",
    b"ImmutableConst",
)


def check_mar_manifest(ctx: ScanContext, src: Source, data: Any) -> None:
    ctx.formats.add("torchserve-mar")
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        return
    for key in ("handler", "modelFile"):
        value = model.get(key)
        if not isinstance(value, str) or not value or value in _BUILTIN_HANDLERS:
            continue
        code = value.split(":")[0]
        ctx.report(
            "GBX-CODE-002",
            f"TorchServe manifest {key} {value!r}: the server imports and runs {code} from the "
            "archive when the model is served",
            member=src.member,
            subject=code,
        )


def scan_savedmodel(ctx: ScanContext, src: Source) -> None:
    ctx.formats.add("tf-savedmodel")
    limit = ctx.limits.max_onnx
    with contextlib.closing(src.open()) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        ctx.report("GBX-LIM-002", "SavedModel graph too large to inspect", member=src.member)
        return
    found = sorted(op.decode() for op in RISKY_TF_OPS if b"\x12" + bytes([len(op)]) + op in data)
    for op in found:
        ctx.report(
            "GBX-TF-001",
            f"SavedModel graph uses the {op} op (file access or a call into Python when the "
            "graph runs)",
            member=src.member,
            subject=op,
        )
