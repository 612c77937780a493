"""The transaction engine: multi-peer operations as recorded lists of do/undo steps.

A transaction is written to the database with all its steps before the first
one runs; progress is committed after each step. A failing step makes the
engine undo the steps already done, newest first. A gfsd that died half-way
rolls its unfinished transactions back when it starts again (`recover`).
State machine and rules: docs/txn.md.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text

from gfs import tracing
from gfs.errors import GfsError
from gfs_mgmt.metrics import txn as txn_metrics
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Transaction, new_id

log = logging.getLogger(__name__)

#: What a step's `do` reports it made (JSON, kept in the transaction row), or None.
Result = dict[str, Any] | None
#: A step's action: gets the engine's context object and the step's JSON params, and
#: returns what it made.
Action = Callable[[Any, dict[str, Any]], Result]
#: A step's undo: also gets the result its `do` reported, or None when the `do` did
#: not report success (it failed, or gfsd died while it ran): then the undo may
#: remove only what provably belongs to this transaction.
Undo = Callable[[Any, dict[str, Any], Result], None]

#: Test hooks: SIGKILL this process after step N of any transaction was recorded, or
#: (CRASH_UNRECORDED) right after step N's `do` returned, before its result was
#: recorded (a real crash at a chosen point; see tests/mgmt/test_txn.py).
CRASH_AFTER_ENV = "GFS_TXN_CRASH_AFTER"
CRASH_UNRECORDED_ENV = "GFS_TXN_CRASH_UNRECORDED"

#: States a transaction is left in when its gfsd died (or an undo failed).
UNFINISHED = ("pending", "running", "failed")


@dataclass(frozen=True)
class StepKind:
    name: str
    do: Action
    undo: Undo


@dataclass
class Step:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}


class Registry:
    """Step kinds by name. `undo` must be idempotent; given no result it must tolerate
    a `do` that never ran, was refused or stopped half-way (docs/txn.md)."""

    def __init__(self) -> None:
        self.kinds: dict[str, StepKind] = {}

    def register(self, name: str, do: Action, undo: Undo) -> None:
        if name in self.kinds:
            raise ValueError(f"step kind {name!r} registered twice")
        self.kinds[name] = StepKind(name, do, undo)


class Engine:
    def __init__(self, db: Database, registry: Registry, context: Any) -> None:
        self.db = db
        self.registry = registry
        self.context = context
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        crash = os.environ.get(CRASH_AFTER_ENV)
        self._crash_after = int(crash) if crash else None
        crash = os.environ.get(CRASH_UNRECORDED_ENV)
        self._crash_unrecorded = int(crash) if crash else None

    @contextmanager
    def _volume_lock(self, key: str, wait: bool = True) -> Iterator[bool]:
        """Serialize transactions on one volume (or one volume-less transaction): in
        this process with a lock, and across gfsd processes sharing PostgreSQL with a
        session advisory lock, which dies with its connection, so a lock that can be
        taken proves that no live gfsd runs a transaction under it. Yields whether
        the lock was taken (always True when `wait`)."""
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=wait):
            yield False
            return
        try:
            if self.db.dialect != "postgresql":
                yield True
                return
            # Signed 32-bit, as PostgreSQL's hashtext() would give.
            k = zlib.crc32(f"gfs-volume:{key}".encode()) - (1 << 31)
            # AUTOCOMMIT: a session lock needs no open SQL transaction, and an idle
            # one held for a whole gfsd transaction would pin PostgreSQL's vacuum horizon.
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if wait:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": k})
                elif not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": k}):
                    yield False
                    return
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": k})
        finally:
            lock.release()

    def run(self, kind: str, volume: str | None, steps: list[Step]) -> str:
        """Run a transaction to the end; returns its id, or raises the failing step's
        error after the done steps were undone."""
        for s in steps:
            if s.kind not in self.registry.kinds:
                raise ValueError(f"unknown step kind {s.kind!r}")
        txn_id = new_id()
        t0 = time.monotonic()
        # Recorded under the lock: an unfinished record whose lock is free belongs to
        # a dead gfsd, which is what lets `recover` run beside live gfsd processes.
        with (
            tracing.span(f"txn {kind}", attrs={"gfs.txn": txn_id, "gfs.volume": volume}),
            self._volume_lock(_lock_key(volume, txn_id)),
        ):
            with self.db.session() as sess:
                sess.add(
                    Transaction(
                        id=txn_id,
                        kind=kind,
                        volume=volume,
                        steps=[s.as_json() for s in steps],
                        results=[],
                        owner=self.owner,
                    )
                )
            log.info("txn=%s kind=%s volume=%s steps=%d recorded", txn_id, kind, volume, len(steps))
            self._set(txn_id, state="running")
            results: list[Result] = []
            for i, s in enumerate(steps):
                try:
                    with tracing.span(f"step {s.kind}", attrs={"gfs.step": i}):
                        result = self.registry.kinds[s.kind].do(self.context, s.params)
                except Exception as e:
                    log.warning("txn=%s step=%d kind=%s failed: %s", txn_id, i, s.kind, e)
                    self._set(txn_id, state="failed", error=str(e))
                    # The failed step reported nothing: its undo (given no result)
                    # removes only what provably is this transaction's.
                    undo_error = self._undo(txn_id, steps[: i + 1], [*results, None])
                    txn_metrics.finished(
                        kind, "failed" if undo_error else "rolled_back", time.monotonic() - t0
                    )
                    if undo_error is None:
                        self._set(txn_id, state="rolled_back")
                    else:
                        # Stays `failed`: the next recover() retries the (idempotent) undos.
                        self._set(txn_id, error=f"{e}; undo failed: {undo_error}")
                    raise
                if self._crash_unrecorded is not None and i + 1 == self._crash_unrecorded:
                    os.kill(os.getpid(), signal.SIGKILL)
                results.append(result)
                # The result and `done` in one commit: `done` steps always have theirs.
                self._set(txn_id, done=i + 1, results=list(results))
                if self._crash_after is not None and i + 1 == self._crash_after:
                    os.kill(os.getpid(), signal.SIGKILL)
            self._set(txn_id, state="done")
        txn_metrics.finished(kind, "done", time.monotonic() - t0)
        log.info("txn=%s done", txn_id)
        return txn_id

    def _undo(self, txn_id: str, steps: list[Step], results: list[Result]) -> str | None:
        """Undo `steps` newest first, each given its recorded result; returns the first
        undo error, if any."""
        first: str | None = None
        for s, result in reversed(list(zip(steps, results, strict=True))):
            try:
                with tracing.span(f"undo {s.kind}"):
                    self.registry.kinds[s.kind].undo(self.context, s.params, result)
            except Exception as e:
                # Keep going: leaving earlier steps in place would be worse.
                log.error("txn=%s undo kind=%s failed: %s", txn_id, s.kind, e)
                first = first or f"{s.kind}: {e}"
        return first

    def _set(self, txn_id: str, **values: Any) -> None:
        with self.db.session() as sess:
            txn = sess.get(Transaction, txn_id)
            assert txn is not None
            for k, v in values.items():
                setattr(txn, k, v)

    def recover(self) -> int:
        """Finish or roll back what dead gfsd processes left; returns how many
        transactions were finished or rolled back. Transactions that a live gfsd
        sharing the PostgreSQL database is running (its lock is held) are left alone."""
        with self.db.session() as sess:
            ids = sess.scalars(
                select(Transaction.id).where(Transaction.state.in_(UNFINISHED))
            ).all()
        touched = 0
        for txn_id in ids:
            with self.db.session() as sess:
                volume = sess.scalar(select(Transaction.volume).where(Transaction.id == txn_id))
            with self._volume_lock(_lock_key(volume, txn_id), wait=False) as mine:
                if not mine:
                    log.info("txn=%s skipped at recovery: a live gfsd holds its lock", txn_id)
                    continue
                with self.db.session() as sess:
                    # Read again under the lock: its owner may have finished it meanwhile.
                    txn = sess.get(Transaction, txn_id)
                    if txn is None or txn.state not in UNFINISHED:
                        continue
                    raw, done = list(txn.steps), txn.done
                    recorded: list[Result] = list(txn.results or [])
                steps = [Step(r["kind"], r.get("params", {})) for r in raw]
                touched += 1
                if done >= len(steps):
                    self._set(txn_id, state="done")
                    log.info("txn=%s recovered as done", txn_id)
                    continue
                # The step at index `done` may have started: undo it as well, with no
                # result (so only what provably is this transaction's goes). A row from
                # before results were recorded gives no result for any step.
                known = (recorded + [None] * done)[:done]
                undo_error = self._undo(txn_id, steps[: done + 1], [*known, None])
                if undo_error is not None:
                    self._set(txn_id, state="failed", error=f"recovery undo failed: {undo_error}")
                    log.error("txn=%s recovery incomplete: %s", txn_id, undo_error)
                    continue
                self._set(txn_id, state="rolled_back", error="gfsd stopped during the transaction")
                log.info("txn=%s rolled back at recovery (done=%d)", txn_id, done)
        return touched


def _lock_key(volume: str | None, txn_id: str) -> str:
    return volume if volume is not None else f"txn:{txn_id}"


def get_transaction(db: Database, txn_id: str) -> Transaction:
    with db.session() as sess:
        txn = sess.get(Transaction, txn_id)
        if txn is None:
            raise GfsError("not_found", "transaction_not_found", f"no transaction {txn_id}")
        sess.expunge(txn)
        return txn
