"""Where the bricks of a size-based ("smart") volume go.

Rules, in order: one brick per peer in a replica set; bricks in distinct zones
when zones are asked for (and only in those zones); a root must have room for
the volume's size after what earlier volumes reserved there; among the roots
that qualify, the most free room wins, so volumes spread over the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


class PlacementError(Exception):
    """No layout satisfies the request; the message says which rule failed."""


@dataclass(frozen=True)
class Candidate:
    peer_id: str
    peer_name: str
    zone: str
    root: str
    free_bytes: int  # free space on the root minus sizes already reserved there


@dataclass(frozen=True)
class Placement:
    peer_id: str
    root: str


def place(
    candidates: list[Candidate], replica: int, size: int, zones: list[str] | None = None
) -> list[Placement]:
    """`replica` placements on distinct peers (and distinct zones if `zones`)."""
    if replica < 1:
        raise PlacementError("replica count must be at least 1")
    pool = [c for c in candidates if zones is None or c.zone in zones]
    if zones is not None and not pool:
        raise PlacementError(f"no peer with a brick root in zones {', '.join(zones)}")
    roomy = [c for c in pool if c.free_bytes >= size]
    if not roomy:
        raise PlacementError(f"no brick root has {size} bytes free")
    best: dict[str, Candidate] = {}  # the roomiest root of each peer
    for c in roomy:
        if c.peer_id not in best or c.free_bytes > best[c.peer_id].free_bytes:
            best[c.peer_id] = c
    order = sorted(best.values(), key=lambda c: (-c.free_bytes, c.peer_name, c.root))
    chosen: list[Candidate] = []
    used_zones: set[str] = set()
    for c in order:
        if zones is not None and c.zone in used_zones:
            continue
        chosen.append(c)
        used_zones.add(c.zone)
        if len(chosen) == replica:
            return [Placement(c.peer_id, c.root) for c in chosen]
    what = "zones" if zones is not None else "peers"
    raise PlacementError(
        f"replica {replica} needs {replica} {what} with {size} bytes free; found {len(chosen)}"
    )
