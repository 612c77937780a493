"""A replica set seen as one brick: every request goes to the set's primary, tagged
with the epoch this client knows and, for mutations, a request id (client id,
sequence number) that stays the same across retries (docs/replication.md).

When the primary answers NOT_PRIMARY (EREMCHG) or that it does not serve its brick
(ENODEV), or cannot be reached, the client asks gfsd to reconcile: gfsd confirms the
configuration to the bricks or promotes an in-sync member, and the client retries on
the primary it names until the RPC deadline. A handle opened on a primary that is
gone is opened again on the new one. A volume that gfsd stopped or deleted answers
ESHUTDOWN at once (the bricks say so, and so does gfsd when asked).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from gfs.api import models as m
from gfs.api.client import ApiError
from gfs.api.client import Client as ApiClient
from gfs.client.remote import Remote, RemoteError, TransportError
from gfs.proto import brick_pb2 as pb
from gfs.rpc import ops
from gfs.rpc.bridge import METADATA
from gfs.rpc.channel import MAX_CHUNK

log = logging.getLogger(__name__)

T = TypeVar("T")
NOT_PRIMARY = errno.EREMCHG
#: gfsd's answer to reconcile for a volume that is no longer there to serve
GONE = ("volume_not_started", "volume_not_found")
REOPEN_DROP = os.O_CREAT | os.O_EXCL | os.O_TRUNC
#: Answers after which a flush asks the primary instead of answering at once.
UNWELL = (errno.ESHUTDOWN, errno.EIO)


@dataclass
class _Fh:
    gfid: bytes
    flags: int
    brick: str  # the primary that holds `fh`
    fh: int


class PrimaryRemote(Remote):
    def __init__(
        self,
        volume: str,
        rs: m.ReplicaSet,
        servers: list[str],
        token: str,
        timeout: float,
        attempt_timeout: float | None = None,
    ) -> None:
        self.volume = volume
        self.index = rs.index
        self.servers = servers
        self.token = token
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout or timeout
        self.client_id = uuid.uuid4().hex[:16]
        self._seq = itertools.count(1)
        self._remotes: dict[str, Remote] = {}
        self._fhs: dict[int, _Fh] = {}
        self._next_fh = itertools.count(1)
        self._recovering = trio.Lock()
        #: the last call found the volume gone or unreachable (ESHUTDOWN, EIO)
        self._unwell = False
        self._apply(rs)

    def _apply(self, rs: m.ReplicaSet) -> None:
        for b in rs.bricks:
            if b.name not in self._remotes:
                self._remotes[b.name] = Remote(b.address, b.name, self.attempt_timeout)
        primary = next((b for b in rs.bricks if b.id == rs.primary), rs.bricks[0])
        self.epoch = rs.epoch
        self.primary = self._remotes[primary.name]
        self.address, self.brick = self.primary.address, primary.name
        log.info(
            "layout volume=%s set=%d epoch=%d primary=%s in_sync=%s",
            self.volume,
            self.index,
            rs.epoch,
            primary.name,
            ",".join(b.name for b in rs.bricks if b.in_sync),
        )

    @property
    def members(self) -> list[Remote]:
        return list(self._remotes.values())

    def close(self) -> None:
        for r in self._remotes.values():
            r.close()

    # -- retries -----------------------------------------------------------------------------

    def _reqid(self) -> str:
        return f"{self.client_id}:{next(self._seq)}"

    def _reconcile(self, epoch: int) -> m.ReplicaSet:
        last: ApiError | None = None
        for server in self.servers:
            try:
                with ApiClient(server, self.token, timeout=10) as api:
                    return api.replica_reconcile(self.volume, self.index, epoch)
            except ApiError as e:
                last = e
                if e.code != "unreachable":
                    break
        assert last is not None
        raise last

    async def _recover(self, epoch: int) -> None:
        async with self._recovering:
            if self.epoch != epoch:
                return  # another task already moved on
            try:
                rs = await trio.to_thread.run_sync(self._reconcile, epoch)
            except ApiError as e:
                if e.code in GONE:  # stopped or deleted: nothing to wait for
                    raise RemoteError(errno.ESHUTDOWN, "reconcile") from e
                log.warning("reconcile failed volume=%s epoch=%d error=%s", self.volume, epoch, e)
                await trio.sleep(0.5)  # back off: gfsd or every member is away
                return
            if rs.epoch == epoch:
                await trio.sleep(0.05)  # confirmed as is: give the brick a moment
            self._apply(rs)

    async def _run(
        self, op: str, fn: Callable[[Remote], Awaitable[T]], mutation: bool | None = None
    ) -> T:
        """`mutation` (default: from gfs.rpc.ops) tags the call with a request id."""
        if mutation is None:
            mutation = ops.OPS[op].tagged
        tags: tuple[tuple[str, str], ...] = (("gfs-req", self._reqid()),) if mutation else ()
        deadline = trio.current_time() + self.timeout
        while True:
            epoch, primary = self.epoch, self.primary
            token = METADATA.set((("gfs-epoch", str(epoch)), *tags))
            try:
                got = await fn(primary)
                self._unwell = False
                return got
            except RemoteError as e:
                # EACCES: the brick refused this client's certificate, a final answer.
                retry = e.errno in (NOT_PRIMARY, errno.ENODEV) or (
                    isinstance(e, TransportError) and e.errno not in (errno.EINTR, errno.EACCES)
                )
                if not retry:
                    self._unwell = e.errno in UNWELL
                    raise
                if trio.current_time() >= deadline:
                    log.error("op=%s gave up volume=%s errno=%d", op, self.volume, e.errno)
                    self._unwell = True
                    raise RemoteError(errno.EIO, op) from e
                log.info("op=%s retry volume=%s epoch=%d errno=%d", op, self.volume, epoch, e.errno)
                try:
                    await self._recover(epoch)
                except RemoteError:
                    self._unwell = True
                    raise
            finally:
                METADATA.reset(token)

    def _new_fh(self, gfid: bytes, flags: int, brick: str, fh: int) -> int:
        n = next(self._next_fh)
        self._fhs[n] = _Fh(gfid, flags, brick, fh)
        return n

    def _info(self, fh: int) -> _Fh:
        info = self._fhs.get(fh)
        if info is None:
            raise RemoteError(errno.EBADF, "fh")
        return info

    async def _on_fh(
        self,
        op: str,
        fh: int,
        call: Callable[[Remote, int], Awaitable[T]],
        mutation: bool | None = None,
    ) -> T:
        info = self._info(fh)

        async def fn(p: Remote) -> T:
            if info.brick != p.brick:  # the primary changed: open the file there again
                token = METADATA.set((("gfs-epoch", str(self.epoch)), ("gfs-req", self._reqid())))
                try:
                    info.fh, _ = await p.open(info.gfid, info.flags & ~REOPEN_DROP)
                finally:
                    METADATA.reset(token)
                info.brick = p.brick
            return await call(p, info.fh)

        return await self._run(op, fn, mutation)

    # -- reads -------------------------------------------------------------------------------

    async def ping(self, timeout: float) -> pb.PingReply:
        return await self._run("Ping", lambda p: p.ping(timeout))

    async def lookup(self, parent: bytes, name: bytes) -> pb.Attr:
        return await self._run("Lookup", lambda p: p.lookup(parent, name))

    async def getattr(self, gfid: bytes) -> pb.Attr:
        return await self._run("GetAttr", lambda p: p.getattr(gfid))

    async def readlink(self, gfid: bytes) -> bytes:
        return await self._run("ReadLink", lambda p: p.readlink(gfid))

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        return await self._on_fh("Read", fh, lambda p, f: p.read(f, offset, size))

    async def readdir(
        self, gfid: bytes, offset: int, max_entries: int
    ) -> tuple[list[pb.DirEntry], bool]:
        return await self._run("ReadDir", lambda p: p.readdir(gfid, offset, max_entries))

    async def statfs(self) -> pb.StatfsReply:
        return await self._run("Statfs", lambda p: p.statfs())

    async def getxattr(self, gfid: bytes, name: bytes) -> bytes:
        return await self._run("GetXattr", lambda p: p.getxattr(gfid, name))

    async def listxattr(self, gfid: bytes) -> list[bytes]:
        return await self._run("ListXattr", lambda p: p.listxattr(gfid))

    async def seek(self, fh: int, offset: int, whence: int) -> int:
        return await self._on_fh("Seek", fh, lambda p, f: p.seek(f, offset, whence))

    async def lock(self, req: pb.LockRequest, timeout: float | None = None) -> pb.LockReply:
        # Locks live at the primary (docs/replication.md, "Locks").
        return await self._run("Lock", lambda p: p.lock(req, timeout))

    async def flush(self, fh: int) -> None:
        """Answered here, with no call, while the volume answers: a close has nothing
        left to make durable. Every write was acknowledged by every in-sync member
        before its reply (I1; with `writeback=on` the kernel sends the dirty pages as
        writes before the FLUSH), lock release on close is a separate unlock, and fsync goes
        to every member. After a call found the volume gone or unreachable the primary
        is asked, so the close reports what is true then (ESHUTDOWN, EIO)."""
        self._info(fh)
        if self._unwell:
            await self._on_fh("Flush", fh, lambda p, f: p.flush(f))

    # -- mutations ---------------------------------------------------------------------------

    async def setattr(
        self, gfid: bytes, fh: int, caller_uid: int | None = None, **fields: int
    ) -> pb.Attr:
        def one(p: Remote, f: int) -> Awaitable[pb.Attr]:
            return p.setattr(gfid, f, caller_uid, **fields)

        if fh:
            return await self._on_fh("SetAttr", fh, one)
        return await self._run("SetAttr", lambda p: one(p, 0))

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
        umask: int = 0,
    ) -> tuple[pb.Attr, int]:
        async def fn(p: Remote) -> tuple[pb.Attr, int, str]:
            attr, fh = await p.make_node(
                parent, name, gfid, kind, mode, uid, gid,
                rdev=rdev, target=target, open_flags=open_flags, umask=umask,
            )  # fmt: skip
            return attr, fh, p.brick

        attr, fh, brick = await self._run("MakeNode", fn)
        if open_flags is None:
            return attr, 0
        # attr.gfid: a create of a name another client made first opens that file.
        return attr, self._new_fh(attr.gfid, open_flags, brick, fh)

    async def open(self, gfid: bytes, flags: int) -> tuple[int, pb.Attr]:
        async def fn(p: Remote) -> tuple[int, pb.Attr, str]:
            fh, attr = await p.open(gfid, flags)
            return fh, attr, p.brick

        writes = bool(flags & (os.O_ACCMODE | os.O_TRUNC))
        fh, attr, brick = await self._run("Open", fn, writes)
        return self._new_fh(gfid, flags, brick, fh), attr

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        done = 0
        while done < len(data):
            chunk, at = data[done : done + MAX_CHUNK], offset + done

            async def one(p: Remote, f: int, c: bytes = chunk, o: int = at) -> int:
                return await p.write(f, o, c)

            n = await self._on_fh("Write", fh, one)
            done += n
            if n < len(chunk):
                break
        return done

    async def release(self, fh: int) -> None:
        info = self._fhs.pop(fh, None)
        if info is None:
            raise RemoteError(errno.EBADF, "Release")
        if info.brick != self.primary.brick:
            return  # the handle went with the primary that held it
        self._fhs[fh] = info
        try:
            await self._on_fh("Release", fh, lambda p, f: p.release(f))
        finally:
            self._fhs.pop(fh, None)

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._on_fh("Fsync", fh, lambda p, f: p.fsync(f, datasync))

    async def fallocate(self, fh: int, mode: int, offset: int, length: int) -> None:
        await self._on_fh("Fallocate", fh, lambda p, f: p.fallocate(f, mode, offset, length))

    async def copy_range(
        self, fh_in: int, off_in: int, fh_out: int, off_out: int, length: int, gfid_in: bytes = b""
    ) -> int:
        # The source by GFID: the primary and every member copy from their own replica.
        src = gfid_in or self._info(fh_in).gfid
        return await self._on_fh(
            "CopyRange",
            fh_out,
            lambda p, f: p.copy_range(0, off_in, f, off_out, length, gfid_in=src),
        )

    async def fsyncdir(self, gfid: bytes, datasync: bool) -> None:
        await self._run("FsyncDir", lambda p: p.fsyncdir(gfid, datasync))

    async def unlink(self, parent: bytes, name: bytes) -> None:
        await self._run("Unlink", lambda p: p.unlink(parent, name))

    async def rmdir(self, parent: bytes, name: bytes) -> None:
        await self._run("Rmdir", lambda p: p.rmdir(parent, name))

    async def rename(
        self, old_parent: bytes, old: bytes, new_parent: bytes, new: bytes, flags: int
    ) -> None:
        await self._run("Rename", lambda p: p.rename(old_parent, old, new_parent, new, flags))

    async def link(self, gfid: bytes, new_parent: bytes, new_name: bytes) -> pb.Attr:
        return await self._run("Link", lambda p: p.link(gfid, new_parent, new_name))

    async def setxattr(
        self, gfid: bytes, name: bytes, value: bytes, caller_uid: int | None = None
    ) -> None:
        await self._run("SetXattr", lambda p: p.setxattr(gfid, name, value, caller_uid))

    async def removexattr(self, gfid: bytes, name: bytes) -> None:
        await self._run("RemoveXattr", lambda p: p.removexattr(gfid, name))
