"""Event delivery to webhooks: a worker POSTs each new event, as JSON, to every
registered URL, in order. A hook that fails is retried on the next pass; after
`MAX_ATTEMPTS` passes the event is skipped for that hook (logged) so one dead
receiver cannot hold the others back. `run_once()` is one pass."""

from __future__ import annotations

import logging

import httpx
from sqlalchemy import select

from gfs.api import models as m
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Event, Webhook
from gfs_mgmt.worker import Worker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 100


class WebhookDispatcher(Worker):
    name = "webhooks"

    def __init__(self, db: Database, interval: float = 2.0, timeout: float = 5.0) -> None:
        super().__init__(interval)
        self.db = db
        self.http = httpx.Client(timeout=timeout)
        self._failures: dict[tuple[str, int], int] = {}

    def run_once(self) -> int:
        """Deliver what is pending; returns the number of deliveries made."""
        with self.db.session() as s:
            hooks = [(h.id, h.url, h.last_event) for h in s.scalars(select(Webhook))]
        sent = 0
        for hook_id, url, last in hooks:
            with self.db.session() as s:
                events = list(
                    s.scalars(select(Event).where(Event.id > last).order_by(Event.id).limit(BATCH))
                )
            for e in events:
                body = m.EventOut(
                    id=e.id, ts=e.ts, kind=e.kind, volume=e.volume, message=e.message
                ).model_dump(mode="json")
                try:
                    r = self.http.post(url, json=body)
                    ok = r.status_code < 300
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    n = self._failures[(hook_id, e.id)] = self._failures.get((hook_id, e.id), 0) + 1
                    if n < MAX_ATTEMPTS:
                        break  # keep order: retry this event next pass
                    log.error("webhook gave up url=%s event=%d after %d attempts", url, e.id, n)
                else:
                    sent += 1
                self._failures.pop((hook_id, e.id), None)
                with self.db.session() as s:
                    h = s.get(Webhook, hook_id)
                    if h is None:
                        break
                    h.last_event = e.id
        return sent
