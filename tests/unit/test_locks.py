"""The brick's lock table and the session table that releases a lost mount's locks."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from gfs import lockowner
from gfs.brick import locks
from gfs.brick.replica import LOCKS_WANTED, Config, Replica, lock_snapshot, lock_sync_request
from gfs.brick.sessions import EXPIRY, Sessions
from gfs.brick.store import Brick
from gfs.proto import brick_pb2 as pb

G = b"g" * 16
A, B = lockowner.owner("sa", 1), lockowner.owner("sb", 1)


def test_waiter_woken_by_unlock() -> None:
    t = locks.LockTable()
    t.set(G, A, locks.WRITE, 0, 0, 1, None)
    done = threading.Event()

    def wait() -> None:
        t.set(G, B, locks.WRITE, 0, 10, 2, time.monotonic() + 60)
        done.set()

    th = threading.Thread(target=wait)
    th.start()
    t.set(G, A, locks.UNLOCK, 0, 0, 1, None)
    th.join(30)
    assert done.is_set()
    c = t.test(G, A, locks.READ, 0, 0)
    assert c is not None and c.owner == B


def test_waiter_that_went_away_does_not_get_the_lock() -> None:
    t = locks.LockTable()
    t.set(G, A, locks.WRITE, 0, 0, 1, None)
    gone = threading.Event()
    errs: list[int] = []

    def wait() -> None:
        try:
            t.set(G, B, locks.WRITE, 0, 0, 2, time.monotonic() + 60, lambda: not gone.is_set())
        except OSError as e:
            errs.append(e.errno or 0)

    th = threading.Thread(target=wait)
    th.start()
    gone.set()
    t.set(G, A, locks.UNLOCK, 0, 0, 1, None)
    th.join(30)
    assert errs == [errno.EINTR]
    assert t.test(G, A, locks.WRITE, 0, 0) is None


def test_drop_owners_of_a_session() -> None:
    t = locks.LockTable()
    t.set(G, A, locks.READ, 0, 10, 1, None)
    t.set(G, lockowner.owner("sa", 2), locks.READ, 20, 10, 1, None)
    t.set(G, B, locks.READ, 40, 10, 1, None)
    assert t.drop_owners(lockowner.prefix("sa")) == [G]
    assert t.test(G, A, locks.WRITE, 0, 30) is None
    assert t.test(G, A, locks.WRITE, 40, 1) is not None
    # a session id that merely starts like another one is a different session
    assert t.drop_owners(lockowner.prefix("s")) == []


def req(session: str, end: bool = False) -> pb.SessionRequest:
    return pb.SessionRequest(brick="b0", session=session, interval=1.0, end=end)


def test_sessions_tell_when_one_ends_or_expires() -> None:
    now = [0.0]
    gone: list[tuple[str, str]] = []
    s = Sessions(clock=lambda: now[0], on_gone=lambda b, sid: gone.append((b, sid)))
    s.update(req("x"), "peer")
    s.update(req("y"), "peer")
    s.update(req("x", end=True), "peer")
    assert gone == [("b0", "x")]
    s.update(req("x", end=True), "peer")  # an unknown session ends: nothing to tell
    assert gone == [("b0", "x")]
    now[0] = EXPIRY * 1.0 + 2
    assert s.list() == []
    assert gone == [("b0", "x"), ("b0", "y")]


@pytest.mark.parametrize("length", [-1, -5])
def test_negative_span_before_zero(length: int) -> None:
    with pytest.raises(OSError):
        locks.LockTable().set(G, A, locks.WRITE, 0, length, 1, None)


def test_a_wait_deadline_counts_in_the_tables_clock() -> None:
    now = [100.0]
    t = locks.LockTable(clock=lambda: now[0])
    t.set(G, A, locks.WRITE, 0, 0, 1, None)
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        t.set(G, B, locks.WRITE, 0, 0, 2, 99.0)  # already past by the table's clock
    assert e.value.errno == errno.EINTR
    assert time.monotonic() - t0 < 1.0


def copy(t: locks.LockTable, keys: list[bytes] | None = None) -> locks.Snapshot:
    """A snapshot as a member receives it: through the LockSync message."""
    r = lock_sync_request(t.snapshot(keys), keys is None)
    r.epoch = 1
    return lock_snapshot(pb.LockSyncRequest.FromString(r.SerializeToString()))


def test_member_copy_holds_the_primarys_locks() -> None:
    p, m = locks.LockTable(), locks.LockTable()
    p.set(G, A, locks.WRITE, 0, 0, 1, None, epoch=1)  # to the end of file
    p.set(G + b"/flock", A, locks.READ, 0, 0, 1, None, epoch=1)
    assert m.install(copy(p, [G]), full=False) == 1
    assert m.install(copy(p, [G + b"/flock"]), full=False) == 1
    c = m.test(G, B, locks.WRITE, 1 << 40, 1)
    assert c is not None and (c.owner, c.end) == (A, locks.EOF)
    assert m.test(G + b"/flock", B, locks.WRITE, 0, 0) is not None
    assert m.test(G + b"/flock", B, locks.READ, 0, 0) is None


def test_an_overtaken_sync_does_not_undo_a_later_change() -> None:
    p, m = locks.LockTable(), locks.LockTable()
    p.set(G, A, locks.WRITE, 0, 0, 1, None, epoch=1)
    locked = copy(p, [G])
    p.set(G, A, locks.UNLOCK, 0, 0, 1, None, epoch=1)
    unlocked = copy(p, [G])
    m.install(unlocked, full=False)
    assert m.install(locked, full=False) == 0  # arrived late
    assert m.test(G, B, locks.WRITE, 0, 0) is None


def test_whole_table_replaces_a_stale_copy() -> None:
    h = b"h" * 16
    p, m = locks.LockTable(), locks.LockTable()
    p.set(h, A, locks.WRITE, 0, 0, 1, None, epoch=1)
    stale = copy(p, [h])
    m.install(stale, full=False)
    p.set(h, A, locks.UNLOCK, 0, 0, 1, None, epoch=1)  # the member missed this
    p.set(G, B, locks.READ, 0, 5, 2, None, epoch=1)
    m.install(copy(p), full=True)
    assert m.test(h, B, locks.WRITE, 0, 0) is None
    assert m.test(G, A, locks.WRITE, 0, 5) is not None
    assert m.install(stale, full=False) == 0  # older than the whole table: void


def test_a_promoted_member_goes_on_from_its_copy() -> None:
    """The old primary comes back as a member: the new primary's whole table wins over
    what it held, and the new primary's own changes are newer than any old one."""
    old, new = locks.LockTable(), locks.LockTable()
    old.set(G, A, locks.WRITE, 0, 0, 1, None, epoch=1)
    new.install(copy(old, [G]), full=False)
    old.set(G, A, locks.UNLOCK, 0, 0, 1, None, epoch=1)  # never acknowledged: not synced
    h = b"h" * 16
    new.set(h, B, locks.READ, 100, 1, 2, None, epoch=2)
    assert new.test(G, B, locks.WRITE, 0, 1) is not None  # A's lock kept across failover
    fresh = locks.LockTable()  # the old primary restarted: nothing in memory
    fresh.install(copy(new), full=True)
    old.install(copy(new), full=True)
    for t in (fresh, old):
        assert t.test(G, B, locks.WRITE, 0, 1) is not None
        assert t.test(h, A, locks.WRITE, 100, 1) is not None
    assert new.sessions() == {"sa", "sb"}


