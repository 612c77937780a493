"""The client sessions of a brick daemon (brick.proto `Session`): which mounts use which
brick, so gfsd can refuse to stop or delete a mounted volume and name its mounts.

A mount announces itself to each brick it uses, then repeats that every `interval`
seconds (docs/architecture.md, "Client sessions"); a session not heard from for
EXPIRY intervals is forgotten, one that ends (unmount) at once. Kept per brick name,
served or not: a mount of a stopped volume is still there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from gfs.proto import brick_pb2 as pb

#: a session is forgotten after this many intervals of silence
EXPIRY = 3
MIN_INTERVAL, MAX_INTERVAL = 0.1, 3600.0
#: beyond this many sessions a daemon forgets the stalest first (a bound, not a quota)
MAX_SESSIONS = 100_000


@dataclass
class Session:
    brick: str
    session: str
    hostname: str
    mountpoint: str
    pid: int
    peer: str
    interval: float
    seen: float
    #: kept for its locks only (Sessions.grace): not listed as a mount
    placeholder: bool = False

    def expired(self, now: float) -> bool:
        return now - self.seen > EXPIRY * self.interval


def _check(req: pb.SessionRequest) -> None:
    if not 0 < len(req.brick) <= 128 or not 0 < len(req.session) <= 64:
        raise ValueError("brick and session must be 1-128 and 1-64 characters")
    if len(req.hostname) > 255 or len(req.mountpoint) > 4096:
        raise ValueError("hostname or mount point too long")
    if not MIN_INTERVAL <= req.interval <= MAX_INTERVAL:  # also refuses NaN
        raise ValueError(f"interval must be {MIN_INTERVAL}-{MAX_INTERVAL} seconds")


class Sessions:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        on_gone: Callable[[str, str], None] = lambda brick, session: None,
    ) -> None:
        """`on_gone(brick, session)`: told of each session that ends or expires (its
        locks go with it), under the table's mutex."""
        self._clock = clock
        self._on_gone = on_gone
        self._mu = threading.Lock()
        self._d: dict[tuple[str, str], Session] = {}
        self._pruned = 0.0

    def update(self, req: pb.SessionRequest, peer: str) -> None:
        """Record (or with `end`, forget) a session; ValueError for a malformed one."""
        _check(req)
        key = (req.brick, req.session)
        now = self._clock()
        with self._mu:
            if req.end:
                if self._d.pop(key, None) is not None:
                    self._on_gone(*key)
                return
            self._d[key] = Session(
                req.brick, req.session, req.hostname, req.mountpoint, req.pid, peer,
                req.interval, now,
            )  # fmt: skip
            if now - self._pruned > 1.0 or len(self._d) > MAX_SESSIONS:
                self._prune(now)

    def _prune(self, now: float) -> None:
        self._pruned = now
        for key in [k for k, s in self._d.items() if s.expired(now)]:
            del self._d[key]
            self._on_gone(*key)
        extra = len(self._d) - MAX_SESSIONS
        if extra > 0:
            for key in sorted(self._d, key=lambda k: self._d[k].seen)[:extra]:
                del self._d[key]
                self._on_gone(*key)

    def grace(self, brick: str, sessions: Collection[str], default: float) -> list[str]:
        """A newly promoted primary's grace for lock owners it has not heard from (their
        mount may not have told this brick yet, or it expired here while the old primary
        still heard it): each gets a placeholder session that expires like one not heard
        for an interval (the longest interval of the brick's live sessions, else
        `default`), unless the mount announces itself meanwhile. The sessions adopted."""
        now = self._clock()
        with self._mu:
            live = [s.interval for s in self._d.values() if s.brick == brick]
            interval = max(live, default=default)
            adopted = [s for s in sessions if (brick, s) not in self._d]
            for s in adopted:
                self._d[(brick, s)] = Session(brick, s, "", "", 0, "", interval, now, True)
            return adopted

    def list(self, bricks: Collection[str] = ()) -> list[tuple[Session, float]]:
        """(session, seconds since heard) of the live sessions of `bricks` (all if empty)."""
        names = set(bricks)
        now = self._clock()
        with self._mu:
            self._prune(now)
            return [
                (s, now - s.seen)
                for s in self._d.values()
                if not s.placeholder and (not names or s.brick in names)
            ]
