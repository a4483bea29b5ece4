"""Every MODEL command on a Hugging Face cache snapshot, named by path and as ``hf:org/name``.

The model is a real (tiny, random) ``transformers`` model saved with ``save_pretrained``, stored
in a cache laid out as ``huggingface_hub`` lays it out; nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from huggingface_hub import scan_cache_dir

from glassbox.bom.cyclonedx import validate_bom
from glassbox.cli.main import cli
from glassbox.sign import generate_private_key, write_keypair
from tests.audit.conftest import make_release
from tests.trust.hfcache import CachedRepo, add_to_hf_cache, save_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture
def cached(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CachedRepo:
    repo = add_to_hf_cache(tmp_path / "hub", "org/tiny-bert", tiny_model)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    return repo


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_digest_by_name_path_and_plain_copy_agree(cached: CachedRepo, tiny_model: Path) -> None:
    roots = set()
    for model in ("hf:org/tiny-bert", "hf:org/tiny-bert@main", str(cached.snapshot)):
        code, out, err = invoke("digest", model, "--json")
        assert code == 0, err
        manifest = json.loads(out)
        assert [i["name"] for i in manifest["items"]] == ["config.json", "model.safetensors"]
        roots.add(manifest["root_digest"]["sha256"])
    code, out, _ = invoke("digest", str(tiny_model), "--json")
    assert roots == {json.loads(out)["root_digest"]["sha256"]}


def test_sign_and_verify_by_name(cached: CachedRepo, tiny_model: Path, tmp_path: Path) -> None:
    priv, pub = write_keypair(generate_private_key(), tmp_path / "k")
    sig = tmp_path / "tiny.sig"
    code, out, err = invoke("sign", "hf:org/tiny-bert", "--key", str(priv), "--signature", str(sig))
    assert code == 0, err
    code, out, err = invoke(
        "verify", "hf:org/tiny-bert", "--key", str(pub), "--signature", str(sig)
    )
    assert code == 0, err
    assert "verified" in out
    code, _, err = invoke("verify", str(tiny_model), "--key", str(pub), "--signature", str(sig))
    assert code == 0, err
    # A changed blob fails verification (exit 1) and is named by its snapshot path.
    (cached.snapshot / "config.json").resolve().write_text("{}")
    code, out, err = invoke(
        "verify", "hf:org/tiny-bert", "--key", str(pub), "--signature", str(sig), "--json"
    )
    assert code == 1
    assert json.loads(out)["modified"] == ["config.json"]


def test_scan_snapshot_scans_the_files(cached: CachedRepo) -> None:
    code, out, err = invoke("scan", "hf:org/tiny-bert", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["files_scanned"] == 2
    assert report["findings"] == []


def test_scan_snapshot_reports_an_escaping_link(cached: CachedRepo, tmp_path: Path) -> None:
    outside = tmp_path / "payload.bin"
    outside.write_bytes(b"not from the hub")
    (cached.snapshot / "extra.bin").symlink_to(outside)
    code, out, _ = invoke("scan", str(cached.snapshot), "--json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert [(f["rule_id"], f["path"]) for f in findings] == [("GBX-FS-001", "extra.bin")]
    assert "points outside the cached repository" in findings[0]["message"]


def test_bom_by_name(cached: CachedRepo) -> None:
    code, out, err = invoke("bom", "hf:org/tiny-bert")
    assert code == 0, err
    bom = json.loads(out)
    validate_bom(bom)
    refs = {c["bom-ref"] for c in bom["components"][0]["components"]}
    assert {"file:config.json", "file:model.safetensors"} <= refs
    # The weights are found through their cache link (present, though without a licence).
    props = {p["name"]: p["value"] for p in _properties(bom)}
    assert props["glassbox:mof:Model parameters (Final)"] == "unlicensed"
    # Named by repository and commit, not by the snapshot's bare commit directory.
    model = next(c for c in bom["components"] if c["type"] == "machine-learning-model")
    assert model["name"] == f"org/tiny-bert@{cached.commit}"
    code, out, err = invoke("bom", str(cached.snapshot))
    assert code == 0, err
    named = [c["name"] for c in json.loads(out)["components"]]
    assert f"org/tiny-bert@{cached.commit}" in named


def _properties(node: object) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, list):
                found.extend(p for p in value if isinstance(p, dict) and "name" in p)
            else:
                found.extend(_properties(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_properties(item))
    return found


def test_audit_of_a_cached_release_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fully evidenced release, published to a hub and read back from the cache: its
    model.sig, licence and metrics are cache links now, and still count."""
    release = make_release(tmp_path)
    repo = add_to_hf_cache(tmp_path / "hub", "org/digits", release.model)
    assert not scan_cache_dir(repo.cache_dir).warnings
    assert (repo.snapshot / "model.sig").is_symlink()
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    code, out, err = invoke(
        "audit",
        "hf:org/digits",
        "--key",
        str(release.pub),
        "--provenance",
        str(release.provenance),
        "--proof",
        str(release.proof),
        "--scan-attestation",
        str(release.scan),
        "--json",
    )
    report = json.loads(out)
    verdicts = {link["link"]: (link["verdict"], link["summary"]) for link in report["links"]}
    assert code == 0, (verdicts, err)
    assert {v for v, _ in verdicts.values()} == {"pass"}
    assert report["verdict"] == "pass"
    assert report["manifest"]["model_name"] == f"org/digits@{repo.commit}"
    assert report["bom"]["model"] == f"org/digits@{repo.commit}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:../../etc@main", "expected hf:NAME or hf:ORG/NAME"),
        ("hf:org/tiny-bert@v9", "no ref 'v9'"),
        ("hf:org/missing", "not in the Hugging Face cache"),
    ],
)
@pytest.mark.parametrize("command", ["digest", "scan", "bom", "audit"])
def test_bad_names_are_usage_errors(
    cached: CachedRepo, command: str, spec: str, message: str
) -> None:
    code, _, err = invoke(command, spec)
    assert code == 2
    assert message in err


def test_garbage_ref_is_a_usage_error(cached: CachedRepo) -> None:
    (cached.repo_dir / "refs" / "main").write_text("../../../../etc/passwd")
    code, _, err = invoke("digest", "hf:org/tiny-bert")
    assert code == 2
    assert "does not hold a commit hash" in err


def test_a_directory_named_like_a_spec_is_reachable(tmp_path: Path, tiny_model: Path) -> None:
    weird = tmp_path / "hf:org"
    shutil.copytree(tiny_model, weird)
    code, _, err = invoke("digest", str(weird))  # an absolute path never starts with "hf:"
    assert code == 0, err


def test_scan_attestation_is_not_written_into_the_cache(cached: CachedRepo, tmp_path: Path) -> None:
    priv, _ = write_keypair(generate_private_key(), tmp_path / "k")
    code, _, err = invoke("scan", "hf:org/tiny-bert", "--attest", "--key", str(priv))
    assert code == 2
    assert "give --out" in err
    assert not scan_cache_dir(cached.cache_dir).warnings
    out = tmp_path / "scan.json"
    code, _, err = invoke(
        "scan", "hf:org/tiny-bert", "--attest", "--key", str(priv), "--out", str(out)
    )
    assert code == 0, err
    assert out.is_file()
