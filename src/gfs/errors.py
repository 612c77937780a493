"""Domain errors and the one table that maps them to errno (client) and HTTP (REST)."""

from __future__ import annotations

import errno
from typing import Any

#: kind -> (errno seen by a filesystem caller, HTTP status of a REST reply)
KINDS: dict[str, tuple[int, int]] = {
    "invalid": (errno.EINVAL, 400),
    "unauthorized": (errno.EACCES, 401),
    "forbidden": (errno.EPERM, 403),
    "not_found": (errno.ENOENT, 404),
    "already_exists": (errno.EEXIST, 409),
    "busy": (errno.EBUSY, 409),
    "read_only": (errno.EROFS, 409),
    # The cluster cannot take it now (capacity, peers, zones): a conflict with its state.
    "no_space": (errno.ENOSPC, 409),
    "unavailable": (errno.ENOTCONN, 503),
    "timeout": (errno.ETIMEDOUT, 504),
    "internal": (errno.EIO, 500),
}


class GfsError(Exception):
    """A failure with a stable machine code (`volume_not_found`) of a known kind."""

    def __init__(self, kind: str, code: str, message: str, **details: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details

    @property
    def errno(self) -> int:
        return KINDS[self.kind][0]

    @property
    def http_status(self) -> int:
        return KINDS[self.kind][1]
