"""Self-heal, driven by the primary (docs/replication.md, I8).

The heal worker of a node walks every replica set whose primary it serves. For a
member outside `in_sync` that answers again it:

1. starts forwarding new mutations to it (failures only mark it dirty);
2. crawls the primary's tree: under the primary's own lock of each directory it
   removes what only the member has and makes what it lacks (same GFIDs); each
   file is compared in 1 MiB ranges by checksum and only differing ranges are
   copied, each under the file's lock, so forwarded mutations and heal writes
   never interleave out of order;
3. closes the mutation gate for a moment and, if nothing went dirty, asks gfsd to
   put the member back into `in_sync` (epoch + 1).

The member side (entries/put/remove/sums) applies what the primary sends.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from gfs.brick.store import ROOT_GFID, Attr, Brick
from gfs.proto import brick_pb2 as pb

if TYPE_CHECKING:
    from gfs.brick.replica import Config, Replica
    from gfs.brick.service import BrickService

log = logging.getLogger(__name__)

#: fault injection: no crawl of the in-sync members after a promotion (a test of what
#: a new primary does without that backstop)
SKIP_REPAIR = os.environ.get("GFS_FAULT_SKIP_REPAIR", "") == "1"
HEAL_CHUNK = 1 << 20
FILE_WORKERS = 4
RPC_TIMEOUT = 30.0


def _attr_pb(a: Attr) -> pb.Attr:
    from gfs.brick.service import attr_pb

    return attr_pb(a)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def _sum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _listing(b: Brick, gfid: bytes) -> Iterator[tuple[bytes, int, Attr]]:
    offset = 0
    while True:
        batch, eof = b.readdir(gfid, offset, 1024)
        yield from batch
        if eof or not batch:
            return
        offset = batch[-1][1]


# -- member side ----------------------------------------------------------------------------


def entries(b: Brick, gfid: bytes) -> list[pb.DirEntry]:
    return [pb.DirEntry(name=n, cookie=c, attr=_attr_pb(a)) for n, c, a in _listing(b, gfid)]


def sums(b: Brick, gfid: bytes) -> list[bytes]:
    fh, _ = b.open(gfid, os.O_RDONLY)
    try:
        out: list[bytes] = []
        offset = 0
        while True:
            data = b.read(fh, offset, HEAL_CHUNK)
            if not data:
                return out
            out.append(_sum(data))
            offset += len(data)
    finally:
        b.release(fh)


def remove(b: Brick, parent: bytes, name: bytes) -> None:
    """Delete `name` with everything under it (heal removes what only this member has)."""
    try:
        a = b.lookup(parent, name)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(a.st.st_mode):
        for child, _, _ in list(_listing(b, a.gfid)):
            remove(b, a.gfid, child)
        b.rmdir(parent, name)
    else:
        b.unlink(parent, name)


def put(b: Brick, req: pb.HealPutRequest) -> Attr:
    a = req.attr
    have: Attr | None
    if a.gfid == ROOT_GFID or not req.name:
        have = b.getattr(a.gfid)
    else:
        try:
            have = b.lookup(req.parent, req.name)
        except FileNotFoundError:
            have = None
    if have is not None and have.gfid != a.gfid:
        raise OSError(errno.EEXIST, "a different object has that name")
    if have is None and (req.set_data or req.finish) and a.gfid != ROOT_GFID:
        # Data and attributes go to the object, never to a name: a rename forwarded
        # meanwhile may have moved it, and a name made here would be one too many.
        b.getattr(a.gfid)
    elif have is None:
        kind = _kind(a.mode)
        try:
            b.getattr(a.gfid)
            linked = kind != "dir"
        except OSError:
            linked = False
        if linked:  # another name of a hard-linked file we already have
            b.link(a.gfid, req.parent, req.name)
        else:
            b.make_node(
                req.parent, req.name, a.gfid, kind, a.mode, a.rdev, a.uid, a.gid,
                req.target, False, 0,
            )  # fmt: skip
    if req.set_data:
        fh, _ = b.open(a.gfid, os.O_WRONLY)
        try:
            b.write(fh, req.offset, req.data)
        finally:
            b.release(fh)
    if req.finish:
        symlink = stat.S_ISLNK(a.mode)
        b.setattr(
            a.gfid,
            0,
            None if symlink else a.mode & 0o7777,
            a.uid,
            a.gid,
            a.size if stat.S_ISREG(a.mode) else None,
            a.atime_ns,
            a.mtime_ns,
        )
        want = dict(zip(req.xattr_names, req.xattr_values, strict=True))
        for n in b.listxattr(a.gfid):
            if n not in want:
                b.removexattr(a.gfid, n)
        for n, v in want.items():
            b.setxattr(a.gfid, n, v, 0)
    return b.getattr(a.gfid)


# -- primary side ---------------------------------------------------------------------------


@dataclass
class HealStats:
    files: int = 0
    bytes: int = 0
    removed: int = 0
    made: int = 0


class Crawl:
    """One full crawl from the primary `rep` to `member`."""

    def __init__(
        self, rep: Replica, member: str, address: str, epoch: int, stats: HealStats | None = None
    ) -> None:
        from gfs.brick.replica import brick_stub

        self.rep = rep
        self.b = rep.brick
        self.member = member
        self.stub = brick_stub(address)
        self.epoch = epoch
        self.stats = stats or HealStats()
        self._mu = threading.Lock()
        self._done_files: set[bytes] = set()

    def _count(self, nbytes: int = 0, files: int = 0) -> None:
        with self._mu:
            self.stats.bytes += nbytes
            self.stats.files += files

    def _rpc(self, name: str, req: Any) -> Any:
        r = getattr(self.stub, name)(req, timeout=RPC_TIMEOUT)
        if r.err:
            raise OSError(r.err, f"heal {name} on {self.member}")
        return r

    def _xattrs(self, gfid: bytes) -> tuple[list[bytes], list[bytes]]:
        names = self.b.listxattr(gfid)
        return names, [self.b.getxattr(gfid, n) for n in names]

    def _put(self, parent: bytes, name: bytes, a: Attr, **kw: Any) -> None:
        req = pb.HealPutRequest(
            brick=self.member,
            epoch=self.epoch,
            parent=parent,
            name=name,
            attr=_attr_pb(a),
            sender=self.rep.name,
            **kw,
        )
        if kw.get("finish"):
            names, values = self._xattrs(a.gfid)
            req.xattr_names.extend(names)
            req.xattr_values.extend(values)
        self._rpc("HealPut", req)

    def run(self, changed: set[bytes] | None = None) -> HealStats:
        """A full crawl from the root, or (`changed`, from the primary's change index)
        only the directories and files changed while the member was away, plus
        everything under directories the member does not have."""
        files: list[tuple[bytes, bytes, bytes, bool]] = []
        if changed is None:
            dirs, full = [ROOT_GFID], {ROOT_GFID}
        else:
            dirs, full = [], set()
            for g in changed:
                try:
                    a = self.b.getattr(g)
                except OSError:
                    continue  # gone: its parent is in the index too
                if stat.S_ISDIR(a.st.st_mode):
                    dirs.append(g)
                elif stat.S_ISREG(a.st.st_mode):
                    files.append((b"", b"", g, False))
        seen: set[bytes] = set()
        while dirs:
            d = dirs.pop()
            if d in seen:
                continue
            got = self._dir(d, d in full)
            if got is None:
                continue  # new on the member: made and crawled from its parent
            seen.add(d)
            sub, dir_files = got
            full.update(sub)  # new on the member, or a full crawl: everything below
            dirs.extend(g for g in sub if g not in seen)
            self._files(dir_files)
            self._done_files.update(f[2] for f in dir_files)
        self._files([f for f in files if f[2] not in self._done_files])
        return self.stats

    def _files(self, files: list[tuple[bytes, bytes, bytes, bool]]) -> None:
        """Heal files a few at a time: each round trip then overlaps others' disk work."""
        if len(files) < 2:
            for f in files:
                self._file(*f)
            return
        with ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="heal") as pool:
            for fut in [pool.submit(self._file, *f) for f in files]:
                fut.result()  # the first failure ends the crawl

    def _dir(self, d: bytes, everything: bool) -> tuple[list[bytes], list[Any]] | None:
        """Make the member's directory `d` hold what ours holds; the subdirectories and
        files to look into next (all of them, or only those new on the member). None
        when the member lacks `d` and this is not a full crawl of it."""
        dirs: list[bytes] = []
        files: list[tuple[bytes, bytes, bytes, bool]] = []
        with self.rep.locks.hold([d]):
            mine = {n: a for n, _, a in _listing(self.b, d)}
            try:
                listing = self._rpc("HealEntries", pb.ReadDirRequest(brick=self.member, gfid=d))
            except OSError as e:
                if everything or e.errno not in (errno.ENOENT, errno.ESTALE):
                    raise
                return None  # new on the member: its parent (changed too) makes it
            theirs = {e.name: e.attr for e in listing.entries}
            for n, ta in list(theirs.items()):
                a = mine.get(n)
                if a is None or a.gfid != ta.gfid or _kind(a.st.st_mode) != _kind(ta.mode):
                    self._rpc(
                        "HealRemove",
                        pb.HealRemoveRequest(
                            brick=self.member,
                            epoch=self.epoch,
                            parent=d,
                            name=n,
                            sender=self.rep.name,
                        ),
                    )
                    self.stats.removed += 1
                    del theirs[n]
            for n, a in mine.items():
                made = n not in theirs
                if made:
                    self.stats.made += 1
                if stat.S_ISREG(a.st.st_mode):
                    if made:
                        self._put(d, n, a)
                    if made or everything:
                        files.append((d, n, a.gfid, made))
                    continue
                target = self.b.readlink(a.gfid) if stat.S_ISLNK(a.st.st_mode) else b""
                if made:
                    self._put(d, n, a, target=target)
                if made or everything:
                    self._put(d, n, a, finish=True)
                    if stat.S_ISDIR(a.st.st_mode):
                        dirs.append(a.gfid)
            self._put(b"", b"", self.b.getattr(d), finish=True)  # the directory's own attributes
        return dirs, files

    def _file(self, parent: bytes, name: bytes, gfid: bytes, new: bool) -> None:
        try:
            # A file just made on the member is empty: no sums to ask for.
            theirs = (
                []
                if new
                else list(self._rpc("HealSums", pb.GfidRequest(brick=self.member, gfid=gfid)).sums)
            )
            fh, a = self.b.open(gfid, os.O_RDONLY)
        except FileNotFoundError:
            return  # removed meanwhile: the forward removed it on the member too
        try:
            if a.st.st_size <= HEAL_CHUNK:  # small: content and attributes in one call
                with self.rep.locks.hold([gfid]):
                    data = self.b.read(fh, 0, HEAL_CHUNK)
                    same = len(theirs) == (1 if data else 0) and (
                        not data or theirs[0] == _sum(data)
                    )
                    self._put(
                        parent, name, self.b.getattr(gfid),
                        set_data=not same, offset=0, data=b"" if same else data, finish=True,
                    )  # fmt: skip
                    self._count(0 if same else len(data))
                self._count(files=1)
                return
            offset, i = 0, 0
            while offset < a.st.st_size:
                with self.rep.locks.hold([gfid]):
                    data = self.b.read(fh, offset, HEAL_CHUNK)
                    if not data:
                        break
                    if i >= len(theirs) or theirs[i] != _sum(data):
                        self._put(parent, name, a, set_data=True, offset=offset, data=data)
                        self._count(len(data))
                offset += len(data)
                i += 1
            with self.rep.locks.hold([gfid]):
                self._put(parent, name, self.b.getattr(gfid), finish=True)
            self._count(files=1)
        finally:
            self.b.release(fh)


