"""Peer liveness against real brick daemons, one pass at a time (run_once)."""

from __future__ import annotations

import signal
from pathlib import Path

from gfs_mgmt.peer.monitor import PeerMonitor
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Event
from gfs_mgmt.volume.service import Manager
from tests.procs import BrickDaemon


def test_peer_goes_offline_and_back(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    nodes = []
    try:
        for i in range(2):
            (tmp_path / f"r{i}").mkdir()
            d = BrickDaemon(
                {f"b{i}": tmp_path / f"b{i}"},
                tmp_path / f"n{i}.log",
                ["--root", str(tmp_path / f"r{i}")],
            )
            nodes.append(d.start())
        mgr = Manager(db)
        names = [mgr.peer_add(d.address).name for d in nodes]
        mon = PeerMonitor(db, timeout=2)
        assert mon.run_once() == {names[0]: True, names[1]: True}
        nodes[1].stop(signal.SIGKILL)
        assert mon.run_once() == {names[0]: True, names[1]: False}
        assert {p.name: p.online for p in mgr.peers()} == {names[0]: True, names[1]: False}
        nodes[1].start()
        assert mon.run_once()[names[1]] is True
        with db.session() as s:
            kinds = [e.kind for e in s.query(Event).order_by(Event.id)]
        assert kinds[-2:] == ["peer_offline", "peer_online"]
    finally:
        for d in nodes:
            d.stop()
        db.close()
