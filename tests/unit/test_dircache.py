"""gfs.client.dircache.DirCache: when a listing may answer a lookup."""

from __future__ import annotations

import pytest

from gfs.client import dircache
from gfs.client.dircache import DirCache
from gfs.proto import brick_pb2 as pb
from tests.unit.conftest import Clock


def entries(*names: bytes) -> list[pb.DirEntry]:
    return [pb.DirEntry(name=n, cookie=i + 3, attr=pb.Attr(size=i)) for i, n in enumerate(names)]


def test_two_lookups_in_a_row_list_the_directory(clock: Clock) -> None:
    d = DirCache(1.0, clock)
    assert not d.found(7)
    assert d.found(7)
    assert not d.found(7)  # a listing is under way
    asked = clock.now
    d.listed(7, entries(b"a", b"b"), eof=True, asked=asked)
    clock.now += 0.4
    hit = d.get(7, b"b")
    assert hit is not None and hit[0].attr.size == 1 and hit[1] == pytest.approx(0.4)
    assert d.get(7, b"zzz") is None  # never a negative answer
    assert d.get(8, b"a") is None
    clock.now += 0.6  # attr-timeout after the brick was asked
    assert d.get(7, b"a") is None


def test_a_change_through_the_mount_ends_every_listing(clock: Clock) -> None:
    d = DirCache(1.0, clock)
    d.found(7)
    d.found(7)
    asked = clock.now
    clock.now += 0.1
    d.changed()  # e.g. a write whose reply came before the listing's
    d.listed(7, entries(b"a"), eof=True, asked=asked)
    assert d.get(7, b"a") is None
    d.found(7)
    d.found(7)
    d.listed(7, entries(b"a"), eof=True, asked=clock.now)
    assert d.get(7, b"a") is not None
    clock.now += 0.1
    d.changed()
    assert d.get(7, b"a") is None
    d.found(7)
    clock.now += 0.1
    d.changed()
    assert not d.found(7)  # not in a row: a change came in between


def test_large_directories_and_no_timeout(clock: Clock) -> None:
    d = DirCache(1.0, clock)
    d.found(7)
    d.found(7)
    d.listed(7, entries(b"a"), eof=False, asked=clock.now)
    assert d.get(7, b"a") is not None  # a partial listing still answers its names
    clock.now += 2
    assert not d.found(7) and not d.found(7)  # not listed again for a while
    d.found(8)
    d.failed(8)
    off = DirCache(0.0, clock)
    assert not off.found(7) and not off.found(7)


def test_bounded(clock: Clock) -> None:
    d = DirCache(1.0, clock)
    for ino in range(dircache.MAX_DIRS + 50):
        d.found(ino)
    assert len(d) <= dircache.MAX_DIRS
    d.found(1)
    d.found(1)
    d.listed(1, entries(b"a"), eof=True, asked=clock.now)
    clock.now += 2
    d.found(2)
    d.found(2)
    d.listed(2, entries(b"b"), eof=True, asked=clock.now)
    assert d._dirs[1].entries == {}  # an expired listing is dropped when another comes
