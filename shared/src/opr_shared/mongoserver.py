"""``python -m opr_shared.mongoserver``: SecantusDB, the local stack's MongoDB, with
the parts that stalled it under an intake changed: its idle-transaction reaper,
its reads of index catalogs and collection options, its TTL sweeper (snapshot
and search), the cursors of transactions, sorted finds with a limit, its
session pruning and profiler settings, its updates' index maintenance, and
writes naming their document by ``_id`` beside ``$and``, each described below.

SecantusDB (0.7) resolves every statement of a multi-document transaction, and
every commit, under one registry lock, and first reaps transactions idle past
their lifetime. To do so it took each open transaction's own lock in turn,
waiting for it, while still holding the registry lock; a transaction's own lock
is held for as long as one of its statements or its commit runs. So whenever any
transaction was busy, no other could begin its next statement: the server ran
one transaction's work at a time. Measured with 200 students registering at
once, the same code but for this: 1.4 journeys per second and the machine's two
cores partly idle as shipped; 3.3 per second, both cores busy, with the reaper
below.

The reaper here passes over a transaction whose lock is taken (something is
running in it: it is not idle) and sweeps at most once a second. What it reaps
is unchanged: transactions in progress and unused for longer than their
lifetime (60 s by default), rolled back and marked aborted.

Every statement also read the collection's index catalog from storage again
and again: planning a query, then once more for each index-maintenance step of
each document written (its indexes, their partial filters, their options), each
time a B-tree walk and a BSON decode per index, about a tenth of the server's
CPU under load. Here one command reads a collection's catalog once: the first
read is kept until the command answers, and dropped as soon as the command
changes the catalog itself (an index created, dropped or altered, a collection
dropped or renamed, an index first marked multikey). Other commands see a
catalog change when they begin, as before.

Likewise a collection's options (how it was created, its UUID) were read from
storage two to five times a command: whether it is capped or a time series, its
UUID, and once more per document inserted to see that the collection exists.
Here one command reads them once, kept beside the catalog; a command that writes
options (creating, altering, renaming or dropping a collection) reads them from
storage for the rest of it, since a write conflict may roll its write back and
run it again.

The TTL sweeper (a background thread, once a minute) kept the read snapshot of
its last sweep while it waited for the next one. WiredTiger keeps every version
written after the oldest snapshot still held, so for up to a minute at a time no
old version could be discarded: with 200 students registering at once the range
of pinned transaction ids grew by about 115 a second, to over 7,000, and fell
back only when the next sweep began. Here the sweeper lets go of its snapshot as
soon as a sweep is done (the range then stayed under 600 in the same run).

Each sweep also read and decoded every document of every collection with a TTL
index (every service's outbox, audit and login records), under the storage lock
that every other command waits for, to find the few that had expired: 58 µs a
document, so over a second a minute per 20,000 documents, growing with all the
data ever written. Here a sweep deletes what each TTL index expires the way a
``deleteMany`` command does, with candidates looked up in that index: the same
documents, the same oplog entries (29 ms for the same sweep).

A transaction's cursors also stayed on the last row each of its statements read
until its next statement, however long the client took to send it. A cursor on
a row holds that row's page: WiredTiger cannot evict the page, and a page marked
for eviction is then tried again by every thread that reads it, each sleeping
between tries. With 200 students at once, tens of transactions were always
waiting for their next statement, each standing on a page of the ``_id`` table
every collection shares; once such a page was due for eviction, point lookups by
``_id`` took 8 ms instead of 0.3 ms for two minutes (WiredTiger counted 78 s of
sleeping readers a minute and 2,200 evictions a second blocked by a cursor) and
the storage lock was held 93 % of the time. Here a transaction's cursors are
reset when each of its statements ends: they keep the transaction's snapshot and
its writes, and let go of their rows.

A sorted find with a limit decoded every document its index lookup found,
then sorted them and kept the first few. Claiming the next e-mails to send
(``{status: "pending", next_attempt_at: {$lte: now}}``, sorted by
``next_attempt_at``, a few at a time) thus decoded every pending notification,
several kilobytes each, on every claim: with 8,000 invitations queued at once,
nine tenths of the server's time went to those claims. Here, when the index
lookup is a compound prefix-and-range walk whose order is the sort's, the walk's
documents are decoded in its order until the limit is reached: the same
documents, in the same order, as sorting them all would give.

Every command that names a session (a driver names one in every command) also
refreshed that session in the server's session registry and then went through
every session the registry held (each the services used in the last half
hour), to drop those idle for 30 minutes: about 4 % of the server's time under
an intake. Here idle sessions are dropped at most once a second (an explicit
prune still drops them at once). And every command read its database's
profiler settings from storage, under the storage lock every other command
waits for, to see whether to record itself (2-3 %). Here each database's
settings are read once and remembered until the ``profile`` command changes
them.

Every write also went into SecantusDB's oplog: a full copy of each document
written, encoded and stored, and the oldest entries found and deleted every
thousand writes, about a sixth of the server's time under an intake. Only
change streams read the oplog, and on the local stack nothing opens one (each
service runs one process, whose commits wake its own outbox relay:
``OUTBOX_WATCH=false``). With ``--no-oplog`` the server keeps none and still
answers as a replica-set primary, so transactions work as before; a change
stream opens but sees nothing (a relay watching one falls back to its sweeps).

An update also removed every index entry of the document it changed and wrote
them all again, whether the update touched the indexed fields or not: marking an
e-mail as being sent rewrote its six indexes' entries and released and claimed
its unique key again, about a fifth of the server's time under an intake. Here
an update works out each index's keys for the document before and after, and
removes and writes the entries of the indexes whose keys differ only (a geo
index is always rewritten); the tables end as they would have.

A findAndModify, having picked its document, writes it with a filter of that
document's ``_id`` and the command's own query under ``$and``, and a filter with
a top-level operator was planned as a scan of the whole collection: 12 ms for a
counter's increment among a thousand documents, 80 ms among ten thousand.
Here a filter with an ``_id`` equality beside ``$and``, ``$or`` or ``$nor``
takes that document as its only candidate, which the whole filter is then
matched against as before (under a millisecond at any size).

Production runs MongoDB itself; this module only starts the local server.
Arguments are SecantusDB's own (``python -m secantus --help``), and
``--no-oplog``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from secantus import server as secantus_server
from secantus import storage as secantus_storage
from secantus.query import matches
from secantus.sessions import SessionRegistry
from secantus.storage import Storage
from secantus.transactions import Transaction, TransactionRegistry, TxnState

log = logging.getLogger(__name__)

Filter = dict[str, Any]

#: The opportunistic sweeps (one per statement, commit and abort) run at most this often.
SWEEP_INTERVAL_SECONDS = 1.0


def _reap_idle(self: Any) -> int:
    """The registry's sweep, called with its lock held: roll back and abort the
    transactions idle past their lifetime, without waiting for a busy one."""
    now = self._time()
    if now < getattr(self, "_opr_next_sweep", 0.0):
        return 0
    self._opr_next_sweep = now + SWEEP_INTERVAL_SECONDS
    cutoff = now - self._lifetime
    reaped = 0
    for txn in list(self._txns.values()):
        if not txn.mutex.acquire(blocking=False):
            continue  # a statement or commit is running in it right now
        try:
            if txn.state is TxnState.IN_PROGRESS and txn.last_use < cutoff:
                self._rollback_quietly(txn)
                txn.state = TxnState.ABORTED
                reaped += 1
        finally:
            txn.mutex.release()
    return reaped


def _prune_expired(self: Any) -> int:
    """An explicit sweep is never skipped for having come too soon after another."""
    with self._lock:
        self._opr_next_sweep = 0.0
        return int(self._prune_locked())


def patch_transaction_registry() -> bool:
    """Install the non-blocking reaper on SecantusDB's transaction registry.

    False (and a warning) when the registry does not have the shape this was
    written for, e.g. after an upgrade: the server then runs as shipped.
    """
    needed = ("_prune_locked", "prune_expired", "_rollback_quietly", "_txns", "_lock", "_lifetime")
    probe = TransactionRegistry(time_func=time.time)
    shaped = (
        all(hasattr(probe, name) for name in needed)
        and {"mutex", "state", "last_use"} <= set(getattr(Transaction, "__slots__", ()))
        and hasattr(TxnState, "IN_PROGRESS")
        and hasattr(TxnState, "ABORTED")
    )
    if not shaped:
        log.warning("SecantusDB's transaction registry changed: the reaper is as shipped")
        return False
    TransactionRegistry._prune_locked = _reap_idle
    TransactionRegistry.prune_expired = _prune_expired
    return True


# --- the index catalog, read once per command ------------------------------------

#: Storage methods that change the index catalog (or may): a command that calls
#: one reads the catalog afresh afterwards.
CATALOG_WRITERS = (
    "create_index",
    "drop_index",
    "drop_all_indexes",
    "set_index_expiry",
    "set_index_options",
    "drop_collection",
    "drop_database",
    "rename_collection",
    "create_collection",
)

#: In a command's cache: options were written in this command, so they are read from
#: storage for the rest of it (a write conflict may roll the write back and retry).
_OPTIONS_WRITTEN = "options written"

# .catalog during a command: {(storage id, db, coll): [index rows],
# ("options", storage id, db, coll): options}
_command = threading.local()


def _forget(catalog: dict[Any, Any]) -> None:
    """Drop what a command has read, but not that it wrote collection options."""
    written = _OPTIONS_WRITTEN in catalog
    catalog.clear()
    if written:
        catalog[_OPTIONS_WRITTEN] = True


def _catalog_once(original: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(original)
    def _iter_indexes(self: Any, db: str, coll: str) -> Iterator[Any]:
        catalog: dict[tuple[int, str, str], list[Any]] | None = getattr(_command, "catalog", None)
        if catalog is None:  # not within a command (the TTL sweeper, start-up)
            return original(self, db, coll)
        key = (id(self), db, coll)
        rows = catalog.get(key)
        if rows is None:
            rows = catalog[key] = list(original(self, db, coll))
        return iter(rows)

    _iter_indexes.opr_catalog_once = True  # type: ignore[attr-defined]
    return _iter_indexes


def _forgets_catalog(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        catalog = getattr(_command, "catalog", None)
        if catalog is not None:
            _forget(catalog)
        try:
            return original(self, *args, **kwargs)
        finally:
            if catalog is not None:
                _forget(catalog)
                # A catalog write may write collection options too (see below).
                catalog[_OPTIONS_WRITTEN] = True

    return write


def _multikey_marks_forget_catalog(original: Callable[..., set[str]]) -> Callable[..., set[str]]:
    """Called for every document written: the catalog is read afresh only after
    it flagged an index multikey that the catalog in hand had not flagged."""

    @functools.wraps(original)
    def mark(self: Any, db: str, coll: str, doc: Any, indexes: Any, already: set[str]) -> set[str]:
        before = set(already)
        result = original(self, db, coll, doc, indexes, already)
        catalog = getattr(_command, "catalog", None)
        if catalog and result - before:
            rows = catalog.get((id(self), db, coll))
            flagged = {name for name, _key, opts in rows or () if opts.get("multikey")}
            if not (result - before) <= flagged:
                _forget(catalog)
        return result

    return mark


def _one_catalog_per_command(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_command, "catalog", None)
        _command.catalog = {} if outer is None else outer
        try:
            return original(*args, **kwargs)
        finally:
            _command.catalog = outer

    return dispatch


# --- a collection's options, read once per command --------------------------------

#: Storage methods that write a collection's options (besides the catalog writers).
OPTIONS_WRITERS = ("_write_coll_options",)


def _options_key(storage: Any, db: str, coll: str) -> tuple[str, int, str, str]:
    return ("options", id(storage), db, coll)


def _options_once(
    original: Callable[..., dict[str, Any] | None],
) -> Callable[..., dict[str, Any] | None]:
    @functools.wraps(original)
    def _coll_options(self: Any, db: str, coll: str) -> dict[str, Any] | None:
        cache: dict[Any, Any] | None = getattr(_command, "catalog", None)
        if cache is None or _OPTIONS_WRITTEN in cache:
            return original(self, db, coll)
        key = _options_key(self, db, coll)
        options = cache.get(key)
        if options is None:
            options = original(self, db, coll)
            if options is None:
                return None  # no such collection: not kept, a write may create it
            cache[key] = options
        return dict(options)  # a caller may change the copy it gets

    _coll_options.opr_options_once = True  # type: ignore[attr-defined]
    return _coll_options


def _ensures_known_collections(original: Callable[..., None]) -> Callable[..., None]:
    """Called for every document inserted: a collection whose options this command
    has read exists, so nothing is written; otherwise it may be created here."""

    @functools.wraps(original)
    def _ensure_collection(self: Any, db: str, coll: str) -> None:
        cache = getattr(_command, "catalog", None)
        if cache is None or _OPTIONS_WRITTEN in cache:
            original(self, db, coll)
            return
        if self._coll_options(db, coll) is not None:
            return
        cache[_OPTIONS_WRITTEN] = True
        original(self, db, coll)

    return _ensure_collection


def patch_index_catalog() -> bool:
    """Read each collection's index catalog once per command (see the module's
    docstring). False (and a warning) if SecantusDB's storage or server no longer
    has the shape this was written for: the server then runs as shipped."""
    shaped = (
        callable(getattr(Storage, "_iter_indexes", None))
        and callable(getattr(Storage, "_maybe_mark_multikey", None))
        and all(callable(getattr(Storage, name, None)) for name in CATALOG_WRITERS)
        and callable(getattr(secantus_server, "dispatch", None))
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: the index catalog is read as shipped")
        return False
    if getattr(Storage._iter_indexes, "opr_catalog_once", False):
        return True  # already installed
    Storage._iter_indexes = _catalog_once(Storage._iter_indexes)
    for name in CATALOG_WRITERS:
        setattr(Storage, name, _forgets_catalog(getattr(Storage, name)))
    Storage._maybe_mark_multikey = _multikey_marks_forget_catalog(Storage._maybe_mark_multikey)
    secantus_server.dispatch = _one_catalog_per_command(secantus_server.dispatch)
    return True


def patch_collection_options() -> bool:
    """Read each collection's options once per command (see the module's
    docstring); needs :func:`patch_index_catalog`, whose per-command cache it
    shares. False (and a warning) if SecantusDB's storage no longer has the shape
    this was written for: options are then read as shipped."""
    shaped = getattr(Storage._iter_indexes, "opr_catalog_once", False) and all(
        callable(getattr(Storage, name, None))
        for name in ("_coll_options", "_ensure_collection", *OPTIONS_WRITERS)
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: collection options are read as shipped")
        return False
    if getattr(Storage._coll_options, "opr_options_once", False):
        return True  # already installed
    Storage._coll_options = _options_once(Storage._coll_options)
    Storage._ensure_collection = _ensures_known_collections(Storage._ensure_collection)
    # The catalog writers already mark options written (``_forgets_catalog``).
    for name in OPTIONS_WRITERS:
        setattr(Storage, name, _forgets_catalog(getattr(Storage, name)))
    return True


# --- the TTL sweeper's read snapshot -------------------------------------------------


def _sweep_lets_go(original: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(original)
    def prune_ttl_all_collections(self: Any, *args: Any, **kwargs: Any) -> int:
        try:
            return original(self, *args, **kwargs)
        finally:
            # Within a user transaction this does nothing: its snapshot is its own.
            self.release_thread_snapshot()

    prune_ttl_all_collections.opr_lets_go = True  # type: ignore[attr-defined]
    return prune_ttl_all_collections


def patch_ttl_sweeper() -> bool:
    """Release the read snapshot of a TTL sweep when it ends (see the module's
    docstring). False (and a warning) if SecantusDB's storage no longer has the
    shape this was written for: the sweeper then runs as shipped."""
    shaped = callable(getattr(Storage, "prune_ttl_all_collections", None)) and callable(
        getattr(Storage, "release_thread_snapshot", None)
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: the TTL sweeper is as shipped")
        return False
    if getattr(Storage.prune_ttl_all_collections, "opr_lets_go", False):
        return True  # already installed
    Storage.prune_ttl_all_collections = _sweep_lets_go(Storage.prune_ttl_all_collections)
    return True


# --- the TTL sweeper finds expired documents through their index ----------------------


def ttl_filter(keys: Mapping[str, Any], options: Mapping[str, Any], now: datetime) -> Filter | None:
    """What an index expires at ``now``, as a query; None if it is not a TTL index.

    As MongoDB: only a single-field index on a field other than ``_id``, with a
    number of seconds >= 0 in ``expireAfterSeconds``, expires documents: those
    whose field holds a date (or an array holding one) older than ``now`` minus
    those seconds and, for a partial index, that its filter covers.
    """
    seconds = options.get("expireAfterSeconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if math.isnan(seconds) or seconds < 0 or len(keys) != 1:
        return None
    ((field, direction),) = keys.items()
    if field == "_id" or isinstance(direction, bool) or not isinstance(direction, int | float):
        return None
    try:
        expired: Filter = {field: {"$lt": now - timedelta(seconds=float(seconds))}}
    except OverflowError:
        return None  # a lifetime longer than the calendar: nothing expires
    partial = options.get("partialFilterExpression")
    if isinstance(partial, Mapping) and partial:
        if field in partial or any(key.startswith("$") for key in partial):
            return {"$and": [expired, dict(partial)]}
        expired.update(partial)  # one flat filter: the storage can look it up by index
    return expired


def _prune_ttl_by_index(self: Any, db: str, coll: str, *, now: datetime | None = None) -> int:
    when = now if now is not None else datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # The catalog is read whole first: it is read through a cursor the deletes reuse.
    expiring = [
        ttl_filter(keys, options, when) for _n, keys, options in self._iter_indexes(db, coll)
    ]
    pruned = 0
    for expired in expiring:
        if expired is not None:
            # The path of a deleteMany command: candidates from the index, each
            # checked against the filter, deleted with its index entries and
            # its oplog entry, in bounded chunks.
            pruned += int(self.delete_matching(db, coll, expired))
    return pruned


def patch_ttl_by_index() -> bool:
    """Have the TTL sweeper find expired documents through the TTL index (see the
    module's docstring). False (and a warning) if SecantusDB's storage no longer
    has the shape this was written for: the sweeper then reads every document."""
    shaped = all(
        callable(getattr(Storage, name, None))
        for name in ("prune_ttl", "_iter_indexes", "delete_matching")
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: the TTL sweeper reads every document")
        return False
    if getattr(Storage.prune_ttl, "opr_by_index", False):
        return True  # already installed
    _prune_ttl_by_index.opr_by_index = True  # type: ignore[attr-defined]
    Storage.prune_ttl = _prune_ttl_by_index
    return True


# --- transactions let go of their cursors between statements -----------------------

_statement = threading.local()  # .depth: transaction statements entered on this thread


def _releases_cursors(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    @contextlib.contextmanager
    def use_user_transaction(self: Any, handle: Any) -> Iterator[Any]:
        depth = getattr(_statement, "depth", 0)
        _statement.depth = depth + 1
        try:
            with original(self, handle) as entered:
                yield entered
        finally:
            _statement.depth = depth
            if depth == 0:  # the statement is done (not a storage call nested in it)
                for cursor in list(handle.cursors.values()):
                    with contextlib.suppress(Exception):
                        cursor.reset()  # its position only: the snapshot is the transaction's

    use_user_transaction.opr_releases_cursors = True  # type: ignore[attr-defined]
    return use_user_transaction


def patch_transaction_cursors() -> bool:
    """Reset a transaction's cursors when each of its statements ends (see the
    module's docstring). False (and a warning) if SecantusDB's storage no longer
    has the shape this was written for: transactions then run as shipped."""
    shaped = callable(getattr(Storage, "use_user_transaction", None)) and "cursors" in getattr(
        secantus_storage.UserTransactionHandle, "__slots__", ()
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: transactions keep their cursors as shipped")
        return False
    if getattr(Storage.use_user_transaction, "opr_releases_cursors", False):
        return True  # already installed
    Storage.use_user_transaction = _releases_cursors(Storage.use_user_transaction)
    return True


# --- sorted finds with a limit stop at the limit -------------------------------------

_limited = threading.local()  # .request: what the find running asks (see _limited_request)
#: Documents decoded at a time while walking an index up to a find's limit.
LIMITED_CHUNK = 32


def _finds_stop_at_limit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def find_matching(
        self: Any, db: str, coll: str, filter: Filter | None = None, **options: Any
    ) -> Any:
        request = _limited_request(filter, options)
        if request is None:
            return original(self, db, coll, filter, **options)
        outer = getattr(_limited, "request", None)
        _limited.request = request
        try:
            return original(self, db, coll, filter, **options)
        finally:
            _limited.request = outer

    return find_matching


def _limited_request(filter: Filter | None, options: Mapping[str, Any]) -> Any:
    """``(filter, (sort field, direction), limit, let)`` if this find may stop at its
    limit: a filter, one sort key, a limit, nothing that reorders or skips. (The
    server always passes ``let``: it binds ``$$NOW``.)"""
    limit, sort = options.get("limit") or 0, options.get("sort")
    if not filter or not isinstance(limit, int) or limit <= 0 or not sort or len(sort) != 1:
        return None
    if any(options.get(name) for name in ("skip", "hint", "collation")):
        return None
    if options.get("min_bound") is not None or options.get("max_bound") is not None:
        return None
    ((field, direction),) = dict(sort).items()
    if isinstance(direction, bool) or direction not in (1, -1):
        return None
    return filter, (field, direction), limit, options.get("let")


def _lookup_stops_at_limit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def lookup(self: Any, db: str, coll: str, filter: Filter, **options: Any) -> Any:
        request = getattr(_limited, "request", None)
        if request is None or request[0] is not filter or options.get("collation") is not None:
            return original(self, db, coll, filter, **options)
        recordids = _in_sort_order(self, db, coll, filter, request[1])
        if recordids is None:
            return original(self, db, coll, filter, **options)
        # The find's own pass then matches, sorts (already in order: a stable
        # sort changes nothing), limits and projects these as it would all.
        _filter, _sort, limit, let = request
        found: list[dict[str, Any]] = []
        walk = iter(recordids)
        try:
            for chunk in _chunks(walk, LIMITED_CHUNK):
                for doc in self._docs_by_recordids(db, coll, chunk):
                    if matches(doc, filter, vars=let):
                        found.append(doc)
                        if len(found) == limit:
                            return found
            return found
        finally:
            close = getattr(walk, "close", None)
            if close is not None:
                close()  # the index cursor lets go of its row

    return lookup


def _chunks(items: Iterator[int], size: int) -> Iterator[list[int]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _walks_as_it_goes(original: Callable[..., list[int]]) -> Callable[..., Any]:
    """The range walk of an index, as SecantusDB's, but handing record ids over one
    at a time while a limited find asks for them, so that it stops at the limit
    instead of reading the whole range first."""

    @functools.wraps(original)
    def range_scan(self: Any, *bounds: Any, prefix: bytes | None = None) -> Any:
        if not getattr(_limited, "walking", False):
            return original(self, *bounds, prefix=prefix)
        _limited.walking = False  # one walk per find
        return _range_walk(self, *bounds, prefix=prefix)

    return range_scan


def _range_walk(
    self: Any,
    db: str,
    coll: str,
    name: str,
    lower: bytes | None,
    lower_inclusive: bool,
    upper: bytes | None,
    upper_inclusive: bool,
    *,
    prefix: bytes | None,
) -> Iterator[int]:
    """Record ids of the index entries of ``name`` between the bounds (encoded
    keys), in the index's order, within ``prefix`` if given."""
    table = secantus_storage._IDX_ENTRIES_TABLE
    cursor = self._cursor(table)
    escape = secantus_storage._escape_kb
    within = escape(prefix) if prefix is not None else None
    low = escape(lower) if lower is not None else None
    high = escape(upper) if upper is not None else None
    if low is not None:
        start = low + secantus_storage._ENTRY_SEP
    else:
        start = within if within is not None else b""
    try:
        cursor.set_key(db, coll, name, start)
        found = cursor.search_near()
        if found == secantus_storage.wt.WT_NOTFOUND or (found < 0 and cursor.next() != 0):
            return
        while True:
            key = cursor.get_key()
            if (key[0], key[1], key[2]) != (db, coll, name):
                return
            entry, recordid = secantus_storage._unpack_entry(bytes(key[3]))
            if within is not None and not entry.startswith(within):
                return
            if high is not None and (entry > high if upper_inclusive else entry >= high):
                return
            skip = low is not None and not lower_inclusive and entry == low
            if recordid is not None and not skip:
                yield recordid
            if cursor.next() != 0:
                return
    finally:
        cursor.reset()


def _in_sort_order(
    self: Any, db: str, coll: str, filter: Filter, sort: tuple[str, int]
) -> Iterable[int] | None:
    """The record ids of the index walk that serves ``filter``, if that walk is a
    compound index's equality prefix and a range on the sort field, ordered as the
    sort is (ties in record id order, as a stable sort of the walk leaves them)."""
    parts = self._partition_compound_range_filter(filter)
    if parts is None:
        return None
    _eq_fields, range_field, range_ops = parts
    field, direction = sort
    if range_field != field or any(op in ("$in", "$eq") for op in range_ops):
        return None
    # The index the lookup walks: the equality fields first (their values fixed
    # by the filter), then the range field, walked in its direction.
    picked = self._pick_compound_range_index(db, coll, filter)
    if picked is None:
        return None
    name, key_spec = picked
    if key_spec.get(field) != direction or self.index_is_multikey(db, coll, name):
        return None
    _limited.walking = True  # the range walk hands its record ids over as it goes
    try:
        recordids: Iterable[int] | None = self._try_compound_range_id_keys(db, coll, filter)
    finally:
        _limited.walking = False
    return recordids


def patch_limited_finds() -> bool:
    """Have a sorted find with a limit decode only what it keeps, where its index
    walk is already in the sort's order (see the module's docstring). False (and a
    warning) if SecantusDB's storage no longer has the shape this was written for."""
    names = (
        "find_matching",
        "_try_index_lookup",
        "_partition_compound_range_filter",
        "_pick_compound_range_index",
        "_try_compound_range_id_keys",
        "_docs_by_recordids",
        "_range_scan_index",
        "_cursor",
        "index_is_multikey",
    )
    shaped = all(callable(getattr(Storage, name, None)) for name in names) and all(
        hasattr(secantus_storage, name)
        for name in ("_IDX_ENTRIES_TABLE", "_ENTRY_SEP", "_escape_kb", "_unpack_entry", "wt")
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: sorted finds decode every match")
        return False
    if getattr(Storage.find_matching, "opr_limited", False):
        return True  # already installed
    finder = _finds_stop_at_limit(Storage.find_matching)
    finder.opr_limited = True  # type: ignore[attr-defined]
    Storage.find_matching = finder
    Storage._try_index_lookup = _lookup_stops_at_limit(Storage._try_index_lookup)
    Storage._range_scan_index = _walks_as_it_goes(Storage._range_scan_index)
    return True


# --- the session registry prunes now and then; profile settings are remembered ---------


def _prunes_now_and_then(original: Callable[[Any], int]) -> Callable[[Any], int]:
    @functools.wraps(original)
    def _prune_locked(self: Any) -> int:
        """The session registry's pruning, called with its lock held on every
        command that names a session: at most once a second."""
        now = self._time()
        if now < getattr(self, "_opr_next_prune", -math.inf):
            return 0
        self._opr_next_prune = now + SWEEP_INTERVAL_SECONDS
        return int(original(self))

    _prune_locked.opr_now_and_then = True  # type: ignore[attr-defined]
    return _prune_locked


def _prune_idle_sessions(self: Any) -> int:
    """An explicit prune is never skipped for having come too soon after another."""
    with self._lock:
        self._opr_next_prune = -math.inf
        return int(self._prune_locked())


def patch_session_registry() -> bool:
    """Prune idle sessions at most once a second rather than on every command (see
    the module's docstring). False (and a warning) if SecantusDB's session registry
    no longer has the shape this was written for: it then prunes as shipped."""
    probe = SessionRegistry(time_func=time.time)
    shaped = all(hasattr(probe, name) for name in ("_prune_locked", "prune_idle", "_lock", "_time"))
    if not shaped:
        log.warning("SecantusDB's session registry changed: sessions are pruned as shipped")
        return False
    if getattr(SessionRegistry._prune_locked, "opr_now_and_then", False):
        return True  # already installed
    SessionRegistry._prune_locked = _prunes_now_and_then(SessionRegistry._prune_locked)
    SessionRegistry.prune_idle = _prune_idle_sessions
    return True


def _remembers_profile(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def get_profile(self: Any, db: str) -> dict[str, Any]:
        known: dict[str, dict[str, Any]] = self.__dict__.setdefault("_opr_profiles", {})
        settings = known.get(db)
        if settings is None:
            with _profiles_lock:
                settings = known.get(db)
                if settings is None:
                    settings = known[db] = dict(original(self, db))
        return dict(settings)

    get_profile.opr_remembered = True  # type: ignore[attr-defined]
    return get_profile


def _forgets_profile(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def set_profile(self: Any, db: str, **settings: Any) -> None:
        with _profiles_lock:
            try:
                original(self, db, **settings)
            finally:
                self.__dict__.get("_opr_profiles", {}).pop(db, None)

    return set_profile


# Taken by a first read of a database's settings and by every change to them, so a
# read racing a change cannot remember what the change replaced.
_profiles_lock = threading.Lock()


def patch_profile_settings() -> bool:
    """Remember each database's profiler settings between commands (see the module's
    docstring). False (and a warning) if SecantusDB's storage no longer has the shape
    this was written for: the settings are then read as shipped."""
    shaped = callable(getattr(Storage, "get_profile", None)) and callable(
        getattr(Storage, "set_profile", None)
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: profiler settings are read as shipped")
        return False
    if getattr(Storage.get_profile, "opr_remembered", False):
        return True  # already installed
    Storage.get_profile = _remembers_profile(Storage.get_profile)
    Storage.set_profile = _forgets_profile(Storage.set_profile)
    return True


# --- an update keeps the index entries it does not change ---------------------------

_rewrite = threading.local()  # .depth: updates entered; .removed: the removal held back


@dataclass(frozen=True)
class _Removal:
    """A document's index entries an update would remove before writing the new ones."""

    db: str
    coll: str
    recordid: int
    doc: Mapping[str, Any]
    indexes: list[Any]
    partials: dict[str, Any] | None


def _entries_of(
    doc: Mapping[str, Any],
    index: Any,
    partials: Mapping[str, Any],
    options: Mapping[str, Any],
) -> frozenset[bytes] | None:
    """The keys ``doc`` puts in ``index`` (none if its partial filter leaves it out);
    None for a geo index, which is always rewritten."""
    name, key_spec, sparse, _unique = index
    if secantus_storage._geo_type_of(key_spec) is not None:
        return None
    partial = partials.get(name)
    if partial is not None and not matches(doc, partial):
        return frozenset()
    collation = secantus_storage._parse_index_collation(options.get(name, {}).get("collation"))
    return frozenset(
        secantus_storage._index_key_variants(doc, key_spec, sparse=sparse, collation=collation)
    )


def _keeps_unchanged_entries(
    update: Callable[..., Any], remove: Callable[..., None], write: Callable[..., None]
) -> tuple[Callable[..., Any], Callable[..., None], Callable[..., None]]:
    """``update_matching``, ``_delete_index_entries`` and ``_write_index_entries``
    such that, within an update, a document's removal is held back until its new
    version's entries are written, and then only the indexes whose entries differ
    are rewritten (removed, then written, as before)."""

    def flush(self: Any) -> None:
        held: _Removal | None = getattr(_rewrite, "removed", None)
        _rewrite.removed = None
        if held is not None:
            remove(
                self,
                held.db,
                held.coll,
                held.doc,
                held.indexes,
                held.partials,
                recordid=held.recordid,
            )

    @functools.wraps(update)
    def update_matching(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_rewrite, "depth", 0)
        _rewrite.depth = depth + 1
        try:
            result = update(self, *args, **kwargs)
            flush(self)  # a removal no write followed: done as it came
            return result
        finally:
            _rewrite.depth = depth
            if depth == 0:
                _rewrite.removed = None

    @functools.wraps(remove)
    def delete_index_entries(
        self: Any,
        db: str,
        coll: str,
        doc: Mapping[str, Any],
        indexes: list[Any],
        partials: dict[str, Any] | None = None,
        *,
        recordid: int,
    ) -> None:
        if not getattr(_rewrite, "depth", 0):
            remove(self, db, coll, doc, indexes, partials, recordid=recordid)
            return
        flush(self)
        _rewrite.removed = _Removal(db, coll, recordid, doc, indexes, partials)

    @functools.wraps(write)
    def write_index_entries(
        self: Any,
        db: str,
        coll: str,
        doc: Mapping[str, Any],
        indexes: list[Any],
        partials: dict[str, Any] | None = None,
        *,
        recordid: int,
    ) -> None:
        held: _Removal | None = getattr(_rewrite, "removed", None)
        if held is None:
            write(self, db, coll, doc, indexes, partials, recordid=recordid)
            return
        if (held.db, held.coll, held.recordid) != (db, coll, recordid) or held.indexes != indexes:
            flush(self)
            write(self, db, coll, doc, indexes, partials, recordid=recordid)
            return
        _rewrite.removed = None
        if partials is None:
            partials = self._partial_filters(db, coll)
        options = self._index_options_map(db, coll)
        changed = []
        for index in indexes:
            before = _entries_of(held.doc, index, partials, options)
            if before is None or before != _entries_of(doc, index, partials, options):
                changed.append(index)
        if changed:
            remove(self, db, coll, held.doc, changed, partials, recordid=recordid)
            write(self, db, coll, doc, changed, partials, recordid=recordid)

    update_matching.opr_keeps_entries = True  # type: ignore[attr-defined]
    return update_matching, delete_index_entries, write_index_entries


def patch_unchanged_index_entries() -> bool:
    """An update rewrites only the index entries it changes (see the module's
    docstring). False (and a warning) if SecantusDB's storage no longer has the
    shape this was written for: updates then rewrite every entry as shipped."""
    helpers = ("_geo_type_of", "_parse_index_collation", "_index_key_variants")
    methods = (
        "update_matching",
        "_delete_index_entries",
        "_write_index_entries",
        "_partial_filters",
        "_index_options_map",
    )
    shaped = all(callable(getattr(secantus_storage, n, None)) for n in helpers) and all(
        callable(getattr(Storage, n, None)) for n in methods
    )
    if shaped:
        for name in ("_delete_index_entries", "_write_index_entries"):
            params = list(inspect.signature(getattr(Storage, name)).parameters)
            shaped = shaped and params == [
                "self",
                "db",
                "coll",
                "doc",
                "indexes",
                "partials",
                "recordid",
            ]
    if not shaped:
        log.warning("SecantusDB's storage changed: updates rewrite every index entry as shipped")
        return False
    if getattr(Storage.update_matching, "opr_keeps_entries", False):
        return True  # already installed
    (
        Storage.update_matching,
        Storage._delete_index_entries,
        Storage._write_index_entries,
    ) = _keeps_unchanged_entries(
        Storage.update_matching, Storage._delete_index_entries, Storage._write_index_entries
    )
    return True


# --- a write naming its document by _id finds it by _id ------------------------------------

# Top-level operators a write's filter may hold beside an ``_id`` equality that
# leave that document the only candidate (every top-level clause must match).
_LOGICAL = frozenset({"$and", "$or", "$nor"})


def _ids_beside_operators(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def try_index_id_keys(
        self: Any, db: str, coll: str, filter: dict[str, Any], **kwargs: Any
    ) -> Any:
        operators = [key for key in filter if isinstance(key, str) and key.startswith("$")]
        if (
            operators
            and "_id" in filter
            and all(key in _LOGICAL for key in operators)
            and not self._is_timeseries(db, coll)
        ):
            id_keys = secantus_storage._id_point_lookup_keys(filter["_id"])
            if id_keys is not None:
                # Candidates only: the caller matches each against the whole filter.
                found = [self._doc_recordid(db, coll, key) for key in id_keys]
                return [recordid for recordid in found if recordid is not None]
        return original(self, db, coll, filter, **kwargs)

    try_index_id_keys.opr_ids_beside_operators = True  # type: ignore[attr-defined]
    return try_index_id_keys


def patch_id_lookups_beside_operators() -> bool:
    """A filter with an ``_id`` equality and ``$and``/``$or``/``$nor`` finds its
    candidates by ``_id`` (see the module's docstring). False (and a warning) if
    SecantusDB's storage no longer has the shape this was written for: such a
    write then scans its collection as shipped."""
    shaped = (
        callable(getattr(secantus_storage, "_id_point_lookup_keys", None))
        and all(
            callable(getattr(Storage, name, None))
            for name in ("_try_index_id_keys", "_doc_recordid", "_is_timeseries")
        )
        and list(inspect.signature(Storage._try_index_id_keys).parameters)[:4]
        == ["self", "db", "coll", "filter"]
    )
    if not shaped:
        log.warning("SecantusDB's storage changed: _id beside $and scans as shipped")
        return False
    if getattr(Storage._try_index_id_keys, "opr_ids_beside_operators", False):
        return True  # already installed
    Storage._try_index_id_keys = _ids_beside_operators(Storage._try_index_id_keys)
    return True


# --- no oplog where nothing reads one ------------------------------------------------------

NO_OPLOG = "--no-oplog"


def patch_no_oplog() -> bool:
    """Storage opened from now on keeps no oplog (see the module's docstring).
    False (and a warning) if SecantusDB's storage no longer takes that choice:
    it then keeps its oplog as shipped."""
    init = Storage.__init__
    if getattr(init, "opr_no_oplog", False):
        return True  # already installed
    if "enable_oplog" not in inspect.signature(init).parameters:
        log.warning("SecantusDB's storage changed: the oplog is kept")
        return False

    @functools.wraps(init)
    def without_oplog(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["enable_oplog"] = False
        init(self, *args, **kwargs)

    without_oplog.opr_no_oplog = True  # type: ignore[attr-defined]
    Storage.__init__ = without_oplog
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if NO_OPLOG in args:
        args = [arg for arg in args if arg != NO_OPLOG]
        patch_no_oplog()
    patch_transaction_registry()
    patch_index_catalog()
    patch_collection_options()
    patch_ttl_sweeper()
    patch_ttl_by_index()
    patch_transaction_cursors()
    patch_limited_finds()
    patch_session_registry()
    patch_profile_settings()
    patch_unchanged_index_entries()
    patch_id_lookups_beside_operators()
    from secantus.cli import main as secantus_main

    return int(secantus_main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
