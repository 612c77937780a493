"""gfs.client.capcache.XattrCache: what it may answer without asking a brick."""

from __future__ import annotations

from gfs.client.capcache import XattrCache
from tests.unit.conftest import Clock


def test_a_listing_answers_absent_names_until_it_expires(clock: Clock) -> None:
    x = XattrCache(1.0, clock)
    x.listed(5, [b"user.a"], asked=clock.now)
    assert x.known_absent(5, b"security.selinux")
    assert not x.known_absent(5, b"user.a")  # present: its value is asked for
    assert x.names(5) == [b"user.a"]
    assert not x.known_absent(6, b"security.selinux")  # another inode
    clock.now += 0.99
    assert x.known_absent(5, b"security.selinux")
    clock.now += 0.02  # the timeout counts from when the brick was asked
    assert not x.known_absent(5, b"security.selinux")
    assert x.names(5) is None
    assert len(x) == 0


def test_single_absences_and_a_stale_listing(clock: Clock) -> None:
    x = XattrCache(1.0, clock)
    x.absent(5, b"security.capability", asked=clock.now)
    assert x.known_absent(5, b"security.capability")
    assert not x.known_absent(5, b"user.a")
    assert x.names(5) is None
    x.listed(7, [b"security.capability"], asked=clock.now)
    x.absent(7, b"security.capability", asked=clock.now)  # a write dropped it
    assert x.known_absent(7, b"security.capability")
    assert x.names(7) is None  # the list is no longer trusted


def test_a_local_change_forgets_and_drops_replies_sent_before_it(clock: Clock) -> None:
    x = XattrCache(1.0, clock)
    asked = clock.now
    x.listed(5, [], asked=asked)
    clock.now += 0.1
    x.changed(5)
    assert not x.known_absent(5, b"user.a")
    x.listed(5, [], asked=asked)  # a reply that may predate the change
    x.absent(5, b"user.a", asked=asked)
    assert not x.known_absent(5, b"user.a")
    x.listed(5, [], asked=clock.now)
    assert x.known_absent(5, b"user.a")
    x.forget(5)
    assert not x.known_absent(5, b"user.a")


def test_no_timeout_no_cache(clock: Clock) -> None:
    x = XattrCache(0.0, clock)
    x.listed(5, [], asked=clock.now)
    x.absent(5, b"user.a", asked=clock.now)
    assert not x.known_absent(5, b"user.a")
    assert x.names(5) is None
