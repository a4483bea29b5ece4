"""The scanner's hot modules may be compiled with mypyc (hatch_build.py): guard that build."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _compiled_list() -> list[str]:
    """``COMPILED``, read without importing the hook (hatchling is a build-time
    dependency, not installed in the environment the tests run in)."""
    tree = ast.parse((ROOT / "hatch_build.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(v) for v in value]
    raise AssertionError("hatch_build.py has no COMPILED list")


COMPILED = _compiled_list()


@pytest.mark.parametrize("rel", COMPILED)
def test_compiled_module_is_not_stale(rel: str) -> None:
    """A compiled module shadows its source: one older than the source would test (and ship)
    old code. Re-run ``pip install -e .`` after editing a compiled module."""
    name = rel.removesuffix(".py").replace("/", ".")
    module = importlib.import_module(name)
    source = SRC / rel
    if not module.__file__ or module.__file__.endswith(".py"):
        pytest.skip("pure-Python install (GLASSBOX_PURE_PYTHON or no compiler): nothing compiled")
    assert Path(module.__file__).stat().st_mtime >= source.stat().st_mtime, (
        f"{module.__file__} is older than {source}: re-run pip install -e ."
    )


@pytest.mark.parametrize("rel", COMPILED)
def test_except_names_are_not_reused_across_types(rel: str) -> None:
    """mypyc types an ``except ... as name`` variable by its first clause; binding another
    exception class to the same name in the same function fails at run time (it hid a
    ``TypeError`` as 'BombError object expected'). Keep one name per exception type."""
    tree = ast.parse((SRC / rel).read_text(encoding="utf-8"))
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        seen: dict[str, str] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.ExceptHandler) and node.name:
                kind = ast.unparse(node.type) if node.type else "BaseException"
                assert seen.setdefault(node.name, kind) == kind, (
                    f"{rel}:{node.lineno}: {fn.name}() binds {node.name!r} to {kind} and to"
                    f" {seen[node.name]}"
                )


def test_the_build_compiles_what_it_lists() -> None:
    for rel in COMPILED:
        assert (SRC / rel).is_file(), rel
        assert importlib.util.find_spec(rel.removesuffix(".py").replace("/", ".")) is not None
