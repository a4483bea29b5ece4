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

# (pattern, what it means, words of which the text must hold at least one for the pattern to
# match). Python's ``re`` finds a pattern that starts with a literal quickly, but tries one that
# starts with ``\b`` and an alternation at every position of the text (10-40 us on a chat
# template, more than the rest of a scan): a substring test first skips those.
_RAW_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"__[A-Za-z_]+__"), "names a Python dunder attribute", ()),
    (
        re.compile(r"\\x5[fF]|\\u005[fF]|\\U0000005[fF]|\\137|\\N\{LOW LINE\}"),
        "escapes an underscore",
        (),
    ),
    (re.compile(r"\|\s*attr\b"), "uses the attr filter to reach attributes", ()),
    (
        re.compile(r"\bformat_map\b|\.format\s*\("),
        "uses str.format, which reaches attributes",
        ("format",),
    ),
    (re.compile(r"\{%-?\s*(import|include|extends|from)\b"), "loads other templates", ()),
    (
        re.compile(r"\b(lipsum|cycler|joiner|url_for|get_flashed_messages|self)\s*[.\[|]"),
        "reaches a global object whose internals expose Python",
        ("lipsum", "cycler", "joiner", "url_for", "get_flashed_messages", "self"),
    ),
    (
        re.compile(r"\b(os|subprocess|popen|system|eval|exec|import_module)\b\s*\("),
        "calls a process or code execution function",
        ("os", "subprocess", "popen", "system", "eval", "exec", "import_module"),
    ),
]
# What a template must contain for the AST pass to find anything (see ``_check``). This is the
# definition; ``_has_ingredients`` is the same test split into fast pieces (a property test
# holds them equal).
_INGREDIENTS = re.compile(
    r"~|['\"]\s*%\s|['\"]\s*\*|\b(join|replace|reverse)\b|"
    r"_['\"]|['\"]_|\.\s*_|__|\\[xuUN0-7]|['\"]\s*\[|\[[^\]]*[~+|]|\b(attr|format|format_map|mro|lipsum|cycler|"
    r"joiner|url_for|get_flashed_messages|self|config|request|import|include|extends|from)\b"
)
_INGREDIENT_WORDS = re.compile(
    r"\b(join|replace|reverse|attr|format|format_map|mro|lipsum|cycler|joiner|url_for|"
    r"get_flashed_messages|self|config|request|import|include|extends|from)\b"
)
_WORDS = (
    "join", "replace", "reverse", "attr", "format", "mro", "lipsum", "cycler", "joiner",
    "url_for", "get_flashed_messages", "self", "config", "request", "import", "include",
    "extends", "from",
)  # fmt: skip
# Each starts with a literal or a character class, which ``re`` scans for quickly.
_INGREDIENT_PIECES = (
    re.compile(r"['\"](?:\s*(?:%\s|\*|\[)|_)"),
    re.compile(r"_['\"]"),
    re.compile(r"\.\s*_"),
    re.compile(r"\\[xuUN0-7]"),
    re.compile(r"\[[^\]]*[~+|]"),
)


def _has_ingredients(text: str) -> bool:
    """``_INGREDIENTS.search(text)``, about ten times faster."""
    return "~" in text or _ingredients_but_concat(text)


def _ingredients_but_concat(text: str) -> bool:
    """``_has_ingredients`` less its ``~``: ``_needs_ast`` looks at what is concatenated."""
    if "__" in text:
        return True
    if any(p.search(text) for p in _INGREDIENT_PIECES):
        return True
    return any(w in text for w in _WORDS) and _INGREDIENT_WORDS.search(text) is not None


