from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gfs_mgmt.volume.placement import Candidate, PlacementError, place

GiB = 1 << 30


def cand(peer: str, zone: str, root: str, free: int) -> Candidate:
    return Candidate(peer, peer, zone, root, free)


def test_roomiest_distinct_peers() -> None:
    cs = [
        cand("a", "z1", "/r1", 5 * GiB),
        cand("a", "z1", "/r2", 9 * GiB),
        cand("b", "z1", "/r", 7 * GiB),
        cand("c", "z2", "/r", 1 * GiB),
        cand("d", "z2", "/r", 6 * GiB),
    ]
    got = place(cs, 3, 2 * GiB)
    assert [(p.peer_id, p.root) for p in got] == [("a", "/r2"), ("b", "/r"), ("d", "/r")]


def test_zones_are_distinct_and_restricted() -> None:
    cs = [
        cand("a", "z1", "/r", 9 * GiB),
        cand("b", "z1", "/r", 8 * GiB),
        cand("c", "z2", "/r", 1 * GiB),
        cand("d", "z3", "/r", 5 * GiB),
    ]
    got = place(cs, 2, GiB, zones=["z1", "z2"])
    assert {p.peer_id for p in got} == {"a", "c"}
    with pytest.raises(PlacementError, match="replica 3 needs 3 zones"):
        place(cs, 3, GiB, zones=["z1", "z2"])
    with pytest.raises(PlacementError, match="no peer with a brick root in zones"):
        place(cs, 1, GiB, zones=["nowhere"])


def test_size_is_respected() -> None:
    with pytest.raises(PlacementError, match="bytes free"):
        place([cand("a", "", "/r", GiB)], 1, 2 * GiB)


# No per-example deadline: a loaded CI machine is slow, not wrong.
@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcdef"), st.sampled_from(["z1", "z2", "z3"]), st.integers(0, 10)
        ),
        max_size=12,
    ),
    st.integers(1, 4),
    st.integers(1, 10),
    st.booleans(),
)
def test_placement_properties(
    rows: list[tuple[str, str, int]], replica: int, size: int, by_zone: bool
) -> None:
    # A peer lives in one zone: the first row of a peer fixes it.
    zone_of: dict[str, str] = {}
    cs = [cand(p, zone_of.setdefault(p, z), f"/r{i}", free) for i, (p, z, free) in enumerate(rows)]
    zones = ["z1", "z2", "z3"] if by_zone else None
    try:
        got = place(cs, replica, size, zones)
    except PlacementError:
        eligible = {c.peer_id for c in cs if c.free_bytes >= size}
        if by_zone:
            assert len({zone_of[p] for p in eligible}) < replica
        else:
            assert len(eligible) < replica
        return
    assert len(got) == replica
    assert len({p.peer_id for p in got}) == replica
    if by_zone:
        assert len({zone_of[p.peer_id] for p in got}) == replica
    free = {(c.peer_id, c.root): c.free_bytes for c in cs}
    assert all(free[(p.peer_id, p.root)] >= size for p in got)
