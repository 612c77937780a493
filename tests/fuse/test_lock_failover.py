"""Locks across mounts through a primary failover (docs/replication.md, "Locks"): the
primary copies its lock table to the in-sync members before it answers, so a SIGKILL of
its brick daemon loses no lock and a blocked F_SETLKW on another mount waits on at the
new primary until the holder unlocks. And SQLite with writers on two mounts in
rollback-journal mode (WAL: see test_sqlite_writers_on_two_mounts)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.fuse.test_posix import LOCK_CONFLICT, opened, try_lock_elsewhere
from tests.fuse.test_shared_posix import two_volume_mounts
from tests.procs import Mount, wait_for
from tests.replicas import all_in_sync, layout, node_of

pytestmark = pytest.mark.fuse

FAILOVER_DEADLINE = 60
HEAL_DEADLINE = 90


def fail_over(c: Cluster, probe: Mount) -> None:
    """SIGKILL the primary's brick daemon and wait until the volume answers through a new
    primary (a write through `probe` makes the client ask gfsd)."""
    rs = layout(c)
    node_of(c, rs, rs.primary).stop(signal.SIGKILL)
    (probe.mountpoint / "probe").write_text("after the kill")
    wait_for(lambda: layout(c).primary != rs.primary, FAILOVER_DEADLINE, "a new primary")


def heal_old_primary(c: Cluster, old: str | None) -> None:
    node_of(c, layout(c), old).start()
    wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")


def test_locks_kept_across_a_primary_kill(demo: Cluster, tmp_path: Path) -> None:
    old = layout(demo).primary
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        a, b = ma.mountpoint / "kept", mb.mountpoint / "kept"
        a.write_bytes(b"x" * 100)
        with opened(a, os.O_RDWR) as fd:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fail_over(demo, mb)
            assert try_lock_elsewhere(b, 10, 0) in LOCK_CONFLICT
            assert try_lock_elsewhere(b, 0, 5) in LOCK_CONFLICT
            assert try_lock_elsewhere(b, 10, 10) == 0  # the rest of the file stays free
            assert try_lock_elsewhere(b, kind="flock") in LOCK_CONFLICT
            # the holder unlocks through the new primary
            fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
            assert try_lock_elsewhere(b, 10, 0) == 0
            assert try_lock_elsewhere(b, kind="flock") in LOCK_CONFLICT
            fcntl.flock(fd, fcntl.LOCK_UN)
            assert try_lock_elsewhere(b, kind="flock") == 0
            # ... and takes one again: the new primary copies it to the members left
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
            assert try_lock_elsewhere(b) in LOCK_CONFLICT
        assert try_lock_elsewhere(b) == 0
    heal_old_primary(demo, old)


WAIT_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)  # F_SETLKW
print(time.monotonic(), flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""


def test_blocked_setlkw_wakes_across_a_failover(demo: Cluster, tmp_path: Path) -> None:
    old = layout(demo).primary
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        a, b = ma.mountpoint / "wait", mb.mountpoint / "wait"
        a.write_bytes(b"x")
        with opened(a, os.O_RDWR) as fd:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waiter = subprocess.Popen(
                [sys.executable, "-I", "-c", WAIT_LOCK, str(b)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                # blocked at the old primary: mount B's client has a Lock in flight
                wait_for(lambda: waiter_blocked(waiter.pid), 20, "the waiter to block")
                retries = mb.log.read_text().count("op=Lock retry")
                fail_over(demo, ma)
                # the waiting Lock moved to the new primary, which still holds A's lock
                wait_for(
                    lambda: mb.log.read_text().count("op=Lock retry") > retries,
                    FAILOVER_DEADLINE,
                    "the waiting lock to be retried",
                )
                assert try_lock_elsewhere(b) in LOCK_CONFLICT
                assert waiter.poll() is None
                unlocked_at = time.monotonic()
                fcntl.lockf(fd, fcntl.LOCK_UN)
                assert waiter.stdout is not None
                got_at = float(waiter.stdout.readline())
                assert got_at >= unlocked_at
                assert try_lock_elsewhere(a) in LOCK_CONFLICT  # B holds it now
            finally:
                if waiter.stdin:
                    waiter.stdin.close()
                waiter.wait(30)
        assert waiter.returncode == 0
        assert try_lock_elsewhere(a) == 0
    heal_old_primary(demo, old)


def waiter_blocked(pid: int) -> bool:
    """Whether `pid` sleeps in a FUSE request (its F_SETLKW waits for the answer)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return "fuse" in wchan or "request_wait_answer" in wchan


