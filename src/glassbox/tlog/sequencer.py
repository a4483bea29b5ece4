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

import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import NamedTuple

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


class _Job:
    """One waiting submission. Plain slots, not a Future: creating a ``Future`` per entry
    (a Condition and an RLock each) costs more than appending the entry."""

    __slots__ = ("error", "future", "item", "result")

    def __init__(self, item: Pending, future: Future[Appended] | None = None) -> None:
        self.item = item
        self.future = future
        self.result: Appended | None = None
        self.error: BaseException | None = None


class _Batch:
    __slots__ = ("done", "jobs")

    def __init__(self) -> None:
        self.jobs: list[_Job] = []
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
    hashes: dict[int, bytes]  # leaf hash of each new leaf, by index


def prepare(
    state: WriterState,
    items: list[Pending],
    stored_leaves: Callable[[list[int]], Mapping[int, bytes]],
) -> Prepared:
    """Compute rows, interior hashes and dedup answers for ``items`` on top of ``state``
    (advancing it). ``stored_leaves`` returns earlier leaves, to confirm duplicate candidates."""
    edge, index = state.edge, state.index
    first = edge.size
    out = Prepared(first, [], {}, [], [], {})
    results, leaves, hashes = out.results, out.leaves, out.hashes
    lookup = index.candidates
    for item in items:
        h = leaf_hash(item.leaf)
        key = int.from_bytes(h[:8], "big", signed=True)  # store.hkey, inlined: hot loop
        candidates = lookup(key)
        if candidates:  # rare: a duplicate (or a prefix collision), confirm in full
            earlier = [c for c in candidates if c not in hashes]
            stored: Mapping[int, bytes] = stored_leaves(earlier) if earlier else {}
            seen = next(
                (c for c in candidates if (hashes.get(c) or _hash_of(stored.get(c))) == h),
                None,
            )
            if seen is not None:
                results.append(Appended(seen, h, True))
                continue
        i = edge.size
        hashes[i] = h
        results.append(Appended(i, h, False))
        leaves.append((i, item.leaf, edge.append(h), key, item.body_digest))
        index.add(key, i)
        if item.body is not None and item.body_digest is not None:
            out.blobs[item.body_digest] = item.body
        if item.terms:
            out.terms.extend((kind, value, i) for kind, value in item.terms)
    index.covered = edge.size
    return out


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


def _hash_of(leaf: bytes | None) -> bytes | None:
    return None if leaf is None else leaf_hash(leaf)


