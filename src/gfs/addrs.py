"""Client address rules of the volume options `auth.allow` and `auth.reject`.

A rule list is comma-separated; each rule is `*` (every address), an IPv4 or IPv6
address, a network in CIDR form (`10.0.0.0/8`, `fd00::/8`), or a GlusterFS-style
IPv4 wildcard where `*` stands for whole octets (`192.168.1.*`). Host names are not
taken: a name's addresses change behind the rule's back. A caller is admitted when
it matches `auth.allow` (empty: everyone) and does not match `auth.reject`; reject wins.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rules:
    every: bool
    networks: tuple[Network, ...]

    def matches(self, address: str) -> bool:
        if self.every:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an IP peer (a unix socket): no rule names it
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        return any(ip in n for n in self.networks if n.version == ip.version)


def _one(rule: str) -> Network | None:
    """The network of one rule; None for `*`."""
    if rule == "*":
        return None
    if "*" in rule:
        octets = rule.split(".")
        stars = [o == "*" for o in octets]
        # only trailing whole octets may be wildcards: 10.1.*.*, not 10.*.1.2 or 10.1*
        fixed = stars.index(True) if True in stars else len(stars)
        if len(octets) != 4 or fixed == 0 or not all(stars[fixed:]):
            raise RuleError(
                f"{rule!r}: a wildcard stands for whole trailing octets, e.g. 192.168.1.*"
            )
        rule = ".".join(octets[:fixed] + ["0"] * (4 - fixed)) + f"/{8 * fixed}"
    try:
        return ipaddress.ip_network(rule, strict=False)
    except ValueError:
        raise RuleError(
            f"{rule!r} is not an address, a CIDR network or a wildcard like 192.168.1.*"
            " (host names are not accepted)"
        ) from None


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Rules:
    """Rules from an option value; RuleError saying which entry is wrong."""
    rules = [r.strip() for r in text.split(",") if r.strip()]
    nets = [_one(r) for r in rules]
    return Rules(every=None in nets, networks=tuple(n for n in nets if n is not None))


def normalize(text: str) -> str:
    """The option value as stored: entries checked, spaces dropped."""
    parse(text)
    return ",".join(r.strip() for r in text.split(",") if r.strip())


def admitted(address: str, allow: Iterable[str], reject: Iterable[str]) -> bool:
    allow, reject = list(allow), list(reject)
    if reject and parse(",".join(reject)).matches(address):
        return False
    return not allow or parse(",".join(allow)).matches(address)


def peer_host(peer: str) -> str:
    """The address in a gRPC peer string: ipv4:10.0.0.1:5000, ipv6:[::1]:5000."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        host = rest.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") else host
    return ""


def address_host(address: str) -> str:
    """The host of a `host:port` address: 10.0.0.1:24007, [::1]:24007."""
    host = address.rpartition(":")[0]
    return host[1:-1] if host.startswith("[") else host
