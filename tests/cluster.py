"""A local gfs cluster of real processes for tests: gfsd + N gfs-brickd with roots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gfs.api.client import Client
from tests.procs import BrickDaemon, Gfsd


@dataclass
class Cluster:
    gfsd: Gfsd
    nodes: list[BrickDaemon]
    roots: list[Path]

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
) -> Iterator[Cluster]:
    """`env` and `root_of` override a node's environment and brick root (by node index);
    `brickd_args(i)`: more command-line arguments for brick daemon i."""
    nodes: list[BrickDaemon] = []
    roots: list[Path] = []
    g = Gfsd(tmp / "gfsd", tmp / "gfsd.log", db_url)
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
            )
            nodes.append(d.start())
        g.start()
        c = Cluster(g, nodes, roots)
        with c.client() as api:
            for d in nodes:
                api.peer_add(d.address)
        yield c
    finally:
        g.stop()
        for d in nodes:
            d.stop()
