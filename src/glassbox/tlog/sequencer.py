"""The sequencer: queue submissions, append them in one transaction per batch.

Throughput must not depend on one fsync per entry, and an entry must not be acknowledged before
it is durable. Both hold here: callers block on a future that is completed only after the
batch's COMMIT returns, and a batch takes whatever queued while the previous one was committing
(up to ``max_batch``), so under load each fsync covers many entries and under no load an entry
waits for one commit, not for a timer.

Identical leaves get the same index: the batch looks each leaf hash up in the writer's
in-memory duplicate index (``dedup.LeafIndex``, rebuilt from the store, confirmed against the
stored leaf) and deduplicates within itself.
"""

from __future__ import annotations

import threading
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
        if state is None:
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
            edge, index = state.edge, state.index
            results: list[Appended] = []
            leaves: list[NewLeaf] = []
            blobs: dict[bytes, bytes] = {}
            terms: list[tuple[str, str, int]] = []
            first = edge.size
            new_hashes: list[bytes] = []  # leaf hashes of this batch's new leaves, by i - first
            lookup = index.candidates
            for item in items:
                h = leaf_hash(item.leaf)
                key = int.from_bytes(h[:8], "big", signed=True)  # store.hkey, inlined: hot loop
                candidates = lookup(key)
                if candidates:  # rare: a duplicate (or a prefix collision), confirm in full
                    earlier = [c for c in candidates if c < first]
                    stored = store.leaves_at(earlier) if earlier else {}
                    seen = next(
                        (
                            c
                            for c in candidates
                            if (new_hashes[c - first] if c >= first else leaf_hash(stored[c])) == h
                        ),
                        None,
                    )
                    if seen is not None:
                        results.append(Appended(seen, h, True))
                        continue
                i = edge.size
                new_hashes.append(h)
                results.append(Appended(i, h, False))
                leaves.append((i, item.leaf, edge.append(h), key, item.body_digest))
                index.add(key, i)
                if item.body is not None and item.body_digest is not None:
                    blobs[item.body_digest] = item.body
                if item.terms:
                    terms.extend((kind, value, i) for kind, value in item.terms)
            if leaves:
                store.put_leaves(leaves)
                if blobs:
                    store.put_blobs(list(blobs.items()))
                if terms:
                    store.put_terms(terms)
                store.set_size(edge.size)
            index.covered = edge.size
            store.commit()
        except BaseException:
            store.rollback()
            raise
    return state, results


class Sequencer:
    """A background thread that drains submissions into batched, durable appends.

    Submitters append to the open batch and wait on its event; the thread swaps in a fresh
    batch, appends the taken one (in transactions of at most ``max_batch``), then wakes every
    waiter at once.
    """

    def __init__(self, store: Store, *, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._open = _Batch()
        self._state: WriterState | None = None
        self._closed = False
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

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._open.jobs and not self._closed:
                    self._cv.wait()
                if not self._open.jobs:
                    return
                batch, self._open = self._open, _Batch()
            for start in range(0, len(batch.jobs), self.max_batch):
                self._append(batch.jobs[start : start + self.max_batch])
            batch.done.set()

    def _append(self, jobs: list[_Job]) -> None:
        try:
            self._state, results = append_batch(self.store, self._state, [j.item for j in jobs])
        except BaseException as exc:
            self._state = None
            for job in jobs:
                job.error = exc
                if job.future is not None:
                    job.future.set_exception(exc)
            return
        for job, result in zip(jobs, results, strict=True):
            job.result = result
            if job.future is not None:
                job.future.set_result(result)

    def close(self) -> None:
        """Append everything already submitted, then stop."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()
