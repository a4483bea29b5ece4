"""Input digests: record chunks that locate a changed record, line digests that locate a line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassbox.digest import commit_dataset
from glassbox.digest.merkle import node_hash
from glassbox.pipeline import inputs as inputs_mod
from glassbox.pipeline.inputs import changed_lines, changed_records, record_chunks


def write(path: Path, labels: list[int]) -> Path:
    path.write_text("".join(json.dumps({"i": i, "y": y}) + "\n" for i, y in enumerate(labels)))
    return path


def test_changed_record_is_located(tmp_path: Path) -> None:
    labels = list(range(10))
    before = record_chunks(write(tmp_path / "a.jsonl", labels), "jsonl", 10)
    labels[6] = 99
    after = record_chunks(write(tmp_path / "a.jsonl", labels), "jsonl", 10)
    assert before["records_per_chunk"] == 1
    assert changed_records(before, after) == [(6, 7)]
    assert changed_records(before, before) == []


def test_large_dataset_chunks_are_nodes_of_the_commitment_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs_mod, "MAX_CHUNKS", 4)
    path = write(tmp_path / "b.jsonl", list(range(16)))
    chunks = record_chunks(path, "jsonl", 16)
    assert chunks["records_per_chunk"] == 4 and len(chunks["roots"]) == 4
    roots = [bytes.fromhex(r) for r in chunks["roots"]]
    # Aligned power-of-two runs are subtrees: folding them gives the commitment root.
    folded = node_hash(node_hash(roots[0], roots[1]), node_hash(roots[2], roots[3]))
    assert folded == commit_dataset(path, fmt="jsonl").root
    labels = list(range(16))
    labels[9] = 0
    changed = record_chunks(write(tmp_path / "b.jsonl", labels), "jsonl", 16)
    assert changed_records(chunks, changed) == [(8, 12)]


def test_appended_record_and_mismatched_chunking(tmp_path: Path) -> None:
    a = record_chunks(write(tmp_path / "c.jsonl", [1, 2, 3]), "jsonl", 3)
    b = record_chunks(write(tmp_path / "c.jsonl", [1, 2, 3, 4]), "jsonl", 4)
    assert changed_records(a, b) == [(3, 4)]
    assert changed_records({"records_per_chunk": 2, "roots": []}, b) == []
    assert changed_records({}, b) == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from("abcde"), max_size=30),
    st.lists(st.tuples(st.integers(0, 29), st.sampled_from("xyz")), max_size=3),
)
def test_changed_lines_points_at_edited_lines(
    lines: list[str], edits: list[tuple[int, str]]
) -> None:
    new = list(lines)
    touched = set()
    for index, text in edits:
        if index < len(new):
            new[index] = text
            touched.add(index + 1)
    reported = set(changed_lines(lines, new))
    assert reported == touched


def test_changed_lines_with_inserted_and_deleted_lines() -> None:
    assert changed_lines(["a", "b", "c"], ["a", "new", "b", "c"]) == [2]
    assert changed_lines(["a", "b", "c"], ["a", "c"]) == [2]
    assert changed_lines(["a", "b"], ["a"]) == [1]


def _reference_chunks(path: Path, size: int) -> dict[str, object]:
    """The per-record definition: a fresh RFC 9162 tree every ``records_per_chunk`` records."""
    from glassbox.digest import iter_records
    from glassbox.digest.merkle import Frontier, leaf_hash

    per_chunk = 1
    while size > per_chunk * inputs_mod.MAX_CHUNKS:
        per_chunk *= 2
    roots: list[str] = []
    frontier = Frontier()
    for record in iter_records(path, "jsonl"):
        frontier.append(leaf_hash(record))
        if frontier.size == per_chunk:
            roots.append(frontier.root().hex())
            frontier = Frontier()
    if frontier.size:
        roots.append(frontier.root().hex())
    return {"records_per_chunk": per_chunk, "roots": roots}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.sampled_from([1, 2, 3, 8, 1024]))
def test_batched_chunks_equal_the_per_record_reference(
    tmp_path_factory: pytest.TempPathFactory, size: int, max_chunks: int
) -> None:
    path = write(tmp_path_factory.mktemp("chunks") / "d.jsonl", [i % 7 for i in range(size)])
    saved = inputs_mod.MAX_CHUNKS
    inputs_mod.MAX_CHUNKS = max_chunks
    try:
        assert record_chunks(path, "jsonl", size) == _reference_chunks(path, size)
    finally:
        inputs_mod.MAX_CHUNKS = saved
