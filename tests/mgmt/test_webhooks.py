"""Webhooks receive gfsd's events, in order, on a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gfs.errors import GfsError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Event
from gfs_mgmt.volume.service import Manager
from gfs_mgmt.volume.webhooks import MAX_ATTEMPTS, WebhookDispatcher


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.status == 200:
                    outer.got.append(json.loads(body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def emit(db: Database, *messages: str) -> None:
    with db.session() as s:
        for msg in messages:
            s.add(Event(kind="test", volume="v", message=msg))


def test_events_delivered_in_order_with_retries(db_url: str, receiver: Receiver) -> None:
    db = Database(db_url)
    try:
        mgr = Manager(db)
        emit(db, "before the hook")
        hook = mgr.webhook_add(receiver.url)
        with pytest.raises(GfsError, match="exists"):
            mgr.webhook_add(receiver.url)
        d = WebhookDispatcher(db, timeout=5)
        emit(db, "one", "two")
        assert d.run_once() == 2
        assert [e["message"] for e in receiver.got] == ["one", "two"]  # not the history
        receiver.status = 500
        emit(db, "three")
        for _ in range(MAX_ATTEMPTS - 1):
            assert d.run_once() == 0  # kept for a retry
        receiver.status = 200
        assert d.run_once() == 1
        assert [e["message"] for e in receiver.got][-1] == "three"
        mgr.webhook_remove(hook.id)
        emit(db, "four")
        assert d.run_once() == 0
        assert mgr.webhooks() == []
    finally:
        db.close()
