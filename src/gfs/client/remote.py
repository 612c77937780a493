"""The narrow async API the FUSE layer uses to reach one brick.

Every method makes one RPC with a deadline through the trio bridge and either
returns data or raises RemoteError(errno): an errno the brick sent as data, or
one mapped from a transport failure (gfs.rpc.errors).
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

import grpc

from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.bridge import call
from gfs.rpc.channel import MAX_CHUNK, channel
from gfs.rpc.errors import status_errno

log = logging.getLogger(__name__)

KIND = {
    "file": pb.NODE_KIND_FILE,
    "dir": pb.NODE_KIND_DIR,
    "symlink": pb.NODE_KIND_SYMLINK,
    "special": pb.NODE_KIND_SPECIAL,
}


class RemoteError(Exception):
    def __init__(self, code: int, op: str = "") -> None:
        super().__init__(code, f"{op}: {os.strerror(code)}")
        self.errno = code


class TransportError(RemoteError):
    """The RPC itself failed (no reply from the brick): the request may or may not have
    been applied."""


class Remote:
    def __init__(self, address: str, brick: str, timeout: float) -> None:
        self.address = address
        self.brick = brick
        self.timeout = timeout
        self.channel = channel(address)
        self.stub = brick_pb2_grpc.BrickStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def members(self) -> list[Remote]:
        """The bricks behind this one (a replica set's members; here just itself)."""
        return [self]

    def close(self) -> None:
        self.channel.close()

    async def _call(
        self, name: str, req: Any, timeout: float | None = None, cancellable: bool = False
    ) -> Any:
        try:
            reply = await call(getattr(self.stub, name), req, timeout or self.timeout, cancellable)
        except grpc.RpcError as e:
            code = status_errno(e)
            # Ping failures are reported to the user by the caller, not logged twice;
            # a session announcement to a brick that is away is simply repeated later.
            log.log(
                logging.DEBUG if name in ("Ping", "Session") else logging.WARNING,
                "op=%s rpc failed status=%s errno=%d",
                name,
                e.code() if isinstance(e, grpc.Call) else "?",
                code,
            )
            raise TransportError(code, name) from e
        if reply.err:
            raise RemoteError(reply.err, name)
        return reply

    async def ping(self, timeout: float) -> pb.PingReply:
        r: pb.PingReply = await self._call("Ping", pb.PingRequest(brick=self.brick), timeout)
        return r

    async def session(self, req: pb.SessionRequest, end: bool, timeout: float) -> None:
        r = pb.SessionRequest()
        r.CopyFrom(req)
        r.brick, r.end = self.brick, end
        await self._call("Session", r, timeout)

    async def lookup(self, parent: bytes, name: bytes) -> pb.Attr:
        r = await self._call("Lookup", pb.LookupRequest(brick=self.brick, parent=parent, name=name))
        return r.attr  # type: ignore[no-any-return]

    async def getattr(self, gfid: bytes) -> pb.Attr:
        r = await self._call("GetAttr", pb.GfidRequest(brick=self.brick, gfid=gfid))
        return r.attr  # type: ignore[no-any-return]

    async def setattr(
        self, gfid: bytes, fh: int, caller_uid: int | None = None, **fields: int
    ) -> pb.Attr:
        req = pb.SetAttrRequest(brick=self.brick, gfid=gfid, fh=fh)
        if caller_uid is not None:
            req.caller_uid = caller_uid
        for key, value in fields.items():
            setattr(req, key, value)
            setattr(req, f"set_{key.removesuffix('_ns').removesuffix('_now')}", True)
        r = await self._call("SetAttr", req)
        return r.attr  # type: ignore[no-any-return]

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
        req = pb.MakeNodeRequest(
            brick=self.brick,
            parent=parent,
            name=name,
            gfid=gfid,
            kind=KIND[kind],
            mode=mode,
            rdev=rdev,
            uid=uid,
            gid=gid,
            target=target,
            open=open_flags is not None,
            flags=open_flags or 0,
            umask=umask,
        )
        r = await self._call("MakeNode", req)
        return r.attr, r.fh

    async def unlink(self, parent: bytes, name: bytes) -> None:
        await self._call("Unlink", pb.NameRequest(brick=self.brick, parent=parent, name=name))

    async def rmdir(self, parent: bytes, name: bytes) -> None:
        await self._call("Rmdir", pb.NameRequest(brick=self.brick, parent=parent, name=name))

    async def rename(
        self, old_parent: bytes, old: bytes, new_parent: bytes, new: bytes, flags: int
    ) -> None:
        await self._call(
            "Rename",
            pb.RenameRequest(
                brick=self.brick,
                old_parent=old_parent,
                old_name=old,
                new_parent=new_parent,
                new_name=new,
                flags=flags,
            ),
        )

    async def link(self, gfid: bytes, new_parent: bytes, new_name: bytes) -> pb.Attr:
        r = await self._call(
            "Link",
            pb.LinkRequest(brick=self.brick, gfid=gfid, new_parent=new_parent, new_name=new_name),
        )
        return r.attr  # type: ignore[no-any-return]

    async def readlink(self, gfid: bytes) -> bytes:
        r = await self._call("ReadLink", pb.GfidRequest(brick=self.brick, gfid=gfid))
        return r.target  # type: ignore[no-any-return]

    async def open(self, gfid: bytes, flags: int) -> tuple[int, pb.Attr]:
        r = await self._call("Open", pb.OpenRequest(brick=self.brick, gfid=gfid, flags=flags))
        return r.fh, r.attr

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        parts = []
        while size > 0:
            n = min(size, MAX_CHUNK)
            r = await self._call(
                "Read", pb.ReadRequest(brick=self.brick, fh=fh, offset=offset, size=n)
            )
            parts.append(r.data)
            if len(r.data) < n:
                break
            offset += n
            size -= n
        return b"".join(parts)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        done = 0
        view = memoryview(data)
        while done < len(data):
            chunk = bytes(view[done : done + MAX_CHUNK])
            r = await self._call(
                "Write", pb.WriteRequest(brick=self.brick, fh=fh, offset=offset + done, data=chunk)
            )
            done += r.written
            if r.written < len(chunk):
                break
        return done

    async def flush(self, fh: int) -> None:
        await self._call("Flush", pb.FhRequest(brick=self.brick, fh=fh))

    async def release(self, fh: int) -> None:
        await self._call("Release", pb.FhRequest(brick=self.brick, fh=fh))

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._call("Fsync", pb.FsyncRequest(brick=self.brick, fh=fh, datasync=datasync))

    async def fallocate(self, fh: int, mode: int, offset: int, length: int) -> None:
        await self._call(
            "Fallocate",
            pb.FallocateRequest(brick=self.brick, fh=fh, mode=mode, offset=offset, length=length),
        )

    async def copy_range(
        self, fh_in: int, off_in: int, fh_out: int, off_out: int, length: int, gfid_in: bytes = b""
    ) -> int:
        """copy_file_range on the brick (source: the handle `fh_in`, or the object `gfid_in`
        when given); the bytes copied, maybe fewer than `length`."""
        r = await self._call(
            "CopyRange",
            pb.CopyRangeRequest(
                brick=self.brick,
                fh=fh_out,
                fh_in=0 if gfid_in else fh_in,
                gfid_in=gfid_in,
                offset_in=off_in,
                offset_out=off_out,
                length=length,
            ),
        )
        return r.copied  # type: ignore[no-any-return]

    async def seek(self, fh: int, offset: int, whence: int) -> int:
        r = await self._call(
            "Seek", pb.SeekRequest(brick=self.brick, fh=fh, offset=offset, whence=whence)
        )
        return r.offset  # type: ignore[no-any-return]

    async def lock(self, req: pb.LockRequest, timeout: float | None = None) -> pb.LockReply:
        """One Lock RPC; `timeout` bounds a waiting one (the brick waits until just before)."""
        r = pb.LockRequest()
        r.CopyFrom(req)
        r.brick = self.brick
        # A waiting request is withdrawn at the brick when a signal interrupts it, so
        # the brick must see the cancellation.
        reply: pb.LockReply = await self._call("Lock", r, timeout, cancellable=req.wait)
        return reply

    async def fsyncdir(self, gfid: bytes, datasync: bool) -> None:
        await self._call(
            "FsyncDir", pb.FsyncRequest(brick=self.brick, gfid=gfid, datasync=datasync)
        )

    async def readdir(
        self, gfid: bytes, offset: int, max_entries: int
    ) -> tuple[list[pb.DirEntry], bool]:
        r = await self._call(
            "ReadDir",
            pb.ReadDirRequest(brick=self.brick, gfid=gfid, offset=offset, max_entries=max_entries),
        )
        return list(r.entries), r.eof

    async def statfs(self) -> pb.StatfsReply:
        r: pb.StatfsReply = await self._call("Statfs", pb.StatfsRequest(brick=self.brick))
        return r

    async def setxattr(
        self, gfid: bytes, name: bytes, value: bytes, caller_uid: int | None = None
    ) -> None:
        req = pb.XattrRequest(brick=self.brick, gfid=gfid, name=name, value=value)
        if caller_uid is not None:
            req.caller_uid = caller_uid
        await self._call("SetXattr", req)

    async def getxattr(self, gfid: bytes, name: bytes) -> bytes:
        r = await self._call("GetXattr", pb.XattrRequest(brick=self.brick, gfid=gfid, name=name))
        return r.value  # type: ignore[no-any-return]

    async def listxattr(self, gfid: bytes) -> list[bytes]:
        r = await self._call("ListXattr", pb.GfidRequest(brick=self.brick, gfid=gfid))
        return list(r.names)

    async def removexattr(self, gfid: bytes, name: bytes) -> None:
        await self._call("RemoveXattr", pb.XattrRequest(brick=self.brick, gfid=gfid, name=name))


def describe(code: int) -> str:
    """Words for an errno in a one-line user message."""
    if code == errno.ENODEV:
        return "no such brick on that daemon"
    if code == errno.ESHUTDOWN:
        return "its volume was stopped by gfsd"
    return os.strerror(code)
