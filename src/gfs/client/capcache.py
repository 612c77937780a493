"""Remembers, for a short time, that a file has no `security.capability` xattr.

Without it the kernel asks for that xattr before every write(2) (to drop file
capabilities), which doubles the round trips of small writes. An absence is
trusted for as long as attributes are (attr-timeout), so attr-timeout=0 keeps
every answer exact; a change made through this mount forgets it at once.
"""

from __future__ import annotations

import time

NAME = b"security.capability"


class CapabilityCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._absent_until: dict[int, float] = {}

    def known_absent(self, ino: int, name: bytes) -> bool:
        if name != NAME or self.ttl <= 0:
            return False
        until = self._absent_until.get(ino)
        if until is None:
            return False
        if until < time.monotonic():
            del self._absent_until[ino]
            return False
        return True

    def absent(self, ino: int, name: bytes) -> None:
        if name == NAME and self.ttl > 0:
            self._absent_until[ino] = time.monotonic() + self.ttl

    def forget(self, ino: int) -> None:
        self._absent_until.pop(ino, None)