def test_grace_for_lock_owners_a_new_primary_has_not_heard() -> None:
    now = [0.0]
    gone: list[str] = []
    s = Sessions(clock=lambda: now[0], on_gone=lambda b, sid: gone.append(sid))
    s.update(pb.SessionRequest(brick="b0", session="live", interval=0.5), "peer")
    assert sorted(s.grace("b0", {"live", "dead", "slow"}, 10.0)) == ["dead", "slow"]
    assert [x.session for x, _ in s.list()] == ["live"]  # placeholders are no mounts
    now[0] = 1.0
    s.update(pb.SessionRequest(brick="b0", session="slow", interval=0.5), "peer")
    s.update(pb.SessionRequest(brick="b0", session="live", interval=0.5), "peer")
    now[0] = EXPIRY * 0.5 + 0.1  # the grace: one expiry of the longest live interval
    s.list()
    assert gone == ["dead"]


def test_lock_sync_is_fenced_like_a_forward(tmp_path: Path) -> None:
    (tmp_path / "b1").mkdir()
    members = {n: [f"127.0.0.1:{i}", "in_sync"] for i, n in enumerate(("b0", "b1", "b2"))}
    cfg = Config("v", 0, 5, "b0", members, 2)
    rep = Replica(Brick("b1", tmp_path / "b1", 0), cfg, confirmed=True)
    t = locks.LockTable()
    src = locks.LockTable()
    src.set(G, A, locks.WRITE, 0, 0, 1, None, epoch=5)

    def sync(epoch: int, sender: str, full: bool) -> int:
        r = lock_sync_request(src.snapshot(None if full else [G]), full)
        r.brick, r.epoch, r.sender = "b1", epoch, sender
        return rep.on_lock_sync(r, t).err

    assert sync(4, "b0", True) == errno.ESTALE
    assert sync(5, "b2", True) == errno.EACCES  # not the primary of epoch 5
    assert sync(5, "b0", False) == LOCKS_WANTED  # no whole table from b0 yet
    assert t.test(G, B, locks.WRITE, 0, 0) is None
    assert sync(5, "b0", True) == 0
    assert t.test(G, B, locks.WRITE, 0, 0) is not None
    assert sync(5, "b0", False) == 0
