"""The writer's in-memory duplicate index, and dedup across restarts and concurrent writers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glassbox.tlog.dedup import LeafIndex
from glassbox.tlog.sequencer import Pending, Sequencer, append_batch
from glassbox.tlog.store import SQLStore, open_store


@given(st.lists(st.binary(min_size=1, max_size=3), max_size=3000))
def test_leaf_index_keeps_the_first_index(keys: list[bytes]) -> None:
    index = LeafIndex()
    first: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        index.extend([key], i)
        first.setdefault(key, i)
    assert all(index.get(k) == i for k, i in first.items())
    assert index.get(b"absent-key") is None
    assert len(index) == len(first)


def test_dedup_survives_restart_and_sees_other_writers(store_url: str) -> None:
    a = open_store(store_url)
    b = open_store(store_url)  # a second writer on the same log (another process or server)
    try:
        state_a, r1 = append_batch(a, None, [Pending(b"one"), Pending(b"two")])
        _state_b, r2 = append_batch(b, None, [Pending(b"three"), Pending(b"one")])
        assert [x.index for x in r1] == [0, 1]
        assert [x.index for x in r2] == [2, 0] and r2[1].duplicate
        state_a, r3 = append_batch(a, state_a, [Pending(b"three"), Pending(b"four")])
        assert [x.index for x in r3] == [2, 3]  # a learned of b's "three" under the lock
    finally:
        a.close()
        b.close()
    again: SQLStore = open_store(store_url)
    seq = Sequencer(again)
    try:
        assert [x.index for x in seq.add_many([Pending(b"four"), Pending(b"five")])] == [3, 4]
    finally:
        seq.close()
        again.close()


def test_two_sequencers_on_one_store(store_url: str) -> None:
    """Two sequencers (as in two server processes) racing on one log: each batch re-syncs its
    state under the tree-head lock, so nothing is lost or doubled."""
    from concurrent.futures import ThreadPoolExecutor

    from glassbox.tlog.tree import audit_store

    stores = [open_store(store_url), open_store(store_url)]
    seqs = [Sequencer(s, max_batch=16) for s in stores]
    leaves = [f"leaf-{i}".encode() for i in range(400)]
    work = [(seqs[n % 2], leaves[n * 20 : n * 20 + 20] + leaves[:3]) for n in range(20)]
    try:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda w: w[0].add_many([Pending(x) for x in w[1]]), work))
    finally:
        for seq in seqs:
            seq.close()
    index_of: dict[bytes, int] = {}
    for (_seq, chunk), res in zip(work, results, strict=True):
        for leaf, r in zip(chunk, res, strict=True):
            assert index_of.setdefault(leaf, r.index) == r.index  # same leaf, same index
    assert sorted(index_of.values()) == list(range(400))
    assert stores[0].size() == 400
    audit_store(stores[0])
    for s in stores:
        s.close()


def test_a_failed_commit_is_retried(store_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = open_store(store_url)
    seq = Sequencer(store)
    try:
        seq.add(Pending(b"first"))  # the sequencer now has a cached state that must be dropped
        calls = {"n": 0}
        real = store.put_bundles

        def flaky(rows):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("transient")
            return real(rows)

        monkeypatch.setattr(store, "put_bundles", flaky)
        assert [r.index for r in seq.add_many([Pending(b"a"), Pending(b"b")])] == [1, 2]
        assert calls["n"] == 2
    finally:
        seq.close()
        store.close()


def test_async_submitters_and_failures(store_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The server's paths: one asyncio future per entry or per list, completed after the
    commit; a batch that keeps failing fails its waiters (every kind) and the sequencer keeps
    serving; a caller that cancelled its future does not stop it either."""
    import asyncio

    store = open_store(store_url)
    seq = Sequencer(store, max_batch=4)

    async def feed(leaves: list[bytes]) -> tuple[list[int], list[int]]:
        singles = [seq.submit_async(Pending(x)) for x in leaves]
        many = seq.add_many_async([Pending(x) for x in reversed(leaves)])
        assert list(await seq.add_many_async([])) == []
        return [(await f).index for f in singles], [a.index for a in await many]

    try:
        leaves = [f"a{i}".encode() for i in range(10)]
        singles, many = asyncio.run(feed(leaves))
        assert singles == list(range(10)) and many == list(range(9, -1, -1))
        cancelled = seq.submit(Pending(b"cancelled"))
        cancelled.cancel()
        assert seq.add(Pending(b"after")).index in (10, 11)

        def broken(rows):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(store, "put_bundles", broken)

        async def failing() -> None:
            with pytest.raises(RuntimeError, match="on fire"):
                await seq.submit_async(Pending(b"x"))
            with pytest.raises(RuntimeError, match="on fire"):
                await seq.add_many_async([Pending(b"y"), Pending(b"z")])

        asyncio.run(failing())
        with pytest.raises(RuntimeError, match="on fire"):
            seq.submit(Pending(b"w")).result(timeout=30)
        with pytest.raises(RuntimeError, match="on fire"):
            seq.add_many([Pending(b"v")])
        monkeypatch.undo()
        assert seq.add(Pending(b"again")).index == store.size() - 1
    finally:
        seq.close()
        store.close()
