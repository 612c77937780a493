"""A replica set seen as one brick: reads from the first member, every mutation on
all members in parallel (the client picks GFIDs, so all members name objects
alike).

This is the interim write-all scheme until the primary/epoch protocol of
docs/replication.md lands: while every member answers, the copies stay equal;
when one fails or the members disagree, the operation fails with EIO (logged
with the details) rather than acknowledging fewer copies. It never hides a
missing copy, but it offers no failover and does not order concurrent writers
across members (two mounts appending to one file may interleave differently).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from gfs.client.remote import Remote, RemoteError
from gfs.proto import brick_pb2 as pb

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReplicatedRemote(Remote):
    def __init__(self, members: list[Remote]) -> None:
        if not members:
            raise ValueError("a replica set needs at least one member")
        self.members = members
        self.address = members[0].address
        self.brick = ",".join(m.brick for m in members)
        self.timeout = members[0].timeout
        self._fhs: dict[int, list[int]] = {}
        self._next = itertools.count(1)

    def close(self) -> None:
        for m in self.members:
            m.close()

    async def _all(self, op: str, call: Callable[[Remote, int], Awaitable[T]], fh: int = 0) -> T:
        """Run `call` on every member (with `fh`: every member that has that handle open);
        the first member's result when all agree."""
        members = list(enumerate(self.members))
        if fh:
            fhs = self._fhs.get(fh)
            if fhs is None:
                raise RemoteError(errno.EBADF, op)
            members = [(i, m) for i, m in members if fhs[i]]
        results: list[Any] = [None] * len(members)

        async def one(k: int, i: int, m: Remote) -> None:
            try:
                results[k] = ("ok", await call(m, i))
            except RemoteError as e:
                results[k] = ("err", e.errno)

        async with trio.open_nursery() as n:
            for k, (i, m) in enumerate(members):
                n.start_soon(one, k, i, m)
        errs = {r[1] for r in results if r[0] == "err"}
        if not errs:
            return results[0][1]  # type: ignore[no-any-return]
        if len(errs) == 1 and all(r[0] == "err" for r in results):
            raise RemoteError(errs.pop(), op)  # every copy refused alike: a normal error
        log.error(
            "replicas disagree op=%s results=%s",
            op,
            ",".join(
                f"{m.address}/{m.brick}={r[0]}:{r[1] if r[0] == 'err' else ''}"
                for (_, m), r in zip(members, results, strict=True)
            ),
        )
        raise RemoteError(errno.EIO, op)

    def _member_fh(self, fh: int, i: int) -> int:
        fhs = self._fhs.get(fh)
        if fhs is None:
            raise RemoteError(errno.EBADF, "fh")
        return fhs[i]

    def _new_fh(self, fhs: list[int]) -> int:
        fh = next(self._next)
        self._fhs[fh] = fhs
        return fh

    # -- reads: the first member -------------------------------------------------------------

    async def ping(self, timeout: float) -> pb.PingReply:
        return await self._all("Ping", lambda m, i: m.ping(timeout))

    async def lookup(self, parent: bytes, name: bytes) -> pb.Attr:
        return await self.members[0].lookup(parent, name)

    async def getattr(self, gfid: bytes) -> pb.Attr:
        return await self.members[0].getattr(gfid)

    async def readlink(self, gfid: bytes) -> bytes:
        return await self.members[0].readlink(gfid)

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        return await self.members[0].read(self._member_fh(fh, 0), offset, size)

    async def readdir(
        self, gfid: bytes, offset: int, max_entries: int
    ) -> tuple[list[pb.DirEntry], bool]:
        return await self.members[0].readdir(gfid, offset, max_entries)

    async def statfs(self) -> pb.StatfsReply:
        return await self.members[0].statfs()

    async def getxattr(self, gfid: bytes, name: bytes) -> bytes:
        return await self.members[0].getxattr(gfid, name)

    async def listxattr(self, gfid: bytes) -> list[bytes]:
        return await self.members[0].listxattr(gfid)

    # -- mutations: every member -------------------------------------------------------------

    async def setattr(self, gfid: bytes, fh: int, **fields: int) -> pb.Attr:
        return await self._all(
            "SetAttr",
            lambda m, i: m.setattr(gfid, self._member_fh(fh, i) if fh else 0, **fields),
        )

    async def make_node(
        self,
        parent: bytes,
        name: bytes,
        gfid: bytes,
        kind: str,
        mode: int,
        uid: int,
        gid: int,
        *,
        rdev: int = 0,
        target: bytes = b"",
        open_flags: int | None = None,
    ) -> tuple[pb.Attr, int]:
        fhs: list[int] = [0] * len(self.members)

        async def make(m: Remote, i: int) -> pb.Attr:
            attr, fh = await m.make_node(
                parent,
                name,
                gfid,
                kind,
                mode,
                uid,
                gid,
                rdev=rdev,
                target=target,
                open_flags=open_flags,
            )
            fhs[i] = fh
            return attr

        try:
            attr = await self._all("MakeNode", make)
        except RemoteError:
            await self._release_partial(fhs)
            raise
        return attr, (self._new_fh(fhs) if open_flags is not None else 0)

    async def _release_partial(self, fhs: list[int]) -> None:
        for m, fh in zip(self.members, fhs, strict=True):
            if fh:
                with contextlib.suppress(RemoteError):
                    await m.release(fh)

    async def open(self, gfid: bytes, flags: int) -> tuple[int, pb.Attr]:
        fhs: list[int] = [0] * len(self.members)
        if flags & os.O_ACCMODE == os.O_RDONLY and not flags & os.O_TRUNC:
            # A read-only handle only ever reads: the first member serves it alone, so
            # reads go on while another member is down.
            fhs[0], attr = await self.members[0].open(gfid, flags)
            return self._new_fh(fhs), attr

        async def op(m: Remote, i: int) -> pb.Attr:
            fhs[i], attr = await m.open(gfid, flags)
            return attr

        try:
            attr = await self._all("Open", op)
        except RemoteError:
            await self._release_partial(fhs)
            raise
        return self._new_fh(fhs), attr

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        return await self._all(
            "Write", lambda m, i: m.write(self._member_fh(fh, i), offset, data), fh
        )

    async def flush(self, fh: int) -> None:
        await self._all("Flush", lambda m, i: m.flush(self._member_fh(fh, i)), fh)

    async def release(self, fh: int) -> None:
        try:
            await self._all("Release", lambda m, i: m.release(self._member_fh(fh, i)), fh)
        finally:
            self._fhs.pop(fh, None)

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._all("Fsync", lambda m, i: m.fsync(self._member_fh(fh, i), datasync), fh)

    async def fsyncdir(self, gfid: bytes, datasync: bool) -> None:
        await self._all("FsyncDir", lambda m, i: m.fsyncdir(gfid, datasync))

    async def unlink(self, parent: bytes, name: bytes) -> None:
        await self._all("Unlink", lambda m, i: m.unlink(parent, name))

    async def rmdir(self, parent: bytes, name: bytes) -> None:
        await self._all("Rmdir", lambda m, i: m.rmdir(parent, name))

    async def rename(
        self, old_parent: bytes, old: bytes, new_parent: bytes, new: bytes, flags: int
    ) -> None:
        await self._all("Rename", lambda m, i: m.rename(old_parent, old, new_parent, new, flags))

    async def link(self, gfid: bytes, new_parent: bytes, new_name: bytes) -> pb.Attr:
        return await self._all("Link", lambda m, i: m.link(gfid, new_parent, new_name))

    async def setxattr(self, gfid: bytes, name: bytes, value: bytes) -> None:
        await self._all("SetXattr", lambda m, i: m.setxattr(gfid, name, value))

    async def removexattr(self, gfid: bytes, name: bytes) -> None:
        await self._all("RemoveXattr", lambda m, i: m.removexattr(gfid, name))
