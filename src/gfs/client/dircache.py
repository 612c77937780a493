"""Lookups answered from a recent listing of the directory (lookup-ahead).

A cold `stat` of many files in a directory costs a Lookup round trip each. Once a
directory has answered two lookups in a row with no change made through this
mount in between, the client lists it once (ReadDir carries every entry's
attributes) and answers further lookups of names in the listing from it.

Rules that keep it no staler than the kernel's own caches:
- a listing is used for at most attr-timeout after the brick was asked, and the
  kernel is given only the rest of its timeouts, so an answer is never older than
  one the kernel would have cached itself had it asked at listing time;
- only names found are answered: a name not in the listing is asked for (a file
  another mount just created shows at once, as without the cache);
- any change through this mount (any mutation, on any object) makes every
  listing asked for before it unusable, so this mount always sees its own changes;
- at most MAX_DIRS listings are kept, and a directory larger than the client lists
  (ops.LIST_AHEAD_MAX entries) is not listed again for a while (a listing of it
  would cost more than it saves; the part listed still answers its names).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gfs.proto import brick_pb2 as pb

MAX_DIRS = 256
#: Positive lookups by RPC in a directory, without a change in between, that start a listing.
MISSES = 2
#: How long a directory too large for one batch is left alone, in attr-timeouts.
LARGE_BACKOFF = 30


@dataclass
class _Dir:
    fetched: float = 0.0
    entries: dict[bytes, pb.DirEntry] = field(default_factory=dict)
    misses: int = 0
    missed_at: float = 0.0
    large_until: float = 0.0
    listing: bool = False


class DirCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._dirs: dict[int, _Dir] = {}
        self._changed_at = 0.0

    def __len__(self) -> int:
        return len(self._dirs)

    def changed(self) -> None:
        """This mount changes something: call before sending it and after the reply."""
        self._changed_at = self._clock()

    def get(self, parent: int, name: bytes) -> tuple[pb.DirEntry, float] | None:
        """The entry for `name` and its age in seconds, from a listing still valid."""
        d = self._dirs.get(parent)
        if d is None or not d.entries:
            return None
        age = self._clock() - d.fetched
        if age >= self.ttl or d.fetched < self._changed_at:
            d.entries = {}
            return None
        e = d.entries.get(name)
        return None if e is None else (e, age)

    def found(self, parent: int) -> bool:
        """A lookup in `parent` was answered by the brick with an entry; True: list
        `parent` now (the caller then calls `listed` or `failed`)."""
        if self.ttl <= 0:
            return False
        d = self._dirs.get(parent)
        if d is None:
            if len(self._dirs) >= MAX_DIRS:
                self._evict()
            d = self._dirs[parent] = _Dir()
        now = self._clock()
        if d.listing or d.large_until > now:
            return False
        if d.missed_at < self._changed_at:
            d.misses = 0  # "in a row": a change came in between
        d.misses, d.missed_at = d.misses + 1, now
        if d.misses < MISSES:
            return False
        d.misses, d.listing = 0, True
        return True

    def listed(self, parent: int, entries: list[pb.DirEntry], eof: bool, asked: float) -> None:
        d = self._dirs.get(parent)
        if d is None:
            return
        d.listing = False
        if not eof:
            d.large_until = self._clock() + LARGE_BACKOFF * self.ttl
        if asked < self._changed_at:
            return  # the reply may predate a change made meanwhile
        d.fetched = asked
        d.entries = {e.name: e for e in entries}
        # Expired listings go now, not at their next lookup: memory stays bounded by
        # what was listed within the last attr-timeout.
        for other in self._dirs.values():
            if other.entries and other.fetched + self.ttl < asked:
                other.entries = {}

    def failed(self, parent: int) -> None:
        d = self._dirs.get(parent)
        if d is not None:
            d.listing = False

    def forget(self, ino: int) -> None:
        self._dirs.pop(ino, None)

    def _evict(self) -> None:
        # The directory listed longest ago goes (never listed: fetched=0, first).
        oldest = min(self._dirs, key=lambda k: self._dirs[k].fetched)
        del self._dirs[oldest]
