"""The chat-template check skips parsing when ``templates._needs_ast`` says the AST pass
cannot report anything. That shortcut must be exact: these tests generate Jinja expressions
built from the pieces escapes are made of (string folding with ``~``, ``+``, ``*``, ``%`` and
filters, subscripts, slices, escapes, underscores, risky names) and hold the shortcut to the
parser's own verdict on each."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan import templates
from glassbox.scan.templates import check_template

_CONTENT = st.lists(
    st.sampled_from(
        [
            *("get", "os", "class", "glob", "als", "mro", "sys", "init", "role", "a", "t"),
            *("_", "__", "%c", "%s", "%%", "%", "c", " ", "<|", "|>", "Unknown: ", "\\n"),
            *("\\x5f", "\\137", "\\\n", "\\t", "\\'", "]", "[", "(", "~"),
        ]
    ),
    max_size=4,
).map("".join)
_LITERAL = st.builds(lambda q, c: q + c + q, st.sampled_from(["'", '"']), _CONTENT)
_NAME = st.sampled_from(
    [
        *("x", "messages", "message", "loop.index0", "ns", "self", "lipsum", "content"),
        # Keywords are names where no expression precedes them: {{ in[x ~ y] }}.
        *("in", "not", "if", "else", "and", "set", "filter", "true", "none", "x.in"),
    ]
)
_NUMBER = st.sampled_from(["0", "1", "95", "2"])
_SEP = st.sampled_from(["", " ", "  ", "\n"])
_FILTER = st.sampled_from(
    [
        "join", "reverse", "lower", "upper", "trim", "string", "title", "first", "tojson",
        "replace('a', 'b')", "replace('X', '')", "format(95)", "attr('x')", "join('_')",
    ]
)  # fmt: skip
_ATTR = st.sampled_from(["role", "content", "_x", "__class__", "format", "mro", "items", "0"])


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def binary(op: str) -> st.SearchStrategy[str]:
        return st.builds(lambda a, s1, s2, b: f"{a}{s1}{op}{s2}{b}", inner, _SEP, _SEP, inner)

    return st.one_of(
        binary("~"),
        binary("+"),
        binary("%"),
        binary("=="),
        binary("-"),
        binary("in"),
        binary("not in"),
        binary("and"),
        binary("is sameas"),
        st.builds(lambda a, b, s: f"{a} in [{b},{s}'user']", inner, _LITERAL, _SEP),
        st.builds(lambda a, s, n: f"{a}{s}*{s}{n}", inner, _SEP, _NUMBER),
        st.builds(lambda a, s, f: f"{a}{s}|{s}{f}", inner, _SEP, _FILTER),
        st.builds(lambda a, s, b: f"{a}{s}[{s}{b}{s}]", inner, _SEP, inner),
        st.builds(lambda a, s, b: f"{a}[{b}:]", inner, _SEP, inner),
        st.builds(lambda a, s, n: f"{a}{s}.{s}{n}", inner, _SEP, _ATTR),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(["f", "range", "namespace"]), inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda a, b, s: f"[{a},{s}{b}]", inner, inner, _SEP),
        st.builds(lambda a, b: f"({a}, {b})", inner, inner),
        st.builds(lambda a, b: f"{{{a}: {b}}}", inner, inner),
        st.builds(lambda a, b, c: f"{a} if {b} else {c}", inner, inner, inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a, b: f"{a} {b}", _LITERAL, _LITERAL),  # implicit concatenation
    )


_EXPR = st.recursive(st.one_of(_LITERAL, _NAME, _NUMBER), _compound, max_leaves=6)
_TEMPLATE = st.builds(
    lambda wrap, e, s: wrap.format(s=s, e=e),
    st.sampled_from(
        [
            "{{{{{s}{e}{s}}}}}",
            "{{%- set v = {e} -%}}",
            "{{% if {e} %}}x{{% endif %}}",
            "{{% for i in {e} %}}{{{{ i }}}}{{% endfor %}}",
            "Hi 'there' {{{{ x }}}} {{% set ns.k = {e} %}}",
            "{{{{ f(a={e}) }}}}",
            "{{% for a in {e} %}}{{% endfor %}}{{{{ x[{e}] }}}}",
        ]
    ),
    _EXPR,
    _SEP,
)


def _parsed(text: str) -> tuple[list[str], str | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return templates._ast_pass(text, [])


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEMPLATE)
def test_skipping_the_parser_never_loses_a_finding(text: str) -> None:
    problems, error = _parsed(text)
    if problems and error is None:
        assert templates._needs_ast(text), (text, problems)


@pytest.mark.parametrize(
    "template",
    [
        # Each of these was skipped by the old ingredient test and reported by the AST pass.
        "{{ messages['%c%cclass%c%c'%(95,95,95,95)]['%c%cmro%c%c'%(95,95,95,95)] }}",
        "{{ x + 'get' }}",
        "{{ ('abc')[1] }}",
        "{{ 'a_\\\n_b' }}",
        "{{ x[y[0] + 'a'] }}",
        "{{ x[f(y)] }}",
        "{{ '%c%c'%(95,95) }}",
    ],
)
def test_escapes_the_old_shortcut_skipped_are_reported(template: str) -> None:
    problems, error = check_template(template)
    assert problems and error is None
    assert problems == sorted(set(problems) | set(_parsed(template)[0]))


def test_real_template_shapes_still_skip_the_parser() -> None:
    # Role names compared with ==, dictionary keys, special-token strings joined with +.
    text = (
        "{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{ '<|system|>\\n' + message['content'] | trim + '<|end|>' }}{% endif %}{% endfor %}"
    )
    assert not templates._needs_ast(text)
    assert _parsed(text) == ([], None)
