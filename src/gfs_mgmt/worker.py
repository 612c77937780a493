"""Background work as observable workers: `run_once()` is one pass (tests call it
directly), `start()` repeats it every `interval` seconds in a daemon thread."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class Worker:
    name = "worker"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
                self.passes += 1
            except Exception:
                log.exception("worker=%s pass failed", self.name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 30)
