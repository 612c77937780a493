"""The write-behind buffer: coalescing, bounds, the delay and deferred errors, in-process
with a fake send and a clock passed in."""

from __future__ import annotations

import errno

import pytest
import trio

from gfs.client.remote import RemoteError
from gfs.client.writebehind import Extents, WriteBehind


def test_adjacent_and_overlapping_writes_coalesce() -> None:
    e = Extents()
    assert e.add(0, b"aaaa", 1.0) == 4
    assert e.add(4, b"bbbb", 2.0) == 4  # touching: one range
    assert e.add(2, b"XX", 3.0) == 0  # inside: newer bytes win, no growth
    assert e.add(20, b"zz", 3.0) == 2  # apart: a second range
    assert e.size == 10 and e.end == 22 and e.since == 1.0
    assert e.take() == [(0, b"aaXXbbbb"), (20, b"zz")]
    assert not e and e.size == 0 and e.since is None


def test_a_write_spanning_several_ranges_joins_them() -> None:
    e = Extents()
    for off in (0, 10, 20, 30):
        e.add(off, b"ab", 0.0)
    e.add(1, b"-" * 20, 0.0)  # from inside the first range to inside the third
    assert e.take() == [(0, b"a" + b"-" * 20 + b"b"), (30, b"ab")]


def test_a_write_before_every_range_and_one_covering_all() -> None:
    e = Extents()
    e.add(10, b"cc", 0.0)
    e.add(0, b"aa", 0.0)
    assert e.starts == [0, 10]
    e.add(0, b"Z" * 16, 0.0)
    assert e.take() == [(0, b"Z" * 16)]


def test_due_after_the_delay_from_the_oldest_byte() -> None:
    e = Extents()
    assert not e.due(100.0, 0.05)
    e.add(0, b"x", 10.0)
    e.add(1, b"y", 10.04)
    assert not e.due(10.049, 0.05)
    assert e.due(10.05, 0.05)


class FakeBricks:
    def __init__(self, fail: int = 0, short: bool = False) -> None:
        self.calls: list[tuple[int, int, bytes]] = []
        self.file = bytearray()
        self.fail = fail
        self.short = short

    async def send(self, fh: int, offset: int, data: bytes) -> int:
        await trio.sleep(0)
        self.calls.append((fh, offset, data))
        if self.fail:
            raise RemoteError(self.fail, "Write")
        n = len(data) // 2 if self.short else len(data)
        end = offset + n
        if len(self.file) < end:
            self.file.extend(b"\0" * (end - len(self.file)))
        self.file[offset:end] = data[:n]
        return n


def run(fn: object) -> None:
    trio.run(fn)  # type: ignore[arg-type]


def test_small_writes_go_as_one_send_at_flush() -> None:
    b = FakeBricks()
    now = [0.0]
    wb = WriteBehind(b.send, clock=lambda: now[0])

    async def main() -> None:
        wb.open(7, ino=1)
        for i in range(64):
            assert await wb.write(7, i * 4096, bytes([i]) * 4096) == 4096
        assert b.calls == [] and wb.total == 64 * 4096 and wb.dirty(1) and not wb.dirty(2)
        await wb.settle(7)
        assert len(b.calls) == 1 and b.calls[0][1] == 0 and len(b.calls[0][2]) == 64 * 4096
        assert wb.total == 0 and not wb.dirty()

    run(main)
    assert bytes(b.file) == b"".join(bytes([i]) * 4096 for i in range(64))


def test_per_handle_bound_sends_without_waiting_for_close() -> None:
    b = FakeBricks()
    wb = WriteBehind(b.send, per_handle=16384, clock=lambda: 0.0)

    async def main() -> None:
        wb.open(1, ino=1)
        for i in range(4):
            await wb.write(1, i * 4096, b"x" * 4096)
        # no timer running: the bound itself sent the buffer
        assert [len(d) for _, _, d in b.calls] == [16384] and wb.total == 0
        assert await wb.write(1, 0, b"y" * 32768) == 32768  # larger than the bound: through
        assert len(b.calls) == 2

    run(main)


