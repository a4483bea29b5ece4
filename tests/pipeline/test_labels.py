"""Label decisions and labellers' signatures: signing (CLI), checking, and hostile batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.digest import commit_dataset
from glassbox.errors import InputError
from glassbox.pipeline.labels import (
    LABEL_PREDICATE_TYPE,
    check_labels,
    decisions_digest,
    read_decisions,
    sign_labels,
)
from glassbox.sign import (
    generate_private_key,
    load_private_key,
    load_public_key,
    read_bundle,
    verify_bundle,
    write_keypair,
)


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    path = tmp_path / "decisions.jsonl"
    rows = [
        {"id": 1, "label": "cat", "labeller": "alice"},
        {"id": 2, "label": "dog", "labeller": "alice"},
        {"id": 3, "label": "cat", "labeller": "bob"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": i, "label": None}) + "\n" for i in range(5)))
    return path


def keys(tmp_path: Path, *names: str) -> dict[str, Path]:
    out = {}
    for name in names:
        write_keypair(generate_private_key(), tmp_path / name)
        out[name] = tmp_path / name
    return out


def test_cli_sign_then_check(tmp_path: Path, batch: Path, data: Path) -> None:
    k = keys(tmp_path, "alice", "bob")
    bundles = {}
    for who in ("alice", "bob"):
        out = tmp_path / f"{who}.intoto.json"
        result = CliRunner().invoke(
            cli,
            [
                *("label", "sign", str(batch), "--labeller", who, "--key", f"{k[who]}.key"),
                *("--dataset", str(data), "--out", str(out)),
            ],
        )
        assert result.exit_code == 0, result.output
        bundles[str(out)] = read_bundle(out)
    statement = verify_bundle(
        bundles[str(tmp_path / "alice.intoto.json")], load_public_key(f"{k['alice']}.pub")
    )
    assert statement["predicateType"] == LABEL_PREDICATE_TYPE
    assert statement["predicate"]["decisions"] == 2
    root = commit_dataset(data).root.hex()
    pubs = {who: load_public_key(f"{path}.pub") for who, path in k.items()}
    check = check_labels(read_decisions(batch), bundles, pubs, dataset_root=root)
    assert check.ok and sorted(check.covered) == ["1", "2", "3"]
    # Without bob's key, his decision is uncovered and named.
    partial = check_labels(
        read_decisions(batch), bundles, {"alice": pubs["alice"]}, dataset_root=root
    )
    assert not partial.ok
    assert [d.key for d in partial.uncovered] == ["3"]
    assert any("labeller 'bob' is not in the list" in p for p in partial.problems)
    # Signed about another dataset: refused.
    other = check_labels(read_decisions(batch), bundles, pubs, dataset_root="0" * 64)
    assert any("are about dataset" in p for p in other.problems)


def test_digest_is_order_independent_and_csv_matches_json(tmp_path: Path, batch: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("labeller,id,label\nalice,2,dog\nalice,1,cat\nbob,3,cat\n")
    a = [d for d in read_decisions(batch) if d.labeller == "alice"]
    b = [d for d in read_decisions(csv) if d.labeller == "alice"]
    assert decisions_digest(a) == decisions_digest(b)
    assert decisions_digest(a) != decisions_digest(a[:1])


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("id,label\n1,a\n", "d.csv", "missing labeller"),
        ('{"id": 1, "label": "a"}\n', "d.jsonl", "needs 'id', 'label' and 'labeller'"),
        ('{"id": 1, "label": "a", "labeller": ""}\n', "d.jsonl", "non-empty string"),
        (
            '{"id": 1, "label": "a", "labeller": "x"}\n{"id": 1, "label": "b", "labeller": "x"}\n',
            "d.jsonl",
            "both label record '1' for 'x'",
        ),
        ('{"id": 1, "label": "a", "labeller": "x"\n', "d.jsonl", "not valid JSON"),
    ],
)
def test_hostile_batches_are_one_clear_error(
    tmp_path: Path, content: str, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_decisions(path)


def test_signing_for_someone_with_no_decisions_is_refused(tmp_path: Path, batch: Path) -> None:
    key = keys(tmp_path, "carol")["carol"]
    with pytest.raises(InputError, match="no decisions by labeller 'carol'"):
        sign_labels(batch, "carol", load_private_key(f"{key}.key"), dataset_root="0" * 64)


def test_garbage_attestation_is_a_problem_not_a_crash(batch: Path) -> None:
    check = check_labels(
        read_decisions(batch), {"x.json": {"not": "a bundle"}}, {}, dataset_root="0" * 64
    )
    assert not check.ok and check.problems and len(check.uncovered) == 3
