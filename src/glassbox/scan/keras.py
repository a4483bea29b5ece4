"""Keras model configs (``.keras`` zip ``config.json``, Keras 2 JSON, ``.h5`` ``model_config``)
and other JSON that carries code (HF ``tokenizer_config.json`` chat templates).

Lambda layers carry marshalled Python bytecode; ``module``/``registered_name`` entries make Keras
import and call whatever they name (CVE-2024-3660, CVE-2025-1550 and its safe_mode bypasses).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator
from typing import Any

from glassbox.scan.callables import Verdict, classify
from glassbox.scan.configs import check_config
from glassbox.scan.context import ScanContext, Source, may_be_utf8
from glassbox.scan.detect import HEAD_SIZE
from glassbox.scan.findings import Severity
from glassbox.scan.serving import check_mar_manifest
from glassbox.scan.templates import report_template

# Keras modules that only hold layer/optimizer/etc. classes; anything else in keras.* (file
# utilities, saving, backend I/O) is where the published gadgets live.
_KERAS_SAFE_MODULES = (
    "keras.layers",
    "keras.src.layers",
    "keras.models",
    "keras.src.models",
    "keras.optimizers",
    "keras.src.optimizers",
    "keras.losses",
    "keras.src.losses",
    "keras.metrics",
    "keras.src.metrics",
    "keras.regularizers",
    "keras.src.regularizers",
    "keras.initializers",
    "keras.src.initializers",
    "keras.constraints",
    "keras.src.constraints",
    "keras.activations",
    "keras.src.activations",
    "keras.dtype_policies",
    "keras.src.dtype_policies",
    "keras.src.engine",
    "keras.engine",
    "keras.src.ops",
    "keras.ops",
    # Keras 3 with the torch backend saves its optimizers from here (``torch_adam.Adam``).
    "keras.src.backend.torch.optimizers",
)
_LAMBDA_CLASSES = frozenset({"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"})
# Layers that load something from a path named in the config (safe_mode does not stop them).
_PATH_LAYERS = {
    "TFSMLayer": ("filepath", "loads and runs an external TensorFlow SavedModel"),
    "StringLookup": ("vocabulary", "reads its vocabulary from a file path"),
    "IntegerLookup": ("vocabulary", "reads its vocabulary from a file path"),
    "TextVectorization": ("vocabulary", "reads its vocabulary from a file path"),
}


def _walk(obj: Any, limit: int = 1_000_000) -> Iterator[dict[str, Any]]:
    stack = [obj]
    seen = 0
    while stack and seen < limit:
        cur = stack.pop()
        seen += 1
        if isinstance(cur, dict):
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


_SAFE_EXACT = frozenset({"keras", "builtins", *_KERAS_SAFE_MODULES})
_SAFE_PREFIXES = tuple(m + "." for m in _KERAS_SAFE_MODULES)


def _module_ok(module: str) -> bool:
    """``keras``/``builtins`` or one of the safe modules, or a module inside one."""
    return module in _SAFE_EXACT or module.startswith(_SAFE_PREFIXES)


def check_keras_config(ctx: ScanContext, src: Source, config: Any) -> None:
    lambdas: set[str] = set()
    for node in _walk(config):
        cls = node.get("class_name")
        name = node.get("name")
        inner = node.get("config")
        if isinstance(inner, dict):
            name = inner.get("name", name)
        if cls in _LAMBDA_CLASSES or node.get("function_type") == "lambda":
            if str(name or cls) in lambdas:
                continue  # Keras 2 marks both the layer and its config
            lambdas.add(str(name or cls))
            ctx.report(
                "GBX-KER-001",
                f"Lambda layer {name or cls!r} carries Python code that runs on load/call",
                member=src.member,
                subject=str(name or cls),
            )
            continue
        if isinstance(cls, str) and cls in _PATH_LAYERS and isinstance(inner, dict):
            key, what = _PATH_LAYERS[cls]
            target = inner.get(key)
            if isinstance(target, str):
                ctx.report(
                    "GBX-KER-001",
                    f"{cls} layer {name!r} {what}: {target[:120]!r}",
                    member=src.member,
                    subject=target[:200],
                    severity=Severity.HIGH if cls != "TFSMLayer" else None,
                )
        module = node.get("module")
        if isinstance(module, str) and isinstance(cls, str):
            fn = node.get("registered_name") or cls
            verdict = classify(module, str(fn))
            if verdict.verdict is Verdict.DANGEROUS and not _module_ok(module):
                ctx.report(
                    "GBX-KER-001",
                    f"config makes Keras import {module}.{fn}: {verdict.reason}",
                    member=src.member,
                    subject=f"{module}.{fn}",
                )
            elif not _module_ok(module):
                ctx.report(
                    "GBX-KER-002",
                    f"config names {module}.{fn}, outside Keras' layer modules; loading imports "
                    "it or needs custom code",
                    member=src.member,
                    subject=f"{module}.{fn}",
                )


def _looks_like_keras(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if "class_name" in data and "config" in data:
        return True
    return "model_config" in data or ("keras_version" in data and "config" in data)


def _utf8(raw: bytes) -> bool:
    return not raw.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in raw[:4]


def scan_json(ctx: ScanContext, src: Source) -> None:
    if src.size is not None and src.size > ctx.limits.max_json:
        return  # large JSON (tokenizer vocabularies) carries no code paths we check
    head = src.head(HEAD_SIZE)
    is_config = (src.name or src.member or "").endswith("config.json")
    if not is_config and not may_be_utf8(head, len(head) < HEAD_SIZE) and _utf8(head):
        return  # binary data that starts with "[" or "{": the full decode below would fail
    with contextlib.closing(src.open()) as f:
        raw = f.read(ctx.limits.max_json + 1)
    if len(raw) > ctx.limits.max_json:
        return
    try:
        # json.loads on bytes reads UTF-8, UTF-16 and UTF-32 (with or without a BOM), as the
        # loaders that hand it bytes do.
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if is_config:
            ctx.report("GBX-KER-003", f"config JSON unreadable ({exc})", member=src.member)
        return
    if _looks_like_keras(data):
        check_keras_config(ctx, src, data.get("model_config", data))
    if (src.member or src.name).endswith("MAR-INF/MANIFEST.json"):
        check_mar_manifest(ctx, src, data)
    if b"auto_map" in raw or b"_target_" in raw or b"class_path" in raw or not _utf8(raw):
        check_config(ctx, src, data)
    # The key is in the text either verbatim or spelled with \u escapes: without either, no
    # node can hold a template, and a tokenizer vocabulary need not be walked.
    if b"chat_template" not in raw and b"\\u" not in raw and _utf8(raw):
        return
    for node in _walk(data):
        template = node.get("chat_template")
        templates: list[tuple[str, str]] = []
        if isinstance(template, str):
            templates.append(("chat_template", template))
        elif isinstance(template, list):
            for item in template:
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    templates.append((f"chat_template.{item.get('name')}", item["template"]))
        for key, text in templates:
            report_template(ctx, src, key, text)


def _close_h5(h5py: Any, fid: Any) -> None:
    """What ``h5py.File.close`` does: close the file's open objects, then the file."""
    fid._close_open_objects(h5py.h5f.OBJ_LOCAL | ~h5py.h5f.OBJ_FILE)
    fid._close_open_objects(h5py.h5f.OBJ_LOCAL | h5py.h5f.OBJ_FILE)
    fid.close()


