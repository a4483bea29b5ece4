"""The sequencer: queue submissions, append them in one transaction per batch.

Throughput must not depend on one fsync per entry, and an entry must not be acknowledged before
it is durable. Both hold here: callers block on a future that is completed only after the
batch's COMMIT returns, and a batch takes whatever queued while the previous one was committing
(up to ``max_batch``), so under load each fsync covers many entries and under no load an entry
waits for one commit, not for a timer.

Identical leaves get the same index: the batch looks its leaf hashes up in the store (unique
index on the leaf hash) and deduplicates within itself.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from glassbox.digest.merkle import leaf_hash
from glassbox.errors import GlassboxError
from glassbox.tlog.store import LeafRow, Store
from glassbox.tlog.tree import RightEdge, StoredTree


@dataclass(frozen=True)
class Pending:
    """One submission: the compact leaf, its full body (content-addressed) and search terms."""

    leaf: bytes
    body: bytes | None = None
    body_digest: bytes | None = None
    terms: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Appended:
    index: int
    leaf_hash: bytes
    duplicate: bool


@dataclass
class _Job:
    item: Pending
    future: Future[Appended] = field(default_factory=Future)


class SequencerClosed(GlassboxError):
    """The sequencer was stopped before the entry could be appended."""


def append_batch(
    store: Store, edge: RightEdge | None, items: list[Pending]
) -> tuple[RightEdge, list[Appended]]:
    """Append ``items`` in one transaction; return the new right edge and each item's index.

    On any failure the transaction is rolled back and the caller must reload the right edge
    (pass ``None``), since it may have been advanced in memory.
    """
    with store.write_lock:
        size = store.begin_append()
        try:
            if edge is None or edge.size != size:
                edge = RightEdge.load(StoredTree(store), size)
            hashes = [leaf_hash(item.leaf) for item in items]
            known = store.find_leaves(list(set(hashes)))
            results: list[Appended] = []
            leaves: list[LeafRow] = []
            blobs: dict[bytes, bytes] = {}
            terms: list[tuple[str, str, int]] = []
            for item, h in zip(items, hashes, strict=True):
                if h in known:
                    results.append(Appended(known[h], h, True))
                    continue
                index = edge.size
                known[h] = index
                results.append(Appended(index, h, False))
                leaves.append(LeafRow(index, h, item.leaf, item.body_digest, edge.append(h)))
                if item.body is not None and item.body_digest is not None:
                    blobs[item.body_digest] = item.body
                if item.terms:
                    terms.extend((kind, value, index) for kind, value in item.terms)
            if leaves:
                store.put_leaves(leaves)
                if blobs:
                    store.put_blobs(list(blobs.items()))
                if terms:
                    store.put_terms(terms)
                store.set_size(edge.size)
            store.commit()
        except BaseException:
            store.rollback()
            raise
    return edge, results


class Sequencer:
    """A background thread that drains a queue into batched, durable appends."""

    def __init__(self, store: Store, *, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._edge: RightEdge | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tlog-sequencer", daemon=True)
        self._thread.start()

    def submit(self, item: Pending) -> Future[Appended]:
        if self._closed:
            raise SequencerClosed("the log is closed")
        job = _Job(item)
        self._queue.put(job)
        return job.future

    def add(self, item: Pending, timeout: float | None = None) -> Appended:
        """Append and wait until the entry is durable."""
        return self.submit(item).result(timeout)

    def add_many(self, items: list[Pending]) -> list[Appended]:
        futures = [self.submit(i) for i in items]
        return [f.result() for f in futures]

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            try:
                self._edge, results = append_batch(self.store, self._edge, [j.item for j in jobs])
            except BaseException as exc:
                self._edge = None
                for job in jobs:
                    job.future.set_exception(exc)
            else:
                for job, result in zip(jobs, results, strict=True):
                    job.future.set_result(result)
            if stop:
                return

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        while True:  # anything submitted after the sentinel
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.set_exception(SequencerClosed("the log was closed"))
