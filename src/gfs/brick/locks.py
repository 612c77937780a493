"""POSIX record locks held at the brick, per GFID, so they hold across mounts.

Semantics follow fcntl(2): a lock belongs to an owner; setting a range replaces
the owner's locks on that range (splitting them), unlocking removes the range,
read locks share and write locks exclude other owners. Lengths of 0 mean "to
the end of the file" (an open-ended range).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

READ, WRITE, UNLOCK = 1, 2, 3
EOF = 1 << 63
#: a waiting lock request looks this often (seconds) whether its caller went away
ALIVE_CHECK = 0.5


@dataclass
class Lock:
    owner: bytes
    type: int
    start: int
    end: int  # exclusive; EOF for open-ended
    pid: int

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


def span(start: int, length: int) -> tuple[int, int]:
    if start < 0:
        raise OSError(errno.EINVAL, "negative lock start")
    if length < 0:  # fcntl allows a negative length: the range ends at start
        start, length = start + length, -length
        if start < 0:
            raise OSError(errno.EINVAL, "lock range before offset 0")
    return start, (EOF if length == 0 else start + length)


class LockTable:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._locks: dict[bytes, list[Lock]] = {}

    def _conflict(self, gfid: bytes, owner: bytes, type_: int, start: int, end: int) -> Lock | None:
        for lk in self._locks.get(gfid, ()):
            if lk.owner != owner and lk.overlaps(start, end) and WRITE in (lk.type, type_):
                return lk
        return None

    def test(self, gfid: bytes, owner: bytes, type_: int, start: int, length: int) -> Lock | None:
        s, e = span(start, length)
        with self._cond:
            return self._conflict(gfid, owner, type_, s, e)

    def set(
        self,
        gfid: bytes,
        owner: bytes,
        type_: int,
        start: int,
        length: int,
        pid: int,
        wait_until: float | None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Set or clear a lock; EAGAIN on conflict, or wait until `wait_until` (monotonic)
        while `alive()` (the caller still waits: a cancelled RPC must not get the lock)."""
        s, e = span(start, length)
        with self._cond:
            if type_ != UNLOCK:
                while self._conflict(gfid, owner, type_, s, e) is not None:
                    remaining = None if wait_until is None else wait_until - time.monotonic()
                    if remaining is None or remaining <= 0 or not alive():
                        raise OSError(
                            errno.EAGAIN if wait_until is None else errno.EINTR, "lock conflict"
                        )
                    self._cond.wait(min(remaining, ALIVE_CHECK))
                if wait_until is not None and not alive():  # gave up while we waited
                    raise OSError(errno.EINTR, "lock wait cancelled")
            kept: list[Lock] = []
            for lk in self._locks.get(gfid, ()):
                if lk.owner != owner or not lk.overlaps(s, e):
                    kept.append(lk)
                    continue
                if lk.start < s:
                    kept.append(Lock(lk.owner, lk.type, lk.start, s, lk.pid))
                if lk.end > e:
                    kept.append(Lock(lk.owner, lk.type, e, lk.end, lk.pid))
            if type_ != UNLOCK:
                kept.append(Lock(owner, type_, s, e, pid))
            if kept:
                self._locks[gfid] = kept
            else:
                self._locks.pop(gfid, None)
            self._cond.notify_all()

    def drop_owners(self, prefix: bytes) -> int:
        """Remove every lock whose owner starts with `prefix` (a client session that is
        gone); the number removed."""
        with self._cond:
            n = 0
            for gfid in list(self._locks):
                kept = [lk for lk in self._locks[gfid] if not lk.owner.startswith(prefix)]
                n += len(self._locks[gfid]) - len(kept)
                if kept:
                    self._locks[gfid] = kept
                else:
                    del self._locks[gfid]
            if n:
                self._cond.notify_all()
            return n