# ``_has_ingredients`` alone was not enough: the AST pass also reports names built with ``%``
# without spaces (``x['%c%cclass%c%c'%(95,95,95,95)]``), keys computed inside nested brackets,
# ``+`` with a string that spells a risky name (``x + 'get'``), a parenthesised string literal
# sliced, and line continuations inside strings (``'_\<newline>_'``), all of which it skipped.
# ``_needs_ast`` is the exact condition: every template for which the AST pass reports
# something passes it (a property test generates expressions to hold it to that), and real
# templates, whose strings are special tokens, dictionary keys and role names compared with
# ``==``, still skip the parser.
_SPEC = r"%[-+ #0-9.]*"
_FORMAT_HOLES = re.compile(
    r"\\[\r\n]"  # a line continuation inside a string joins what is around it
    rf"|{_SPEC}c|{_SPEC}['\"]|_%|{_SPEC}[a-zA-Z%]_"  # %c, a spec split by a quote, _%s_
    r"|['\"][\s)]*(?:\[|\.\s*[0-9])"  # ('abc')[1], ''.0: a string literal sliced
)
_SPEC_RE = re.compile(_SPEC + r"[a-zA-Z%]")
_ESCAPE = re.compile(r"\\(.?)", re.S)
# Letters, underscores and the whitespace ``_built_name`` strips: the only characters of the
# strings a risky name (``_RISKY_NAMES``, all lower case) can be folded from.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_ \t\n")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# Words after which ``[`` opens a list, not a subscript (jinja's keywords and tag names).
_NOT_SUBSCRIPTED = frozenset(
    {
        "in", "not", "and", "or", "is", "if", "elif", "else", "for", "recursive", "set",
        "with", "print", "do", "call", "filter", "include", "import", "extends", "from",
        "block", "macro", "autoescape", "as", "true", "false", "none", "True", "False", "None",
    }
)  # fmt: skip
# Words that are operators, not names, where they follow the end of an expression (anywhere
# else jinja reads them as names: ``{{ in[x] }}`` subscripts a variable called ``in``).
_OPERATOR_WORDS = frozenset({"in", "not", "and", "or", "is", "if", "else"})
# A ``[`` right after one of these starts an expression, so it opens a list.
_EXPRESSION_STARTS = frozenset("=(,[{~+-*/%:<>")


def _needs_ast(text: str) -> bool:
    """Whether the AST pass can report anything on ``text``; when False, ``_check`` skips
    parsing (its costliest step by far) and is still exact."""
    return (
        _ingredients_but_concat(text)
        or _FORMAT_HOLES.search(text) is not None
        or ("[" in text and _computed_key(text))
        or _foldable_name(text)
    )


def _computed_key(text: str) -> bool:
    """A subscript whose key is more than one string literal, a name or a number: what lies
    between ``[`` and the first ``]`` holds a bracket, call, operator or filter, or quotes
    that are not one whole literal (a ``]`` inside a string ends that span early)."""
    at = text.find("[")
    while at >= 0:
        if _opens_list(text, at):  # a list literal: its items are looked at on their own
            at = text.find("[", at + 1)
            continue
        close = text.find("]", at + 1)
        span = text[at + 1 :] if close < 0 else text[at + 1 : close]
        if any(ch in span for ch in "[(~%|+\\"):
            return True
        if "'" in span or '"' in span:
            inner = span.strip()
            quote = inner[:1]
            if not (
                len(inner) >= 2
                and quote in ("'", '"')
                and inner[-1] == quote
                and quote not in inner[1:-1]
            ):
                return True
        at = text.find("[", at + 1)
    return False


def _trailing_word(text: str) -> str:
    i = len(text)
    while i > 0 and text[i - 1] in _IDENT_CHARS:
        i -= 1
    return text[i:]


def _ends_expression(before: str) -> bool:
    """``before`` (stripped) ends with a closed expression: a bracket, string, number or a
    name that is no keyword (a keyword answers no, which only means parsing)."""
    last = before[-1:]
    if last in (")", "]", "}", "'", '"') or last.isdigit():
        return True
    word = _trailing_word(before)
    return bool(word) and word not in _NOT_SUBSCRIPTED


def _opens_list(text: str, at: int) -> bool:
    """``text[at]`` (a ``[``) cannot be a subscript: it starts an expression (after an operator,
    ``=``, ``(``, ``,`` ...) or follows an operator word that follows an expression."""
    before = text[:at].rstrip()
    if not before or before[-1] in _EXPRESSION_STARTS:
        return True
    word = _trailing_word(before)
    if word not in _OPERATOR_WORDS:
        return False
    rest = before[: len(before) - len(word)].rstrip()
    if word == "in" and _trailing_word(rest) == "not":
        rest = rest[:-3].rstrip()
    return bool(rest) and _ends_expression(rest)


