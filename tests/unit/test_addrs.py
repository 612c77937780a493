from __future__ import annotations

import pytest

from gfs import addrs


@pytest.mark.parametrize(
    ("allow", "reject", "address", "admitted"),
    [
        ("", "", "10.0.0.1", True),
        ("*", "", "10.0.0.1", True),
        ("10.0.0.0/8", "", "10.2.3.4", True),
        ("10.0.0.0/8", "", "192.168.1.1", False),
        ("192.168.1.*", "", "192.168.1.77", True),
        ("192.168.1.*", "", "192.168.2.77", False),
        ("10.*.*.*", "", "10.9.9.9", True),
        ("*", "10.0.0.5", "10.0.0.5", False),  # reject wins
        ("10.0.0.5", "10.0.0.0/24", "10.0.0.5", False),
        ("10.0.0.5,10.0.0.6", "", "10.0.0.6", True),
        ("::1", "", "::1", True),
        ("fd00::/8", "", "fd12::1", True),
        ("10.0.0.1", "", "::ffff:10.0.0.1", True),  # an IPv4-mapped peer is its IPv4 address
        ("10.0.0.0/8", "", "", False),  # not an IP peer: no rule names it
        ("*", "", "", True),
    ],
)
def test_rules(allow: str, reject: str, address: str, admitted: bool) -> None:
    a = [allow] if allow else []
    r = [reject] if reject else []
    assert addrs.admitted(address, a, r) is admitted


@pytest.mark.parametrize(
    "bad", ["host.example", "10.*.1.2", "10.1*", "*.1.2.3", "10.0.0.0/33", "1.2.3"]
)
def test_bad_rules_say_which_entry(bad: str) -> None:
    with pytest.raises(addrs.RuleError, match=r"not an address|wildcard"):
        addrs.normalize(f"10.0.0.1, {bad}")


def test_normalize_and_peer_host() -> None:
    assert addrs.normalize(" 10.0.0.1 , 192.168.1.* ,") == "10.0.0.1,192.168.1.*"
    assert addrs.peer_host("ipv4:10.1.2.3:4567") == "10.1.2.3"
    assert addrs.peer_host("ipv6:[::1]:4567") == "::1"
    assert addrs.peer_host("unix:/tmp/x") == ""
