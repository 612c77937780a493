"""The brick's lock table and the session table that releases a lost mount's locks."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from gfs import lockowner
from gfs.brick import locks
from gfs.brick.sessions import EXPIRY, Sessions
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
    assert t.drop_owners(lockowner.prefix("sa")) == 2
    assert t.test(G, A, locks.WRITE, 0, 30) is None
    assert t.test(G, A, locks.WRITE, 40, 1) is not None
    # a session id that merely starts like another one is a different session
    assert t.drop_owners(lockowner.prefix("s")) == 0


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
