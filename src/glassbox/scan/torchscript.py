"""TorchScript archives (``torch.jit.save``): their pickles name ``__torch__`` classes that are
compiled from the archive's own ``code/`` files, so the code is what has to be checked.

TorchScript cannot call arbitrary Python, but it can call any registered operator: a custom
namespace needs a native library loaded by the victim, and ``torch.from_file`` reads any host
file into a tensor (exfiltration through the model's outputs).
"""

from __future__ import annotations

import contextlib
import re

from glassbox.scan.context import ScanContext, Source
from glassbox.scan.findings import Severity

# Operator namespaces built into PyTorch itself.
_BUILTIN_OPS = frozenset({"aten", "prim", "quantized", "_quantized", "profiler", "_caffe2"})
_CODE_MEMBER = re.compile(r"(^|/)code/__torch__/.*\.py$")
_OPS = re.compile(r"\bops\.([A-Za-z_][A-Za-z0-9_]*)\.")
_CLASSES = re.compile(
    r"\b__torch__\.torch\.classes\.([A-Za-z_][A-Za-z0-9_]*)\.|\bclasses\.([A-Za-z_]\w*)\."
)
_FILE_READS = re.compile(r"\btorch\.from_file\s*\(")
MAX_CODE = 16 << 20


def is_torchscript(names: list[str]) -> bool:
    return any(_CODE_MEMBER.search(n) for n in names)


def is_code_member(name: str) -> bool:
    return bool(_CODE_MEMBER.search(name))


def scan_code(ctx: ScanContext, src: Source) -> None:
    with contextlib.closing(src.open()) as f:
        text = f.read(MAX_CODE).decode("utf-8", "replace")
    m = _FILE_READS.search(text)
    if m:
        ctx.report(
            "GBX-TS-001",
            "TorchScript code calls torch.from_file: reads a host file into a tensor on load/run",
            member=src.member,
            subject="torch.from_file",
            severity=Severity.HIGH,
        )
    custom = sorted({n for n in _OPS.findall(text) if n not in _BUILTIN_OPS})
    custom += sorted({a or b for a, b in _CLASSES.findall(text)} - {"quantized"})
    for namespace in custom:
        ctx.report(
            "GBX-TS-001",
            f"TorchScript code calls operator namespace {namespace!r}, which needs a native "
            "library the loader must have registered",
            member=src.member,
            subject=namespace,
        )
