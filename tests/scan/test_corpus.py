"""Done means: every malicious corpus sample is flagged, no benign one is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glassbox.scan import Severity, scan_path

pytestmark = pytest.mark.slow  # builds real torch/sklearn/gguf/onnx samples once (~15 s)

Corpus = tuple[Path, list[dict[str, Any]]]


def test_every_malicious_sample_fails_the_default_gate(corpus: Corpus) -> None:
    # --fail-on high: allowlist first, so nothing malicious may sit below the gate (issue 18).
    root, samples = corpus
    missed = [
        s["file"]
        for s in samples
        if s["malicious"] and not scan_path(root / s["file"], workers=1).fails(Severity.HIGH)
    ]
    assert sum(s["malicious"] for s in samples) > 200
    assert missed == []


def test_no_benign_sample_has_a_finding(corpus: Corpus) -> None:
    root, samples = corpus
    noisy = {}
    for s in samples:
        if s["malicious"]:
            continue
        report = scan_path(root / s["file"], workers=1)
        bad = [f.to_dict() for f in report.findings if f.severity >= Severity.LOW]
        if bad:
            noisy[s["file"]] = bad
    assert len([s for s in samples if not s["malicious"]]) >= 30
    assert noisy == {}


def test_benign_formats_are_recognised(corpus: Corpus) -> None:
    root, _ = corpus
    report = scan_path(root / "benign", workers=1)
    assert {"zip", "pickle", "safetensors", "npy", "gguf", "onnx", "json", "zlib", "xz"} <= set(
        report.formats
    )


@pytest.mark.parametrize(
    ("name", "rule", "subject"),
    [
        ("memo-binput-memoize-confusion.pkl", "GBX-PKL-001", "os.system"),
        ("memo-put-confusion.pkl", "GBX-PKL-001", "os.system"),
        ("stack-global-memoized.pkl", "GBX-PKL-001", "os.system"),
        ("unicode-escaped-names.pkl", "GBX-PKL-001", "os.system"),
        ("getattr-import-chain-p0.pkl", "GBX-PKL-001", "builtins.__import__"),
        ("reduce-builtin-eval-py2-name.pkl", "GBX-PKL-001", "builtins.eval"),
        ("stack-global-computed-name.pkl", "GBX-PKL-003", None),
        ("ext2-code.pkl", "GBX-PKL-004", "ext:7"),
        ("build-setattr-on-global.pkl", "GBX-PKL-005", "numpy.prod"),
        ("build-setstate-injection.pkl", "GBX-PKL-006", "__setstate__"),
        ("reduce-unlisted-module.pkl", "GBX-PKL-002", "glassbox_corpus_payload.run"),
        ("nested-pickle-loads.pkl", "GBX-PKL-001", "os.system"),
        ("zip-local-central-mismatch.pt", "GBX-ZIP-002", "archive/data.pkl"),
        ("zip-bad-crc.pt", "GBX-ZIP-004", None),
        ("zip-encryption-flag.pt", "GBX-ZIP-004", None),
        ("zip-traversal.zip", "GBX-ZIP-001", "../../evil.pkl"),
        ("zip-duplicate-names.pt", "GBX-ZIP-005", "archive/data.pkl"),
        ("zip-bomb.zip", "GBX-ZIP-003", None),
        ("gzip-bomb.gz", "GBX-ZIP-003", None),
        ("deep-nesting.zip", "GBX-LIM-001", None),
        ("tar-symlink.tar", "GBX-ZIP-007", "/etc/passwd"),
        ("joblib-payload-after-array.joblib", "GBX-PKL-001", "posix.system"),
        ("joblib-object-array.joblib", "GBX-PKL-001", "posix.system"),
        ("keras-lambda.keras", "GBX-KER-001", "lambda"),
        ("keras-module-injection-config.json", "GBX-KER-001", "subprocess.check_output"),
        ("jinja-attr-escaped.gguf", "GBX-TPL-001", "tokenizer.chat_template"),
        ("onnx-external-traversal.onnx", "GBX-ONNX-001", "../../etc/passwd"),
        ("onnx-custom-domain.onnx", "GBX-ONNX-002", "evil.custom"),
        ("st-overlap.safetensors", "GBX-ST-001", "b"),
        ("gguf-tensor-out-of-bounds.gguf", "GBX-GGUF-001", None),
        ("torch-legacy-tar-storages-payload.tar", "GBX-PKL-001", "os.system"),
        ("polyglot-pickle-then-keras-zip.keras", "GBX-ZIP-008", None),
        ("polyglot-pickle-then-keras-zip.keras", "GBX-KER-001", "lambda"),
        ("st-hidden-bytes.safetensors", "GBX-ST-001", None),
        ("gguf-duplicate-key.gguf", "GBX-GGUF-001", None),
        ("torchscript-from-file.pt", "GBX-TS-001", "torch.from_file"),
        ("torch-tensor-view-out-of-bounds.pt", "GBX-PKL-010", "storage:0"),
        ("keras-tfsmlayer.keras", "GBX-KER-001", "/tmp/attacker_savedmodel"),
        ("keras-stringlookup-file.keras", "GBX-KER-001", "/etc/passwd"),
    ],
)
def test_technique_gets_its_rule(corpus: Corpus, name: str, rule: str, subject: str | None) -> None:
    root, _ = corpus
    report = scan_path(root / "malicious" / name, workers=1)
    hits = [f for f in report.findings if f.rule_id == rule]
    assert hits, [f.to_dict() for f in report.findings]
    if subject is not None:
        assert subject in {f.subject for f in hits}


def test_matrix_covers_every_container(corpus: Corpus) -> None:
    from tests.scan.make_corpus import CONTAINERS, MATRIX_TECHNIQUES

    _, samples = corpus
    seen = {(s["technique"], s["container"]) for s in samples if s["malicious"]}
    for technique in MATRIX_TECHNIQUES:
        for container in CONTAINERS:
            assert (technique, container) in seen