def _list_item(text: str, start: int, end: int) -> bool:
    """The string ``text[start:end + 1]`` is an item of a list of plain strings (no escapes)
    that is a whole operand (of ``in``, ``==``, ``=``): ``x not in ['user', 'system']``."""
    left = text[:start].rstrip()
    while left.endswith(","):
        left = left[:-1].rstrip()
        quote = left[-1:]
        if quote not in ("'", '"'):
            return False
        opening = left.rfind(quote, 0, len(left) - 1)
        if opening < 0 or "\\" in left[opening:]:
            return False
        left = left[:opening].rstrip()
    if not left.endswith("[") or not _opens_list(left, len(left) - 1):
        return False
    right = text[end + 1 :].lstrip()
    while right.startswith(","):
        right = right[1:].lstrip()
        quote = right[:1]
        if quote not in ("'", '"'):
            return False
        closing = right.find(quote, 1)
        if closing < 0 or "\\" in right[:closing]:
            return False
        right = right[closing + 1 :].lstrip()
    if not right.startswith("]"):
        return False
    return _operand_ends(right[1:].lstrip())


def _operand_ends(right: str) -> bool:
    """``right`` (stripped) starts where no operator can extend the operand before it."""
    if right.startswith(("%}", "-%}", "}}", "-}}", ")", "]", ",")):
        return True
    word = right[:4]
    return (word[:3] == "and" and word[3:4] not in _IDENT_CHARS) or (
        word[:2] == "or" and word[2:3] not in _IDENT_CHARS
    )


def _foldable_name(text: str) -> bool:
    """Whether some string in ``text`` could be folded into a risky name: it holds only
    lower-case letters, underscores, white space and ``%`` specs (what the folding drops),
    and it is not plainly inert where it stands (a subscript key, the right side of ``==`` or
    ``=``, a whole output). Every quote starts a candidate, so strings are found whatever
    the text around them; a string that is not one is only a reason to parse."""
    for quote in ("'", '"'):
        at = text.find(quote)
        while at >= 0:
            end = text.find(quote, at + 1)
            if end < 0:
                break
            if _name_like(text[at + 1 : end]) and not _inert(text, at, end):
                return True
            at = text.find(quote, at + 1)
    return False


def _name_like(run: str) -> bool:
    if "\\" in run:
        # \n, \t and \r are white space; any other escape may be any character.
        run = _ESCAPE.sub(lambda m: " " if m.group(1) in ("n", "t", "r") else "\x00", run)
    if "%" in run:
        run = _SPEC_RE.sub("", run)
    return any(ch in _LETTERS for ch in run) and all(ch in _NAME_CHARS for ch in run)


def _inert(text: str, start: int, end: int) -> bool:
    """The string literal ``text[start:end + 1]`` is a whole subscript key, a whole comparison
    or assignment operand, or a whole output: no folding node can hold it."""
    left = text[:start].rstrip()
    right = text[end + 1 :].lstrip()
    if left.endswith("[") and right.startswith("]"):
        before = left[:-1].rstrip()
        if before.endswith((")", "]")) or before[-1:].isdigit():
            return True  # a subscript key
        word = _trailing_word(before)
        if word and not word[0].isdigit() and word not in _NOT_SUBSCRIPTED:
            return True  # a subscript key
    if left.endswith(("=", "{{", "{{-")) and _operand_ends(right):
        return True
    return _list_item(text, start, end)


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
    for pattern, why, needs in _RAW_PATTERNS:
        if needs and not any(word in text for word in needs):
            continue  # the pattern cannot match without one of these words
        m = pattern.search(text)
        if m:
            problems.append(f"{why} ({m.group(0)!r})")
    if not _needs_ast(text):
        # The AST pass would report nothing (``_needs_ast`` is exact about that), and parsing
        # costs more than all else in a scan; syntax is then left to the loader.
        return problems, None
    return _ast_pass(text, problems)


def _ast_pass(text: str, problems: list[str]) -> tuple[list[str], str | None]:
    """Parse ``text`` and add what its nodes do to ``problems`` (the regex pass's findings)."""
    try:
        import jinja2
        import jinja2.nodes as nodes
        from jinja2.parser import Parser
    except ImportError:  # pragma: no cover - jinja2 ships with torch; regex pass still runs
        return problems, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd escapes in a hostile template are not our bug
            # What ``Environment.parse`` builds, less its last walk (setting the environment on
            # every node, which only rendering reads) and its traceback rewriting on a syntax
            # error (it compiles a fake frame); the message and line are the same.
            ast = nodes.Template(Parser(_environment(), text).subparse(), lineno=1)
    # One name per except clause (compiled with mypyc, hatch_build.py: a name is typed by its
    # first clause).
    except jinja2.TemplateSyntaxError as syntax:
        return problems, f"{syntax.message} (line {syntax.lineno})"
    except (jinja2.TemplateError, UnicodeError, ValueError) as unreadable:
        return problems, f"template cannot be parsed ({type(unreadable).__name__})"
    except (RecursionError, MemoryError):
        return problems, "template too deeply nested"
    kinds = _kinds(nodes)
    for node in _walk(ast, kinds):
        if isinstance(node, kinds.checked):  # the only node types _node_problems reports on
            problems.extend(_node_problems(node, kinds))
    return sorted(set(problems)), None


