"""Chat templates are Jinja programs run at every prompt (GGUF ``tokenizer.chat_template``, HF
``tokenizer_config.json``). Sandboxed Jinja has been escaped through Python object internals
(``__class__.__mro__[1].__subclasses__()``, ``__globals__``), the ``attr`` filter,
``str.format``/``format_map`` and template-loading tags; we look for all of them.

Two passes: a regex over the raw text (catches escapes such as ``\\x5f\\x5f`` before decoding) and,
when jinja2 is installed, a walk of the parsed AST (catches names assembled with ``~`` or ``+``
and attribute access that the text hides). Parsing only; nothing is rendered.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassbox.scan.context import ScanContext, Source

_RAW_PATTERNS = [
    (re.compile(r"__[A-Za-z_]+__"), "names a Python dunder attribute"),
    (
        re.compile(r"\\x5[fF]|\\u005[fF]|\\U0000005[fF]|\\137|\\N\{LOW LINE\}"),
        "escapes an underscore",
    ),
    (re.compile(r"\|\s*attr\b"), "uses the attr filter to reach attributes"),
    (re.compile(r"\bformat_map\b|\.format\s*\("), "uses str.format, which reaches attributes"),
    (re.compile(r"\{%-?\s*(import|include|extends|from)\b"), "loads other templates"),
    (
        re.compile(r"\b(lipsum|cycler|joiner|url_for|get_flashed_messages|self)\s*[.\[|]"),
        "reaches a global object whose internals expose Python",
    ),
    (
        re.compile(r"\b(os|subprocess|popen|system|eval|exec|import_module)\b\s*\("),
        "calls a process or code execution function",
    ),
]
_INGREDIENTS = re.compile(
    r"_['\"]|['\"]_|\.\s*_|__|\\[xuUN0-7]|['\"]\s*\[|\[[^\]]*[~+|]|\b(attr|format|format_map|mro|lipsum|cycler|"
    r"joiner|url_for|get_flashed_messages|self|config|request|import|include|extends|from)\b"
)
_RISKY_GLOBALS = frozenset(
    {"lipsum", "cycler", "joiner", "url_for", "get_flashed_messages", "self", "config", "request"}
)
_RISKY_METHODS = frozenset({"format", "format_map", "mro", "__subclasses__"})


def check_template(text: str) -> tuple[list[str], str | None]:
    """Return (escape patterns found, parse error or None)."""
    problems, error = _check_cached(text)
    return list(problems), error


@functools.lru_cache(maxsize=256)
def _check_cached(text: str) -> tuple[tuple[str, ...], str | None]:
    """Hub repos share a handful of chat templates; parsing one costs ~0.5 ms, so remember."""
    problems, error = _check(text)
    return tuple(problems), error


def _check(text: str) -> tuple[list[str], str | None]:
    problems: list[str] = []
    for pattern, why in _RAW_PATTERNS:
        m = pattern.search(text)
        if m:
            problems.append(f"{why} ({m.group(0)!r})")
    if not _INGREDIENTS.search(text):
        # Every construct the AST pass reports needs one of these in the source text; a
        # template without any cannot escape, and parsing costs more than all else in a scan.
        return problems, None
    try:
        import jinja2
        import jinja2.nodes as nodes
    except ImportError:  # pragma: no cover - jinja2 ships with torch; regex pass still runs
        return problems, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd escapes in a hostile template are not our bug
            ast = _environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return problems, f"{exc.message} (line {exc.lineno})"
    except (jinja2.TemplateError, UnicodeError, ValueError) as exc:
        return problems, f"template cannot be parsed ({type(exc).__name__})"
    except (RecursionError, MemoryError):
        return problems, "template too deeply nested"
    for node in _walk(ast, nodes):
        problems.extend(_node_problems(node, nodes))
    return sorted(set(problems)), None


@functools.cache
def _environment() -> Any:
    """One parser environment (building one costs more than parsing a typical template)."""
    import jinja2

    return jinja2.Environment(autoescape=True)


def _walk(root: Any, nodes: Any, limit: int = 200_000) -> Iterator[Any]:
    stack = [root]
    seen = 0
    while stack and seen < limit:
        node = stack.pop()
        seen += 1
        yield node
        stack.extend(node.iter_child_nodes())


def _node_problems(node: Any, nodes: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        out.append(f"reads private attribute {node.attr!r}")
    if isinstance(node, nodes.Getattr) and node.attr in _RISKY_METHODS:
        out.append(f"uses method {node.attr!r}")
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and node.arg.value.startswith("_")
    ):
        out.append(f"indexes private attribute {node.arg.value!r}")
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Concat | nodes.Add):
        out.append("indexes with a name computed at render time")
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Const)
        and isinstance(node.node.value, str)
    ):
        out.append("slices characters out of a string literal")
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
        out.append(f"string constant contains '__' ({node.value[:40]!r})")
    if isinstance(node, nodes.Concat | nodes.Add):
        consts = [
            n.value
            for n in node.iter_child_nodes()
            if isinstance(n, nodes.Const) and isinstance(n.value, str)
        ]
        if any(c.strip("_") == "" and c for c in consts) or any(
            c.startswith("_") or c.endswith("_") for c in consts
        ):
            out.append("builds a name from underscore fragments")
    if isinstance(node, nodes.Filter) and node.name in ("attr", "format"):
        out.append(f"uses the {node.name!r} filter")
    if isinstance(node, nodes.Name) and node.name in _RISKY_GLOBALS and node.ctx == "load":
        out.append(f"references global {node.name!r}")
    if isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
        out.append("loads other templates")
    return out


def clear_template_cache() -> None:
    """Forget remembered template verdicts (benchmarks measure cold scans)."""
    _check_cached.cache_clear()


def report_template(ctx: ScanContext, src: Source, key: str, text: str) -> None:
    """Report a chat template's escape patterns (GBX-TPL-001) and syntax error (GBX-TPL-002):
    GGUF metadata and tokenizer JSON carry the same Jinja programs, so both report them here."""
    problems, error = check_template(text)
    if problems:
        ctx.report(
            "GBX-TPL-001",
            f"{key}: " + "; ".join(problems[:5]),
            member=src.member,
            subject=key,
            evidence={"patterns": problems},
        )
    if error:
        ctx.report("GBX-TPL-002", f"{key}: {error}", member=src.member, subject=key)
