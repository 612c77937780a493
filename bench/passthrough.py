"""A do-nothing passthrough filesystem on pyfuse3 + trio: the floor of any Python FUSE stack.

Every request goes straight to the same system call on a source directory, on the trio
thread, with no caching of its own. Inodes are held as O_PATH descriptors keyed by the
source's (st_dev, st_ino), so renames need no path bookkeeping. Kernel-side settings
match a default gfs mount (entry/attr timeouts 1 s, default_permissions, allow_other,
1 MiB read-ahead), so what differs from gfs is what gfs does per request.

    python -m bench.passthrough SOURCE MOUNTPOINT [--timeout 1.0] [--read-ahead-kib 1024]

Runs in the foreground; stops on SIGTERM/SIGINT/SIGHUP (unmounting first) or when its
mount goes away.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import resource
import signal
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyfuse3
import trio

log = logging.getLogger("bench.passthrough")
T = TypeVar("T")
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Node:
    fd: int  # O_PATH | O_NOFOLLOW descriptor of the source inode
    key: tuple[int, int]
    nlookup: int = 0


def sys_call(f: Callable[[], T]) -> T:
    """Run one system call; its OSError becomes the FUSE reply's errno."""
    try:
        return f()
    except OSError as e:
        raise pyfuse3.FUSEError(e.errno or errno.EIO) from None


class Passthrough(pyfuse3.Operations):
    enable_writeback_cache = False

    def __init__(self, source: Path, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        root_fd = os.open(source, os.O_PATH | os.O_DIRECTORY)
        st = os.fstat(root_fd)
        root = Node(root_fd, (st.st_dev, st.st_ino), nlookup=1)
        self.nodes: dict[int, Node] = {pyfuse3.ROOT_INODE: root}
        self.by_key: dict[tuple[int, int], int] = {root.key: pyfuse3.ROOT_INODE}
        self.next_inode = pyfuse3.ROOT_INODE + 1
        self.dirs: dict[int, tuple[int, list[str]]] = {}  # fh -> (inode, names at opendir)
        self.next_dir = 1

    # -- inodes ------------------------------------------------------------------------
    def node(self, inode: int) -> Node:
        try:
            return self.nodes[inode]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ESTALE) from None

    def proc(self, inode: int) -> str:
        return f"/proc/self/fd/{self.node(inode).fd}"

    def attrs(self, inode: int, st: os.stat_result) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.generation = 0
        a.entry_timeout = self.timeout
        a.attr_timeout = self.timeout
        a.st_mode = st.st_mode
        a.st_nlink = st.st_nlink
        a.st_uid = st.st_uid
        a.st_gid = st.st_gid
        a.st_rdev = st.st_rdev
        a.st_size = st.st_size
        a.st_blksize = st.st_blksize
        a.st_blocks = st.st_blocks
        a.st_atime_ns = st.st_atime_ns
        a.st_mtime_ns = st.st_mtime_ns
        a.st_ctime_ns = st.st_ctime_ns
        return a

    def remember(self, parent: int, name: str) -> pyfuse3.EntryAttributes:
        """Look `name` up in `parent` and count one kernel reference to it."""
        pfd = self.node(parent).fd
        st = sys_call(lambda: os.stat(name, dir_fd=pfd, follow_symlinks=False))
        key = (st.st_dev, st.st_ino)
        inode = self.by_key.get(key)
        if inode is None:
            fd = sys_call(lambda: os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=pfd))
            inode = self.next_inode
            self.next_inode += 1
            self.nodes[inode] = Node(fd, key)
            self.by_key[key] = inode
        self.nodes[inode].nlookup += 1
        return self.attrs(inode, st)

    async def forget(self, inode_list: Any) -> None:
        for inode, n in inode_list:
            node = self.nodes.get(inode)
            if node is None or inode == pyfuse3.ROOT_INODE:
                continue
            node.nlookup -= n
            if node.nlookup <= 0:
                del self.nodes[inode]
                del self.by_key[node.key]
                os.close(node.fd)

    # -- metadata ----------------------------------------------------------------------
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        return self.remember(parent_inode, os.fsdecode(name))

    async def getattr(self, inode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        fd = self.node(inode).fd
        return self.attrs(inode, sys_call(lambda: os.stat(fd)))

    async def setattr(
        self, inode: int, attr: Any, fields: Any, fh: int | None, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        node = self.node(inode)
        path = self.proc(inode)
        is_link = stat.S_ISLNK(os.stat(node.fd).st_mode)
        if fields.update_size:
            sys_call(lambda: os.truncate(fh if fh is not None else path, attr.st_size))
        if fields.update_mode and not is_link:
            sys_call(lambda: os.chmod(path, stat.S_IMODE(attr.st_mode)))
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            gid = attr.st_gid if fields.update_gid else -1
            flags = AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW
            if _libc.fchownat(node.fd, b"", uid, gid, flags) != 0:
                raise pyfuse3.FUSEError(ctypes.get_errno())
        if (fields.update_atime or fields.update_mtime) and not is_link:
            st = os.stat(node.fd)
            atime = attr.st_atime_ns if fields.update_atime else st.st_atime_ns
            mtime = attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns
            sys_call(lambda: os.utime(path, ns=(atime, mtime)))
        return await self.getattr(inode, ctx)

    async def readlink(self, inode: int, ctx: Any) -> bytes:
        fd = self.node(inode).fd
        return os.fsencode(sys_call(lambda: os.readlink("", dir_fd=fd)))

    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        pfd, n = self.node(parent_inode).fd, os.fsdecode(name)
        sys_call(lambda: os.mkdir(n, mode, dir_fd=pfd))
        return self.remember(parent_inode, n)

    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        pfd, n = self.node(parent_inode).fd, os.fsdecode(name)
        sys_call(lambda: os.mknod(n, mode, rdev, dir_fd=pfd))
        return self.remember(parent_inode, n)

    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        pfd, n = self.node(parent_inode).fd, os.fsdecode(name)
        sys_call(lambda: os.symlink(os.fsdecode(target), n, dir_fd=pfd))
        return self.remember(parent_inode, n)

    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        src, pfd, n = self.proc(inode), self.node(new_parent_inode).fd, os.fsdecode(new_name)
        sys_call(lambda: os.link(src, n, dst_dir_fd=pfd, follow_symlinks=True))
        return self.remember(new_parent_inode, n)

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        pfd = self.node(parent_inode).fd
        sys_call(lambda: os.unlink(os.fsdecode(name), dir_fd=pfd))

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        pfd = self.node(parent_inode).fd
        sys_call(lambda: os.rmdir(os.fsdecode(name), dir_fd=pfd))

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        if flags:
            raise pyfuse3.FUSEError(errno.EINVAL)  # exchange/noreplace: not needed here
        a, b = self.node(parent_inode_old).fd, self.node(parent_inode_new).fd
        sys_call(
            lambda: os.rename(
                os.fsdecode(name_old), os.fsdecode(name_new), src_dir_fd=a, dst_dir_fd=b
            )
        )

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        v = os.statvfs(self.proc(pyfuse3.ROOT_INODE))
        out = pyfuse3.StatvfsData()
        for f in ("bsize", "frsize", "blocks", "bfree", "bavail", "files", "ffree", "favail"):
            setattr(out, f"f_{f}", getattr(v, f"f_{f}"))
        out.f_namemax = v.f_namemax
        return out

    # -- directories -------------------------------------------------------------------
    async def opendir(self, inode: int, ctx: Any) -> int:
        fd = self.node(inode).fd
        dfd = sys_call(lambda: os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd))
        try:
            names = sys_call(lambda: os.listdir(dfd))
        finally:
            os.close(dfd)
        fh = self.next_dir
        self.next_dir += 1
        self.dirs[fh] = (inode, names)
        return fh

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        inode, names = self.dirs[fh]
        for i in range(start_id, len(names)):
            try:
                attr = self.remember(inode, names[i])
            except pyfuse3.FUSEError:
                continue  # removed since opendir
            if not pyfuse3.readdir_reply(token, os.fsencode(names[i]), attr, i + 1):
                await self.forget([(attr.st_ino, 1)])
                return

    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)

    # -- files -------------------------------------------------------------------------
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        path = self.proc(inode)
        return pyfuse3.FileInfo(fh=sys_call(lambda: os.open(path, flags & ~os.O_NOFOLLOW)))

    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        pfd, n = self.node(parent_inode).fd, os.fsdecode(name)
        fd = sys_call(lambda: os.open(n, flags | os.O_CREAT, mode, dir_fd=pfd))
        return pyfuse3.FileInfo(fh=fd), self.remember(parent_inode, n)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return sys_call(lambda: os.pread(fh, size, off))

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return sys_call(lambda: os.pwrite(fh, buf, off))

    async def flush(self, fh: int) -> None:
        pass

    async def fsync(self, fh: int, datasync: bool) -> None:
        sys_call(lambda: (os.fdatasync if datasync else os.fsync)(fh))

    async def release(self, fh: int) -> None:
        os.close(fh)