class Sequencer:
    """Two threads that drain submissions into batched, durable appends.

    Submitters append to the open batch and wait on its event. The *preparer* takes the open
    batch and computes rows, interior hashes and dedup answers on its in-memory state (Python,
    holding the GIL) while the *writer* inserts and commits the previous batch (SQLite and
    psycopg release the GIL), so the two overlap. The writer commits a prepared batch only if
    the log is still at the size it was prepared for; otherwise (another writer appended, or the
    write failed) it hands the batch back, and the preparer, once the writer is idle, re-appends
    it synchronously from a state synced with the store. Entries are acknowledged only after
    their own commit.
    """

    def __init__(self, store: Store, *, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._open = _Batch()
        self._closed = False
        self._state: WriterState | None = None  # the preparer's
        self._confirmed = 0  # the preparer's index holds every leaf below this size
        self._recent: dict[int, bytes] = {}  # prepared, maybe not yet committed: index -> leaf
        self._stale = False  # set by the writer: batches are coming back for a retry
        self._retry: list[tuple[list[_Job], _Batch | None]] = []
        self._work: queue.Queue[tuple[list[_Job], Prepared, _Batch | None] | None]
        self._work = queue.Queue(maxsize=2)
        self._writer = threading.Thread(target=self._write_loop, name="tlog-writer", daemon=True)
        self._writer.start()
        self._thread = threading.Thread(target=self._run, name="tlog-sequencer", daemon=True)
        self._thread.start()

    def _enqueue(self, jobs: list[_Job]) -> _Batch:
        with self._cv:
            if self._closed:
                raise SequencerClosed("the log is closed")
            batch = self._open
            batch.jobs.extend(jobs)
            self._cv.notify()
        return batch

    def submit(self, item: Pending) -> Future[Appended]:
        """Queue one entry; the future completes when its batch has committed."""
        future: Future[Appended] = Future()
        self._enqueue([_Job(item, future)])
        return future

    def add(self, item: Pending, timeout: float | None = None) -> Appended:
        """Append and wait until the entry is durable."""
        return self.add_many([item], timeout)[0]

    def add_many(self, items: list[Pending], timeout: float | None = None) -> list[Appended]:
        jobs = [_Job(item) for item in items]
        batch = self._enqueue(jobs)
        if not batch.done.wait(timeout):
            raise TimeoutError("the log did not commit the entry in time")
        out = []
        for job in jobs:
            if job.error is not None:
                raise job.error
            assert job.result is not None
            out.append(job.result)
        return out

    # -- preparer ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._open.jobs and not self._closed and not self._stale:
                        self._cv.wait()
                    if self._stale and not self._open.jobs:
                        batch = None
                    elif not self._open.jobs:
                        break
                    else:
                        batch, self._open = self._open, _Batch()
                if batch is None:  # the writer handed batches back and nothing new came in
                    self._work.join()
                    self._recover()
                    continue
                chunks = [
                    batch.jobs[i : i + self.max_batch]
                    for i in range(0, len(batch.jobs), self.max_batch)
                ]
                for n, jobs in enumerate(chunks):
                    self._prepare(jobs, batch if n == len(chunks) - 1 else None)
            self._work.join()
            self._recover()
        finally:
            self._work.put(None)

    def _stored_leaves(self, indexes: list[int]) -> dict[int, bytes]:
        out = {i: self._recent[i] for i in indexes if i in self._recent}
        for i in indexes:
            if i not in out:
                rows = self.store.leaves(i, i + 1)  # committed (the writer drops _recent after)
                if rows:
                    out[i] = rows[0].leaf
        return out

    def _prepare(self, jobs: list[_Job], batch: _Batch | None) -> None:
        if self._stale:
            self._work.join()  # every batch still in flight comes back for a retry
            self._recover()
        if self._state is None:  # first batch, or after a failure: the synchronous path
            self._append_now(jobs, batch)
            return
        try:
            prepared = prepare(self._state, [j.item for j in jobs], self._stored_leaves)
        except Exception:
            self._state = None
            self._append_now(jobs, batch)
            return
        for row in prepared.leaves:
            self._recent[row[0]] = row[1]
        self._work.put((jobs, prepared, batch))

    def _recover(self) -> None:
        """With the writer idle, re-append what it handed back, in order, from a synced state."""
        self._stale = False
        self._recent.clear()
        retry, self._retry = self._retry, []
        if self._state is not None:
            self._state.index.covered = self._confirmed  # extras beyond are harmless
            self._state.edge.size = -1  # force a reload: it may hold uncommitted leaves
        for jobs, batch in retry:
            self._append_now(jobs, batch)

    def _append_now(self, jobs: list[_Job], batch: _Batch | None) -> None:
        try:
            self._state, results = append_batch(self.store, self._state, [j.item for j in jobs])
        except BaseException as exc:
            self._state = None
            _fail(jobs, exc)
        else:
            self._confirmed = self._state.edge.size
            _succeed(jobs, results)
        if batch is not None:
            batch.done.set()

    # -- writer --------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            work = self._work.get()
            try:
                if work is None:
                    return
                jobs, prepared, batch = work
                if not self._stale and self._commit(prepared):
                    self._confirmed = prepared.first + len(prepared.leaves)
                    _succeed(jobs, prepared.results)
                    for row in prepared.leaves:
                        self._recent.pop(row[0], None)
                    if batch is not None:
                        batch.done.set()
                else:
                    self._retry.append((jobs, batch))
                    with self._cv:  # wake the preparer even if no new work arrives
                        self._stale = True
                        self._cv.notify()
            finally:
                self._work.task_done()

    def _commit(self, prepared: Prepared) -> bool:
        store = self.store
        with store.write_lock:
            size = store.begin_append()
            try:
                if size != prepared.first:  # another writer appended since we prepared
                    store.rollback()
                    return False
                _write(store, prepared)
                store.commit()
            except Exception:
                store.rollback()
                return False
        return True

    def close(self) -> None:
        """Append everything already submitted, then stop."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()
        self._writer.join()


def _succeed(jobs: list[_Job], results: list[Appended]) -> None:
    for job, result in zip(jobs, results, strict=True):
        job.result = result
        if job.future is not None:
            job.future.set_result(result)


def _fail(jobs: list[_Job], exc: BaseException) -> None:
    for job in jobs:
        job.error = exc
        if job.future is not None:
            job.future.set_exception(exc)
