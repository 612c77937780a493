"""One brick on disk: plain files under the brick folder, GFID xattrs and the GFID index.

Layout and invariants: docs/architecture.md, "On-disk layout of a brick".
Every user name is used once, relative to its parent directory's fd (`*at()`),
never joined into a path, and no user symlink is ever followed.
Errors are raised as OSError with the errno the client must see.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from gfs.brick import sys as bsys

log = logging.getLogger(__name__)

ROOT_GFID = uuid.UUID(int=1).bytes
GFID_XATTR = "trusted.gfs.gfid"
HIDDEN_XATTR_PREFIX = b"trusted.gfs."
META = b".gfs"
NAME_MAX = 255
DIRFD_CACHE = 256  # per brick: a node may serve thousands of bricks
#: at most this much per CopyRange (a short copy: the caller asks again): its forward must
#: finish well within the failure-detection timeout, like a 1 MiB write
MAX_COPY = 4 << 20
#: Cookies 1 and 2 are left for the client's "." and "..".
FIRST_COOKIE = 3

O_PATH = getattr(os, "O_PATH", 0o10000000)


def err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def check_name(name: bytes, parent: bytes) -> None:
    if not name or b"/" in name or b"\0" in name:
        raise err(errno.EINVAL)
    if len(name) > NAME_MAX:
        raise err(errno.ENAMETOOLONG)
    if name in (b".", b".."):
        raise err(errno.EINVAL)
    if parent == ROOT_GFID and name == META:
        raise err(errno.EPERM)


def check_gfid(gfid: bytes) -> None:
    if len(gfid) != 16:
        raise err(errno.EINVAL)


def valid_name(name: bytes) -> bool:
    return (
        0 < len(name) <= NAME_MAX
        and b"/" not in name
        and b"\0" not in name
        and name
        not in (
            b".",
            b"..",
        )
    )


def parse_dir_target(target: bytes) -> tuple[bytes | None, bytes]:
    """(parent GFID, name) of a directory index target `../../xx/yy/<uuid>/<name>`;
    (None, b"") when it has any other form."""
    parts = target.split(b"/", 5)
    if len(parts) != 6 or parts[0] != b".." or parts[1] != b".." or not valid_name(parts[5]):
        return None, b""
    try:
        parent = uuid.UUID(parts[4].decode("ascii")).bytes
    except (ValueError, UnicodeDecodeError):
        return None, b""
    if b"/".join(parts[2:5]) != index_rel(parent):
        return None, b""
    return parent, parts[5]


def privileged_mode(perm: int, uid: int, gid: int) -> bool:
    """A non-directory with these bits and owner runs with root's rights (setuid root
    or setgid group 0)."""
    return bool((perm & stat.S_ISUID and uid == 0) or (perm & stat.S_ISGID and gid == 0))


def _has_default_acl(dir_fd: int) -> bool:
    try:
        os.getxattr(dir_fd, "system.posix_acl_default")
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return False
        raise
    return True


def _setid(perm: int, st_mode: int) -> int:
    """`perm`'s set-ID bits on the permissions the object got at creation (an inherited
    default ACL may have masked them: a chmod to `perm` would rewrite the ACL mask)."""
    return (st_mode & 0o1777) | (perm & (stat.S_ISUID | stat.S_ISGID))


def cookie(name: bytes) -> int:
    """A stable 63-bit position for `name` in its directory (see "Readdir offsets")."""
    h = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "little") >> 1
    return max(h, FIRST_COOKIE)


def index_rel(gfid: bytes) -> bytes:
    h = gfid.hex()
    return f"{h[0:2]}/{h[2:4]}/{uuid.UUID(bytes=gfid)}".encode()


@dataclass
class Attr:
    gfid: bytes
    st: os.stat_result
    nlink: int


@dataclass
class Handle:
    fd: int
    gfid: bytes
    append: bool
    flags: int = 0  # the open flags asked for


class _DirFd:
    """A cached directory fd; closed when evicted and no longer in use."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.refs = 0
        self.evicted = False