def test_total_bound_over_handles() -> None:
    b = FakeBricks()
    wb = WriteBehind(b.send, per_handle=1 << 20, total=8192, clock=lambda: 0.0)

    async def main() -> None:
        wb.open(1, ino=1)
        wb.open(2, ino=2)
        await wb.write(1, 0, b"a" * 4096)
        await wb.write(2, 0, b"b" * 4096)
        assert wb.total == 0 and len(b.calls) == 2  # the writer that crossed it waited

    run(main)


def test_timer_sends_after_the_delay() -> None:
    b = FakeBricks()
    wb = WriteBehind(b.send, delay=0.05)

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(wb.run)
            await trio.sleep(0)
            wb.open(1, ino=1)
            start = trio.current_time()
            await wb.write(1, 0, b"x" * 100)
            with trio.fail_after(5):
                while not b.calls:
                    await trio.sleep(0.005)
            assert trio.current_time() - start >= 0.05
            n.cancel_scope.cancel()

    run(main)


@pytest.mark.parametrize(("fail", "short", "code"), [(errno.EDQUOT, False, errno.EDQUOT),
                                                     (0, True, errno.ENOSPC)])  # fmt: skip
def test_failed_send_is_reported_once_at_settle(fail: int, short: bool, code: int) -> None:
    b = FakeBricks(fail=fail, short=short)
    wb = WriteBehind(b.send, clock=lambda: 0.0)

    async def main() -> None:
        wb.open(1, ino=1)
        await wb.write(1, 0, b"x" * 10)
        await wb.flush_inode(1)  # getattr's flush: the error stays with the handle
        with pytest.raises(RemoteError) as e:
            await wb.settle(1)
        assert e.value.errno == code
        await wb.settle(1)  # reported once, like a write error at close
        await wb.release(1)
        assert 1 not in wb.handles

    run(main)


def test_next_write_reports_a_deferred_error() -> None:
    b = FakeBricks(fail=errno.ENOSPC)
    wb = WriteBehind(b.send, clock=lambda: 0.0)

    async def main() -> None:
        wb.open(1, ino=1)
        await wb.write(1, 0, b"x")
        await wb.flush_all()
        with pytest.raises(RemoteError) as e:
            await wb.write(1, 1, b"y")
        assert e.value.errno == errno.ENOSPC

    run(main)


def test_another_handle_of_the_file_goes_first() -> None:
    b = FakeBricks()
    wb = WriteBehind(b.send, clock=lambda: 0.0)

    async def main() -> None:
        wb.open(1, ino=5)
        wb.open(2, ino=5)
        await wb.write(1, 0, b"old")
        await wb.write(2, 0, b"new")  # sends handle 1's bytes before it buffers
        await wb.settle(2)

    run(main)
    assert bytes(b.file) == b"new"
    assert [fh for fh, _, _ in b.calls] == [1, 2]


def test_unbuffered_handle_writes_through() -> None:
    b = FakeBricks()
    wb = WriteBehind(b.send, clock=lambda: 0.0)

    async def main() -> None:
        assert await wb.write(9, 0, b"abc") == 3
        assert b.calls == [(9, 0, b"abc")]

    run(main)


def test_mount_option_and_volume_option() -> None:
    from gfs.client.options import UsageError, apply_volume_options, parse_argv

    src = ["127.0.0.1:24100:/v", "/mnt"]
    assert parse_argv([*src, "-o", "write-behind=on"]).write_behind
    assert not parse_argv([*src, "-o", "write-behind=off"]).write_behind
    with pytest.raises(UsageError):
        parse_argv([*src, "-o", "write-behind=yes"])
    opts = parse_argv(src)
    apply_volume_options(opts, {"performance.write-behind": "on"})
    assert opts.write_behind
    opts = parse_argv([*src, "-o", "write-behind=off"])  # the command line wins
    apply_volume_options(opts, {"performance.write-behind": "on"})
    assert not opts.write_behind
