"""``python -m opr_shared.mongoserver``: SecantusDB, the local stack's MongoDB, with
its idle-transaction reaper kept from stalling the other transactions.

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

Production runs MongoDB itself; this module only starts the local server.
Arguments are SecantusDB's own (``python -m secantus --help``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from secantus.transactions import Transaction, TransactionRegistry, TxnState

log = logging.getLogger(__name__)

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


def main(argv: Sequence[str] | None = None) -> int:
    patch_transaction_registry()
    from secantus.cli import main as secantus_main

    return int(secantus_main(None if argv is None else list(argv)) or 0)


if __name__ == "__main__":
    sys.exit(main())