class Brick:
    def __init__(self, name: str, path: Path, quota: int = 0) -> None:
        self.name = name
        self.path = path
        self.quota = 0
        self.used = -1  # bytes allocated under the brick; measured when a quota is first set
        self._usage_lock = threading.Lock()
        self.root_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        self._ns_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._dirs: OrderedDict[bytes, _DirFd] = OrderedDict()
        self._handles: dict[int, Handle] = {}
        self._open_count: dict[bytes, int] = {}
        #: files kept for a primary that still has them open (replication: "pins")
        self._pins: set[bytes] = set()
        self._next_fh = 1
        self._active = 0
        self._closed = False
        self._idle = threading.Condition()
        self._init_layout()
        self.sweep_orphans()
        self.set_quota(quota)

    # -- layout ------------------------------------------------------------------------------

    def _init_layout(self) -> None:
        with suppress(FileExistsError):
            os.mkdir(META, 0o700, dir_fd=self.root_fd)
        meta = os.open(META, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.root_fd)
        try:
            mode = stat.S_IMODE(os.fstat(meta).st_mode)
            if mode != 0o700:  # it holds the index and the replica state: private
                log.warning("state_folder_mode_fixed brick=%s mode=%o", self.name, mode)
                os.fchmod(meta, 0o700)
            with suppress(FileExistsError):
                os.mkdir(b"gfid", 0o700, dir_fd=meta)
            self.index_fd = os.open(
                b"gfid", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=meta
            )
            try:
                with open(os.open(b"brick-id", os.O_RDONLY, dir_fd=meta), "rb") as f:
                    self.brick_id = f.read().decode().strip()
            except FileNotFoundError:
                self.brick_id = str(uuid.uuid4())
                fd = os.open(b"brick-id", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=meta)
                with open(fd, "wb") as f:
                    f.write(self.brick_id.encode() + b"\n")
        finally:
            os.close(meta)
        try:
            current = os.getxattr(self.root_fd, GFID_XATTR)
            if current != ROOT_GFID:
                raise SystemExit(f"brick {self.name}: {self.path} belongs to another volume")
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
            os.setxattr(self.root_fd, GFID_XATTR, ROOT_GFID)

    def sweep_orphans(self) -> int:
        """Drop index links of files with no name left: unlinked while open before a
        crash or restart (no handle survives a restart). Directory entries are symlinks
        and are never swept."""
        dropped = 0
        base = f"/proc/self/fd/{self.index_fd}"
        with os.scandir(base) as top:
            level1 = [a.path for a in top if a.is_dir(follow_symlinks=False)]
        for d1 in level1:
            with os.scandir(d1) as mid:
                level2 = [b.path for b in mid if b.is_dir(follow_symlinks=False)]
            for d2 in level2:
                with os.scandir(d2) as entries:
                    for e in entries:
                        st = e.stat(follow_symlinks=False)
                        if not stat.S_ISLNK(st.st_mode) and st.st_nlink == 1:
                            os.unlink(e.path)
                            dropped += 1
        if dropped:
            log.info("swept orphans brick=%s count=%d", self.name, dropped)
        return dropped

    # -- quota -------------------------------------------------------------------------------

    def set_quota(self, quota: int) -> None:
        """Limit the bytes allocated under the brick (0: none). Usage is measured once,
        by a walk, then kept up to date by the operations that allocate or free."""
        if quota and self.used < 0:
            self.used = self._measure()
            log.info("measured brick=%s used=%d quota=%d", self.name, self.used, quota)
        self.quota = quota

    def _measure(self) -> int:
        seen: set[int] = set()
        total = 0
        for top, dirs, files in os.walk(self.path):
            if top == str(self.path) and META.decode() in dirs:
                dirs.remove(META.decode())
            for f in files:
                st = os.lstat(os.path.join(top, f))
                if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_blocks * 512
        return total

    def _room(self, grow: int) -> None:
        if self.quota and grow > 0 and self.used + grow > self.quota:
            raise err(errno.ENOSPC)

    @staticmethod
    def _unallocated(fd: int, offset: int, length: int) -> int:
        """Bytes of the blocks under [offset, offset+length) that hold no data yet: what
        writing there can allocate. The quota counts blocks like ext4 and GlusterFS's
        quota, so a hole or a sparse file far past the size costs nothing."""
        bs = 4096
        pos, end = offset // bs * bs, -(-(offset + length) // bs) * bs
        st = os.fstat(fd)
        size = -(-st.st_size // bs) * bs
        if st.st_blocks * 512 >= size:
            # No hole below EOF (a dense or preallocated file: SEEK_DATA would call its
            # unwritten extents holes), so only the part past EOF can allocate.
            return max(0, end - max(pos, size))
        free = 0
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: only a hole (or EOF) from here on
                    raise
                return free + end - pos
            if data > pos:
                free += min(data, end) - pos
            if data >= end:
                break
            pos = os.lseek(fd, data, os.SEEK_HOLE)
        return free

    def _charge(self, before: os.stat_result, after: os.stat_result) -> None:
        if self.used >= 0:
            with self._usage_lock:
                self.used += (after.st_blocks - before.st_blocks) * 512

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Marks a request in progress, so close() never pulls fds from under it."""
        with self._idle:
            if self._closed:
                raise err(errno.ENODEV)
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    def close(self) -> None:
        with self._idle:
            self._closed = True
            if not self._idle.wait_for(lambda: self._active == 0, timeout=120):
                log.error("brick=%s still busy at close; fds left open", self.name)
                return
        for h in self._handles.values():
            os.close(h.fd)
        self._handles.clear()
        with self._cache_lock:
            for d in self._dirs.values():
                os.close(d.fd)
            self._dirs.clear()
        os.close(self.index_fd)
        os.close(self.root_fd)

    def _proc(self, dir_fd: int, name: bytes) -> bytes:
        # A path through the /proc fd link plus one checked name: no user path is joined
        # and, with follow_symlinks=False, the final name is never followed.
        return b"/proc/self/fd/%d/%s" % (dir_fd, name)

    def _ensure_index_dirs(self, rel: bytes) -> None:
        a, b, _ = rel.split(b"/")
        for d in (a, a + b"/" + b):
            with suppress(FileExistsError):
                os.mkdir(d, 0o700, dir_fd=self.index_fd)

    def _dir_index_target(self, parent: bytes, name: bytes) -> bytes:
        return b"../../" + index_rel(parent) + b"/" + name

    def _index_dir(self, gfid: bytes, parent: bytes, name: bytes) -> None:
        """Create or replace the index symlink of directory `gfid` (atomically)."""
        rel = index_rel(gfid)
        self._ensure_index_dirs(rel)
        tmp = rel + b".tmp"
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=self.index_fd)
        os.symlink(self._dir_index_target(parent, name), tmp, dir_fd=self.index_fd)
        os.rename(tmp, rel, src_dir_fd=self.index_fd, dst_dir_fd=self.index_fd)

    def _index_link(self, gfid: bytes, parent_fd: int, name: bytes) -> None:
        rel = index_rel(gfid)
        self._ensure_index_dirs(rel)
        with suppress(FileExistsError):
            os.link(
                name,
                rel,
                src_dir_fd=parent_fd,
                dst_dir_fd=self.index_fd,
                follow_symlinks=False,
            )

    def _drop_index(self, gfid: bytes) -> None:
        rel = index_rel(gfid)
        try:
            st = os.stat(rel, dir_fd=self.index_fd, follow_symlinks=False)
            os.unlink(rel, dir_fd=self.index_fd)
        except FileNotFoundError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink <= 1 and self.used >= 0:
            with self._usage_lock:  # the last link: its blocks are free now
                self.used -= st.st_blocks * 512

    # -- resolution --------------------------------------------------------------------------

    @contextmanager
    def dirfd(self, gfid: bytes) -> Iterator[int]:
        """An fd of directory `gfid`, walking the index symlinks (ESTALE when gone)."""
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            yield self.root_fd
            return
        d = self._open_dir(gfid)
        try:
            yield d.fd
        finally:
            with self._cache_lock:
                d.refs -= 1
                if d.evicted and d.refs == 0:
                    os.close(d.fd)

    def _cached(self, gfid: bytes) -> _DirFd | None:
        with self._cache_lock:
            d = self._dirs.get(gfid)
            if d is not None:
                self._dirs.move_to_end(gfid)
                d.refs += 1
            return d

    def _open_dir(self, gfid: bytes) -> _DirFd:
        d = self._cached(gfid)
        if d is not None:
            return d
        # Walk up to the root or a cached ancestor, then open downwards.
        chain: list[tuple[bytes, bytes]] = []
        cur = gfid
        base: _DirFd | None = None
        while True:
            parent, name = self._dir_entry(cur)
            chain.append((cur, name))
            if parent == ROOT_GFID:
                break
            base = self._cached(parent)
            if base is not None:
                break
            cur = parent
            if len(chain) > 1 << 16:
                raise err(errno.ELOOP)
        fd = base.fd if base is not None else self.root_fd
        opened: list[int] = []
        try:
            for child, name in reversed(chain):
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as e:
                    raise err(errno.ESTALE) from e
                opened.append(fd)
                try:
                    have = os.getxattr(fd, GFID_XATTR)
                except OSError as e:
                    raise err(errno.ESTALE) from e
                if have != child:
                    raise err(errno.ESTALE)
        except BaseException:
            for o in opened:
                os.close(o)
            raise
        finally:
            if base is not None:
                self._release_dir(base)
        for o in opened[:-1]:
            os.close(o)
        d = _DirFd(opened[-1])
        d.refs = 1
        with self._cache_lock:
            old = self._dirs.pop(gfid, None)
            if old is not None:
                self._evict_locked(old)
            self._dirs[gfid] = d
            while len(self._dirs) > DIRFD_CACHE:
                _, victim = self._dirs.popitem(last=False)
                self._evict_locked(victim)
        return d

    def _dir_entry(self, gfid: bytes) -> tuple[bytes, bytes]:
        """(parent GFID, name) from the index entry of directory `gfid`, or ESTALE.

        The entry must be a directory's own symlink (one link: a user symlink's entry is a
        hard link with two) whose target has exactly the form `_dir_index_target` makes,
        with one valid name: a crafted user symlink can never send the walk elsewhere."""
        rel = index_rel(gfid)
        try:
            st = os.stat(rel, dir_fd=self.index_fd, follow_symlinks=False)
            if not self._is_index_dir(st):
                raise err(errno.ENOTDIR if st.st_nlink > 1 else errno.ESTALE)
            target = os.readlink(rel, dir_fd=self.index_fd)
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise
            raise err(errno.ESTALE) from e
        parent, name = parse_dir_target(target)
        if parent is None or parent == gfid:
            log.warning(
                "bad directory index entry brick=%s gfid=%s", self.name, uuid.UUID(bytes=gfid)
            )
            raise err(errno.ESTALE)
        return parent, name

    def _release_dir(self, d: _DirFd) -> None:
        with self._cache_lock:
            d.refs -= 1
            if d.evicted and d.refs == 0:
                os.close(d.fd)

    def _evict_locked(self, d: _DirFd) -> None:
        d.evicted = True
        if d.refs == 0:
            os.close(d.fd)

    def _forget_dir(self, gfid: bytes) -> None:
        with self._cache_lock:
            d = self._dirs.pop(gfid, None)
            if d is not None:
                self._evict_locked(d)

    # -- attributes --------------------------------------------------------------------------

    def _attr(self, gfid: bytes, st: os.stat_result) -> Attr:
        nlink = st.st_nlink
        if not stat.S_ISDIR(st.st_mode) and nlink > 0:
            nlink -= 1  # the index link
        elif gfid == ROOT_GFID:
            nlink -= 1  # the hidden .gfs folder
        return Attr(gfid, st, nlink)

    def _gfid_of(self, parent_fd: int, name: bytes, st: os.stat_result) -> bytes:
        """The GFID of entry `name`; assigns one to an object that has none."""
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
            try:
                try:
                    return os.getxattr(fd, GFID_XATTR)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
                gfid = uuid.uuid4().bytes
                os.setxattr(fd, GFID_XATTR, gfid)
                parent = os.getxattr(parent_fd, GFID_XATTR)
                self._index_dir(gfid, parent, name)
                log.info("assigned gfid to dir brick=%s gfid=%s", self.name, uuid.UUID(bytes=gfid))
                return gfid
            finally:
                os.close(fd)
        p = self._proc(parent_fd, name)
        try:
            return os.getxattr(p, GFID_XATTR, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
        gfid = uuid.uuid4().bytes
        os.setxattr(p, GFID_XATTR, gfid, follow_symlinks=False)
        self._index_link(gfid, parent_fd, name)
        log.info("assigned gfid brick=%s gfid=%s", self.name, uuid.UUID(bytes=gfid))
        return gfid

    def _entry(self, parent_fd: int, name: bytes) -> Attr:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        gfid = self._gfid_of(parent_fd, name, st)
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink == 1:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)  # index link just made
        return self._attr(gfid, st)

    def lookup(self, parent: bytes, name: bytes) -> Attr:
        if parent == ROOT_GFID and name == META:
            raise err(errno.ENOENT)
        check_name(name, parent)
        with self.dirfd(parent) as pfd:
            return self._entry(pfd, name)

    def _index_stat(self, gfid: bytes) -> os.stat_result:
        """The GFID's index entry, not followed; ESTALE for a GFID the brick lacks."""
        try:
            return os.stat(index_rel(gfid), dir_fd=self.index_fd, follow_symlinks=False)
        except OSError as e:
            raise err(errno.ESTALE) from e

    def _has_index(self, gfid: bytes) -> bool:
        try:
            os.stat(index_rel(gfid), dir_fd=self.index_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def _is_index_dir(self, st: os.stat_result) -> bool:
        # A directory's index entry is a symlink with one link; a user symlink in the
        # index is a hard link, so it has at least two while it has a name.
        return stat.S_ISLNK(st.st_mode) and st.st_nlink == 1

    def getattr(self, gfid: bytes) -> Attr:
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            return self._attr(gfid, os.fstat(self.root_fd))
        st = self._index_stat(gfid)
        if self._is_index_dir(st):
            with self.dirfd(gfid) as fd:
                st = os.fstat(fd)
        return self._attr(gfid, st)

    def _nondir(self, gfid: bytes) -> tuple[bytes, os.stat_result]:
        """Index path and stat of a non-directory; EISDIR for a directory."""
        rel = index_rel(gfid)
        st = self._index_stat(gfid)
        if self._is_index_dir(st):
            raise err(errno.EISDIR)
        return rel, st

    def setattr(
        self,
        gfid: bytes,
        fh: int,
        mode: int | None,
        uid: int | None,
        gid: int | None,
        size: int | None,
        atime_ns: int | None,
        mtime_ns: int | None,
        *,
        allow_privileged: bool = True,
    ) -> Attr:
        """`allow_privileged`: may make a file setuid/setgid root (see make_node)."""
        check_gfid(gfid)
        h = self._handles.get(fh) if fh else None
        isdir = gfid == ROOT_GFID
        if not isdir and h is None:
            st = os.stat(index_rel(gfid), dir_fd=self.index_fd, follow_symlinks=False)
            isdir = self._is_index_dir(st)
        if not isdir and not allow_privileged and mode is not None:
            cur = os.fstat(h.fd) if h is not None else self._index_stat(gfid)
            if privileged_mode(
                mode, cur.st_uid if uid is None else uid, cur.st_gid if gid is None else gid
            ):
                log.warning(
                    "refused privileged mode brick=%s gfid=%s mode=%o",
                    self.name,
                    uuid.UUID(bytes=gfid),
                    mode,
                )
                raise err(errno.EPERM)
        if isdir:
            with self.dirfd(gfid) as fd:
                if size is not None:
                    raise err(errno.EISDIR)
                self._setattr_fd(fd, mode, uid, gid, None, atime_ns, mtime_ns)
                return self._attr(gfid, os.fstat(fd))
        if h is not None:
            self._setattr_fd(h.fd, mode, uid, gid, size, atime_ns, mtime_ns)
            return self._attr(gfid, os.fstat(h.fd))
        rel, st = self._nondir(gfid)
        if uid is not None or gid is not None:
            os.chown(
                rel,
                -1 if uid is None else uid,
                -1 if gid is None else gid,
                dir_fd=self.index_fd,
                follow_symlinks=False,
            )
        if stat.S_ISLNK(st.st_mode):
            if mode is not None or size is not None:
                raise err(errno.EOPNOTSUPP)
        elif stat.S_ISREG(st.st_mode) and (mode is not None or size is not None):
            fd = os.open(rel, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.index_fd)
            try:
                if mode is not None:
                    os.fchmod(fd, mode & 0o7777)
                if size is not None:
                    before = os.fstat(fd)
                    os.truncate(self._proc(self.index_fd, rel), size)
                    self._charge(before, os.fstat(fd))
            finally:
                os.close(fd)
        elif mode is not None:
            os.chmod(self._proc(self.index_fd, rel), mode & 0o7777, follow_symlinks=True)
        elif size is not None:
            raise err(errno.EINVAL)
        if atime_ns is not None or mtime_ns is not None:
            bsys.utimensat(self.index_fd, rel, atime_ns, mtime_ns)
        return self._attr(gfid, os.stat(rel, dir_fd=self.index_fd, follow_symlinks=False))

    def set_times(self, gfid: bytes, atime_ns: int | None, mtime_ns: int | None) -> None:
        """Set times decided elsewhere (the primary's, after a forwarded mutation) on the
        object itself, never following a symlink; None leaves that time alone."""
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            bsys.futimens(self.root_fd, atime_ns, mtime_ns)
        elif self._is_index_dir(self._index_stat(gfid)):
            with self.dirfd(gfid) as fd:
                bsys.futimens(fd, atime_ns, mtime_ns)
        else:
            bsys.utimensat(self.index_fd, index_rel(gfid), atime_ns, mtime_ns)

    def _setattr_fd(
        self,
        fd: int,
        mode: int | None,
        uid: int | None,
        gid: int | None,
        size: int | None,
        atime_ns: int | None,
        mtime_ns: int | None,
    ) -> None:
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        if mode is not None:
            os.fchmod(fd, mode & 0o7777)
        if size is not None:
            before = os.fstat(fd)
            os.ftruncate(fd, size)
            self._charge(before, os.fstat(fd))
        if atime_ns is not None or mtime_ns is not None:
            bsys.futimens(fd, atime_ns, mtime_ns)

    # -- namespace ---------------------------------------------------------------------------

    def make_node(
        self,
        parent: bytes,
        name: bytes,
        gfid: bytes,
        kind: str,
        mode: int,
        rdev: int,
        uid: int,
        gid: int,
        target: bytes,
        open_: bool,
        flags: int,
        *,
        allow_privileged: bool = True,
        new_gfid: bool = False,
        umask: int = 0,
    ) -> tuple[Attr, int]:
        """`allow_privileged`: may make device nodes and setuid/setgid-root files;
        `new_gfid`: `gfid` must not name an object of this brick already (a client's
        create), except under this very name (a retried one); `umask`: the caller's,
        applied unless the parent has a default ACL, which this brick's own file system
        then gives the new object (the daemon's umask is 0)."""
        check_name(name, parent)
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            raise err(errno.EINVAL)
        if kind == "symlink" and (not target or b"\0" in target or len(target) >= 4096):
            raise err(errno.EINVAL if not target or b"\0" in target else errno.ENAMETOOLONG)
        with self._ns_lock, self.dirfd(parent) as pfd:
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                return self._existing(pfd, name, st, gfid, kind, open_, flags)
            if new_gfid and self._has_index(gfid):
                raise err(errno.EEXIST)  # two objects with one GFID would alias each other
            pst = os.fstat(pfd)
            # In a set-group-ID directory the kernel already gave the new object the
            # directory's group (and a subdirectory the bit); keep that group.
            own_gid = -1 if pst.st_mode & stat.S_ISGID else gid
            perm = mode & 0o7777
            if umask & 0o777 and not _has_default_acl(pfd):
                perm &= ~(umask & 0o777)
            if not allow_privileged and (
                (kind == "special" and stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK))
                or (
                    kind != "dir"
                    and privileged_mode(perm, uid, pst.st_gid if own_gid == -1 else gid)
                )
            ):
                log.warning(
                    "refused privileged node brick=%s mode=%o uid=%d gid=%d",
                    self.name,
                    mode,
                    uid,
                    gid,
                )
                raise err(errno.EPERM)
            fh = 0
            if kind == "dir":
                os.mkdir(name, perm, dir_fd=pfd)
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=pfd)
                try:
                    os.setxattr(fd, GFID_XATTR, gfid)
                    os.fchown(fd, uid, own_gid)
                    if perm & (stat.S_ISUID | stat.S_ISGID):
                        m = os.fstat(fd).st_mode
                        os.fchmod(fd, _setid(perm, m) | (m & stat.S_ISGID))
                finally:
                    os.close(fd)
                self._index_dir(gfid, parent, name)
            elif kind == "file":
                acc = flags & os.O_ACCMODE if open_ else os.O_RDONLY
                oflags = acc | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, oflags | (flags & (os.O_APPEND | os.O_SYNC)), perm, dir_fd=pfd)
                try:
                    os.setxattr(fd, GFID_XATTR, gfid)
                    os.fchown(fd, uid, own_gid)
                    if perm & (stat.S_ISUID | stat.S_ISGID):
                        os.fchmod(fd, _setid(perm, os.fstat(fd).st_mode))
                    self._index_link(gfid, pfd, name)
                except BaseException:
                    os.close(fd)
                    raise
                if open_:
                    fh = self._add_handle(fd, gfid, bool(flags & os.O_APPEND), flags)
                else:
                    os.close(fd)
            else:
                if kind == "symlink":
                    os.symlink(target, name, dir_fd=pfd)
                else:
                    fmt = stat.S_IFMT(mode)
                    if fmt not in (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
                        raise err(errno.EINVAL)
                    os.mknod(name, fmt | perm, rdev, dir_fd=pfd)
                os.chown(name, uid, own_gid, dir_fd=pfd, follow_symlinks=False)
                os.setxattr(self._proc(pfd, name), GFID_XATTR, gfid, follow_symlinks=False)
                self._index_link(gfid, pfd, name)
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            return self._attr(gfid, st), fh

    def _existing(
        self,
        pfd: int,
        name: bytes,
        st: os.stat_result,
        gfid: bytes,
        kind: str,
        open_: bool,
        flags: int,
    ) -> tuple[Attr, int]:
        have = self._gfid_of(pfd, name, st)
        if have == gfid:  # a retried request: answer as if it had just been made
            return self._open_after_make(self._entry(pfd, name), open_, flags & ~os.O_TRUNC)
        if kind != "file" or not open_ or flags & os.O_EXCL:
            raise err(errno.EEXIST)
        if stat.S_ISDIR(st.st_mode):
            raise err(errno.EISDIR)
        return self._open_after_make(self._entry(pfd, name), open_, flags)

    def _open_after_make(self, a: Attr, open_: bool, flags: int) -> tuple[Attr, int]:
        if not open_:
            return a, 0
        fh, a2 = self.open(a.gfid, flags)
        return a2, fh

    def _after_unlink(self, gfid: bytes, nlink_before: int) -> None:
        """Drop the index link once the last name is gone and no handle is open."""
        if nlink_before <= 2 and not self._open_count.get(gfid):
            self._drop_index(gfid)

    def unlink(self, parent: bytes, name: bytes) -> None:
        check_name(name, parent)
        with self._ns_lock, self.dirfd(parent) as pfd:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise err(errno.EISDIR)
            gfid = self._gfid_of(pfd, name, st)
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            os.unlink(name, dir_fd=pfd)
            self._after_unlink(gfid, st.st_nlink)

    def rmdir(self, parent: bytes, name: bytes) -> None:
        check_name(name, parent)
        with self._ns_lock, self.dirfd(parent) as pfd:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                raise err(errno.ENOTDIR)
            gfid = self._gfid_of(pfd, name, st)
            os.rmdir(name, dir_fd=pfd)
            self._drop_index(gfid)
            self._forget_dir(gfid)

    def rename(
        self, old_parent: bytes, old: bytes, new_parent: bytes, new: bytes, flags: int
    ) -> None:
        check_name(old, old_parent)
        check_name(new, new_parent)
        if flags & ~(bsys.RENAME_NOREPLACE | bsys.RENAME_EXCHANGE) or flags == (
            bsys.RENAME_NOREPLACE | bsys.RENAME_EXCHANGE
        ):
            raise err(errno.EINVAL)
        with self._ns_lock, self.dirfd(old_parent) as ofd, self.dirfd(new_parent) as nfd:
            sst = os.stat(old, dir_fd=ofd, follow_symlinks=False)
            sgfid = self._gfid_of(ofd, old, sst)
            try:
                dst: os.stat_result | None = os.stat(new, dir_fd=nfd, follow_symlinks=False)
            except FileNotFoundError:
                dst = None
            dgfid = self._gfid_of(nfd, new, dst) if dst is not None else None
            if dst is not None:
                dst = os.stat(new, dir_fd=nfd, follow_symlinks=False)
            if flags:
                bsys.renameat2(ofd, old, nfd, new, flags)
            else:
                os.rename(old, new, src_dir_fd=ofd, dst_dir_fd=nfd)
            if sgfid == dgfid:  # two names of one file: nothing moved
                return
            if stat.S_ISDIR(sst.st_mode):
                self._index_dir(sgfid, new_parent, new)
            if dst is None or dgfid is None:
                return
            if flags & bsys.RENAME_EXCHANGE:
                if stat.S_ISDIR(dst.st_mode):
                    self._index_dir(dgfid, old_parent, old)
            elif stat.S_ISDIR(dst.st_mode):
                self._drop_index(dgfid)
                self._forget_dir(dgfid)
            else:
                self._after_unlink(dgfid, dst.st_nlink)

    def link(self, gfid: bytes, new_parent: bytes, new_name: bytes) -> Attr:
        check_name(new_name, new_parent)
        check_gfid(gfid)
        with self._ns_lock, self.dirfd(new_parent) as pfd:
            rel, st = self._nondir(gfid)
            if st.st_nlink <= 1:  # only the index link: the file was unlinked
                raise err(errno.ENOENT)
            if gfid == ROOT_GFID:
                raise err(errno.EPERM)
            os.link(rel, new_name, src_dir_fd=self.index_fd, dst_dir_fd=pfd, follow_symlinks=False)
            return self._attr(gfid, os.stat(new_name, dir_fd=pfd, follow_symlinks=False))

    def readlink(self, gfid: bytes) -> bytes:
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            raise err(errno.EINVAL)
        rel, st = self._nondir_or_einval(gfid)
        if not stat.S_ISLNK(st.st_mode):
            raise err(errno.EINVAL)
        return os.readlink(rel, dir_fd=self.index_fd)

    def _nondir_or_einval(self, gfid: bytes) -> tuple[bytes, os.stat_result]:
        try:
            return self._nondir(gfid)
        except OSError as e:
            if e.errno == errno.EISDIR:
                raise err(errno.EINVAL) from e
            raise

    # -- data --------------------------------------------------------------------------------

    def _add_handle(self, fd: int, gfid: bytes, append: bool, flags: int = 0) -> int:
        with self._ns_lock:
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = Handle(fd, gfid, append, flags)
            self._open_count[gfid] = self._open_count.get(gfid, 0) + 1
            return fh

    def handle(self, fh: int) -> Handle:
        h = self._handles.get(fh)
        if h is None:
            raise err(errno.EBADF)
        return h

    def open(self, gfid: bytes, flags: int) -> tuple[int, Attr]:
        check_gfid(gfid)
        rel, st = self._nondir(gfid)
        if not stat.S_ISREG(st.st_mode):
            raise err(errno.ELOOP if stat.S_ISLNK(st.st_mode) else errno.EOPNOTSUPP)
        keep = os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_SYNC | os.O_DSYNC | os.O_NOATIME
        fd = os.open(rel, (flags & keep) | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.index_fd)
        fh = self._add_handle(fd, gfid, bool(flags & os.O_APPEND), flags)
        return fh, self._attr(gfid, os.fstat(fd))

    def read(self, fh: int, offset: int, size: int) -> bytes:
        if offset < 0:
            raise err(errno.EINVAL)
        return os.pread(self.handle(fh).fd, size, offset)

    def write(self, fh: int, offset: int, data: bytes) -> tuple[int, int]:
        h = self.handle(fh)
        if offset < 0:
            raise err(errno.EINVAL)
        if not self.quota:
            n = os.write(h.fd, data) if h.append else os.pwrite(h.fd, data, offset)
            return n, os.fstat(h.fd).st_size
        before = os.fstat(h.fd)
        start = before.st_size if h.append else offset
        self._room(self._unallocated(h.fd, start, len(data)))
        n = os.write(h.fd, data) if h.append else os.pwrite(h.fd, data, offset)
        after = os.fstat(h.fd)
        self._charge(before, after)
        return n, after.st_size

    def flush(self, fh: int) -> None:
        self.handle(fh)

    def release(self, fh: int) -> None:
        with self._ns_lock:
            h = self._handles.pop(fh, None)
            if h is None:
                raise err(errno.EBADF)
            n = self._open_count[h.gfid] - 1
            if n:
                self._open_count[h.gfid] = n
            else:
                del self._open_count[h.gfid]
                if os.fstat(h.fd).st_nlink <= 1:  # unlinked while open: data goes now
                    self._drop_index(h.gfid)
            os.close(h.fd)

    def is_open(self, gfid: bytes) -> bool:
        """Whether a handle here has `gfid` open (a pin does not count)."""
        with self._ns_lock:
            return self._open_count.get(gfid, 0) > (gfid in self._pins)

    def pin(self, gfid: bytes) -> None:
        """Keep `gfid`'s data when its last name goes, as an open handle would (the
        primary has it open), until unpin(); idempotent."""
        with self._ns_lock:
            if gfid not in self._pins:
                self._pins.add(gfid)
                self._open_count[gfid] = self._open_count.get(gfid, 0) + 1

    def unpin(self, gfid: bytes) -> bool:
        """Drop a pin; the file's data goes if nothing else keeps it. False: no pin."""
        with self._ns_lock:
            if gfid not in self._pins:
                return False
            self._pins.discard(gfid)
            n = self._open_count[gfid] - 1
            if n:
                self._open_count[gfid] = n
                return True
            del self._open_count[gfid]
            try:
                st = os.stat(index_rel(gfid), dir_fd=self.index_fd, follow_symlinks=False)
            except FileNotFoundError:
                return True
            if stat.S_ISREG(st.st_mode) and st.st_nlink <= 1:  # no name left
                self._drop_index(gfid)
            return True

    def pins(self) -> list[bytes]:
        with self._ns_lock:
            return list(self._pins)

    def fsync(self, fh: int, datasync: bool) -> None:
        fd = self.handle(fh).fd
        if datasync:
            os.fdatasync(fd)
        else:
            os.fsync(fd)

    def fsyncdir(self, gfid: bytes, datasync: bool) -> None:
        with self.dirfd(gfid) as fd:
            os.fsync(fd)

    def fallocate(self, fh: int, mode: int, offset: int, length: int) -> None:
        if mode not in bsys.FALLOC_MODES:
            raise err(errno.EOPNOTSUPP)
        if offset < 0 or length <= 0:
            raise err(errno.EINVAL)
        fd = self.handle(fh).fd
        before = os.fstat(fd)
        if not mode & bsys.FALLOC_FL_PUNCH_HOLE:
            self._room(self._unallocated(fd, offset, length))
        bsys.fallocate(fd, mode, offset, length)
        self._charge(before, os.fstat(fd))

    def copy_range(
        self, fh: int, fh_in: int, gfid_in: bytes, off_in: int, off_out: int, length: int
    ) -> tuple[int, int]:
        """copy_file_range(2) from the handle `fh_in` (or the object `gfid_in`) into `fh`:
        (bytes copied, destination size). Short at the source's end or past MAX_COPY."""
        h = self.handle(fh)
        if off_in < 0 or off_out < 0 or h.append:
            raise err(errno.EINVAL if not h.append else errno.EBADF)
        length = min(length, MAX_COPY)
        before = os.fstat(h.fd)
        self._room(off_out + length - before.st_size)
        with ExitStack() as stack:
            if fh_in:
                src = self.handle(fh_in).fd
            else:
                check_gfid(gfid_in)
                rel, _ = self._nondir_or_einval(gfid_in)
                src = os.open(rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.index_fd)
                stack.callback(os.close, src)
            done = 0
            while done < length:
                n = os.copy_file_range(src, h.fd, length - done, off_in + done, off_out + done)
                if n == 0:
                    break
                done += n
        after = os.fstat(h.fd)
        self._charge(before, after)
        return done, after.st_size

    def seek(self, fh: int, offset: int, whence: int) -> int:
        """SEEK_DATA/SEEK_HOLE on the brick's file: the holes are the brick filesystem's."""
        if whence not in (os.SEEK_DATA, os.SEEK_HOLE) or offset < 0:
            raise err(errno.EINVAL)
        # os.lseek moves the shared position, which no one uses: data goes by pread/pwrite.
        return os.lseek(self.handle(fh).fd, offset, whence)

    # -- directories -------------------------------------------------------------------------

    def readdir(
        self, gfid: bytes, offset: int, max_entries: int
    ) -> tuple[list[tuple[bytes, int, Attr]], bool]:
        entries, eof = self.readdir_xattrs(gfid, offset, max_entries, xattrs=False)
        return [(n, c, a) for n, c, a, _ in entries], eof

    def readdir_xattrs(
        self, gfid: bytes, offset: int, max_entries: int, xattrs: bool = True
    ) -> tuple[list[tuple[bytes, int, Attr, list[bytes] | None]], bool]:
        """readdir plus each entry's xattr names (None: could not be read), when asked."""
        max_entries = max(1, min(max_entries or 256, 4096))
        with self.dirfd(gfid) as fd:
            names = []
            with os.scandir(fd) as it:
                for e in it:
                    name = os.fsencode(e.name)
                    if gfid == ROOT_GFID and name == META:
                        continue
                    c = cookie(name)
                    if c > offset:
                        names.append((c, name))
            names.sort()
            out: list[tuple[bytes, int, Attr, list[bytes] | None]] = []
            for c, name in names:
                if len(out) == max_entries:
                    return out, False
                try:
                    a = self._entry(fd, name)
                except FileNotFoundError:
                    continue  # removed while listing
                out.append((name, c, a, self._xattr_names(fd, name) if xattrs else None))
            return out, True

    def _xattr_names(self, parent_fd: int, name: bytes) -> list[bytes] | None:
        # The name, not followed, is the same inode _xattr_target reaches by GFID.
        try:
            names = os.listxattr(self._proc(parent_fd, name), follow_symlinks=False)
        except OSError:
            return None  # renamed or removed meanwhile: the client asks when it needs to
        out = [os.fsencode(n) for n in names]
        return [n for n in out if not n.startswith(HIDDEN_XATTR_PREFIX)]

    def statfs(self) -> os.statvfs_result:
        s = os.fstatvfs(self.root_fd)
        if not self.quota:
            return s
        # With a quota the brick looks like a disk of that size (df shows the volume).
        total = self.quota // s.f_frsize
        free = min(max(0, (self.quota - self.used) // s.f_frsize), s.f_bavail)
        return os.statvfs_result(
            (
                s.f_bsize,
                s.f_frsize,
                total,
                free,
                free,
                s.f_files,
                s.f_ffree,
                s.f_favail,
                s.f_flag,
                s.f_namemax,
            )
        )

    # -- xattrs ------------------------------------------------------------------------------

    @contextmanager
    def _xattr_target(self, gfid: bytes) -> Iterator[int | bytes]:
        check_gfid(gfid)
        if gfid == ROOT_GFID:
            yield self.root_fd
            return
        st = self._index_stat(gfid)
        if self._is_index_dir(st):
            with self.dirfd(gfid) as fd:
                yield fd
        else:
            yield self._proc(self.index_fd, index_rel(gfid))

    @staticmethod
    def _check_xattr_name(name: bytes) -> None:
        if not name or b"\0" in name:
            raise err(errno.EINVAL)
        if len(name) > 255:
            raise err(errno.ERANGE)
        if name.startswith(HIDDEN_XATTR_PREFIX):
            raise err(errno.EPERM)

    def setxattr(self, gfid: bytes, name: bytes, value: bytes, flags: int) -> None:
        self._check_xattr_name(name)
        with self._xattr_target(gfid) as t:
            os.setxattr(t, name, value, flags, follow_symlinks=isinstance(t, int))

    def getxattr(self, gfid: bytes, name: bytes) -> bytes:
        try:
            self._check_xattr_name(name)
        except OSError as e:
            if e.errno == errno.EPERM:
                raise err(errno.ENODATA) from e
            raise
        with self._xattr_target(gfid) as t:
            return os.getxattr(t, name, follow_symlinks=isinstance(t, int))

    def listxattr(self, gfid: bytes) -> list[bytes]:
        with self._xattr_target(gfid) as t:
            names = os.listxattr(t, follow_symlinks=isinstance(t, int))
        out = [os.fsencode(n) for n in names]
        return [n for n in out if not n.startswith(HIDDEN_XATTR_PREFIX)]

    def removexattr(self, gfid: bytes, name: bytes) -> None:
        self._check_xattr_name(name)
        with self._xattr_target(gfid) as t:
            os.removexattr(t, name, follow_symlinks=isinstance(t, int))
