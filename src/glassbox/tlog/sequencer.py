"""The sequencer: queue submissions, append them in one transaction per batch.

Throughput must not depend on one fsync per entry, and an entry must not be acknowledged before
it is durable. Both hold here: callers wait on an event (or a future) that is set only after
their batch's COMMIT returns, and a batch takes whatever queued while the previous one was being
prepared and committed (up to ``max_batch`` per transaction), so under load each fsync covers
many entries and under no load an entry waits for one commit, not for a timer.

Identical leaves get the same index: the batch looks each leaf hash up in the writer's
in-memory duplicate index (``dedup.LeafIndex``, rebuilt from the store, confirmed against the
stored leaf) and deduplicates within itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

from glassbox.digest.merkle import leaf_hash
from glassbox.errors import GlassboxError
from glassbox.tlog.dedup import LeafIndex
from glassbox.tlog.store import NewLeaf, Store
from glassbox.tlog.tree import RightEdge, StoredTree


class Pending(NamedTuple):
    """One submission: the compact leaf, its full body (content-addressed) and search terms."""

    leaf: bytes
    body: bytes | None = None
    body_digest: bytes | None = None
    terms: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Appended:
    index: int
    leaf_hash: bytes
    duplicate: bool


# A waiter: (position in the batch, how many entries (0: one, answered with a bare
# ``Appended``; n: a list of n), its future, the future's loop if it is an asyncio future).
_Sink = tuple[int, int, Any, "asyncio.AbstractEventLoop | None"]


class _Batch:
    """The submissions that queued while the previous batch was being appended.

    Items are kept in one list and answered in one list (``results``: an ``Appended``, or the
    exception that failed its chunk, by position), so a bulk submitter (``add_many``) costs
    one ``extend`` and one slice, not an object per entry. Only ``submit``/``submit_async``
    register a per-entry future in ``sinks``.
    """

    __slots__ = ("done", "failed", "items", "results", "sinks")

    def __init__(self) -> None:
        self.items: list[Pending] = []
        self.sinks: list[_Sink] = []
        self.results: list[Appended | BaseException] = []
        self.failed = False
        self.done = threading.Event()


class SequencerClosed(GlassboxError):
    """The sequencer was stopped before the entry could be appended."""


class WriterState:
    """What a writer keeps between batches: the tree's right edge and the duplicate index.

    Both are derived from the store and refreshed under the tree-head lock whenever the size
    moved without us (another writer, a restart), so they are caches, never the truth.
    """

    __slots__ = ("edge", "index")

    def __init__(self, edge: RightEdge, index: LeafIndex) -> None:
        self.edge = edge
        self.index = index

    @classmethod
    def sync(cls, store: Store, state: WriterState | None, size: int) -> WriterState:
        if state is None or state.index.covered > size:  # the log shrank: never trust a cache
            state = cls(RightEdge(0, []), LeafIndex())
        if state.edge.size != size:
            state.edge = RightEdge.load(StoredTree(store), size)
        index = state.index
        for start in range(index.covered, size, 65536):
            end = min(size, start + 65536)
            for i, key in enumerate(store.hkeys(start, end), start):
                index.add(key, i)
            index.covered = end
        return state


@dataclass(slots=True)
class Prepared:
    """A batch computed against a writer state, not yet written: the rows and the answers."""

    first: int  # the tree size the rows were computed on top of
    leaves: list[NewLeaf]
    blobs: dict[bytes, bytes]
    terms: list[tuple[str, str, int]]
    results: list[Appended]


def prepare(
    state: WriterState,
    items: list[Pending],
    stored_leaves: Callable[[list[int]], Mapping[int, bytes]],
) -> Prepared:
    """Compute rows, interior hashes and dedup answers for ``items`` on top of ``state``
    (advancing it). ``stored_leaves`` returns earlier leaves, to confirm duplicate candidates.

    This loop is the sequencer's whole CPU cost per entry, so it does one dict operation per
    entry for dedup (``setdefault`` both looks up and claims the key; a hit is the rare path),
    and leaves the interior hashes and row tuples to ``RightEdge.extend`` and ``zip``.
    """
    edge, index = state.edge, state.index
    first = edge.size
    claim = index.map.setdefault
    results: list[Appended] = []
    new_items: list[Pending] = []
    new_hashes: list[bytes] = []
    new_keys: list[int] = []
    i = first
    for item in items:
        h = leaf_hash(item.leaf)
        key = int.from_bytes(h[:8], "big", signed=True)  # store.hkey, inlined: hot loop
        old = claim(key, i)
        if old is not i:  # rare: a duplicate (or a prefix collision), confirm in full
            seen = _confirm(index, key, old, i, h, first, new_items, stored_leaves)
            if seen is not None:
                results.append(Appended(seen, h, True))
                continue
        results.append(Appended(i, h, False))
        new_items.append(item)
        new_hashes.append(h)
        new_keys.append(key)
        i += 1
    nodes = edge.extend(new_hashes)
    index.covered = edge.size
    out = Prepared(first, [], {}, [], results)
    out.leaves = list(
        zip(
            range(first, i),
            [x.leaf for x in new_items],
            nodes,
            new_keys,
            [x.body_digest for x in new_items],
            strict=True,
        )
    )
    for n, item in enumerate(new_items, first):
        if item.body is not None and item.body_digest is not None:
            out.blobs[item.body_digest] = item.body
        if item.terms:
            out.terms.extend((kind, value, n) for kind, value in item.terms)
    return out


def _confirm(
    index: LeafIndex,
    key: int,
    old: int | list[int],
    i: int,
    h: bytes,
    first: int,
    new_items: list[Pending],
    stored_leaves: Callable[[list[int]], Mapping[int, bytes]],
) -> int | None:
    """``key`` was already claimed by ``old``: return the index of an identical earlier leaf
    (leaving the map as it was), or record ``i`` beside ``old`` (a prefix collision)."""
    candidates = list(old) if isinstance(old, list) else [old]
    earlier = [c for c in candidates if c < first]
    stored: Mapping[int, bytes] = stored_leaves(earlier) if earlier else {}
    for c in candidates:
        leaf = new_items[c - first].leaf if c >= first else stored.get(c)
        if leaf is not None and leaf_hash(leaf) == h:
            return c
    index.map[key] = [*candidates, i]
    return None


def _write(store: Store, prepared: Prepared) -> None:
    """Inside a write transaction: the rows, then the new size."""
    if prepared.leaves:
        store.put_leaves(prepared.leaves)
        if prepared.blobs:
            store.put_blobs(list(prepared.blobs.items()))
        if prepared.terms:
            store.put_terms(prepared.terms)
        store.set_size(prepared.first + len(prepared.leaves))


def append_batch(
    store: Store, state: WriterState | None, items: list[Pending]
) -> tuple[WriterState, list[Appended]]:
    """Append ``items`` in one transaction; return the writer state and each item's index.

    On any failure the transaction is rolled back and the caller must pass ``None`` next time,
    since the in-memory state may have been advanced.
    """
    with store.write_lock:
        size = store.begin_append()
        try:
            state = WriterState.sync(store, state, size)
            prepared = prepare(state, items, store.leaves_at)
            _write(store, prepared)
            store.commit()
        except BaseException:
            store.rollback()
            raise
    return state, prepared.results


class Sequencer:
    """One thread that drains submissions into batched, durable appends.

    Submitters append to the open batch and wait on its event, a future, or (``submit_async``)
    an asyncio future. The sequencing thread takes the open batch and appends it with
    ``append_batch`` (hash, interior nodes, dedup, insert, COMMIT) in chunks of ``max_batch``.
    While it waits for COMMIT (fsync, or PostgreSQL's round trip; the GIL is released) the next
    batch fills up, so the batch size follows the load.

    One thread, not a preparer and a writer overlapped (an earlier design): CPython's sqlite3
    releases and re-takes the GIL around every row it inserts, so a writer inserting while a
    preparer hashes waits for the GIL once per row; on two busy cores that pipeline was never
    faster than this one thread and in one run ran at a quarter of its rate. Other writers
    (another process on the same store) are handled by ``append_batch``, which syncs the state
    under the tree-head lock. Entries are acknowledged only after their own commit. A failed
    batch is retried once from a state re-read from the store (a transient error), then its
    submitters get the error.
    """

    def __init__(self, store: Store, *, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._open = _Batch()
        self._closed = False
        self._state: WriterState | None = None
        self._thread = threading.Thread(target=self._run, name="tlog-sequencer", daemon=True)
        self._thread.start()

    def _enqueue(
        self, items: list[Pending], sink: Any = None, loop: Any = None, many: bool = False
    ) -> tuple[_Batch, int]:
        with self._cv:
            if self._closed:
                raise SequencerClosed("the log is closed")
            batch = self._open
            start = len(batch.items)
            if not start:
                self._cv.notify()
            batch.items.extend(items)
            if sink is not None:
                batch.sinks.append((start, len(items) if many else 0, sink, loop))
        return batch, start

    def submit(self, item: Pending) -> Future[Appended]:
        """Queue one entry; the future completes when its batch has committed."""
        future: Future[Appended] = Future()
        self._enqueue([item], future)
        return future

    def submit_async(self, item: Pending) -> asyncio.Future[Appended]:
        """Queue one entry from a running event loop; the asyncio future completes when its
        batch has committed. All of one batch's futures on a loop are completed by one
        callback (not one thread-safe wake-up per entry, as wrapping a ``Future`` costs)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Appended] = loop.create_future()
        self._enqueue([item], future, loop)
        return future

    def add_many_async(self, items: list[Pending]) -> asyncio.Future[list[Appended]]:
        """``add_many`` for an event loop: one asyncio future for the whole list, completed
        once every entry in it is durable (or with the first error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Appended]] = loop.create_future()
        if not items:
            future.set_result([])
            return future
        self._enqueue(items, future, loop, many=True)
        return future

    def add(self, item: Pending, timeout: float | None = None) -> Appended:
        """Append and wait until the entry is durable."""
        return self.add_many([item], timeout)[0]

    def add_many(self, items: list[Pending], timeout: float | None = None) -> list[Appended]:
        """Append ``items`` and wait until all are durable; their indexes, in order."""
        batch, start = self._enqueue(items)
        if not batch.done.wait(timeout):
            raise TimeoutError("the log did not commit the entry in time")
        out = batch.results[start : start + len(items)]
        if batch.failed:
            for r in out:
                if isinstance(r, BaseException):
                    raise r
        return out  # type: ignore[return-value]  # no exception in it: checked above

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._open.items and not self._closed:
                    self._cv.wait()
                if not self._open.items:
                    return
                batch, self._open = self._open, _Batch()
            items, step = batch.items, self.max_batch
            for start in range(0, len(items), step):
                self._append(batch, items[start : start + step])
            batch.done.set()
            if batch.sinks:
                _resolve_sinks(batch)

    def _append(self, batch: _Batch, items: list[Pending]) -> None:
        for attempt in (1, 2):
            try:
                self._state, results = append_batch(self.store, self._state, items)
            except BaseException as exc:
                self._state = None  # it may have been advanced past what was committed
                if attempt == 2 or not isinstance(exc, Exception):
                    batch.failed = True
                    batch.results.extend([exc] * len(items))
                    return
            else:
                batch.results.extend(results)
                return

    def close(self) -> None:
        """Append everything already submitted, then stop."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()


def _resolve_sinks(batch: _Batch) -> None:
    """Complete the waiters' futures: concurrent ones here, asyncio ones with one callback per
    event loop."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    results = batch.results
    for pos, count, future, loop in batch.sinks:
        result: Any = results[pos]
        if count:
            part = results[pos : pos + count]
            errors = [r for r in part if isinstance(r, BaseException)] if batch.failed else []
            result = errors[0] if errors else part
        if loop is not None:
            loops.setdefault(loop, []).append((future, result))
        elif future.done():  # cancelled by its caller: nothing to tell
            continue
        elif isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
    for loop, pairs in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve_async, pairs)


def _resolve_async(pairs: list[tuple[Any, Any]]) -> None:
    """On the event loop: complete each asyncio future (unless its request went away)."""
    for future, result in pairs:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