@functools.cache
def _environment() -> Any:
    """One parser environment (building one costs more than parsing a typical template)."""
    import jinja2

    return jinja2.Environment(autoescape=True)


class _Kinds:
    """jinja2's node classes, looked up once: every node is tested against several of them,
    and building ``A | B`` unions for each test cost more than the tests. The tuples hold
    what :func:`_node_problems` (and :func:`_fold`) test together; ``checked`` holds every
    type they can report on, so the walk skips the rest (most of a template)."""

    def __init__(self, nodes: Any) -> None:
        self.Node: Any = nodes.Node
        self.Const: Any = nodes.Const
        self.Name: Any = nodes.Name
        self.Getattr: Any = nodes.Getattr
        self.Getitem: Any = nodes.Getitem
        self.Concat: Any = nodes.Concat
        self.Add: Any = nodes.Add
        self.Mul: Any = nodes.Mul
        self.Mod: Any = nodes.Mod
        self.Filter: Any = nodes.Filter
        self.List: Any = nodes.List
        self.Tuple: Any = nodes.Tuple
        self.computed_key: Any = (nodes.Concat, nodes.Mod, nodes.Filter, nodes.Call)
        self.loads: Any = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)
        self.concat_add: Any = (nodes.Concat, nodes.Add)
        self.sequence: Any = (nodes.List, nodes.Tuple)
        self.folds: Any = (nodes.Concat, nodes.Add, nodes.Mul, nodes.Mod, nodes.Filter)
        self.mod_filter: Any = (nodes.Mod, nodes.Filter)
        self.checked: Any = (
            nodes.Getattr,
            nodes.Getitem,
            nodes.Const,
            nodes.Concat,
            nodes.Add,
            nodes.Mul,
            nodes.Mod,
            nodes.Filter,
            nodes.Name,
            nodes.Import,
            nodes.FromImport,
            nodes.Include,
            nodes.Extends,
        )


@functools.cache
def _kinds(nodes: Any) -> _Kinds:
    return _Kinds(nodes)


def _walk(root: Any, nodes: _Kinds, limit: int = 200_000) -> Iterator[Any]:
    """Every node, depth first, children in jinja's own order (``Node.iter_child_nodes``,
    inlined: its two nested generators cost more than the checks on a node)."""
    node_type = nodes.Node
    stack = [root]
    seen = 0
    while stack and seen < limit:
        node = stack.pop()
        seen += 1
        yield node
        for field_name in node.fields:
            try:
                item = getattr(node, field_name)
            except AttributeError:
                continue
            if isinstance(item, list):
                stack.extend(n for n in item if isinstance(n, node_type))
            elif isinstance(item, node_type):
                stack.append(item)


def _node_problems(node: Any, nodes: _Kinds) -> list[str]:
    """What one node does that a template should not. One branch per node type, most common
    first (the caller sorts and de-duplicates, so the order found does not matter)."""
    out: list[str] = []
    if isinstance(node, nodes.Const):
        if isinstance(node.value, str) and "__" in node.value:
            out.append(f"string constant contains '__' ({node.value[:40]!r})")
        return out
    if isinstance(node, nodes.Name):
        if node.name in _RISKY_GLOBALS and node.ctx == "load":
            out.append(f"references global {node.name!r}")
        return out
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            out.append(f"reads private attribute {node.attr!r}")
        if node.attr in _RISKY_METHODS:
            out.append(f"uses method {node.attr!r}")
        return out
    if isinstance(node, nodes.Getitem):
        arg = node.arg
        if (
            isinstance(arg, nodes.Const)
            and isinstance(arg.value, str)
            and arg.value.startswith("_")
        ):
            out.append(f"indexes private attribute {arg.value!r}")
        if isinstance(arg, nodes.computed_key) or (
            isinstance(arg, nodes.Add) and _fold(arg, nodes) is not None
        ):
            # ``messages[loop.index0 + 1]`` (numbers) is how real templates look ahead; a key
            # built from strings at render time is how escapes hide the attribute they reach.
            out.append("indexes with a name computed at render time")
        if isinstance(node.node, nodes.Const) and isinstance(node.node.value, str):
            out.append("slices characters out of a string literal")
        return out
    if isinstance(node, nodes.loads):
        out.append("loads other templates")
        return out
    # Concat, Add, Mul, Mod, Filter: expressions that can compute a name.
    built = _built_name(node, nodes)
    if built is not None:
        out.append(f"builds the name {built!r} at render time")
    if isinstance(node, nodes.concat_add):
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
    return out


