"""Turn the symbolic pickle interpreter's output into findings, for single, concatenated,
nested and joblib-inline pickles."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from glassbox.scan.callables import Verdict, allowed_when, classify
from glassbox.scan.context import ScanContext, Source, bytes_source
from glassbox.scan.pickle_ops import (
    OPCODE_NAMES,
    PICKLE_START_OPCODES,
    ByteReader,
    PickleResult,
    run_pickle,
)

Recurse = Callable[[ScanContext, Source, int], None]

_ISSUE_RULES = {
    "malformed": "GBX-PKL-007",
    "unresolved": "GBX-PKL-003",
    "extension": "GBX-PKL-004",
    "global-mutation": "GBX-PKL-005",
    "setstate": "GBX-PKL-006",
    "limit": "GBX-LIM-002",
    "persid": "GBX-PKL-008",
    "tensor-bounds": "GBX-PKL-010",
}
_WEAK_STARTS = PICKLE_START_OPCODES
MAX_STREAMS = 10_000


def report_result(
    ctx: ScanContext,
    src: Source,
    res: PickleResult,
    *,
    stream: int,
    start: int,
    strong: bool,
    member: str | None,
    recurse: Recurse,
    depth: int,
) -> None:
    """One finding per distinct non-allowlisted global, plus one per structural issue."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for ref in res.globals:
        key = (ref.module, ref.name)
        entry = seen.setdefault(
            key, {"offsets": [], "opcodes": set(), "called": False, "stream": stream}
        )
        if len(entry["offsets"]) < 5:
            entry["offsets"].append(ref.offset)
        entry["opcodes"].add(ref.opcode)
        entry["called"] = entry["called"] or ref.called
    torchscript = "torchscript" in src.tags
    for (module, name), entry in seen.items():
        if torchscript and (module == "__torch__" or module.startswith("__torch__.")):
            continue  # TorchScript class compiled from the archive's code/ (checked there)
        verdict = classify(module, name)
        if allowed_when(verdict.verdict, entry["called"]):
            continue
        if verdict.verdict is not Verdict.DANGEROUS and ctx.limits.allows(module, name):
            continue  # a reviewed entry of the user's allowlist (never overrides DANGEROUS)
        rule = "GBX-PKL-001" if verdict.verdict is Verdict.DANGEROUS else "GBX-PKL-002"
        how = "calls" if entry["called"] else "imports"
        evidence = {
            "offsets": entry["offsets"],
            "opcodes": sorted(entry["opcodes"]),
            "called": entry["called"],
            "stream": stream,
        }
        ctx.report(
            rule,
            f"pickle {how} {module}.{name}: {verdict.reason}",
            member=member,
            subject=f"{module}.{name}",
            evidence=evidence,
        )
    for issue in res.issues:
        if issue.kind == "malformed" and not (strong or res.globals):
            continue
        ctx.report(
            _ISSUE_RULES[issue.kind],
            f"pickle {issue.message}",
            member=member,
            subject=issue.subject,
            evidence={"offset": issue.offset, "stream": stream, "stream_start": start},
        )
    for nested in res.nested:
        name = f"{nested.via}@{nested.offset}"
        child = bytes_source(nested.data, src.child(name) if member else name)
        recurse(ctx, child, depth + 1)


def scan_pickle(
    ctx: ScanContext, src: Source, depth: int, recurse: Recurse, *, strong: bool, offset: int = 0
) -> bool:
    """Scan every pickle in the stream (they may be concatenated, as in legacy torch files).
    Returns False when a weakly detected stream turned out not to be a pickle at all."""
    if src.data is not None and not offset:
        reader = ByteReader.over(src.data)
        return scan_pickle_reader(ctx, src, reader, depth, recurse, strong=strong)
    with contextlib.closing(src.open()) as f:
        if offset:
            f.seek(offset)
        reader = ByteReader(f, start=offset)
        return scan_pickle_reader(ctx, src, reader, depth, recurse, strong=strong)


class _InlinePickles:
    """Scans the complete pickles that joblib writes inline after an object array's wrapper.

    A callable object rather than a closure: a nested function that passes itself on refers
    to itself, and that reference cycle kept every scan's context, source and findings alive
    until the garbage collector ran (a collection per few files, paid by the whole process)."""

    def __init__(
        self,
        ctx: ScanContext,
        src: Source,
        member: str | None,
        recurse: Recurse,
        depth: int,
        stream: int,
    ) -> None:
        self.ctx = ctx
        self.src = src
        self.member = member
        self.recurse = recurse
        self.depth = depth
        self.stream = stream

    def __call__(self, r: ByteReader) -> None:
        if self.depth + 1 > self.ctx.limits.max_depth:
            raise RecursionError
        sub = run_pickle(r, deadline=self.ctx.deadline, on_inline_pickle=self)
        report_result(
            self.ctx,
            self.src,
            sub,
            stream=self.stream,
            start=r.offset,
            strong=True,
            member=self.member,
            recurse=self.recurse,
            depth=self.depth + 1,
        )


def scan_pickle_reader(
    ctx: ScanContext,
    src: Source,
    reader: ByteReader,
    depth: int,
    recurse: Recurse,
    *,
    strong: bool,
    member_suffix: str = "",
) -> bool:
    member = src.member
    if member_suffix:
        member = f"{member}!{member_suffix}" if member else member_suffix
    found = False
    stream = 0
    while stream < MAX_STREAMS:
        start = reader.offset

        inline = _InlinePickles(ctx, src, member, recurse, depth, stream)
        res = run_pickle(reader, deadline=ctx.deadline, on_inline_pickle=inline)
        if strong:
            is_pickle = res.stopped or bool(res.globals) or stream == 0
        else:
            # No PROTO header: plain text can parse as a few protocol-0 opcodes ("cat\ndog\n"
            # is a GLOBAL). Count it as a pickle only if it ends properly or actually calls an
            # importable name (a payload that runs, then breaks the stream).
            # A stream the interpreter had to stop analysing (a limit CPython does not have)
            # is reported either way: padding must not push a payload out of sight.
            # A broken stream that still names a dangerous callable made the loader import it
            # before it failed: reported (``cat\ndog\n`` names an unknown, not a dangerous one).
            is_pickle = (
                res.stopped
                or any(g.called and g.importable for g in res.globals)
                or any(i.kind == "limit" for i in res.issues)
                or any(
                    g.importable and classify(g.module, g.name).verdict is Verdict.DANGEROUS
                    for g in res.globals
                )
            )
        if not is_pickle:
            break
        found = True
        ctx.pickles += 1
        report_result(
            ctx,
            src,
            res,
            stream=stream,
            start=start,
            strong=strong,
            member=member,
            recurse=recurse,
            depth=depth,
        )
        if not res.stopped or ctx.out_of_time():
            break
        stream += 1
        nxt = reader.peek(3)
        if not nxt:
            break
        if nxt[0] == 0x80 and len(nxt) >= 2 and 2 <= nxt[1] <= 5:
            strong = True
        elif nxt[0] in _WEAK_STARTS and nxt[0] in OPCODE_NAMES:
            strong = False
        else:
            break  # trailing raw data (legacy torch storages), not another pickle
    return found
