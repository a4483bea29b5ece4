"""Evidence is recognised by content, wherever it sits beside the model, and hostile files are
refused without damage."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.audit import classify, discover
from glassbox.audit.engine import summarise_bom
from glassbox.audit.evidence import KINDS, MAX_EVIDENCE_BYTES
from glassbox.bom import release_from_mof_dict
from glassbox.errors import InputError
from tests.audit.conftest import Release


def test_evidence_is_found_by_content_not_name(release: Release) -> None:
    renamed = release.root / "digits.attestation.json"
    release.provenance.rename(renamed)
    (release.root / "digits.cdx.json").write_text(json.dumps({"bomFormat": "CycloneDX"}))
    (release.model / "mof.yml").write_text(
        "framework: {name: Model Openness Framework, version: '1.0'}\nrelease: {name: d}\n"
    )
    (release.root / "digits.notes.json").write_text(json.dumps({"hello": "world"}))
    (release.root / "unrelated.json").write_text(json.dumps({"bomFormat": "CycloneDX"}))
    evidence = discover(release.model)
    found = {f.kind: f.path.name for f in evidence.files}
    assert found == {
        "signature": "model.sig",
        "provenance": "digits.attestation.json",
        "log-proof": "digits.proof.json",
        "scan": "digits.scan.json",
        "bom": "digits.cdx.json",
        "mof": "mof.yml",
    }
    provenance = evidence.first("provenance")
    assert provenance is not None and provenance.signed


def test_build_output_names_are_found_beside_the_model_dir(release: Release) -> None:
    release.provenance.rename(release.root / "provenance.sigstore.json")
    assert discover(release.model).first("provenance") is not None


def test_unparseable_default_signature_still_counts_as_a_signature(release: Release) -> None:
    (release.model / "model.sig").write_bytes(b"\xff\xfe garbage")
    signature = discover(release.model).first("signature")
    assert signature is not None and signature.document is None


def test_oversized_evidence_is_noted_not_read(release: Release) -> None:
    big = release.root / "digits.big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_EVIDENCE_BYTES + 1)
    evidence = discover(release.model)
    assert any("too large" in p for p in evidence.problems)
    with pytest.raises(InputError, match="too large to be a release evidence file"):
        classify(big, strict=True)


@pytest.mark.parametrize(
    "content",
    [
        b'{"dsseEnvelope": {"payload": "!!!not base64", "payloadType": "x", "signatures": []},'
        b' "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        b'{"payload": "e30=", "payloadType": "x", "signatures": []}',
        b"[" * 50000,
        b"\x00\x01\x02",
        b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": 7}',
    ],
)
def test_malformed_json_evidence_is_ignored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    assert classify(path) is None


def test_yaml_evidence_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text("framework: !!python/object/apply:os.system ['touch pwned']\n")
    assert classify(path) is None
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(InputError):
        classify(path, strict=True)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_classification(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for suffix in (".json", ".jsonl", ".yml", ".toml", ".sig"):
            path = Path(scratch) / f"x{suffix}"
            path.write_bytes(data)
            item = classify(path)
            assert item is None or item.kind in KINDS
            with contextlib.suppress(InputError):
                classify(path, strict=True)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "format",
                        "payload",
                        "dsseEnvelope",
                        "mediaType",
                        "_type",
                        "predicateType",
                        "bomFormat",
                        "checkpoint",
                        "proof",
                        "signatures",
                        "payloadType",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_shapes_never_crash_classification(doc: object) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.json"
        path.write_text(json.dumps(doc))
        item = classify(path)
        assert item is None or item.kind in KINDS


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(JSONISH)
def test_untrusted_bom_summary_never_crashes(doc: object) -> None:
    summary = summarise_bom(doc)
    assert isinstance(summary, dict)
    summarise_bom(
        {
            "components": [
                {
                    "type": "machine-learning-model",
                    "licenses": doc,
                    "properties": doc,
                    "components": doc,
                    "name": doc,
                }
            ]
        }
    )


@settings(max_examples=150, deadline=None)
@given(JSONISH)
def test_untrusted_mof_declaration_parses_or_is_an_input_error(doc: object) -> None:
    shaped = {
        "framework": {"name": "Model Openness Framework", "version": doc},
        "release": {"name": "x", "license": doc, "components": doc, "version": doc},
    }
    for candidate in (doc, shaped):
        with contextlib.suppress(InputError):
            release_from_mof_dict(candidate, "mof.yml")
