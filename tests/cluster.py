"""A local gfs cluster of real processes for tests: gfsd + N gfs-brickd with roots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gfs import certs
from gfs.api.client import Client
from tests.procs import BrickDaemon, Gfsd


@dataclass
class Cluster:
    gfsd: Gfsd
    nodes: list[BrickDaemon]
    roots: list[Path]
    #: the cluster CA folder (gfs certs), None when the cluster runs --insecure
    ca: Path | None = None

    def client(self, token: str | None = None) -> Client:
        return Client(self.gfsd.address, self.gfsd.token if token is None else token)


@contextmanager
def local_cluster(
    tmp: Path,
    db_url: str | None = None,
    bricks: int = 3,
    env: dict[int, dict[str, str]] | None = None,
    root_of: dict[int, Path] | None = None,
    brickd_args: Callable[[int], list[str]] | None = None,
    tls: bool = False,
) -> Iterator[Cluster]:
    """`env` and `root_of` override a node's environment and brick root (by node index);
    `brickd_args(i)`: more command-line arguments for brick daemon i. `tls`: a cluster CA
    in tmp/tls, certificates for gfsd (admin) and every node, mutual TLS everywhere, and
    gfsd signing volume credentials with that CA."""
    nodes: list[BrickDaemon] = []
    roots: list[Path] = []
    ca = tmp / "tls"
    if tls:
        certs.init_ca(ca)
        certs.issue(ca, "admin", "gfsd", hosts=["127.0.0.1"])
        for i in range(bricks):
            certs.issue(ca, "node", f"node{i}", hosts=["127.0.0.1"])
    g = Gfsd(
        tmp / "gfsd",
        tmp / "gfsd.log",
        db_url,
        tls=ca / "gfsd" if tls else None,
        ca=ca if tls else None,
    )
    try:
        for i in range(bricks):
            root = (root_of or {}).get(i) or tmp / f"n{i}" / "root"
            root.mkdir(parents=True, exist_ok=True)
            roots.append(root)
            d = BrickDaemon(
                {f"boot{i}": tmp / f"n{i}" / "boot"},
                tmp / f"n{i}.log",
                ["--root", str(root), "--zone", f"z{i}", *(brickd_args(i) if brickd_args else [])],
                (env or {}).get(i),
                tls=ca / f"node{i}" if tls else None,
            )
            nodes.append(d.start())
        g.start()
        c = Cluster(g, nodes, roots, ca if tls else None)
        with c.client() as api:
            for d in nodes:
                api.peer_add(d.address)
        yield c
    finally:
        g.stop()
        for d in nodes:
            d.stop()
