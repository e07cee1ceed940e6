"""Many writers on one Milvus: a writer lease, so that one write at a time reads, raises
and commits the ``state`` row.

Milvus has no transactions and no compare-and-set: an upsert is last-write-wins. What it
does have, with Strong consistency, is a read that sees every write acknowledged before
it. That is enough for mutual exclusion by "write, then read; back off if you are not
alone": a writer inserts a ticket (a row of ``khabar_writers``, its key a fresh uuid, so
no two collide), then reads every ticket. Alone (but for expired ones), it holds the
lease; otherwise it deletes its ticket and tries again after a random pause. Of two
writers, the one whose read comes second sees the other's ticket (its insert was
acknowledged before that read began), so two never both hold it.

Under the lease the one-writer protocol of :mod:`khabar.store._milvus` holds as it was:
ids come from the committed state (no two writers can take the same), a put's passages
and article go above the committed ids, one upsert of the state commits them, and the
dedupe by URL and text hash sees every earlier commit (two writers putting one article at
once: the second finds the first's, ``unchanged`` or ``duplicate``). The work before a
put (parsing, chunking, embedding: nearly all of ingest's time) runs in parallel; only
the few Milvus calls of the put itself take turns.

A writer that dies holding the lease leaves its ticket, which expires after ``TTL``;
the next holder deletes it and the dead put's rows above the commit (recovery runs at
every acquisition). A holder that stalls (a pause longer than half the ``TTL``) must not
write on after others took over: every write under the lease first checks how long it
has held it (renewing the ticket on the way) and refuses, with a StoreError, once half
the ``TTL`` is gone. That assumes the machines' clocks agree within half the ``TTL``
and that one Milvus call does not outlast it: without a compare-and-set in the engine,
a lease cannot promise more.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from khabar._errors import StoreError

TTL = 30.0  # seconds a ticket lives unless renewed
RENEW = TTL / 6  # a holder renews its ticket after this long
GIVE_UP = 4 * TTL  # a writer waits at most this long for the lease
DUMMY_DIM = 2  # Milvus wants a vector in every collection: tickets, meta and logs carry one
WRITES = ("insert", "upsert", "delete")


def _now_ms() -> int:
    return int(time.time() * 1000)


class WriterLease:
    """The lease on one archive's writes, for one client (reentrant). ``lock``: the
    client's, taken for each call to it (one call at a time on one client)."""

    def __init__(self, client: Any, collection: str, lock: threading.RLock) -> None:
        self._client = client
        self._name = collection
        self._lock = lock
        self._ticket: str | None = None
        self._since = 0.0  # monotonic time of the ticket's last (re)write
        self._depth = 0
        self._owner: int | None = None  # the thread that holds it
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self.waits = 0  # times this client backed off (for the bench)

    def schema(self) -> Any:
        """The tickets' collection: a uuid key, the writer, when the ticket expires."""
        from pymilvus import DataType

        s = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("ticket", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("writer", DataType.VARCHAR, max_length=256)
        s.add_field("expires_ms", DataType.INT64)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=DUMMY_DIM)
        return s

    @property
    def held(self) -> bool:
        return self._depth > 0

    @property
    def held_here(self) -> bool:
        """Held, by this thread (another thread of this client may be reading)."""
        return self._depth > 0 and self._owner == threading.get_ident()

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Hold the lease for the block (one thread of this process at a time: the
        caller serialises them); yields whether this call acquired it (False: an outer
        block already held it)."""
        first = self._depth == 0
        if first:
            self._acquire()
            self._owner = threading.get_ident()
        self._depth += 1
        try:
            yield first
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._release()

    def keep(self) -> None:
        """Before a write: refuse once the lease may have passed to another writer;
        renew the ticket when it is getting old."""
        if self._ticket is None:
            raise StoreError("a write to the Milvus store outside the writer lease "
                             "(a bug: every write goes through MilvusStore._writing)")
        held = time.monotonic() - self._since
        if held > TTL / 2:
            raise StoreError(f"this writer stalled {held:.0f} s holding the Milvus "
                             "writer lease: another may hold it now; nothing more is "
                             "written (the next writer drops what was not committed)")
        if held > RENEW:
            self._write_ticket(self._ticket)

    def _write_ticket(self, ticket: str) -> None:
        since = time.monotonic()
        with self._lock:
            self._client.upsert(self._name, [{"ticket": ticket, "writer": self.writer,
                                              "expires_ms": _now_ms() + int(TTL * 1000),
                                              "v": [0.0] * DUMMY_DIM}])
        self._since = since

    def _acquire(self) -> None:
        start = time.monotonic()
        pause = 0.005
        while True:
            ticket = uuid.uuid4().hex
            self._write_ticket(ticket)
            with self._lock:
                rows = self._client.query(self._name, filter='ticket != ""',
                                          output_fields=["ticket", "expires_ms"],
                                          consistency_level="Strong")
            now = _now_ms()
            dead = [str(r["ticket"]) for r in rows
                    if int(r["expires_ms"]) < now and r["ticket"] != ticket]
            if dead:  # a writer died holding it: its rows go at recovery
                with self._lock:
                    self._client.delete(self._name, ids=dead)
            if not any(int(r["expires_ms"]) >= now for r in rows if r["ticket"] != ticket):
                self._ticket = ticket
                return
            with self._lock:
                self._client.delete(self._name, ids=[ticket])
            self.waits += 1
            if time.monotonic() - start > GIVE_UP:
                raise StoreError(f"no turn to write to the Milvus store in {GIVE_UP:.0f} s "
                                 "(other writers hold its lease)")
            time.sleep(random.uniform(pause / 2, pause))  # readers of this client go on
            pause = min(pause * 2, 0.2)

    def _release(self) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            with self._lock, contextlib.suppress(Exception):  # else it expires after TTL
                self._client.delete(self._name, ids=[ticket])


class LeasedClient:
    """A MilvusClient whose writes to the archive check the lease first (the tickets'
    own collection is written by the lease, through the bare client). The holder's
    reads check it too: a turn of long reads (a delete of a whole outlet) renews its
    ticket on the way instead of losing it at its next write."""

    def __init__(self, client: Any, lease: WriterLease) -> None:
        self._bare = client
        self._lease = lease

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._bare, name)
        if name not in WRITES and not self._lease.held_here:
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._lease.keep()
            return attr(*args, **kwargs)

        return guarded
