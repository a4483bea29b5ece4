"""``glassbox audit`` and ``glassbox bom`` as a user runs them: output, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.bom.cyclonedx import validate_bom
from glassbox.cli.main import cli
from glassbox.errors import InputError
from tests.audit.conftest import Release, make_release


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return make_release(tmp_path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_audit_passes_a_fully_evidenced_release(release: Release, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    code, out, _ = invoke(
        "audit", str(release.model), "--key", str(release.pub), "--html", str(html)
    )
    assert code == 0, out
    assert out.count("✔ PASS") == 6  # five links and the overall verdict
    assert "Verdict: ✔ PASS" in out
    assert html.is_file() and "Glassbox audit" in html.read_text()


def test_audit_json_and_exit_code_for_tampering(release: Release) -> None:
    (release.model / "README.md").write_text("# edited card\n")
    code, out, _ = invoke("audit", str(release.model), "--key", str(release.pub), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["verdict"] == "fail" and doc["exit_code"] == 1
    integrity = next(link for link in doc["links"] if link["link"] == "integrity")
    assert integrity["evidence"]["modified"] == ["README.md"]


def test_require_none_exits_zero_even_without_evidence(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}")
    code, out, _ = invoke("audit", str(model), "--require", "none", "--no-scan")
    assert code == 0
    # Nothing is required, so nothing is drawn as a failure, yet the unknown is still named.
    assert "? UNKNOWN" in out and "✘" not in out and "Openness (advisory, unknown):" in out
    code, _, _ = invoke("audit", str(model), "--no-scan")
    assert code == 1


def test_usage_errors_exit_2(release: Release, tmp_path: Path) -> None:
    code, _, err = invoke("audit", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = invoke("audit", str(release.model), "--require", "vibes")
    assert code == 2 and "unknown link 'vibes'" in err
    code, _, err = invoke("audit", str(release.model), "--key", str(tmp_path / "nokey.pub"))
    assert code == 2
    code, _, err = invoke("audit", str(release.model), "--provenance", str(release.proof))
    assert code == 2 and "given as provenance evidence" in err
    code, _, err = invoke("audit", str(release.model), "--log", "ftp://example")
    assert code == 2 and "--log" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = invoke("audit", str(release.model), "--html", str(blocker / "r.html"))
    assert code == 2 and err.strip() == f"error: {blocker / 'r.html'}: {blocker} is not a directory"
    code, _, err = invoke("bom", str(release.model), "--out", str(blocker / "b.json"))
    assert code == 2 and err.strip() == f"error: {blocker / 'b.json'}: {blocker} is not a directory"
    missing = tmp_path / "no-such-dir" / "b.json"
    code, _, err = invoke("bom", str(release.model), "--out", str(missing))
    assert code == 2 and f"directory {missing.parent} does not exist" in err
    assert not missing.parent.exists()


def test_html_into_a_missing_directory_is_refused_not_created(
    release: Release, tmp_path: Path
) -> None:
    target = tmp_path / "no" / "such" / "report.html"
    code, out, err = invoke("audit", str(release.model), "--html", str(target))
    assert code == 2 and out == ""  # refused before the audit ran
    assert err.strip() == f"error: {target}: directory {target.parent} does not exist"
    assert not (tmp_path / "no").exists()


def test_html_through_a_file_names_the_file_in_the_way(release: Release, tmp_path: Path) -> None:
    """``--html /etc/passwd/x.html`` used to say "File exists"."""
    blocker = tmp_path / "passwd"
    blocker.write_text("root:x:0:0\n")
    for target in (blocker / "x.html", blocker / "a" / "b" / "x.html"):
        code, _, err = invoke("audit", str(release.model), "--html", str(target))
        assert code == 2
        assert err.strip() == f"error: {target}: {blocker} is not a directory"
        assert len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "root:x:0:0\n"
    code, _, err = invoke("audit", str(release.model), "--html", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_require_help_uses_the_link_names_the_report_shows() -> None:
    """One vocabulary: the names in the table (integrity, transparency, ...) are the names
    ``--require`` documents; the older words are accepted as aliases."""
    from glassbox.audit import LINKS, parse_require

    code, out, _ = invoke("audit", "--help")
    assert code == 0
    help_text = " ".join(out.split())
    start = help_text.index("--require TEXT")
    require = help_text[start : help_text.index("--rebuild", start)]
    for name in LINKS:
        assert name in require
    assert "signature=integrity" in require and "log=transparency" in require
    assert parse_require("signature,log,build,scan,open") == frozenset(LINKS)
    assert parse_require(",".join(LINKS)) == frozenset(LINKS)
    with pytest.raises(InputError, match="choose from integrity, transparency, provenance"):
        parse_require("signatures")


def test_bom_command_writes_a_valid_bom(release: Release, tmp_path: Path) -> None:
    out = tmp_path / "digits.cdx.json"
    code, _, err = invoke("bom", str(release.model), "--out", str(out), "--key", str(release.pub))
    assert code == 0, err
    doc = json.loads(out.read_text())
    validate_bom(doc)
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert by_ref["dataset:training:train"]["type"] == "data"
    assert by_ref["pkg:pypi/torch@2.13.0"]["version"] == "2.13.0"
    card = by_ref["model"]["modelCard"]
    assert {"name": "glassbox:provenance", "value": "verified"} in card["properties"]
    files = {f["name"] for f in by_ref["model"]["components"]}
    assert "model.sig" not in files and "model.safetensors" in files


def test_bom_refuses_provenance_no_key_verifies(release: Release) -> None:
    code, _, err = invoke("bom", str(release.model), "--key", str(release.other_pub))
    assert code == 1 and "no --key verifies" in err
    code, out, _ = invoke("bom", str(release.model))
    assert code == 0
    card = next(c for c in json.loads(out)["components"] if c["bom-ref"] == "model")["modelCard"]
    assert {"name": "glassbox:provenance", "value": "unverified"} in card["properties"]


def test_audit_of_the_current_directory(release: Release, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(release.model)
    code, out, _ = invoke("audit", ".", "--key", str(release.pub), "--json")
    doc = json.loads(out)
    assert code == 0, [link["summary"] for link in doc["links"]]
    assert doc["model"] == str(release.model)
