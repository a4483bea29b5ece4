"""The sequencer: queue submissions, append them in one transaction per batch.

Throughput must not depend on one fsync per entry, and an entry must not be acknowledged before
it is durable. Both hold here: callers wait on an event (or a future) that is set only after
their batch's COMMIT returns, and a batch takes whatever queued while the previous one was being
prepared and committed (up to ``max_batch`` per transaction), so under load each fsync covers
many entries and under no load an entry waits for one commit, not for a timer.

Identical leaves get the same index: the batch looks each leaf hash up in the writer's
in-memory duplicate index (``dedup.LeafIndex``, rebuilt from the store) and deduplicates within
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

from glassbox.digest.merkle import LEAF_PREFIX
from glassbox.errors import GlassboxError, InputError
from glassbox.tlog.dedup import LeafIndex
from glassbox.tlog.faults import LOCKED, StoreError
from glassbox.tlog.store import MAX_LEAF, NO_BODY, TILE, NewBundle, Store, encode_entries
from glassbox.tlog.tree import RightEdge, StoredTree


class Pending(NamedTuple):
    """One submission: the compact leaf, its full body (content-addressed) and search terms."""

    leaf: bytes
    body: bytes | None = None
    body_digest: bytes | None = None
    terms: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class Appended:
    """Where an entry landed."""

    index: int
    leaf_hash: bytes
    duplicate: bool


class Results(Sequence[Appended]):
    """Where each entry of a batch landed, kept as flat lists and materialised on access.

    Not a list of ``Appended``: an object per entry that lives until its batch is answered is
    promoted through the collector's generations (CPython stops tracking plain tuples, never
    named ones), and at a million entries the full collections those survivors triggered took
    a fifth of the append benchmark's CPU time. Lists of ints and bytes are one object each.
    """

    __slots__ = ("dups", "hashes", "indexes")

    def __init__(self, indexes: list[int], hashes: list[bytes], dups: frozenset[int]) -> None:
        self.indexes = indexes
        self.hashes = hashes
        self.dups = dups  # positions answered with an earlier identical entry's index

    def __len__(self) -> int:
        return len(self.indexes)

    @overload
    def __getitem__(self, k: int) -> Appended: ...

    @overload
    def __getitem__(self, k: slice) -> Results: ...

    def __getitem__(self, k: int | slice) -> Appended | Results:
        if isinstance(k, slice):
            start, stop, step = k.indices(len(self))
            if step != 1:
                raise ValueError("Results slices are contiguous")
            dups = frozenset(p - start for p in self.dups if start <= p < stop)
            return Results(self.indexes[start:stop], self.hashes[start:stop], dups)
        if k < 0:
            k += len(self)
        return Appended(self.indexes[k], self.hashes[k], k in self.dups)

    @classmethod
    def concat(cls, parts: Sequence[Results]) -> Results:
        if len(parts) == 1:
            return parts[0]
        indexes: list[int] = []
        hashes: list[bytes] = []
        dups: set[int] = set()
        for part in parts:
            dups.update(p + len(indexes) for p in part.dups)
            indexes += part.indexes
            hashes += part.hashes
        return cls(indexes, hashes, frozenset(dups))


# A waiter: (position in the batch, how many entries (0: one, answered with a bare
# ``Appended``; n: ``Results`` for n), its future, the future's loop if it is an asyncio future).
_Sink = tuple[int, int, Any, "asyncio.AbstractEventLoop | None"]


class _Batch:
    """The submissions that queued while the previous batch was being appended.

    Items are kept in one list and answered by chunk (``chunks``: the ``Results`` of each
    ``step``-sized slice of ``items``, or the exception that failed it), so a bulk submitter
    (``add_many``) costs one ``extend`` and one slice, not an object per entry. Only
    ``submit``/``submit_async`` register a per-entry future in ``sinks``.
    """

    __slots__ = ("chunks", "done", "items", "sinks", "step")

    def __init__(self, step: int) -> None:
        self.items: list[Pending] = []
        self.sinks: list[_Sink] = []
        self.chunks: list[Results | BaseException] = []
        self.step = step
        self.done = threading.Event()

    def answer(self, pos: int) -> Appended | BaseException:
        """The answer for item ``pos`` (the per-entry futures' path: no slicing)."""
        c, off = divmod(pos, self.step)
        chunk = self.chunks[c]
        return chunk if isinstance(chunk, BaseException) else chunk[off]

    def answers(self, start: int, n: int) -> Results | BaseException:
        """The answers for items [start, start + n), or the first error among them."""
        parts: list[Results] = []
        pos, end = start, start + n
        while pos < end:
            c, off = divmod(pos, self.step)
            chunk = self.chunks[c]
            if isinstance(chunk, BaseException):
                return chunk
            take = min(end - pos, self.step - off)
            parts.append(chunk[off : off + take])
            pos += take
        return Results.concat(parts)


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
        for start in range(state.index.covered, size, 65536):
            end = min(size, start + 65536)
            state.index.extend(store.leaf_hashes(start, end), start)
            state.index.covered = end
        return state


@dataclass(slots=True)
class Prepared:
    """A batch computed against a writer state, not yet written: the rows and the answers."""

    first: int  # the tree size the rows were computed on top of
    count: int  # new leaves (duplicates excluded)
    bundles: list[NewBundle]
    blobs: dict[bytes, bytes]
    terms: list[tuple[str, str, int]]
    results: Results


_LEAF, _BODY_DIGEST, _TERMS = (operator.itemgetter(i) for i in (0, 2, 3))  # Pending fields


def check_sizes(items: Sequence[Pending]) -> None:
    """Refuse a leaf the entry-bundle encoding cannot hold, before it can fail a whole batch.
    (The log's own compact leaves are a few hundred bytes; see ``entries``.)"""
    if max(map(len, map(_LEAF, items)), default=0) > MAX_LEAF:  # C speed: no frame per item
        raise InputError(f"a log leaf is at most {MAX_LEAF} bytes (c2sp.org/tlog-tiles)")


def prepare(state: WriterState, items: list[Pending]) -> Prepared:
    """Compute bundles, interior hashes and dedup answers for ``items`` on top of ``state``
    (advancing it).

    This loop is the sequencer's whole CPU cost per entry, so it does one hash and one dict
    operation per entry (``setdefault`` both looks the leaf hash up and claims it; a duplicate
    is the rare path), and leaves interior hashes to ``RightEdge.extend`` and the row bytes to
    a few ``join``s per bundle.
    """
    edge = state.edge
    first = i = edge.size
    claim = state.index.map.setdefault
    prefix = LEAF_PREFIX.copy
    indexes: list[int] = []
    hashes: list[bytes] = []
    dups: list[int] = []
    put_index, put_hash = indexes.append, hashes.append
    for item in items:
        hasher = prefix()  # merkle.leaf_hash, inlined: hot loop
        hasher.update(item.leaf)
        h = hasher.digest()
        old = claim(h, i)
        put_index(old)
        put_hash(h)
        if old is i:
            i += 1
        else:  # rare: an identical leaf is already in the log (or earlier in this batch)
            dups.append(len(indexes) - 1)
    fresh, fresh_hashes = items, hashes
    if dups:
        skip = set(dups)
        fresh = [x for k, x in enumerate(items) if k not in skip]
        fresh_hashes = [h for k, h in enumerate(hashes) if k not in skip]
    nodes = edge.extend(fresh_hashes)
    state.index.covered = edge.size
    out = Prepared(first, i - first, [], {}, [], Results(indexes, hashes, frozenset(dups)))
    k = 0
    while k < out.count:  # one bundle per tile the batch touches (see ``store``)
        start = first + k
        end = min(first + out.count, start - start % TILE + TILE)
        seg = slice(k, end - first)
        part = fresh[seg]
        digests = list(map(_BODY_DIGEST, part))  # map + itemgetter: C speed, per bundle
        bodies = None
        if any(digests):
            bodies = b"".join([d or NO_BODY for d in digests])
            out.blobs.update(
                (x.body_digest, x.body) for x in part if x.body is not None and x.body_digest
            )
        if any(map(_TERMS, part)):
            out.terms.extend(
                (kind, value, n) for n, x in enumerate(part, start) for kind, value in x.terms
            )
        out.bundles.append(
            NewBundle(
                start,
                end - start,
                b"".join(nodes[seg]),
                b"".join(fresh_hashes[seg]),
                encode_entries(list(map(_LEAF, part))),
                bodies,
            )
        )
        k = end - first
    return out


def write_prepared(store: Store, prepared: Prepared) -> None:
    """Inside a write transaction: the rows, then the new size."""
    if prepared.count:
        store.put_bundles(prepared.bundles)
        if prepared.blobs:
            store.put_blobs(list(prepared.blobs.items()))
        if prepared.terms:
            store.put_terms(prepared.terms)
        store.set_size(prepared.first + prepared.count)


def append_batch(
    store: Store, state: WriterState | None, items: list[Pending]
) -> tuple[WriterState, Results]:
    """Append ``items`` in one transaction; return the writer state and each item's index.

    On any failure the transaction is rolled back and the caller must pass ``None`` next time,
    since the in-memory state may have been advanced.
    """
    check_sizes(items)
    return _append_checked(store, state, items)


def _append_checked(
    store: Store, state: WriterState | None, items: list[Pending]
) -> tuple[WriterState, Results]:
    """``append_batch`` for items whose sizes were checked when they were submitted."""
    with store.write_lock:
        size = store.begin_append()
        try:
            state = WriterState.sync(store, state, size)
            prepared = prepare(state, items)
            write_prepared(store, prepared)
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
    batch is retried once from a state re-read from the store (a transient error; not a lock
    that already outlasted the busy timeout), then its submitters get the error.
    """

    def __init__(self, store: Store, *, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._open = _Batch(max_batch)
        self._closed = False
        self._state: WriterState | None = None
        # What the last batches met (read by the server's /health): consecutive failed
        # batches, and the last error with its time.
        self.failures = 0
        self.last_error: BaseException | None = None
        self.last_error_time: float | None = None
        self._thread = threading.Thread(target=self._run, name="tlog-sequencer", daemon=True)
        self._thread.start()

    def _enqueue(
        self, items: list[Pending], sink: Any = None, loop: Any = None, many: bool = False
    ) -> tuple[_Batch, int]:
        check_sizes(items)
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

    def add_many_async(self, items: list[Pending]) -> asyncio.Future[Results]:
        """``add_many`` for an event loop: one asyncio future for the whole list, completed
        once every entry in it is durable (or with the first error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Results] = loop.create_future()
        if not items:
            future.set_result(Results([], [], frozenset()))
            return future
        self._enqueue(items, future, loop, many=True)
        return future

    def add(self, item: Pending, timeout: float | None = None) -> Appended:
        """Append and wait until the entry is durable."""
        return self.add_many([item], timeout)[0]

    def add_many(self, items: list[Pending], timeout: float | None = None) -> Results:
        """Append ``items`` and wait until all are durable; their indexes, in order."""
        if not items:
            return Results([], [], frozenset())
        batch, start = self._enqueue(items)
        if not batch.done.wait(timeout):
            raise TimeoutError("the log did not commit the entry in time")
        out = batch.answers(start, len(items))
        if isinstance(out, BaseException):
            raise out
        return out

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._open.items and not self._closed:
                    self._cv.wait()
                if not self._open.items:
                    return
                batch, self._open = self._open, _Batch(self.max_batch)
            items, step = batch.items, self.max_batch
            for start in range(0, len(items), step):
                self._append(batch, items[start : start + step])
            batch.done.set()
            if batch.sinks:
                _resolve_sinks(batch)

    def _append(self, batch: _Batch, items: list[Pending]) -> None:
        for attempt in (1, 2):
            try:
                # Sizes were checked in _enqueue, where a bad leaf fails only its submitter.
                self._state, results = _append_checked(self.store, self._state, items)
            except BaseException as exc:
                self._state = None  # it may have been advanced past what was committed
                # A lock already waited out the whole busy timeout: a second wait only
                # doubles how long the submitters hang before they hear "locked".
                locked = isinstance(exc, StoreError) and exc.kind == LOCKED
                if attempt == 2 or locked or not isinstance(exc, Exception):
                    self.failures += 1
                    self.last_error, self.last_error_time = exc, time.time()
                    batch.chunks.append(exc)
                    return
            else:
                self.failures = 0
                batch.chunks.append(results)
                return

    def probe(self) -> None:
        """Check that a batch could be written now (take the tree-head lock and let it go),
        so a writer that failed is seen to recover without waiting for the next entry.
        Raises the store's error if it still cannot."""
        with self.store.write_lock:
            self.store.begin_append()
            self.store.rollback()
        self.failures = 0

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
    for pos, count, future, loop in batch.sinks:
        result = batch.answers(pos, count) if count else batch.answer(pos)
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
