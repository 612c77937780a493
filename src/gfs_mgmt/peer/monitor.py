"""Peer liveness: a worker asks every peer's brick daemon for its facts, marks it
online or offline, refreshes its brick roots' capacity and sends the revocation
list to a daemon whose list is out of date. `run_once()` is one
pass (tests call it directly); `start()` runs passes in a thread."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gfs.certs import revoked_digest
from gfs_mgmt.peer.brickd import BrickdAdmin, PeerError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Event, Peer, now
from gfs_mgmt.volume.credentials import push_revocations, revoked_fingerprints
from gfs_mgmt.worker import Worker

log = logging.getLogger(__name__)


class PeerMonitor(Worker):
    name = "peer-monitor"

    def __init__(self, db: Database, interval: float = 5.0, timeout: float = 3.0) -> None:
        super().__init__(interval)
        self.db = db
        self.timeout = timeout

    def run_once(self) -> dict[str, bool]:
        """Check every peer once; returns {peer name: online}."""
        with self.db.session() as s:
            peers = [(p.id, p.address) for p in s.scalars(select(Peer))]

        def probe(address: str) -> object:
            try:
                with BrickdAdmin(address, timeout=self.timeout) as a:
                    return a.info()
            except PeerError as e:
                return e

        with ThreadPoolExecutor(max(1, min(16, len(peers)))) as pool:
            answers = list(pool.map(probe, [a for _, a in peers]))
        seen: dict[str, bool] = {}
        self._sync_revocations(peers, answers)
        with self.db.session() as s:
            for (peer_id, _), ans in zip(peers, answers, strict=True):
                p = s.scalar(
                    select(Peer).options(selectinload(Peer.roots)).where(Peer.id == peer_id)
                )
                if p is None:
                    continue
                online = not isinstance(ans, PeerError)
                if online != p.online:
                    log.warning("peer=%s address=%s online=%s", p.name, p.address, online)
                    s.add(
                        Event(
                            kind="peer_online" if online else "peer_offline",
                            volume=None,
                            message=f"peer {p.name} is {'online' if online else 'offline'}",
                        )
                    )
                p.online = online
                if online:
                    p.last_seen = now()
                    by_path = {r.path: r for r in p.roots}
                    for r in ans.roots:  # type: ignore[attr-defined]
                        row = by_path.get(r.path)
                        if row is not None:
                            row.total_bytes, row.free_bytes = r.total_bytes, r.free_bytes
                            row.used_bytes = r.used_bytes
                seen[p.name] = online
        return seen

    def _sync_revocations(self, peers: list[tuple[str, str]], answers: list[object]) -> None:
        """A daemon whose revocation list differs from the store's (it was down during a
        revoke, restarted without its file, or is new) gets the list again."""
        digest = revoked_digest(set(revoked_fingerprints(self.db)))
        stale = [
            address
            for (_, address), ans in zip(peers, answers, strict=True)
            if not isinstance(ans, PeerError) and getattr(ans, "revoked_digest", "") != digest
        ]
        if stale:
            log.info("revocations out of date on %s: pushing", ",".join(stale))
            push_revocations(self.db, stale)
