"""An fsx-style random-operation data tester (in the spirit of xfstests' fsx, written anew).

One file is driven by random operations chosen with weights — pwrite, pread, truncate,
mmap reads and writes, fallocate in every mode, copy_file_range, fsync, close and reopen,
SEEK_DATA/SEEK_HOLE — while an in-memory model (a bytearray) says what it must hold.
After every operation the whole file (size and every byte) is read back and compared
with the model. A failure raises FsxFailure naming the seed, the operation number, the
tail of the operation log and the first differing offset, so `--seed N` replays it.

    python -m tests.fsx PATH --seed N --ops N [--budget SECONDS] [--max-size BYTES]
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import errno
import logging
import mmap
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

log = logging.getLogger("tests.fsx")

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 4 * KiB  # the alignment of "aligned" operations (and of collapse/insert)
PAGE = mmap.PAGESIZE

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) itself: posix_fallocate(3) would emulate what the fs refuses."""
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# fallocate modes, by operation name
FALLOC_OPS = {
    "falloc": 0,
    "falloc_keep": FALLOC_FL_KEEP_SIZE,
    "punch_hole": FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
    "zero_range": FALLOC_FL_ZERO_RANGE,
    "zero_range_keep": FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
    "collapse_range": FALLOC_FL_COLLAPSE_RANGE,
    "insert_range": FALLOC_FL_INSERT_RANGE,
}

# relative weights of the operations
WEIGHTS = {
    "write": 12,
    "read": 10,
    "truncate": 4,
    "mapread": 5,
    "mapwrite": 5,
    "falloc": 2,
    "falloc_keep": 2,
    "punch_hole": 3,
    "zero_range": 2,
    "zero_range_keep": 2,
    "collapse_range": 2,
    "insert_range": 2,
    "copy_within": 3,
    "copy_from": 3,
    "fsync": 1,
    "reopen": 1,
    "seek": 3,
}

NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.ENOSYS)


class FsxFailure(AssertionError):
    """The file differs from the model, or an operation failed: everything to replay it."""


@dataclass
class Stats:
    ops: int = 0
    seconds: float = 0.0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    disabled: dict[str, str] = field(default_factory=dict)  # op -> why

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def first_difference(a: bytes | bytearray, b: bytes | bytearray) -> int:
    """The first offset at which a and b differ (the shorter length if one is a prefix)."""
    n = min(len(a), len(b))
    lo, hi = 0, n
    # bisect on slices: comparing big slices is memcmp, a Python loop over bytes is not
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return n


def _zero(buf: bytearray, start: int, end: int) -> None:
    if end > start:
        buf[start:end] = bytes(end - start)


