"""Test helpers shared by the sign tests (importable, unlike conftest)."""

from __future__ import annotations

from pathlib import Path


def make_model(root: Path) -> Path:
    """A small model directory: nested files, an empty file, a binary file, a .git dir.

    ``a/b`` and ``a.b`` together pin OMS ordering (by path components, not by string).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"layers": 2}\n')
    (root / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "a.b").write_text("sorts after a/b in OMS order\n")
    (root / "a").mkdir()
    (root / "a" / "b").write_text("component order\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root
