"""The environment record: the package list read from METADATA headers is the stdlib's."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from glassbox.pipeline.environment import installed_packages


def reference() -> dict[str, str]:
    """What ``importlib.metadata`` itself says (the e-mail parser over each whole file)."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        meta = dist.metadata
        name = (meta.get_all("Name") or [None])[0]
        if name:
            packages[str(name).lower()] = str((meta.get_all("Version") or [None])[0])
    return dict(sorted(packages.items()))


def test_installed_packages_equal_the_stdlib_reading() -> None:
    listed = installed_packages()
    assert listed == reference()
    assert "pytest" in listed


def _dist(site: Path, dirname: str, metadata: str) -> None:
    info = site / dirname
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(metadata.encode())


def test_unusual_headers_fall_back_to_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    # CRLF line ends, a description mentioning Name:/Version: lines, a header without a
    # version (the parser's answer is None, kept as "None" like before), folded fields.
    _dist(
        site,
        "crlf_pkg-1.0.dist-info",
        "Metadata-Version: 2.1\r\nName: CRLF-Pkg\r\nVersion: 1.0\r\n\r\nName: not-this\r\n",
    )
    _dist(
        site,
        "described-2.0.dist-info",
        "Metadata-Version: 2.1\nSummary: a\n  folded summary\nName: Described\nVersion: 2.0\n"
        "\nName: wrong\nVersion: 9.9\n",
    )
    _dist(site, "noversion-0.dist-info", "Metadata-Version: 2.1\nName: NoVersion\n\nVersion: 3\n")
    _dist(site, "noname-0.dist-info", "Metadata-Version: 2.1\nVersion: 1\n")
    monkeypatch.setattr(sys, "path", [str(site)])
    listed = installed_packages()
    assert listed == reference()
    assert listed["crlf-pkg"] == "1.0"
    assert listed["described"] == "2.0"