# Names an escape needs to build when it cannot write them: Python internals and the globals,
# builtins and modules that reach code. A string computed to exactly one of these (or to
# anything with a double underscore) is reported, however it was assembled.
_RISKY_NAMES = frozenset(
    {
        "globals", "builtins", "class", "mro", "subclasses", "base", "bases", "init", "import",
        "getattr", "setattr", "eval", "exec", "compile", "os", "popen", "system", "subprocess",
        "open", "func_globals", "code", "dict", "module", "loader", "spec", "attr", "format",
        "format_map", "get", "pop", "modules", "sys", "self", "namespace", "lipsum", "cycler",
        "joiner", "environment", "application", "request", "config",
    }
)  # fmt: skip
_STRING_FILTERS = frozenset(
    {"join", "replace", "reverse", "format", "lower", "upper", "string", "trim", "title"}
)
_WILD = "\x00"  # a part whose value is only known at render time


def _fold(node: Any, nodes: _Kinds, depth: int = 0) -> str | None:
    """The string a constant expression computes, with render-time parts as a wildcard; None
    when the expression is not built from string constants at all."""
    if depth > 30:
        return None
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, nodes.sequence):
        parts = [_fold(n, nodes, depth + 1) for n in node.items]
        return "".join(p if p is not None else _WILD for p in parts) if parts else None
    if isinstance(node, nodes.Concat):
        parts = [_fold(n, nodes, depth + 1) for n in node.nodes]
        if all(p is None for p in parts):
            return None
        return "".join(p if p is not None else _WILD for p in parts)
    if isinstance(node, nodes.Add):
        left, right = _fold(node.left, nodes, depth + 1), _fold(node.right, nodes, depth + 1)
        if left is None and right is None:
            return None
        return (left if left is not None else _WILD) + (right if right is not None else _WILD)
    if isinstance(node, nodes.Mul):
        text = _fold(node.left, nodes, depth + 1)
        count = node.right.value if isinstance(node.right, nodes.Const) else None
        if text is not None and isinstance(count, int) and 0 <= count <= 64:
            return text * count
        return None
    if isinstance(node, nodes.Mod):
        template = _fold(node.left, nodes, depth + 1)
        if template is None:
            return None
        return re.sub(r"%[-+ #0-9.]*[a-zA-Z%]", _WILD, template)
    if isinstance(node, nodes.Filter) and node.name in _STRING_FILTERS and node.node is not None:
        base = _fold(node.node, nodes, depth + 1)
        if base is None:
            return None
        if node.name == "reverse":
            return base[::-1]
        if node.name == "replace" and len(node.args) >= 2:
            old, new = (_fold(a, nodes, depth + 1) for a in node.args[:2])
            if old is not None and new is not None:
                return base.replace(old, new)
            return base + _WILD
        if node.name == "format":
            return re.sub(r"%[-+ #0-9.]*[a-zA-Z%]", _WILD, base)
        return base
    return None


def _built_name(node: Any, nodes: _Kinds) -> str | None:
    """A risky name that this expression computes from pieces, if it computes one."""
    if isinstance(node, nodes.Const) or not isinstance(node, nodes.folds):
        return None
    value = _fold(node, nodes)
    if value is None:
        return None
    if isinstance(node, nodes.mod_filter) and re.search(
        r"%[-+ #0-9.]*c",
        _fold(node.left if isinstance(node, nodes.Mod) else node.node, nodes) or "",
    ):
        return value.replace(_WILD, "*")  # characters made from their codes (%c)
    if "__" in value.replace(_WILD, "") and isinstance(node, nodes.Mul):
        return value.replace(_WILD, "*")
    bare = value.replace(_WILD, "").strip("_ \t\n")
    if "__" in value.replace(_WILD, "") or (bare in _RISKY_NAMES and bare != value.strip()):
        return value.replace(_WILD, "*")
    if bare in _RISKY_NAMES and _WILD not in value and len(value) == len(value.strip()):
        # The whole name assembled from parts ("glob" ~ "als"): no template needs that.
        return value
    return None


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
