"""FUSE operations: the one class that turns kernel requests into brick calls.

FUSEError is raised here and only here; the layers below raise RemoteError or
UnknownInode, which carry an errno.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import itertools
import logging
import os
import stat
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pyfuse3
import trio
from pyfuse3 import FUSEError

from gfs import lockowner
from gfs.client.capcache import XattrCache
from gfs.client.dircache import DirCache
from gfs.client.inodes import InodeTable, UnknownInode
from gfs.client.remote import Remote, RemoteError, TransportError
from gfs.proto import brick_pb2 as pb

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
READDIR_BATCH = 512
#: A directory with more entries is not listed to answer lookups (dircache).
LIST_AHEAD_MAX = 4 * READDIR_BATCH
#: readdir positions 1 and 2 are "." and ".."; brick cookies start at 3.
DOT, DOTDOT = 1, 2
#: A waiting lock request is one brick RPC of at most this long (seconds), repeated; the
#: brick answers as soon as the lock is granted, and a signal cancels the RPC at once.
LOCK_WAIT = 10.0
LOCK_TYPE = {
    fcntl.F_RDLCK: pb.LOCK_TYPE_READ,
    fcntl.F_WRLCK: pb.LOCK_TYPE_WRITE,
    fcntl.F_UNLCK: pb.LOCK_TYPE_UNLOCK,
}
FLOCK_TYPE = {
    fcntl.LOCK_SH: pb.LOCK_TYPE_READ,
    fcntl.LOCK_EX: pb.LOCK_TYPE_WRITE,
    fcntl.LOCK_UN: pb.LOCK_TYPE_UNLOCK,
}


@dataclass
class _DirStream:
    """An open directory: the entries fetched but not yet taken by the kernel.

    The kernel reads a listing a few hundred entries at a time, so one ReadDir batch
    serves several of its requests; `pending` follows cookie `after`. A batch is used
    for at most attr-timeout after it was fetched (its attributes go to the kernel)."""

    ino: int
    after: int = -1
    pending: list[pb.DirEntry] = field(default_factory=list)
    eof: bool = False
    fetched: float = 0.0


def fuse_errors(fn: F) -> F:
    @functools.wraps(fn)
    async def wrapper(self: Operations, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(self, *args, **kwargs)
        except (RemoteError, UnknownInode) as e:
            self.on_error(e.errno)
            raise FUSEError(e.errno) from None

    return cast(F, wrapper)


def changes(fn: F) -> F:
    """A mutation: cached listings from before it stop answering lookups (dircache)."""

    @functools.wraps(fn)
    async def wrapper(self: Operations, *args: Any, **kwargs: Any) -> Any:
        self.dirs.changed()
        try:
            return await fn(self, *args, **kwargs)
        finally:
            self.dirs.changed()

    return cast(F, wrapper)


class Operations(pyfuse3.Operations):
    supports_dot_lookup = False
    # The kernel enforces POSIX ACLs (FUSE_POSIX_ACL) and leaves the umask to us
    # (FUSE_DONT_MASK, scripts/pyfuse3/dont-mask.patch): the brick applies it, or the
    # parent's default ACL instead.
    enable_acl = True

    def __init__(
        self,
        remote: Remote,
        *,
        attr_timeout: float,
        entry_timeout: float,
        writeback: bool,
        on_error: Callable[[int], None] = lambda code: None,
        session: str = "",
    ) -> None:
        """`on_error(errno)`: told of every failed request (the mount logs ESHUTDOWN once);
        `session`: the mount's session id, which names its locks at the bricks."""
        super().__init__()
        self.remote = remote
        self.on_error = on_error
        self.inodes = InodeTable()
        self.xattrs = XattrCache(attr_timeout)
        self.dirs = DirCache(min(attr_timeout, entry_timeout))
        self._dirs: dict[int, _DirStream] = {}
        self._next_dir = itertools.count(1)
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout
        self.enable_writeback_cache = writeback
        #: Set once the kernel's INIT request has been answered (see mount.py).
        self.initialized = trio.Event()
        self.session = session or uuid.uuid4().hex
        #: inode -> kernel lock owners that may hold record locks there through this mount
        #: (close() unlocks only those: no RPC for files never locked)
        self.lockers: dict[int, set[int]] = {}

    def init(self) -> None:
        # Called while INIT is being answered; waiters run after the reply is written.
        self.initialized.set()

    # -- helpers -----------------------------------------------------------------------------

    def _attrs(self, a: pb.Attr, ino: int, age: float = 0.0) -> pyfuse3.EntryAttributes:
        """`age`: seconds since the brick was asked (the kernel may trust the answer
        only for what is left of the timeouts)."""
        e = pyfuse3.EntryAttributes()
        e.st_ino = pyfuse3.InodeT(ino)
        e.generation = 0
        e.entry_timeout = max(0.0, self.entry_timeout - age)
        e.attr_timeout = max(0.0, self.attr_timeout - age)
        e.st_mode = pyfuse3.ModeT(a.mode)
        e.st_nlink = a.nlink
        e.st_uid = a.uid
        e.st_gid = a.gid
        e.st_rdev = a.rdev
        e.st_size = a.size
        e.st_blksize = a.blksize or 4096
        e.st_blocks = a.blocks
        e.st_atime_ns = a.atime_ns
        e.st_mtime_ns = a.mtime_ns
        e.st_ctime_ns = a.ctime_ns
        return e

    def _entry(self, a: pb.Attr) -> pyfuse3.EntryAttributes:
        """Attributes of an entry handed to the kernel (counts one lookup)."""
        return self._attrs(a, self.inodes.ref(a.gfid))

    def _g(self, ino: int) -> bytes:
        return self.inodes.gfid(ino)

    # -- lookups and attributes --------------------------------------------------------------

    @fuse_errors
    async def lookup(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = self._g(parent_inode)
        hit = self.dirs.get(parent_inode, name)
        if hit is not None:
            e, age = hit
            ino = self.inodes.ref(e.attr.gfid)
            if e.xattrs_listed:
                self.xattrs.listed(ino, e.xattr_names, time.monotonic() - age)
            return self._attrs(e.attr, ino, age)
        a = await self.remote.lookup(parent, name)
        if self.dirs.found(parent_inode):
            await self._list_ahead(parent_inode, parent)
        return self._entry(a)

    async def _list_ahead(self, ino: int, gfid: bytes) -> None:
        """List a directory whose names are being looked up one by one (dircache)."""
        asked = time.monotonic()
        entries: list[pb.DirEntry] = []
        eof = False
        try:
            while not eof and len(entries) < LIST_AHEAD_MAX:
                batch, eof = await self.remote.readdir(
                    gfid, entries[-1].cookie if entries else 0, READDIR_BATCH
                )
                entries += batch
                eof = eof or not batch
        except RemoteError as e:
            self.dirs.failed(ino)
            log.debug("op=list-ahead failed errno=%d", e.errno)
            return
        self.dirs.listed(ino, entries, eof, asked)

    async def forget(self, inode_list: Sequence[tuple[pyfuse3.InodeT, int]]) -> None:
        for ino, n in inode_list:
            self.inodes.forget(ino, n)
            self.xattrs.forget(ino)
            self.dirs.forget(ino)

    @fuse_errors
    async def getattr(
        self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._attrs(await self.remote.getattr(self._g(inode)), inode)

    @fuse_errors
    @changes
    async def setattr(
        self,
        inode: pyfuse3.InodeT,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: pyfuse3.FileHandleT | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        change: dict[str, int] = {}
        if fields.update_mode:
            change["mode"] = stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            change["uid"] = attr.st_uid
        if fields.update_gid:
            change["gid"] = attr.st_gid
        if fields.update_size:
            change["size"] = attr.st_size
        # UTIME_NOW: the primary's clock, not this client's (pyfuse3 filled in ours).
        # getattr: an unpatched pyfuse3 does not tell "now" apart.
        if getattr(fields, "update_atime_now", False):
            change["atime_now"] = 1
        elif fields.update_atime:
            change["atime_ns"] = attr.st_atime_ns
        if getattr(fields, "update_mtime_now", False):
            change["mtime_now"] = 1
        elif fields.update_mtime:
            change["mtime_ns"] = attr.st_mtime_ns
        gfid = self._g(inode)
        if "mode" in change:
            self.xattrs.changed(inode)  # chmod rewrites an ACL's mask entry
        try:
            # The caller's uid lets the brick tell root's chmod u+s of a root file from others'.
            a = await self.remote.setattr(gfid, fh or 0, ctx.uid, **change)
        finally:
            if "mode" in change:
                self.xattrs.changed(inode)
        return self._attrs(a, inode)

    @fuse_errors
    async def readlink(
        self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileNameT:
        return pyfuse3.FileNameT(await self.remote.readlink(self._g(inode)))

    # -- namespace ---------------------------------------------------------------------------

    async def _make(
        self,
        parent: int,
        name: bytes,
        kind: str,
        mode: int,
        ctx: pyfuse3.RequestContext,
        **kw: Any,
    ) -> tuple[pb.Attr, int]:
        # The client picks the GFID so a retried create (after a failover) is idempotent.
        return await self.remote.make_node(
            self._g(parent), name, uuid.uuid4().bytes, kind, mode, ctx.uid, ctx.gid,
            umask=ctx.umask if kind != "symlink" else 0, **kw,
        )  # fmt: skip

    @fuse_errors
    @changes
    async def mknod(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        rdev: int,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        kind = "file" if stat.S_ISREG(mode) else "special"
        a, _ = await self._make(parent_inode, name, kind, mode, ctx, rdev=rdev)
        return self._entry(a)

    @fuse_errors
    @changes
    async def mkdir(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        a, _ = await self._make(parent_inode, name, "dir", stat.S_IFDIR | mode, ctx)
        return self._entry(a)

    @fuse_errors
    @changes
    async def symlink(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        target: pyfuse3.FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        a, _ = await self._make(
            parent_inode, name, "symlink", stat.S_IFLNK | 0o777, ctx, target=target
        )
        return self._entry(a)

    @fuse_errors
    @changes
    async def create(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        flags: pyfuse3.FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        a, fh = await self._make(
            parent_inode, name, "file", stat.S_IFREG | mode, ctx, open_flags=flags
        )
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh)), self._entry(a)

    @fuse_errors
    @changes
    async def unlink(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        await self.remote.unlink(self._g(parent_inode), name)

    @fuse_errors
    @changes
    async def rmdir(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        await self.remote.rmdir(self._g(parent_inode), name)

    @fuse_errors
    @changes
    async def rename(
        self,
        parent_inode_old: pyfuse3.InodeT,
        name_old: pyfuse3.FileNameT,
        parent_inode_new: pyfuse3.InodeT,
        name_new: pyfuse3.FileNameT,
        flags: pyfuse3.FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        await self.remote.rename(
            self._g(parent_inode_old), name_old, self._g(parent_inode_new), name_new, flags
        )

    @fuse_errors
    @changes
    async def link(
        self,
        inode: pyfuse3.InodeT,
        new_parent_inode: pyfuse3.InodeT,
        new_name: pyfuse3.FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        a = await self.remote.link(self._g(inode), self._g(new_parent_inode), new_name)
        return self._entry(a)

    # -- files -------------------------------------------------------------------------------

    @fuse_errors
    async def open(
        self, inode: pyfuse3.InodeT, flags: pyfuse3.FlagT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileInfo:
        gfid = self._g(inode)
        if not flags & os.O_TRUNC:
            fh, _ = await self.remote.open(gfid, flags)
        else:
            self.dirs.changed()
            try:
                fh, _ = await self.remote.open(gfid, flags)
            finally:
                self.dirs.changed()
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh))

    @fuse_errors
    async def read(self, fh: pyfuse3.FileHandleT, off: int, size: int) -> bytes:
        return await self.remote.read(fh, off, size)

    @fuse_errors
    @changes
    async def write(self, fh: pyfuse3.FileHandleT, off: int, buf: bytes) -> int:
        return await self.remote.write(fh, off, buf)

    @fuse_errors
    async def flush(self, fh: pyfuse3.FileHandleT) -> None:
        # The replica layer answers it without a call while the volume answers
        # (ReplicatedRemote.flush says why that keeps close durable).
        await self.remote.flush(fh)

    @fuse_errors
    async def release(self, fh: pyfuse3.FileHandleT) -> None:
        await self.remote.release(fh)

    @fuse_errors
    async def fsync(self, fh: pyfuse3.FileHandleT, datasync: bool) -> None:
        await self.remote.fsync(fh, datasync)

    # -- directories -------------------------------------------------------------------------

    @fuse_errors
    async def opendir(
        self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileHandleT:
        self._g(inode)
        fh = next(self._next_dir)
        self._dirs[fh] = _DirStream(inode)  # the kernel pins the inode while it is open
        return pyfuse3.FileHandleT(fh)

    def _dir(self, fh: int) -> _DirStream:
        d = self._dirs.get(fh)
        if d is None:
            raise FUSEError(errno.EBADF)
        return d

    @fuse_errors
    async def readdir(
        self, fh: pyfuse3.FileHandleT, start_id: int, token: pyfuse3.ReaddirToken
    ) -> None:
        d = self._dir(fh)
        gfid = self._g(d.ino)
        dot = pyfuse3.EntryAttributes()
        dot.st_ino = pyfuse3.InodeT(d.ino)
        dot.st_mode = pyfuse3.ModeT(stat.S_IFDIR | 0o755)
        # "." and ".." take no lookup count (pyfuse3's rule), so the table is untouched.
        if start_id < DOT and not pyfuse3.readdir_reply(token, pyfuse3.FileNameT(b"."), dot, DOT):
            return
        if start_id < DOTDOT and not pyfuse3.readdir_reply(
            token, pyfuse3.FileNameT(b".."), dot, DOTDOT
        ):
            return
        offset = max(start_id, DOTDOT)
        if d.after != offset or time.monotonic() - d.fetched >= self.attr_timeout:
            d.after, d.pending, d.eof = offset, [], False  # a seek, a rewind or too old
        while True:
            if not d.pending:
                if d.eof:
                    return
                d.fetched = time.monotonic()
                entries, d.eof = await self.remote.readdir(gfid, offset, READDIR_BATCH)
                if not entries:
                    d.eof = True
                    return
                d.pending = entries
            age = time.monotonic() - d.fetched
            for i, e in enumerate(d.pending):
                ino = self.inodes.ino(e.attr.gfid)
                if not pyfuse3.readdir_reply(
                    token, pyfuse3.FileNameT(e.name), self._attrs(e.attr, ino, age), e.cookie
                ):
                    del d.pending[:i]
                    d.after = offset
                    return
                self.inodes.ref(e.attr.gfid)
                if e.xattrs_listed:
                    self.xattrs.listed(ino, e.xattr_names, d.fetched)
                offset = e.cookie
            d.pending = []
            d.after = offset

    async def releasedir(self, fh: pyfuse3.FileHandleT) -> None:
        self._dirs.pop(fh, None)

    @fuse_errors
    async def fsyncdir(self, fh: pyfuse3.FileHandleT, datasync: bool) -> None:
        await self.remote.fsyncdir(self._g(self._dir(fh).ino), datasync)

    @fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = await self.remote.statfs()
        out = pyfuse3.StatvfsData()
        out.f_bsize = s.bsize
        out.f_frsize = s.frsize
        out.f_blocks = s.blocks
        out.f_bfree = s.bfree
        out.f_bavail = s.bavail
        out.f_files = s.files
        out.f_ffree = s.ffree
        out.f_favail = s.favail
        out.f_namemax = s.namemax
        return out

    # -- xattrs ------------------------------------------------------------------------------

    @fuse_errors
    @changes
    async def setxattr(
        self,
        inode: pyfuse3.InodeT,
        name: pyfuse3.XAttrNameT,
        value: bytes,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        gfid = self._g(inode)
        self.xattrs.changed(inode)
        try:
            await self.remote.setxattr(gfid, name, value, ctx.uid)
        finally:
            self.xattrs.changed(inode)

    @fuse_errors
    async def getxattr(
        self, inode: pyfuse3.InodeT, name: pyfuse3.XAttrNameT, ctx: pyfuse3.RequestContext
    ) -> bytes:
        if self.xattrs.known_absent(inode, name):
            raise FUSEError(errno.ENODATA)
        gfid = self._g(inode)
        asked = time.monotonic()
        try:
            return await self.remote.getxattr(gfid, name)
        except RemoteError as e:
            if e.errno == errno.ENODATA:
                self.xattrs.absent(inode, name, asked)
            raise

    @fuse_errors
    async def listxattr(
        self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext
    ) -> Sequence[pyfuse3.XAttrNameT]:
        names = self.xattrs.names(inode)
        if names is None:
            gfid = self._g(inode)
            asked = time.monotonic()
            names = await self.remote.listxattr(gfid)
            self.xattrs.listed(inode, names, asked)
        return [pyfuse3.XAttrNameT(n) for n in names]

    @fuse_errors
    @changes
    async def removexattr(
        self, inode: pyfuse3.InodeT, name: pyfuse3.XAttrNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        gfid = self._g(inode)
        self.xattrs.changed(inode)
        try:
            await self.remote.removexattr(gfid, name)
        finally:
            self.xattrs.changed(inode)

    # -- locks, fallocate, lseek, copy_file_range (the patched pyfuse3: scripts/pyfuse3) ---

    def _lock(
        self, inode: int, owner: int, kind: Any, start: int, length: int, pid: int
    ) -> pb.LockRequest:
        return pb.LockRequest(
            gfid=self._g(inode),
            owner=lockowner.owner(self.session, owner),
            type=kind,
            start=start,
            length=length,
            pid=max(pid, 0),
        )

    async def _set_lock(self, req: pb.LockRequest, wait: bool) -> None:
        if not wait or req.type == pb.LOCK_TYPE_UNLOCK:
            await self.remote.lock(req)
            return
        req.wait = True
        while True:
            try:
                await self.remote.lock(req, LOCK_WAIT)
                return
            except RemoteError as e:
                # EINTR as data: the brick's wait ended just before the RPC deadline
                if e.errno != errno.EINTR or isinstance(e, TransportError):
                    raise

    @fuse_errors
    async def getlk(
        self,
        inode: pyfuse3.InodeT,
        fh: pyfuse3.FileHandleT,
        owner: int,
        type: int,
        start: int,
        length: int,
        pid: int,
    ) -> tuple[int, int, int, int]:
        if type not in (fcntl.F_RDLCK, fcntl.F_WRLCK):
            raise FUSEError(errno.EINVAL)
        req = self._lock(inode, owner, LOCK_TYPE[type], start, length, pid)
        req.test = True
        r = await self.remote.lock(req)
        if r.type == pb.LOCK_TYPE_UNLOCK:
            return fcntl.F_UNLCK, start, length, pid
        kind = fcntl.F_WRLCK if r.type == pb.LOCK_TYPE_WRITE else fcntl.F_RDLCK
        return kind, r.start, r.length, r.pid

    @fuse_errors
    async def setlk(
        self,
        inode: pyfuse3.InodeT,
        fh: pyfuse3.FileHandleT,
        owner: int,
        type: int,
        start: int,
        length: int,
        pid: int,
        sleep: bool,
    ) -> None:
        if type not in LOCK_TYPE:
            raise FUSEError(errno.EINVAL)
        owners = self.lockers.get(inode)
        if type == fcntl.F_UNLCK:
            if owners is None or owner not in owners:
                return  # holds nothing here (the unlock of every close() lands here)
        else:
            self.lockers.setdefault(inode, set()).add(owner)
        await self._set_lock(self._lock(inode, owner, LOCK_TYPE[type], start, length, pid), sleep)
        if type == fcntl.F_UNLCK and start == 0 and length == 0 and owners is not None:
            owners.discard(owner)  # the whole file: nothing left
            if not owners:
                self.lockers.pop(inode, None)

    @fuse_errors
    async def flock(
        self, inode: pyfuse3.InodeT, fh: pyfuse3.FileHandleT, owner: int, op: int
    ) -> None:
        kind = FLOCK_TYPE.get(op & ~fcntl.LOCK_NB)
        if kind is None:
            raise FUSEError(errno.EINVAL)
        req = self._lock(inode, owner, kind, 0, 0, 0)
        req.flock = True
        await self._set_lock(req, not op & fcntl.LOCK_NB)

    @fuse_errors
    async def fallocate(self, fh: pyfuse3.FileHandleT, mode: int, offset: int, length: int) -> None:
        await self.remote.fallocate(fh, mode, offset, length)

    @fuse_errors
    async def lseek(self, fh: pyfuse3.FileHandleT, offset: int, whence: int) -> int:
        if self.enable_writeback_cache:
            # Dirty pages the kernel has not sent yet are data the brick cannot see: ENOSYS
            # makes the kernel answer itself (all data up to its size, the hole at the end).
            raise FUSEError(errno.ENOSYS)
        return await self.remote.seek(fh, offset, whence)

    @fuse_errors
    async def copy_file_range(
        self,
        fh_in: pyfuse3.FileHandleT,
        off_in: int,
        fh_out: pyfuse3.FileHandleT,
        off_out: int,
        length: int,
        flags: int,
    ) -> int:
        if flags:
            raise FUSEError(errno.EINVAL)
        return await self.remote.copy_range(fh_in, off_in, fh_out, off_out, length)
