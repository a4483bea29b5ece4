"""Dataset diffs: classes by key, proofs against both commitments, bounded-memory sorting,
and hostile inputs that must give one clear error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.cli.main import cli
from glassbox.digest import commit_dataset, diff_datasets, verify_record
from glassbox.digest.merkle import inclusion_proofs, leaf_hash, streaming_inclusion_proofs
from glassbox.errors import InputError


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "x": i * 2, "label": str(i % 3)} for i in range(n)]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    up = rows(20)
    down = [dict(r) for r in up if r["id"] != 3]
    down[4]["label"] = "9"  # id 5: relabelled
    down[6]["x"] = -1  # id 7: modified
    down.append({"id": 100, "x": 0, "label": "1"})  # added
    down.reverse()  # order does not matter when keyed
    return write_jsonl(tmp_path / "up.jsonl", up), write_jsonl(tmp_path / "down.jsonl", down)


def test_classes_by_key_with_proofs(pair: tuple[Path, Path]) -> None:
    up, down = pair
    result = diff_datasets(up, down, key="id")
    assert result.counts == {"added": 1, "removed": 1, "modified": 1, "relabelled": 1}
    assert result.unchanged == 17
    by_kind = {c.kind: c for c in result.changes}
    assert by_kind["removed"].key == "3" and by_kind["removed"].derived_index is None
    assert by_kind["added"].key == "100" and by_kind["added"].upstream_index is None
    assert by_kind["modified"].key == "7"
    relabel = by_kind["relabelled"]
    assert (relabel.key, relabel.upstream_label, relabel.derived_label) == ("5", "2", "9")
    assert result.by_label["2"] == {"relabelled_from": 1}
    assert result.by_label["9"] == {"relabelled_to": 1}
    assert result.by_label["0"] == {"removed": 1}
    # Every named record is proven against the commitment of the side it is on.
    cu, cd = commit_dataset(up), commit_dataset(down)
    assert (result.upstream.root, result.derived.root) == (cu.root, cd.root)
    for change in result.changes:
        if change.upstream_index is not None:
            assert change.upstream_proof is not None
            verify_record(change.upstream_proof, cu)
            assert json.loads(change.upstream_proof.record)["id"] == int(change.key)
        if change.derived_index is not None:
            assert change.derived_proof is not None
            verify_record(change.derived_proof, cd)
    assert result.kinds() == {"added", "removed", "modified", "relabelled"}


def test_identical_and_index_mode(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", rows(10))
    same = diff_datasets(a, a)
    assert same.changed == 0 and same.unchanged == 10
    changed = rows(12)
    changed[2]["label"] = "x"
    b = write_jsonl(tmp_path / "b.jsonl", changed)
    by_index = diff_datasets(a, b)  # no key: record i against record i
    assert by_index.counts == {"added": 2, "removed": 0, "modified": 0, "relabelled": 1}
    assert [c.key for c in by_index.changes] == ["2", "10", "11"]
    no_label = diff_datasets(a, b, label=None)
    assert no_label.counts["modified"] == 1 and no_label.counts["relabelled"] == 0


def test_csv_keyed_by_column(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("id,text,label\n1,hello,pos\n2,bye,neg\n3,meh,neg\n")
    b = tmp_path / "b.csv"
    b.write_text("id,text,label\n3,meh,pos\n1,hello,pos\n4,new,neg\n")
    result = diff_datasets(a, b, key="id")
    assert result.counts == {"added": 1, "removed": 1, "modified": 0, "relabelled": 1}
    relabel = next(c for c in result.changes if c.kind == "relabelled")
    assert (relabel.key, relabel.upstream_label, relabel.derived_label) == ('"3"', "neg", "pos")


def test_limit_counts_everything_but_lists_few(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", rows(50))
    b = write_jsonl(tmp_path / "b.jsonl", rows(50)[:10])
    result = diff_datasets(a, b, key="id", limit=5)
    assert result.counts["removed"] == 40 and len(result.changes) == 5 and result.omitted == 35
    assert result.to_dict()["changes_omitted"] == 35


def naive(up: list[dict[str, Any]], down: list[dict[str, Any]]) -> dict[str, set[int]]:
    a = {r["id"]: r for r in up}
    b = {r["id"]: r for r in down}
    out: dict[str, set[int]] = {k: set() for k in ("added", "removed", "modified", "relabelled")}
    out["added"] = set(b) - set(a)
    out["removed"] = set(a) - set(b)
    for k in set(a) & set(b):
        if json.dumps(a[k]) == json.dumps(b[k]):  # the records' bytes, as written
            continue
        same_rest = {**a[k], "label": None} == {**b[k], "label": None}
        relabel = same_rest and a[k]["label"] != b[k]["label"]
        out["relabelled" if relabel else "modified"].add(k)
    return out


record = st.fixed_dictionaries(
    {"id": st.integers(0, 40), "x": st.integers(0, 3), "label": st.sampled_from("abc")}
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    up=st.lists(record, max_size=30, unique_by=lambda r: r["id"]),
    down=st.lists(record, max_size=30, unique_by=lambda r: r["id"]),
    run=st.integers(1, 7),
)
def test_external_sort_matches_a_naive_diff(
    tmp_path: Path, up: list[dict[str, Any]], down: list[dict[str, Any]], run: int
) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", up)
    b = write_jsonl(tmp_path / "b.jsonl", down)
    result = diff_datasets(a, b, key="id", run_records=run)
    got: dict[str, set[int]] = {k: set() for k in result.counts}
    for change in result.changes:
        got[change.kind].add(int(change.key))
    assert got == naive(up, down)
    assert result.unchanged == len({r["id"] for r in up} & {r["id"] for r in down}) - (
        len(got["modified"]) + len(got["relabelled"])
    )


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 300), picks=st.lists(st.integers(0, 299), max_size=12))
def test_streaming_proofs_equal_in_memory_proofs(n: int, picks: list[int]) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    wanted = sorted({p % n for p in picks})
    got = streaming_inclusion_proofs(iter(leaves), n, wanted)
    assert [got[i] for i in wanted] == inclusion_proofs(leaves, wanted)


def test_streaming_proofs_refuse_a_short_stream() -> None:
    leaves = [leaf_hash(b"x")] * 5
    with pytest.raises(ValueError, match="expected 6 leaves"):
        streaming_inclusion_proofs(iter(leaves), 6, [0])


# --- hostile inputs -------------------------------------------------------------------------


def test_duplicate_key_is_named(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": 1}, {"id": 2}, {"id": 1}])
    with pytest.raises(InputError, match=r"a.jsonl: key 'id' is not unique: 1 is records 0 and 2"):
        diff_datasets(a, a, key="id")


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"id": 1}\n{"x": 2}\n', "d.jsonl", "record 1 has no key field 'id'"),
        ("[1, 2]\n", "d.jsonl", "record 0 has no key field 'id'"),
        ('{"id": 1}\n{"id": 2\n', "d.jsonl", "line 2 is not valid JSON"),
        ('{"id": 1, "id": 2}\n', "d.jsonl", "duplicate key"),
        ("a,b\n1,2\n", "d.csv", "CSV header has no column 'id'"),
        ("id,id\n1,2\n", "d.csv", "names column 'id' twice"),
        ("id,b\n1,2\n3\n", "d.csv", "line 3 has 1 fields"),
        ('id,b\n"1,2\n', "d.csv", "malformed CSV"),
        ("id,b\n\xff\xfe,1\n", "d.csv", "not valid UTF-8"),
    ],
)
def test_hostile_input_is_one_clear_error(
    tmp_path: Path, content: str, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1") if "\xff" in content else content.encode())
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": 1}])
    with pytest.raises(InputError, match=message):
        diff_datasets(good, path, key="id")


def test_truncated_gzip_and_key_as_label(tmp_path: Path) -> None:
    raw = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in rows(200)))
    bad = tmp_path / "d.jsonl.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    good = write_jsonl(tmp_path / "good.jsonl", rows(3))
    with pytest.raises(InputError, match=r"corrupt gzip|compressed file ended"):
        diff_datasets(good, bad, key="id")
    with pytest.raises(InputError, match="cannot also be the label"):
        diff_datasets(good, good, key="label")


def test_cli_exit_codes_and_json(pair: tuple[Path, Path], tmp_path: Path) -> None:
    up, down = pair
    runner = CliRunner()
    same = runner.invoke(cli, ["dataset", "diff", str(up), str(up), "--key", "id"])
    assert same.exit_code == 0, same.output
    assert "0 added, 0 removed, 0 modified, 0 relabelled, 20 unchanged" in same.output
    differ = runner.invoke(cli, ["dataset", "diff", str(up), str(down), "--key", "id", "--json"])
    assert differ.exit_code == 1
    doc = json.loads(differ.output)
    assert doc["summary"]["relabelled"] == 1 and len(doc["changes"]) == 4
    text = runner.invoke(cli, ["dataset", "diff", str(up), str(down), "--key", "id"])
    assert "relabelled 5 2 -> 9 (proved)" in text.output
    missing = runner.invoke(cli, ["dataset", "diff", str(up), str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_cli_escapes_terminal_control_in_keys(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "\x1b[2Jevil", "label": "a"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "\x1b[2Jevil", "label": "b"}])
    out = CliRunner().invoke(cli, ["dataset", "diff", str(a), str(b), "--key", "id"]).output
    assert "\x1b" not in out and "relabelled" in out


def test_known_upstream_root_is_compared_not_rechecked(pair: tuple[Path, Path]) -> None:
    up, down = pair
    root = commit_dataset(up).root
    fast = diff_datasets(up, down, key="id", upstream_root=root)
    assert fast.to_dict() == diff_datasets(up, down, key="id").to_dict()
    # The upstream changed after it was committed: the diff refuses, naming the file.
    up.write_text(up.read_text().replace('"x": 2,', '"x": 3,'))
    with pytest.raises(InputError, match="changed since it was committed"):
        diff_datasets(up, down, key="id", upstream_root=root)


def test_inline_entries_equal_the_general_path(tmp_path: Path) -> None:
    # Objects with key and label take the inline path; string keys, missing labels, nested
    # values and arrays take ``_entry``: a mixed dataset must diff as each would alone.
    up = [
        {"id": "a", "v": {"z": 1, "a": [1, 2]}, "label": "x"},
        {"id": "b", "v": 2},
        {"id": "c", "v": 3, "label": {"k": 1}},
        {"id": "d", "v": 4, "label": 1},
    ]
    down = [
        {"label": "y", "v": {"a": [1, 2], "z": 1}, "id": "a"},  # relabelled (keys reordered)
        {"id": "b", "v": 2, "label": "new"},  # modified (gained a label)
        {"id": "c", "v": 3, "label": {"k": 2}},  # relabelled
        {"id": "d", "v": 5, "label": 1},  # modified
    ]
    a = write_jsonl(tmp_path / "a.jsonl", up)
    b = write_jsonl(tmp_path / "b.jsonl", down)
    result = diff_datasets(a, b, key="id")
    kinds = {c.key: c.kind for c in result.changes}
    assert kinds == {
        '"a"': "relabelled",
        '"b"': "modified",
        '"c"': "relabelled",
        '"d"': "modified",
    }
