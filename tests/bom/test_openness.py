"""Openness grades for hand-built releases, from files on disk and from MOF YAML declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox.bom import (
    COMPONENTS,
    ComponentEntry,
    Release,
    assess_openness,
    grade,
    grade_release,
    load_mof_yaml,
)
from glassbox.errors import InputError

WEIGHTS = {"model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "}
CODE = {
    "model.py": b"# architecture\n",
    "train.py": b"# training\n",
    "inference.py": b"# inference\n",
}
DOCS = {
    "README.md": b"# Model card\n",
    "DATA_CARD.md": b"# Data card\n",
    "technical_report.md": b"# Report\n",
    "eval_results.json": b"{}\n",
}
TOOLING = {"evaluate.py": b"# eval code\n", "eval_data/test.csv": b"a,b\n"}
SCIENCE = {
    "data/train.csv": b"a,b\n",
    "preprocess.py": b"# preprocessing\n",
    "checkpoints/step-100.safetensors": b"x",
    "paper.pdf": b"%PDF-1.4\n",
}


def make_release(root: Path, *parts: dict[str, bytes], licence: str | None = None) -> Path:
    root.mkdir()
    for part in parts:
        for name, data in part.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if licence is not None:
        (root / "LICENSE").write_text(f"SPDX-License-Identifier: {licence}\n")
    return root


def test_weights_only_with_open_licence_is_open_weights_not_open_source(tmp_path: Path) -> None:
    report = assess_openness(make_release(tmp_path / "m", WEIGHTS, licence="Apache-2.0"))
    assert report.mof.mof_class == 0
    assert report.headline.startswith("open weights, not open source")
    assert report.verdict == "fail"
    assert not report.osaid.conforms
    assert any(m.startswith("Model architecture (missing") for m in report.missing)


def test_weights_only_without_licence_is_unknown(tmp_path: Path) -> None:
    report = assess_openness(make_release(tmp_path / "m", WEIGHTS))
    assert report.verdict == "unknown"
    assert "without a licence" in report.headline


def test_weights_under_restrictive_licence_are_not_open(tmp_path: Path) -> None:
    root = make_release(tmp_path / "m", WEIGHTS, CODE)
    (root / "README.md").write_text("---\nlicense: llama3\n---\n# Card\n")
    report = assess_openness(root)
    assert report.verdict == "fail"
    assert "restrictive licence (llama3)" in report.headline


def test_weights_and_code_reach_no_class_but_pass_osaid_code(tmp_path: Path) -> None:
    report = assess_openness(make_release(tmp_path / "m", WEIGHTS, CODE, licence="MIT"))
    checks = {c.name: c.ok for c in report.osaid.checks}
    assert checks == {"data information": False, "code": True, "parameters": True}
    assert report.mof.mof_class == 0
    assert report.headline.startswith("open weights, not open source")


def test_weights_code_and_documents_reach_class_iii(tmp_path: Path) -> None:
    root = make_release(tmp_path / "m", WEIGHTS, CODE, DOCS, licence="Apache-2.0")
    # Documents must carry an open content licence of their own: Apache-2.0 is code-only for
    # pure documents, but model card, reports and results accept code licences too (MOF v1.0).
    report = assess_openness(root)
    assert report.mof.mof_class == 3, report.mof.to_dict()["missing_for"]
    assert report.verdict == "pass"
    assert report.headline.startswith("MOF Class III - Open Model")
    assert report.osaid.conforms  # the data card, code and weights are all openly licensed
    assert "Training code (open: Apache-2.0)" not in report.missing
    assert {m.split(" (")[0] for m in report.missing} == {"Evaluation code", "Evaluation data"}


def test_weights_code_and_data_reach_class_i_only_with_open_data_licences(
    tmp_path: Path,
) -> None:
    root = make_release(tmp_path / "m", WEIGHTS, CODE, DOCS, TOOLING, SCIENCE)
    (root / "mof.yml").write_text(
        "framework: {name: Model Openness Framework, version: '1.0'}\n"
        "release:\n"
        "  name: digits\n"
        "  license:\n"
        "    code: {name: MIT}\n"
        "    data: {name: CC-BY-4.0}\n"
        "    document: {name: CC-BY-4.0}\n"
    )
    report = assess_openness(root)
    assert report.mof.mof_class == 1
    assert report.mof.class_name == "Class I - Open Science"
    assert report.missing == ()

    (root / "mof.yml").write_text(
        "framework: {name: Model Openness Framework, version: '1.0'}\n"
        "release:\n"
        "  name: digits\n"
        "  license:\n"
        "    code: {name: MIT}\n"
        "    data: {name: CC-BY-4.0}\n"
        "    document: {name: CC-BY-4.0}\n"
        "  components:\n"
        "  - {name: Datasets, license: CC-BY-NC-4.0}\n"
    )
    report = assess_openness(root)
    assert report.mof.mof_class == 2
    assert report.missing == ("Datasets (not-open: CC-BY-NC-4.0)",)


def test_code_under_a_data_licence_does_not_count(tmp_path: Path) -> None:
    release = Release("r")
    for component in COMPONENTS:
        release.add(ComponentEntry(component.name, True, "CC-BY-4.0"))
    result = grade(release.entries)
    status = {s.component.name: s.status for s in result.components}
    assert status["Training code"] == "not-open"
    assert status["Model parameters (Final)"] == "open"
    assert result.mof_class == 0


def test_every_component_open_is_class_i() -> None:
    release = Release("r")
    for component in COMPONENTS:
        licence = "Apache-2.0" if "code" in component.content_type else "CC-BY-4.0"
        release.add(ComponentEntry(component.name, True, licence))
    report = grade_release(release)
    assert report.mof.mof_class == 1
    assert report.mof.progress == {3: 100.0, 2: 100.0, 1: 100.0}
    assert report.osaid.conforms


def test_dual_licence_counts_when_one_branch_is_open() -> None:
    release = Release("r")
    release.add(ComponentEntry("Model architecture", True, "LicenseRef-custom OR MIT"))
    release.add(ComponentEntry("Training code", True, "MIT AND LicenseRef-custom"))
    status = {s.component.name: s.status for s in grade(release.entries).components}
    assert status["Model architecture"] == "open"
    assert status["Training code"] == "not-open"


def test_dataset_commitment_alone_is_not_data_information() -> None:
    release = Release("r", dataset_commitments=[{"name": "digits", "root": "00" * 32}])
    release.add(ComponentEntry("Model parameters (Final)", True, "MIT"))
    report = grade_release(release)
    data = report.osaid.checks[0]
    assert not data.ok and "dataset commitment" in data.detail


def test_mof_yaml_declaration_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mof.yml"
    path.write_text(
        "framework:\n  name: Model Openness Framework\n  version: '1.0'\n  date: '2024-12-15'\n"
        "release:\n  name: tiny\n  version: 1B\n"
        "  license:\n    distribution:\n      name: Apache-2.0\n      path: LICENSE\n"
        "  components:\n"
        "  - name: Model architecture\n    license: MIT\n    component_path: model.py\n"
        "  - name: Model parameters (Final)\n    license: apache-2.0\n"
        "  - name: Not a component\n"
    )
    release = load_mof_yaml(path)
    assert release.name == "tiny" and release.version == "1B"
    assert release.entries["Model parameters (Final)"].license == "Apache-2.0"
    assert release.global_licences == {"distribution": "Apache-2.0"}
    assert any("unknown component" in n for n in release.notes)


@pytest.mark.parametrize(
    "text",
    [
        "framework: {name: Something Else}\nrelease: {name: x}\n",
        "- just a list\n",
        "framework: {name: Model Openness Framework}\n",
        "framework: {name: Model Openness Framework}\nrelease: {name: x, components: 3}\n",
        "framework: [unclosed\n",
        "framework: !!python/object/apply:os.system ['true']\n",
    ],
)
def test_malformed_mof_yaml_is_a_clear_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mof.yml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"mof\.yml"):
        load_mof_yaml(path)


def test_huge_mof_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mof.yml"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(InputError, match="larger than"):
        load_mof_yaml(path)


def test_symlinked_files_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "train.py").write_text("# secret\n")
    root = make_release(tmp_path / "m", WEIGHTS, licence="MIT")
    (root / "train.py").symlink_to(outside / "train.py")
    (root / "code").symlink_to(outside, target_is_directory=True)
    report = assess_openness(root)
    status = {s.component.name: s.status for s in report.mof.components}
    assert status["Training code"] == "missing"


def test_single_weights_file_is_graded(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    report = assess_openness(path)
    assert report.verdict == "unknown"
    assert report.release.entries["Model parameters (Final)"].location == "model.gguf"


def test_declared_local_paths_are_checked(tmp_path: Path) -> None:
    root = make_release(tmp_path / "m", WEIGHTS, {"train.py": b"# training\n"}, licence="MIT")
    (root / "mof.yml").write_text(
        "framework: {name: Model Openness Framework, version: '1.0'}\n"
        "release:\n  name: m\n  components:\n"
        "  - {name: Training code, license: MIT, component_path: train.py}\n"
        "  - {name: Inference code, license: MIT, component_path: infer_missing.py}\n"
        "  - {name: Evaluation code, license: MIT, component_path: ../../etc/passwd}\n"
        "  - {name: Research paper, license: CC-BY-4.0, component_path: 'https://arxiv.org/x'}\n"
    )
    report = assess_openness(root)
    status = {s.component.name: s.status for s in report.mof.components}
    assert status["Training code"] == "open"
    assert status["Inference code"] == "missing"
    assert status["Evaluation code"] == "missing"
    assert status["Research paper"] == "open"  # remote: a declaration, recorded as such
    assert any("no such file" in n for n in report.release.notes)
    assert any("outside the release" in n for n in report.release.notes)