def mount_device(mountpoint: str) -> str | None:
    target = os.fsencode(mountpoint)
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                return fields[2].decode()
    return None


async def serve(ops: Passthrough, mountpoint: str, read_ahead_kib: int) -> None:
    async def watch(done: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            async for _ in sigs:
                done.cancel()
                return

    async def watch_mount(done: trio.CancelScope) -> None:
        # pyfuse3's loop does not notice `fusermount3 -u` on every kernel.
        while True:
            await trio.sleep(1)
            if mount_device(mountpoint) is None:
                done.cancel()
                return

    async with trio.open_nursery() as n:
        n.start_soon(watch, n.cancel_scope)
        n.start_soon(watch_mount, n.cancel_scope)
        await trio.sleep(0.2)  # the kernel resets read-ahead when it answers INIT
        dev = mount_device(mountpoint)
        if dev and read_ahead_kib:
            try:
                Path(f"/sys/class/bdi/{dev}/read_ahead_kb").write_text(str(read_ahead_kib))
            except OSError as e:
                log.warning("read-ahead not set error=%s", e.strerror)
        await pyfuse3.main()
        n.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("mountpoint", type=Path)
    ap.add_argument("--timeout", type=float, default=1.0, help="entry and attr timeout (s)")
    ap.add_argument("--read-ahead-kib", type=int, default=1024)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not a.source.is_dir():
        ap.error(f"{a.source}: not a directory")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one fd per known inode
    ops = Passthrough(a.source.resolve(), a.timeout)
    mountpoint = str(a.mountpoint.resolve())
    opts = {"fsname=passthrough", "subtype=passthrough", "default_permissions", "allow_other"}
    try:
        pyfuse3.init(ops, mountpoint, opts)
    except RuntimeError as e:
        sys.exit(f"passthrough: cannot mount on {mountpoint}: {e}")
    log.info("mounted source=%s mountpoint=%s pid=%d", a.source, mountpoint, os.getpid())
    try:
        trio.run(serve, ops, mountpoint, a.read_ahead_kib)
    finally:
        pyfuse3.close(unmount=mount_device(mountpoint) is not None)
        log.info("unmounted mountpoint=%s", mountpoint)


if __name__ == "__main__":
    main()
