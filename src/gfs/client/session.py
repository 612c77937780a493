"""A mount's session with its bricks (docs/architecture.md, "Client sessions").

The mount tells every brick it uses who it is (host, mount point, pid) once before
the mount appears, then every `interval` seconds from a background task (never on
the path of a FUSE request), and that it ends when it unmounts. The brick daemons
forget a session not heard from for three intervals, so gfsd can name the mounts of
a volume it is asked to stop or delete.

It is also where the mount says, once, that gfsd stopped its volume: every call then
answers ESHUTDOWN, and one log line explains them all.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import uuid

import trio

from gfs.client.remote import Remote, RemoteError
from gfs.proto import brick_pb2 as pb

log = logging.getLogger(__name__)

#: deadline of one announcement to one brick
ANNOUNCE_TIMEOUT = 2.0


class MountSession:
    def __init__(self, remote: Remote, what: str, mountpoint: str, interval: float) -> None:
        self.remote = remote
        self.what = what  # "volume demo" or "brick b0 at HOST:PORT", for the log
        self.interval = interval
        self.req = pb.SessionRequest(
            session=uuid.uuid4().hex,
            hostname=socket.gethostname(),
            mountpoint=mountpoint,
            pid=os.getpid(),
            interval=interval,
        )
        self.stopped = False

    def note(self, code: int) -> None:
        """Called with the errno of every failed call: logs the first ESHUTDOWN only."""
        if code == errno.ESHUTDOWN and not self.stopped:
            self.stopped = True
            log.warning(
                "%s was stopped (or deleted) by gfsd: every call answers ESHUTDOWN until it is"
                " started again or unmounted",
                self.what,
            )

    async def announce(self, end: bool = False) -> None:
        """Tell every brick of the mount, concurrently; a brick away hears it next time."""
        answers: list[int] = []

        async def one(r: Remote) -> None:
            try:
                await r.session(self.req, end, ANNOUNCE_TIMEOUT)
                answers.append(0)
            except RemoteError as e:
                answers.append(e.errno)

        async with trio.open_nursery() as n:
            for r in self.remote.members:
                n.start_soon(one, r)
        if errno.ESHUTDOWN in answers:
            self.note(errno.ESHUTDOWN)
        elif self.stopped and answers and not any(answers):
            self.stopped = False
            log.info("%s is served again", self.what)

    async def run(self) -> None:
        """The keepalive task."""
        while True:
            await trio.sleep(self.interval)
            await self.announce()

    async def end(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(ANNOUNCE_TIMEOUT + 0.5):
            await self.announce(end=True)