@dataclass
class Progress:
    stats: HealStats
    running: bool = False
    started: float = 0.0
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return (time.monotonic() if self.running else self.ended) - self.started


class HealWorker:
    """One per brick daemon: heals the out-of-sync members of the replica sets whose
    primary this node serves, every `interval` seconds or when asked (`trigger`, with
    `full` also crawling the members in sync). `run_once()` is one pass (tests)."""

    def __init__(self, service: BrickService, interval: float = 2.0) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._full: set[str] = set()
        self.progress: dict[str, Progress] = {}
        self._done: dict[str, tuple[int, int]] = {}  # brick -> files, bytes of finished passes

    def start(self) -> None:
        threading.Thread(target=self._loop, name="heal", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def trigger(self, brick: str, full: bool) -> None:
        if full:
            self._full.add(brick)
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                log.exception("heal pass failed")

    def run_once(self) -> int:
        """Heal every member that needs it and answers; the number put back in sync."""
        done = 0
        for rep in list(self.service.replicas.values()):
            cfg = rep.cfg
            if not rep.confirmed or cfg.primary != rep.name:
                continue
            full = rep.name in self._full or (rep.repair_needed and not SKIP_REPAIR)
            self._full.discard(rep.name)
            rep.repair_needed = False
            todo = [
                (b, addr, st == "in_sync")
                for b, (addr, st) in cfg.members.items()
                if b != rep.name and (full or st != "in_sync")
            ]
            if not todo:
                continue
            p = self.progress[rep.name] = Progress(HealStats(), True, time.monotonic())
            try:
                for member, address, in_sync in todo:
                    if in_sync:
                        repair(rep, member, address, p.stats)
                    elif heal_member(rep, member, address, p.stats):
                        done += 1
            finally:
                p.running, p.ended = False, time.monotonic()
                f, b = self._done.get(rep.name, (0, 0))
                self._done[rep.name] = (f + p.stats.files, b + p.stats.bytes)
        return done

    def totals(self, brick: str) -> tuple[int, int]:
        """Files checked and bytes copied by heal from `brick` since the daemon started."""
        f, b = self._done.get(brick, (0, 0))
        p = self.progress.get(brick)
        if p is not None and p.running:
            f, b = f + p.stats.files, b + p.stats.bytes
        return f, b

    def status(self, brick: str) -> tuple[Progress | None, int]:
        rep = self.service.replicas.get(brick)
        out = 0 if rep is None else len(rep.cfg.members) - len(rep.cfg.in_sync())
        return self.progress.get(brick), out


def repair(rep: Replica, member: str, address: str, stats: HealStats) -> None:
    """A full crawl of a member in sync: repairs what differs (it should be nothing)."""
    if not _answers(rep, member, address):
        return
    try:
        Crawl(rep, member, address, rep.cfg.epoch, stats).run()
    except (OSError, grpc.RpcError) as e:
        log.warning("repair failed brick=%s member=%s error=%s", rep.name, member, e)


def _answers(rep: Replica, member: str, address: str) -> bool:
    from gfs.brick.replica import brick_stub

    try:
        r = brick_stub(address).Ping(pb.PingRequest(brick=member), timeout=2.0)
    except grpc.RpcError:
        return False
    return not r.err


def heal_member(rep: Replica, member: str, address: str, stats: HealStats | None = None) -> bool:
    if not _answers(rep, member, address):
        return False
    stats = stats or HealStats()
    for attempt in range(3):
        cfg = rep.cfg
        f0, b0, r0, m0 = stats.files, stats.bytes, stats.removed, stats.made
        # The first attempt may use the change index; a retry (something went dirty
        # meanwhile) crawls everything.
        changed = rep.take_changes(member) if attempt == 0 else None
        if cfg.primary != rep.name:
            return False
        rep.healing[member] = False  # forwards reach it from now on
        t0 = time.monotonic()
        try:
            Crawl(rep, member, address, cfg.epoch, stats).run(changed)
        except (OSError, grpc.RpcError) as e:
            log.warning("heal failed brick=%s member=%s error=%s", rep.name, member, e)
            rep.healing.pop(member, None)
            rep.give_back_changes(member, changed)
            return False
        took = time.monotonic() - t0
        log.info(
            "heal crawl brick=%s member=%s attempt=%d index=%s files=%d bytes=%d removed=%d "
            "made=%d seconds=%.2f",
            rep.name, member, attempt, "full" if changed is None else len(changed), stats.files - f0, stats.bytes - b0, stats.removed - r0,
            stats.made - m0, took,
        )  # fmt: skip
        with rep.gate.exclusive():
            if rep.healing.get(member) is not False or rep.cfg.epoch != cfg.epoch:
                continue  # a forward failed or the configuration moved: crawl again
            if member not in rep.lock_synced and (
                rep.sync_locks([], only=member) or member not in rep.lock_synced
            ):
                continue  # it must hold the lock table before it may take over

            def rejoin(api: Any, c: Config = cfg) -> None:
                api.replica_rejoin(c.volume, c.set_index, c.epoch, member, rep.name)

            if rep.ask_gfsd(cfg, rejoin) != "ok":
                return False
            new = rep.wait_epoch(cfg.epoch + 1, 5.0)
        log.info("healed brick=%s member=%s epoch=%d", rep.name, member, new.epoch)
        return member in new.in_sync()
    return False
