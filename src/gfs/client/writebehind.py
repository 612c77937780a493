"""Write-behind: small writes to an open file are answered at once, kept here and sent
later as fewer, larger writes (docs/architecture.md, "Write-behind").

`Extents` is the coalescing buffer of one handle (no I/O, a clock passed in);
`WriteBehind` holds one per handle, sends them through the remote and keeps the error
of a failed send until the handle's next write, flush, fsync or release reports it.
Everything that must see the data first (reads, attributes, truncation, locks, close)
calls `flush_inode`, `flush_all` or `settle` in ops.py before it asks the brick.
"""

from __future__ import annotations

import bisect
import errno
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from gfs.client.remote import RemoteError

log = logging.getLogger(__name__)

#: Bytes buffered per handle before they are sent.
PER_HANDLE = 1 << 20
#: Bytes buffered by the whole mount before writers wait for a send.
TOTAL = 16 << 20
#: Seconds buffered data may wait for more before it is sent.
DELAY = 0.05
#: Writes in flight at once for one handle (disjoint ranges of one send).
PARALLEL = 16


class Extents:
    """Disjoint, sorted byte ranges; a write that overlaps or touches a range joins it
    (the newer bytes win), so a send is one write per contiguous run."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.data: list[bytearray] = []
        self.size = 0
        #: clock value of the oldest byte still buffered, or None when empty
        self.since: float | None = None

    def __bool__(self) -> bool:
        return bool(self.starts)

    @property
    def end(self) -> int:
        """One past the last buffered byte (0 when empty)."""
        return self.starts[-1] + len(self.data[-1]) if self.starts else 0

    def add(self, offset: int, buf: bytes, now: float) -> int:
        """Buffer `buf` at `offset`; the growth of `size` in bytes."""
        if not buf:
            return 0
        end = offset + len(buf)
        # the first range that may touch [offset, end]: the last one starting at or before
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        while i < len(self.starts) and self.starts[i] + len(self.data[i]) < offset:
            i += 1
        j = i
        while j < len(self.starts) and self.starts[j] <= end:
            j += 1
        before = self.size
        if i == j:
            self.starts.insert(i, offset)
            self.data.insert(i, bytearray(buf))
            self.size += len(buf)
        else:
            lo = min(self.starts[i], offset)
            hi = max(self.starts[j - 1] + len(self.data[j - 1]), end)
            merged = bytearray(hi - lo)
            for k in range(i, j):
                s = self.starts[k] - lo
                merged[s : s + len(self.data[k])] = self.data[k]
                self.size -= len(self.data[k])
            merged[offset - lo : end - lo] = buf
            self.starts[i:j] = [lo]
            self.data[i:j] = [merged]
            self.size += len(merged)
        if self.since is None:
            self.since = now
        return self.size - before

    def due(self, now: float, delay: float) -> bool:
        return self.since is not None and now - self.since >= delay

    def take(self) -> list[tuple[int, bytes]]:
        """Every range, emptying the buffer."""
        out = [(s, bytes(d)) for s, d in zip(self.starts, self.data, strict=True)]
        self.starts, self.data, self.size, self.since = [], [], 0, None
        return out


@dataclass
class _Handle:
    ino: int
    buf: Extents = field(default_factory=Extents)
    #: one send at a time per handle, so a later send never lands under an earlier one
    lock: trio.Lock = field(default_factory=trio.Lock)
    #: errno of a send that failed, reported once by the handle's next call
    error: int = 0


Send = Callable[[int, int, bytes], Awaitable[int]]


class WriteBehind:
    def __init__(
        self,
        send: Send,
        *,
        per_handle: int = PER_HANDLE,
        total: int = TOTAL,
        delay: float = DELAY,
        parallel: int = PARALLEL,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        """`send(fh, offset, data)`: one write to the bricks, the bytes written."""
        self.send = send
        self.per_handle = per_handle
        self.total_limit = total
        self.delay = delay
        self.parallel = parallel
        self.clock = clock
        self.handles: dict[int, _Handle] = {}
        self.total = 0
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- handles -----------------------------------------------------------------------------

    def open(self, fh: int, ino: int) -> None:
        self.handles[fh] = _Handle(ino)

    def dirty(self, ino: int | None = None) -> bool:
        return any(
            (h.buf or h.lock.locked()) and (ino is None or h.ino == ino)
            for h in self.handles.values()
        )

    # -- writes ------------------------------------------------------------------------------

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self.handles.get(fh)
        if h is None:  # not buffered (O_APPEND, O_SYNC, ...)
            return await self.send(fh, offset, data)
        self._report(h)
        # Another handle's bytes of this file go first: they were written first.
        for other_fh, other in list(self.handles.items()):
            if other is not h and other.ino == h.ino and (other.buf or other.lock.locked()):
                await self._flush(other_fh, other)
        if len(data) >= self.per_handle:
            await self._flush(fh, h)
            self._report(h)
            return await self.send(fh, offset, data)
        self.total += h.buf.add(offset, data, self.clock())
        if self.total >= self.total_limit:
            await self.flush_all()  # the mount holds too much: the writer waits for it
        elif h.buf.size >= self.per_handle:
            if h.lock.locked() or self._nursery is None:
                await self._flush(fh, h)  # the previous send is still out: wait for it
            else:
                self._nursery.start_soon(self._flush, fh, h)
        self._wake.set()
        return len(data)

    async def _flush(self, fh: int, h: _Handle) -> None:
        """Send what `h` holds (after any send already out); a failure is kept in
        `h.error`."""
        async with h.lock:
            ranges = h.buf.take()
            if not ranges:
                return
            self.total -= sum(len(d) for _, d in ranges)
            limit = trio.CapacityLimiter(self.parallel)

            async def one(offset: int, data: bytes) -> None:
                async with limit:
                    try:
                        n = await self.send(fh, offset, data)
                    except RemoteError as e:
                        h.error = h.error or e.errno
                        log.warning(
                            "op=write-behind failed fh=%d offset=%d size=%d errno=%d",
                            fh, offset, len(data), e.errno,
                        )  # fmt: skip
                        return
                    if n < len(data):  # a short write is the brick running out of room
                        h.error = h.error or errno.ENOSPC

            try:
                if len(ranges) == 1:
                    await one(*ranges[0])
                else:
                    async with trio.open_nursery() as n:
                        for offset, data in ranges:
                            n.start_soon(one, offset, data)
            finally:
                self._wake.set()  # the timer looks again at what came in meanwhile

    def _report(self, h: _Handle) -> None:
        if h.error:
            code, h.error = h.error, 0
            raise RemoteError(code, "write-behind")

    # -- what must see the data first ------------------------------------------------------

    async def flush_inode(self, ino: int) -> None:
        """Send every handle's buffered bytes of `ino` (errors stay with the handles)."""
        for fh, h in list(self.handles.items()):
            if h.ino == ino:
                await self._flush(fh, h)

    async def flush_all(self) -> None:
        for fh, h in list(self.handles.items()):
            await self._flush(fh, h)

    async def settle(self, fh: int) -> None:
        """Send the handle's file, then report its deferred error: flush, fsync, release."""
        h = self.handles.get(fh)
        if h is None:
            return
        await self.flush_inode(h.ino)
        self._report(h)

    async def release(self, fh: int) -> None:
        try:
            await self.settle(fh)
        finally:
            self.handles.pop(fh, None)

    # -- the timer ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send buffers once they waited `delay` (so no data sits forever)."""
        async with trio.open_nursery() as n:
            self._nursery = n
            try:
                while True:
                    now = self.clock()
                    oldest = math.inf
                    for fh, h in list(self.handles.items()):
                        if h.buf.since is None or h.lock.locked():
                            continue
                        if h.buf.due(now, self.delay):
                            n.start_soon(self._flush, fh, h)
                        else:
                            oldest = min(oldest, h.buf.since)
                    self._wake = trio.Event()
                    if oldest == math.inf:
                        await self._wake.wait()  # nothing waits: until a write or a send ends
                    else:
                        with trio.move_on_after(max(oldest + self.delay - self.clock(), 0.001)):
                            await self._wake.wait()
            finally:
                self._nursery = None
