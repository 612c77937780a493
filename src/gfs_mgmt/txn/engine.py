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
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text

from gfs.errors import GfsError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Transaction

log = logging.getLogger(__name__)

#: A step's action: gets the engine's context object and the step's JSON params.
Action = Callable[[Any, dict[str, Any]], None]

#: Test hook: SIGKILL this process after step N of any transaction (a real crash at
#: a chosen point; see tests/mgmt/test_txn.py).
CRASH_AFTER_ENV = "GFS_TXN_CRASH_AFTER"


@dataclass(frozen=True)
class StepKind:
    name: str
    do: Action
    undo: Action


@dataclass
class Step:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}


class Registry:
    """Step kinds by name. `undo` must be idempotent and must tolerate a `do` that
    never ran or stopped half-way: recovery cannot know how far a crashed step got."""

    def __init__(self) -> None:
        self.kinds: dict[str, StepKind] = {}

    def register(self, name: str, do: Action, undo: Action) -> None:
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

    @contextmanager
    def _volume_lock(self, volume: str | None) -> Iterator[None]:
        """Serialize transactions on one volume: in this process with a lock, and
        across gfsd processes sharing PostgreSQL with a session advisory lock."""
        if volume is None:
            yield
            return
        with self._locks_guard:
            lock = self._locks.setdefault(volume, threading.Lock())
        with lock:
            if self.db.dialect != "postgresql":
                yield
                return
            key = zlib.crc32(f"gfs-volume:{volume}".encode())
            with self.db.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    def run(self, kind: str, volume: str | None, steps: list[Step]) -> str:
        """Run a transaction to the end; returns its id, or raises the failing step's
        error after the done steps were undone."""
        for s in steps:
            if s.kind not in self.registry.kinds:
                raise ValueError(f"unknown step kind {s.kind!r}")
        with self.db.session() as sess:
            txn = Transaction(
                kind=kind, volume=volume, steps=[s.as_json() for s in steps], owner=self.owner
            )
            sess.add(txn)
            sess.flush()
            txn_id = txn.id
        log.info("txn=%s kind=%s volume=%s steps=%d recorded", txn_id, kind, volume, len(steps))
        with self._volume_lock(volume):
            self._set(txn_id, state="running")
            for i, s in enumerate(steps):
                try:
                    self.registry.kinds[s.kind].do(self.context, s.params)
                except Exception as e:
                    log.warning("txn=%s step=%d kind=%s failed: %s", txn_id, i, s.kind, e)
                    self._set(txn_id, state="failed", error=str(e))
                    # The failed step may have done part of its work: undo it too.
                    self._undo(txn_id, steps[: i + 1])
                    self._set(txn_id, state="rolled_back")
                    raise
                self._set(txn_id, done=i + 1)
                if self._crash_after is not None and i + 1 == self._crash_after:
                    os.kill(os.getpid(), signal.SIGKILL)
            self._set(txn_id, state="done")
        log.info("txn=%s done", txn_id)
        return txn_id

    def _undo(self, txn_id: str, steps: list[Step]) -> None:
        for s in reversed(steps):
            try:
                self.registry.kinds[s.kind].undo(self.context, s.params)
            except Exception as e:
                # Keep going: leaving later steps undone would be worse. Logged for a human.
                log.error("txn=%s undo kind=%s failed: %s", txn_id, s.kind, e)

    def _set(self, txn_id: str, **values: Any) -> None:
        with self.db.session() as sess:
            txn = sess.get(Transaction, txn_id)
            assert txn is not None
            for k, v in values.items():
                setattr(txn, k, v)

    def recover(self) -> int:
        """Finish or roll back what a dead gfsd left; returns how many were touched."""
        with self.db.session() as sess:
            rows = sess.scalars(
                select(Transaction).where(Transaction.state.in_(("pending", "running", "failed")))
            ).all()
            todo = [(t.id, t.volume, t.steps, t.done) for t in rows]
        for txn_id, volume, raw, done in todo:
            steps = [Step(r["kind"], r.get("params", {})) for r in raw]
            with self._volume_lock(volume):
                if done >= len(steps):
                    self._set(txn_id, state="done")
                    log.info("txn=%s recovered as done", txn_id)
                    continue
                # The step at index `done` may have started: undo it as well.
                self._undo(txn_id, steps[: done + 1])
                self._set(txn_id, state="rolled_back", error="gfsd stopped during the transaction")
                log.info("txn=%s rolled back at recovery (done=%d)", txn_id, done)
        return len(todo)


def get_transaction(db: Database, txn_id: str) -> Transaction:
    with db.session() as sess:
        txn = sess.get(Transaction, txn_id)
        if txn is None:
            raise GfsError("not_found", "transaction_not_found", f"no transaction {txn_id}")
        sess.expunge(txn)
        return txn