class Fsx:
    """Random operations on `path` checked against a model; `run()` returns Stats.

    `ops` operations at most, and no new operation once `budget` seconds have passed.
    The file is at most `max_size` bytes; a second file (`path` + ".src") is the other
    source of copy_file_range."""

    def __init__(
        self,
        path: Path,
        seed: int,
        ops: int,
        budget: float | None = None,
        max_size: int = 1 * MiB,
        max_op: int = 128 * KiB,
        weights: dict[str, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.src_path = self.path.with_name(self.path.name + ".src")
        self.seed = seed
        self.nops = ops
        self.budget = budget
        self.max_size = max_size
        self.max_op = max_op
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.rng = random.Random(seed)
        self.model = bytearray()
        self.src_model = b""
        self.fd = -1
        self.src_fd = -1
        self.opno = 0
        self.last_range = (0, 0)  # of the operation under way, for a failure's log line
        self.history: collections.deque[str] = collections.deque(maxlen=20)
        self.stats = Stats()
        self.ops: dict[str, Callable[[], str]] = {
            "write": self.op_write,
            "read": self.op_read,
            "truncate": self.op_truncate,
            "mapread": self.op_mapread,
            "mapwrite": self.op_mapwrite,
            "copy_within": self.op_copy_within,
            "copy_from": self.op_copy_from,
            "fsync": self.op_fsync,
            "reopen": self.op_reopen,
            "seek": self.op_seek,
            **{name: self._falloc_op(name) for name in FALLOC_OPS},
        }

    # -- running ------------------------------------------------------------------

    def run(self) -> Stats:
        start = time.monotonic()
        self._open(create=True)
        try:
            self._probe()
            names = [n for n in self.weights if n not in self.stats.disabled and self.weights[n]]
            weights = [self.weights[n] for n in names]
            deadline = None if self.budget is None else start + self.budget
            for opno in range(1, self.nops + 1):
                if deadline is not None and time.monotonic() > deadline:
                    break
                self.opno = opno
                name = self.rng.choices(names, weights)[0]
                try:
                    what = self.ops[name]()
                except OSError as e:
                    off, n = self.last_range
                    self._fail(
                        f"{name} failed: {e!r}", f"#{self.opno} {name} {off:#x} +{n:#x} (failed)"
                    )
                self.history.append(f"#{self.opno} {what} -> size {len(self.model)}")
                self.stats.counts[name] += 1
                try:
                    self.verify()
                except OSError as e:
                    self._fail(f"reading the file back failed: {e!r}")
                if opno % 10_000 == 0:
                    log.info("fsx seed %d: %d ops", self.seed, opno)
            self.stats.ops = self.opno
        finally:
            self._close()
            self.stats.seconds = time.monotonic() - start
        log.info(
            "fsx seed %d: %d ops in %.1f s (%.0f ops/s) on %s",
            self.seed,
            self.stats.ops,
            self.stats.seconds,
            self.stats.ops_per_second,
            self.path,
        )
        return self.stats

    def _open(self, create: bool = False) -> None:
        flags = os.O_RDWR | os.O_CLOEXEC
        if create:
            self.fd = os.open(self.path, flags | os.O_CREAT | os.O_TRUNC, 0o644)
            self.src_model = self.rng.randbytes(self.rng.randint(1, self.max_size // 2))
            self.src_path.write_bytes(self.src_model)
        else:
            self.fd = os.open(self.path, flags)
        self.src_fd = os.open(self.src_path, os.O_RDONLY | os.O_CLOEXEC)

    def _close(self) -> None:
        for fd in (self.fd, self.src_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.src_fd = -1

    def _probe(self) -> None:
        """Try each fallocate mode once on a scratch file: an fs that refuses one
        (EOPNOTSUPP) loses that operation, and says so."""
        probe = self.path.with_name(self.path.name + ".probe")
        for name, mode in FALLOC_OPS.items():
            if not self.weights.get(name):
                continue
            fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.pwrite(fd, b"p" * (3 * BLOCK), 0)
                fallocate(fd, mode, BLOCK, BLOCK)
            except OSError as e:
                if e.errno not in NOT_SUPPORTED:
                    raise
                why = f"fallocate mode {mode:#x} refused: {errno.errorcode[e.errno]}"
                self.stats.disabled[name] = why
                log.warning("fsx: %s disabled on %s (%s)", name, self.path.parent, why)
            finally:
                os.close(fd)
        probe.unlink()

    # -- checking -----------------------------------------------------------------

    def _read_all(self, n: int) -> bytes:
        parts = []
        off = 0
        while True:
            chunk = os.pread(self.fd, n + 1 - off, off)
            if not chunk:
                break
            parts.append(chunk)
            off += len(chunk)
            if off > n:
                break
        return b"".join(parts)

    def verify(self) -> None:
        """The file's size and every byte equal the model's."""
        size = os.fstat(self.fd).st_size
        if size != len(self.model):
            self._fail(f"size {size}, the model says {len(self.model)}")
        got = self._read_all(len(self.model))
        if got != self.model:
            self._fail(
                f"contents differ (read {len(got)} bytes of {len(self.model)})",
                at=first_difference(got, self.model),
                got=got,
            )

    def _fail(self, what: str, last: str = "", at: int | None = None, got: bytes = b"") -> NoReturn:
        lines = [
            f"fsx: {what}",
            f"  file {self.path}, seed {self.seed}, operation #{self.opno}",
            f"  replay: python -m tests.fsx PATH --seed {self.seed} --ops {self.opno}"
            f" --max-size {self.max_size}",
        ]
        if at is not None:
            lines.append(
                f"  first difference at offset {at:#x} ({at}): file {got[at : at + 16].hex()}"
                f", model {bytes(self.model[at : at + 16]).hex()}"
            )
        lines.append("  last operations:")
        lines += [f"    {h}" for h in self.history]
        if last:
            lines.append(f"    {last}")
        raise FsxFailure("\n".join(lines))

    # -- ranges -------------------------------------------------------------------

    def _length(self) -> int:
        r = self.rng.random()
        top = 512 if r < 0.3 else 16 * KiB if r < 0.7 else self.max_op
        return self.rng.randint(1, top)

    def _range(self, end: int, aligned: bool | None = None) -> tuple[int, int]:
        """(offset, length) with offset + length <= end (end > 0): half of them 4 KiB
        aligned, the others anywhere."""
        if aligned is None:
            aligned = self.rng.random() < 0.5
        n = self._length()
        if aligned and end >= BLOCK:
            off = self.rng.randrange(end // BLOCK) * BLOCK
            n = max(BLOCK, n // BLOCK * BLOCK)
        else:
            off = self.rng.randrange(end)
        self.last_range = off, max(1, min(n, end - off))
        return self.last_range

    def _model_write(self, off: int, data: bytes) -> None:
        if off > len(self.model):
            self.model.extend(bytes(off - len(self.model)))
        self.model[off : off + len(data)] = data

    def _grow(self, size: int) -> None:
        if size > len(self.model):
            self.model.extend(bytes(size - len(self.model)))

    # -- operations: each returns its log line ------------------------------------

    def op_write(self) -> str:
        off, n = self._range(self.max_size)
        data = self.rng.randbytes(n)
        done = 0
        while done < n:
            done += os.pwrite(self.fd, data[done:], off + done)
        self._model_write(off, data)
        return f"write {off:#x} +{n:#x}"

    def op_read(self) -> str:
        off, n = self._range(len(self.model) + BLOCK)
        got = os.pread(self.fd, n, off)
        want = bytes(self.model[off : off + n])
        if got != want:
            self._fail(
                f"pread {off:#x} +{n:#x}: {len(got)} bytes, the model has {len(want)}",
                f"#{self.opno} read {off:#x} +{n:#x}",
                at=off + first_difference(got, want),
                got=bytes(off) + got,
            )
        return f"read {off:#x} +{n:#x}"

    def op_truncate(self) -> str:
        if self.rng.random() < 0.5:
            size = self.rng.randrange(self.max_size // BLOCK + 1) * BLOCK
        else:
            size = self.rng.randrange(self.max_size + 1)
        self.last_range = size, 0
        os.ftruncate(self.fd, size)
        del self.model[size:]
        self._grow(size)
        return f"truncate {size:#x}"

    def _map(self, off: int, n: int, access: int) -> tuple[mmap.mmap, int]:
        """A shared map of [off, off + n) (maps start on a page): (the map, off in it)."""
        start = off // PAGE * PAGE
        return mmap.mmap(self.fd, off + n - start, access=access, offset=start), off - start

    def op_mapread(self) -> str:
        if not self.model:
            return "mapread skipped (empty file)"
        off, n = self._range(len(self.model))
        m, at = self._map(off, n, mmap.ACCESS_READ)
        with m:
            got = m[at : at + n]
        want = bytes(self.model[off : off + n])
        if got != want:
            self._fail(
                f"mmap read {off:#x} +{n:#x} differs",
                f"#{self.opno} mapread {off:#x} +{n:#x}",
                at=off + first_difference(got, want),
                got=bytes(off) + got,
            )
        return f"mapread {off:#x} +{n:#x}"

    def op_mapwrite(self) -> str:
        off, n = self._range(self.max_size)
        data = self.rng.randbytes(n)
        grew = ""
        if off + n > len(self.model):
            # a map cannot extend a file: stores past the end are lost
            os.ftruncate(self.fd, off + n)
            self._grow(off + n)
            grew = f" (truncate {off + n:#x} first)"
        m, at = self._map(off, n, mmap.ACCESS_WRITE)
        with m:
            m[at : at + n] = data
            m.flush()  # msync(MS_SYNC)
        self._model_write(off, data)
        return f"mapwrite {off:#x} +{n:#x}{grew}"

    def _falloc_op(self, name: str) -> Callable[[], str]:
        mode = FALLOC_OPS[name]

        def op() -> str:
            size = len(self.model)
            if mode == FALLOC_FL_COLLAPSE_RANGE:
                # block aligned, and must end before the end of the file
                blocks = (size - 1) // BLOCK if size else 0
                if blocks < 1:
                    return f"{name} skipped (size {size:#x})"
                k = self.rng.randrange(blocks)
                off, n = k * BLOCK, self.rng.randint(1, blocks - k) * BLOCK
                self.last_range = off, n
            elif mode == FALLOC_FL_INSERT_RANGE:
                room = (self.max_size - size) // BLOCK
                if not size or room < 1:
                    return f"{name} skipped (size {size:#x})"
                off = self.rng.randrange((size - 1) // BLOCK + 1) * BLOCK
                n = self.rng.randint(1, min(room, max(1, self.max_op // BLOCK))) * BLOCK
                self.last_range = off, n
            else:
                off, n = self._range(self.max_size)
            fallocate(self.fd, mode, off, n)
            keep = mode & FALLOC_FL_KEEP_SIZE
            if mode == FALLOC_FL_COLLAPSE_RANGE:
                del self.model[off : off + n]
            elif mode == FALLOC_FL_INSERT_RANGE:
                self.model[off:off] = bytes(n)
            elif mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
                if not keep:
                    self._grow(off + n)
                _zero(self.model, off, min(off + n, len(self.model)))
            elif not keep:
                self._grow(off + n)
            return f"{name} {off:#x} +{n:#x}"

        return op

    def _copy(self, src: int, off_in: int, off_out: int, n: int) -> None:
        done = 0
        while done < n:
            r = os.copy_file_range(src, self.fd, n - done, off_in + done, off_out + done)
            if r == 0:
                self._fail(
                    f"copy_file_range copied 0 bytes at {done:#x} of {n:#x}",
                    f"#{self.opno} copy {off_in:#x} -> {off_out:#x} +{n:#x}",
                )
            done += r

    def op_copy_within(self) -> str:
        size = len(self.model)
        if not size:
            return "copy_within skipped (empty file)"
        a, n = self._range(size)
        for _ in range(8):
            b = self._range(self.max_size - n + 1, aligned=a % BLOCK == 0)[0]
            if b + n <= a or a + n <= b:
                break
        else:
            return f"copy_within skipped (no room for {n:#x} beside {a:#x})"
        self._copy(self.fd, a, b, n)
        self._model_write(b, bytes(self.model[a : a + n]))
        return f"copy_within {a:#x} -> {b:#x} +{n:#x}"

    def op_copy_from(self) -> str:
        a, n = self._range(len(self.src_model))
        b = self._range(self.max_size - n + 1)[0]
        self._copy(self.src_fd, a, b, n)
        self._model_write(b, self.src_model[a : a + n])
        return f"copy_from src {a:#x} -> {b:#x} +{n:#x}"

    def op_fsync(self) -> str:
        os.fsync(self.fd)
        return "fsync"

    def op_reopen(self) -> str:
        self._close()
        self._open()
        return "close+reopen"

    def _seek(self, off: int, whence: int) -> int | None:
        try:
            return os.lseek(self.fd, off, whence)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            return None

    def op_seek(self) -> str:
        """SEEK_DATA/SEEK_HOLE may call data what the model knows are zeros (holes are the
        fs's business), but a hole they report must read as zeros and lie within the file."""
        size = len(self.model)
        off = self.rng.randrange(size + BLOCK)
        line = f"#{self.opno} seek {off:#x}"
        d = self._seek(off, os.SEEK_DATA)
        h = self._seek(off, os.SEEK_HOLE)
        if off >= size:
            if d is not None or h is not None:
                self._fail(f"SEEK_DATA {d}, SEEK_HOLE {h} at {off:#x} >= size: not ENXIO", line)
            return f"seek {off:#x}: past the end"
        if h is None or not off <= h <= size:
            self._fail(f"SEEK_HOLE at {off:#x} gave {h} (size {size:#x})", line)
        if d is None:
            if any(self.model[off:]):
                self._fail(f"SEEK_DATA at {off:#x}: ENXIO, but there is data", line)
            return f"seek {off:#x}: data none, hole {h:#x}"
        if not off <= d < size:
            self._fail(f"SEEK_DATA at {off:#x} gave {d:#x} (size {size:#x})", line)
        if any(self.model[off:d]):
            self._fail(f"SEEK_DATA at {off:#x} gave {d:#x}, skipping data", line)
        # the hole at h reaches the next data (or the end): zeros in the model
        nxt = self._seek(h, os.SEEK_DATA) if h < size else size
        end = size if nxt is None else nxt
        if any(self.model[h:end]):
            self._fail(f"SEEK_HOLE at {off:#x} gave {h:#x}, up to {end:#x}: not zeros", line)
        return f"seek {off:#x}: data {d:#x}, hole {h:#x}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fsx", description=__doc__.split("\n")[0])
    p.add_argument("path", type=Path, help="the file to test (created or truncated)")
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--ops", type=int, default=10_000)
    p.add_argument("--budget", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--max-size", type=int, default=1 * MiB)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seed = random.randrange(1 << 32) if args.seed is None else args.seed
    print(f"fsx seed {seed}", flush=True)
    try:
        stats = Fsx(args.path, seed, args.ops, args.budget, args.max_size).run()
    except FsxFailure as e:
        print(e, file=sys.stderr)
        return 1
    for name, why in stats.disabled.items():
        print(f"disabled: {name}: {why}")
    print(
        f"ok: {stats.ops} ops in {stats.seconds:.1f} s ({stats.ops_per_second:.0f} ops/s); "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items()))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
