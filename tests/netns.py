"""Test hosts in network namespaces: a bridge in the root namespace and one namespace
per node joined to it by a veth pair, on a private subnet that exists only here (no
route out). Processes enter a node with `nsenter --net` (not `ip netns exec`, which
also unshares mounts). `cut` drops a node's traffic to chosen addresses with
blackhole routes; `mend` removes them."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster import Cluster
from tests.procs import BrickDaemon, Gfsd
from tests.replicas import start_demo


def ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "-n", ns, *args] if ns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


@dataclass
class Net:
    tag: str
    prefix: str  # "10.231.N"
    nodes: list[str] = field(default_factory=list)  # namespace names

    @property
    def bridge_ip(self) -> str:
        return f"{self.prefix}.1"

    def node_ip(self, i: int) -> str:
        return f"{self.prefix}.{10 + i}"

    def wrap(self, i: int) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.nodes[i]}"]

    def cut(self, i: int, addresses: list[str]) -> None:
        for a in addresses:
            ip("route", "add", "blackhole", f"{a}/32", ns=self.nodes[i])

    def mend(self, i: int, addresses: list[str]) -> None:
        for a in addresses:
            ip("route", "del", "blackhole", f"{a}/32", ns=self.nodes[i])


@contextmanager
def network(count: int, prefix: str = "10.231.5") -> Iterator[Net]:
    tag = uuid.uuid4().hex[:5]
    net = Net(tag, prefix)
    bridge = f"gb{tag}"
    made: list[str] = []
    try:
        ip("link", "add", bridge, "type", "bridge")
        made.append(bridge)
        ip("addr", "add", f"{net.bridge_ip}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for i in range(count):
            ns, host_end, ns_end = f"gn{tag}{i}", f"gh{tag}{i}", f"gv{tag}{i}"
            ip("netns", "add", ns)
            net.nodes.append(ns)
            ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            made.append(host_end)
            ip("link", "set", ns_end, "netns", ns)
            ip("link", "set", host_end, "master", bridge)
            ip("link", "set", host_end, "up")
            ip("addr", "add", f"{net.node_ip(i)}/24", "dev", ns_end, ns=ns)
            ip("link", "set", ns_end, "up", ns=ns)
            ip("link", "set", "lo", "up", ns=ns)
        yield net
    finally:
        for link in reversed(made):
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10)
        for ns in net.nodes:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


@contextmanager
def demo_on(net: Net, tmp: Path, in_namespaces: bool) -> Iterator[Cluster]:
    """gfsd on the bridge and three brick daemons, each in its node's namespace
    (`in_namespaces`) or on the bridge too, with the started replica-3 volume `demo`."""
    g = Gfsd(tmp / "gfsd", tmp / "gfsd.log", host=net.bridge_ip)
    nodes: list[BrickDaemon] = []
    roots: list[Path] = []
    try:
        for i in range(3):
            root = tmp / f"n{i}" / "root"
            root.mkdir(parents=True)
            roots.append(root)
            nodes.append(
                BrickDaemon(
                    {f"boot{i}": tmp / f"n{i}" / "boot"},
                    tmp / f"n{i}.log",
                    ["--root", str(root), "--zone", f"z{i}"],
                    host=net.node_ip(i) if in_namespaces else net.bridge_ip,
                    wrap=net.wrap(i) if in_namespaces else None,
                ).start()
            )
        g.start()
        c = Cluster(g, nodes, roots)
        with c.client() as api:
            for d in nodes:
                api.peer_add(d.address)
            start_demo(api, "100MiB")
        yield c
    finally:
        g.stop()
        for d in nodes:
            d.stop()
