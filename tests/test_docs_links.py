"""The README and docs link only what a clone of the repository has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
OUTSIDE = re.compile(r"(?<![\w.])\.\./[\w./-]+")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_points_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"
    # A path mentioned in prose (``../shared/DESIGN.md``) is as broken as a link to it.
    assert OUTSIDE.findall(text) == [], f"{doc.name} names files outside the repository"


def test_readme_documents_every_command() -> None:
    """Each top-level command has at least one ``glassbox NAME`` example or heading.

    A rewrite of one README section once cut off every section after it; this is the tripwire.
    """
    from glassbox.cli.main import COMMANDS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in sorted(COMMANDS) if f"glassbox {name}" not in text]
    assert missing == [], f"README never shows: {', '.join(missing)}"
