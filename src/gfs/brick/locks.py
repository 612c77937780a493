"""POSIX record locks held at the brick, per GFID, so they hold across mounts.

Semantics follow fcntl(2): a lock belongs to an owner; setting a range replaces
the owner's locks on that range (splitting them), unlocking removes the range,
read locks share and write locks exclude other owners. Lengths of 0 mean "to
the end of the file" (an open-ended range).

On a replica set the primary's table is copied to the other members (LockSync,
docs/replication.md "Locks"): every change stamps its key with (epoch, seq), and a
member installs a key's state only when its stamp is newer than the one it holds.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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


Stamp = tuple[int, int]  # (epoch, seq): the order of changes across primaries


@dataclass
class Snapshot:
    """Keys' lock lists as a table holds them, with their stamps; `stamp` is the table's
    newest when taken (a full snapshot: keys older than it and absent are gone)."""

    locks: dict[bytes, list[Lock]] = field(default_factory=dict)
    stamps: dict[bytes, Stamp] = field(default_factory=dict)
    stamp: Stamp = (0, 0)


class LockTable:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock`: monotonic seconds, what a waiting request's deadline counts in."""
        self.clock = clock
        self._cond = threading.Condition()
        self._locks: dict[bytes, list[Lock]] = {}
        self._stamps: dict[bytes, Stamp] = {}
        self._stamp: Stamp = (0, 0)
        #: as a member: the stamp of the last whole table installed; older states are void
        self._floor: Stamp = (0, 0)

    def _touch(self, key: bytes, epoch: int) -> None:
        # Never behind what we installed: a promoted member goes on after its copy.
        e, seq = self._stamp
        self._stamp = (max(epoch, e), seq + 1)
        self._stamps[key] = self._stamp

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
        epoch: int = 0,
    ) -> None:
        """Set or clear a lock; EAGAIN on conflict, or wait until `wait_until` (`clock`)
        while `alive()` (the caller still waits: a cancelled RPC must not get the lock).
        `epoch`: the replica set's, for the key's stamp."""
        s, e = span(start, length)
        with self._cond:
            if type_ != UNLOCK:
                while self._conflict(gfid, owner, type_, s, e) is not None:
                    remaining = None if wait_until is None else wait_until - self.clock()
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
            self._touch(gfid, epoch)
            self._cond.notify_all()

    def drop_owners(self, prefix: bytes, epoch: int = 0) -> list[bytes]:
        """Remove every lock whose owner starts with `prefix` (a client session that is
        gone); the keys that changed."""
        with self._cond:
            changed = []
            for gfid in list(self._locks):
                kept = [lk for lk in self._locks[gfid] if not lk.owner.startswith(prefix)]
                if len(kept) == len(self._locks[gfid]):
                    continue
                changed.append(gfid)
                if kept:
                    self._locks[gfid] = kept
                else:
                    del self._locks[gfid]
                self._touch(gfid, epoch)
            if changed:
                self._cond.notify_all()
            return changed

    def snapshot(self, keys: Iterable[bytes] | None = None) -> Snapshot:
        """The state of `keys` (None: the whole table, its keys with locks), for a
        member's copy."""
        with self._cond:
            want = list(self._locks) if keys is None else list(keys)
            snap = Snapshot(stamp=self._stamp)
            for k in want:
                if k in self._stamps:
                    snap.stamps[k] = self._stamps[k]
                    snap.locks[k] = [Lock(**vars(lk)) for lk in self._locks.get(k, ())]
            return snap

    def install(self, snap: Snapshot, full: bool) -> int:
        """As a member: take the primary's state of each key that is newer than ours. A
        `full` snapshot (the whole table at `snap.stamp`) also says every key stamped up
        to then that it does not list has no lock, and makes older syncs still on the way
        void. The number of keys changed."""
        with self._cond:
            n = 0
            take: list[bytes] = []
            if full:
                if snap.stamp < self._floor:
                    return 0  # an older whole table, overtaken by a newer one
                self._floor = snap.stamp
                for k in [k for k, st in self._stamps.items() if st <= snap.stamp]:
                    if k not in snap.stamps:
                        n += self._locks.pop(k, None) is not None
                        del self._stamps[k]
                # ours is newer only when a later change overtook this snapshot
                take = [k for k in snap.stamps if self._stamps.get(k, (0, 0)) <= snap.stamp]
            else:
                take = [
                    k
                    for k, st in snap.stamps.items()
                    if st > max(self._stamps.get(k, (0, 0)), self._floor)
                ]
            for k in take:
                self._stamps[k] = snap.stamps[k]
                got = snap.locks.get(k, [])
                if got:
                    self._locks[k] = [Lock(**vars(lk)) for lk in got]
                else:
                    self._locks.pop(k, None)
                n += 1
            self._stamp = max(self._stamp, snap.stamp, *snap.stamps.values())
            if n:
                self._cond.notify_all()
            return n

    def sessions(self) -> frozenset[str]:
        """The client sessions that own locks here (owners are "session:owner")."""
        with self._cond:
            return frozenset(
                lk.owner.partition(b":")[0].decode(errors="replace")
                for held in self._locks.values()
                for lk in held
            )