WRITER = """
import sqlite3, sys, time
LEAD = 2
path, who, n, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def connect():
    con = sqlite3.connect(path, timeout=120, isolation_level=None)
    if mode == "wal":
        # One connection at a time holds the database, and no -shm file is used.
        con.execute("PRAGMA locking_mode=EXCLUSIVE")
        assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    else:
        assert con.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    return con

con = connect()
i = 0
while i < n:
    con.execute("BEGIN IMMEDIATE")
    (count,) = con.execute("SELECT count(*) FROM t").fetchone()
    (others,) = con.execute("SELECT count(*) FROM t WHERE who != ?", (who,)).fetchone()
    ready = others >= i - LEAD  # keep in step with the other mount's writer
    if ready:
        con.execute("INSERT INTO t(who, i, seen, pad) VALUES (?, ?, ?, randomblob(3000))",
                    (who, i, count))
        i += 1
        con.execute("COMMIT")
    else:
        con.execute("ROLLBACK")
    if mode == "wal":  # let the other mount in: the connection holds the database
        con.close()
    if not ready:
        time.sleep(0.25)  # the other writer's turn: its busy handler polls every 0.1 s
    if mode == "wal":
        con = connect()
con.close()
print("done")
"""

#: rows per writer: a WAL writer in exclusive mode opens the database for each one (a
#: checkpoint and a new -wal file each time), so fewer
SQLITE_ROWS = {"delete": 40, "wal": 12}


@pytest.mark.timeout(600)
# WAL with locking_mode=EXCLUSIVE, the only WAL mode that could work across mounts (no
# shared-memory index), is not in the list: the second mount's writer waits out its
# busy timeout at its first open ("database is locked"), an open issue
# (docs/architecture.md, "Known differences from ext4").
@pytest.mark.parametrize("mode", ["delete"])
def test_sqlite_writers_on_two_mounts(demo: Cluster, tmp_path: Path, mode: str) -> None:
    import sqlite3

    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        db_a, db_b = ma.mountpoint / "app.db", mb.mountpoint / "app.db"
        con = sqlite3.connect(db_a, isolation_level=None)
        if mode == "wal":
            con.execute("PRAGMA locking_mode=EXCLUSIVE")
        con.execute(f"PRAGMA journal_mode={mode.upper()}")
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT, i INT, seen INT, pad BLOB)")
        con.close()
        writers = [
            subprocess.Popen(
                [sys.executable, "-I", "-c", WRITER, str(db), who, str(SQLITE_ROWS[mode]), mode],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for db, who in ((db_a, "a"), (db_b, "b"))
        ]
        for w in writers:
            out, err = w.communicate(timeout=600)
            assert w.returncode == 0 and out.strip() == "done", err
        for db in (db_a, db_b):
            con = sqlite3.connect(db, isolation_level=None)
            if mode == "wal":
                con.execute("PRAGMA locking_mode=EXCLUSIVE")
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            rows = con.execute("SELECT who, i, seen FROM t ORDER BY id").fetchall()
            con.close()
            n = SQLITE_ROWS[mode]
            assert len(rows) == 2 * n
            for who in "ab":
                assert [i for w, i, _ in rows if w == who] == list(range(n))
            # each transaction saw every row committed before it, on either mount
            assert [seen for _, _, seen in rows] == list(range(2 * n))
            for k in range(len(rows)):  # interleaved: in step within the writers' lead
                prefix = [w for w, _, _ in rows[: k + 1]]
                assert abs(prefix.count("a") - prefix.count("b")) <= 3