def scan_hdf5(ctx: ScanContext, src: Source) -> None:
    try:
        # Through importlib, not an import statement: compiled with mypyc, the statement takes
        # a module it finds in sys.modules as it is, even the None that means "unavailable".
        h5py: Any = importlib.import_module("h5py")
    except ImportError:
        ctx.report(
            "GBX-H5-001",
            "HDF5 model not analysed: install h5py to check its Keras config",
            member=src.member,
        )
        return
    with contextlib.ExitStack() as stack:
        if src.local_path is not None:
            # By path: HDF5's own file driver, not a Python callback for every read. Opened
            # as ``h5py.File(path, "r")`` opens it (read-only, default access properties) and
            # read through the same attribute manager, without the high-level file object's
            # set-up (most of the cost of a small .h5 file's scan).
            fid = h5py.h5f.open(os.fsencode(src.local_path), h5py.h5f.ACC_RDONLY)
            stack.callback(_close_h5, h5py, fid)
            attrs = h5py.AttributeManager(h5py.Group(fid))
        else:
            h5 = stack.enter_context(h5py.File(stack.enter_context(src.seekable(ctx.limits)), "r"))
            attrs = h5.attrs
        raw = attrs.get("model_config")
        if raw is None:
            return
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            config = json.loads(str(raw))
        except ValueError as exc:
            ctx.report("GBX-KER-003", f"model_config unreadable ({exc})", member=src.member)
            return
        check_keras_config(ctx, src, config)
