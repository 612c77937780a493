"""The Brick gRPC service: decodes requests, calls the store, encodes errno as data."""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import grpc

from gfs import __version__, addrs, lockowner
from gfs.brick import heal, locks
from gfs.brick.replica import NOT_PRIMARY, Replica, resolve_now
from gfs.brick.sessions import Sessions
from gfs.brick.store import ROOT_GFID, Attr, Brick, check_name
from gfs.proto import brick_pb2 as pb
from gfs.rpc import ops
from gfs.rpc.channel import MAX_CHUNK
from gfs.rpc.tls import host_key, node_hosts, peer_identity

log = logging.getLogger(__name__)

KINDS = {
    pb.NODE_KIND_FILE: "file",
    pb.NODE_KIND_DIR: "dir",
    pb.NODE_KIND_SYMLINK: "symlink",
    pb.NODE_KIND_SPECIAL: "special",
}

PROBES = ops.names(ops.PROBE)

Impl = Callable[[Any, Brick, Any, Any], Any]
Handler = Callable[[Any, Any, grpc.ServicerContext], Any]

#: Request fields that name an object (16 bytes when given) and that hold one file name.
GFID_FIELDS = ("gfid", "parent", "old_parent", "new_parent")
NAME_FIELDS = ("name", "old_name", "new_name")
#: keepalive interval assumed for a lock owner a promoted primary has not heard from,
#: when it knows no live session of the brick (the client's default keepalive=)
LOCK_GRACE_INTERVAL = 10.0
#: Executing a file with this xattr grants capabilities, like setuid root.
CAPABILITY_XATTR = b"security.capability"


def check_request(req: Any) -> None:
    """EINVAL/ENAMETOOLONG for a malformed GFID or name in any request, before the
    store sees it (the store checks again where it uses them)."""
    fields = req.DESCRIPTOR.fields_by_name
    for f in GFID_FIELDS:
        if f in fields and getattr(req, f) and len(getattr(req, f)) != 16:
            raise OSError(errno.EINVAL, "malformed gfid")
    if isinstance(req, pb.XattrRequest):
        return  # its name is an attribute name, checked by the store
    for f in NAME_FIELDS:
        if f in fields and getattr(req, f):
            check_name(getattr(req, f), b"")
    if isinstance(req, pb.HealPutRequest) and req.attr.gfid and len(req.attr.gfid) != 16:
        raise OSError(errno.EINVAL, "malformed gfid")


def attr_pb(a: Attr) -> pb.Attr:
    st = a.st
    return pb.Attr(
        gfid=a.gfid,
        mode=st.st_mode,
        nlink=a.nlink,
        uid=st.st_uid,
        gid=st.st_gid,
        rdev=st.st_rdev,
        size=st.st_size,
        blocks=st.st_blocks,
        blksize=st.st_blksize,
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
    )


def rpc(fn: Impl) -> Handler:
    """Run a handler against its brick; any OSError becomes `reply(err=errno)`, the
    reply type the operation's entry in gfs.rpc.ops names. On a replicated brick the
    request passes the replication rules first (gfs.brick.replica); `handler.local`
    applies it here without them (forwards, heal)."""
    reply = ops.OPS[fn.__name__].reply

    def local(self: BrickService, req: Any, ctx: Any) -> Any:
        brick = self.bricks.get(req.brick)
        if brick is None:
            return reply(err=self.missing(req.brick))
        try:
            check_request(req)
            with brick.in_use():
                return fn(self, brick, req, ctx)
        except OSError as e:
            code = e.errno or errno.EIO
            if code not in (errno.ENOENT, errno.EEXIST, errno.ENODATA, errno.EAGAIN):
                log.debug("op=%s brick=%s errno=%s", fn.__name__, req.brick, code)
            return reply(err=code)
        except Exception:
            log.exception("op=%s brick=%s failed", fn.__name__, req.brick)
            return reply(err=errno.EIO)

    @functools.wraps(fn)
    def handler(self: BrickService, req: Any, ctx: grpc.ServicerContext) -> Any:
        rep = self.replicas.get(req.brick)
        # Statfs tells only capacity (gfsd's probe may come from any address).
        if fn.__name__ != "Statfs" and self.refused(req.brick, ctx):
            return reply(err=errno.EACCES)
        # Ping and Statfs carry no file data: any member answers them (mounts, gfsd's
        # capacity probes), whatever its role.
        if fn.__name__ in PROBES:
            return local(self, req, ctx)
        if rep is None:
            if req.brick in self.unconfigured:
                # Served again before gfsd configured it: a mount that still knows
                # it as primary must not write past the replication rules.
                return reply(err=NOT_PRIMARY)
            return local(self, req, ctx)
        return rep.client_call(fn.__name__, req, ctx, lambda r: local(self, r, ctx), reply)

    handler.local = local  # type: ignore[attr-defined]
    return handler


def heal_rpc(
    reply: type[Any], writes: bool
) -> Callable[[Callable[[Any, Brick, Any], Any]], Handler]:
    """A heal RPC from a primary's heal worker (gfs.brick.heal); errno as data. Heal
    writes are taken only from the primary of this member's epoch or a newer one."""

    def wrap(fn: Callable[[Any, Brick, Any], Any]) -> Handler:
        @functools.wraps(fn)
        def handler(self: BrickService, req: Any, ctx: grpc.ServicerContext) -> Any:
            if writes:
                rep = self.replicas.get(req.brick)
                if rep is None or req.epoch < rep.cfg.epoch:
                    return reply(err=errno.ESTALE)
                if not rep.sender_ok(fn.__name__, req.epoch, req.sender):
                    return reply(err=errno.EACCES)
                if not self.certified(rep, ctx, fn.__name__, req.sender):
                    return reply(err=errno.EACCES)
                b: Brick | None = rep.brick
            else:
                rep = self.replicas.get(req.brick)
                if rep is not None and not self.certified(rep, ctx, fn.__name__, None):
                    return reply(err=errno.EACCES)
                b = self.bricks.get(req.brick)
            if b is None:
                return reply(err=self.missing(req.brick))
            try:
                check_request(req)
                return fn(self, b, req)
            except OSError as e:
                log.info("heal op=%s brick=%s errno=%s", fn.__name__, req.brick, e.errno)
                return reply(err=e.errno or errno.EIO)

        return handler

    return wrap


class BrickService:
    """Implements the Brick service of brick.proto (registered with
    brick_pb2_grpc.add_BrickServicer_to_server)."""

    def __init__(self, bricks: dict[str, Brick]) -> None:
        self.bricks = dict(bricks)
        self.locks = {name: locks.LockTable() for name in bricks}
        self.replicas: dict[str, Replica] = {}
        self.sessions = Sessions(on_gone=self._session_gone)
        #: names gfsd stopped (their volume was stopped or deleted): clients that still
        #: use one get ESHUTDOWN, one clear answer, rather than ENODEV
        self.stopped: set[str] = set()
        #: replicated bricks served but not configured yet (volume start, heal, replace)
        self.unconfigured: set[str] = set()
        #: (brick, address) refused by auth.* and logged once
        self._refused_logged: set[tuple[str, str]] = set()
        #: replicated bricks this daemon holds the lock table of as primary
        self._lock_primary: set[str] = set()

    def _session_gone(self, brick: str, session: str) -> None:
        table = self.locks.get(brick)
        rep = self.replicas.get(brick)
        if table is None or (rep is not None and rep.cfg.primary != brick):
            return  # a member's copy follows the primary's table (LockSync)
        keys = table.drop_owners(lockowner.prefix(session), rep.cfg.epoch if rep else 0)
        if keys:
            log.info("session gone brick=%s session=%s lock_keys=%d", brick, session, len(keys))
        if keys and rep is not None:
            # Called under the session table's mutex: the members hear of it from a thread.
            threading.Thread(
                target=rep.sync_locks, args=(keys,), name="locksync", daemon=True
            ).start()

    def add(self, brick: Brick, replicated: bool = False) -> None:
        """`replicated`: a replica set's brick, which serves no client until configured."""
        self.locks[brick.name] = locks.LockTable()
        if replicated:
            self.unconfigured.add(brick.name)
        self.bricks[brick.name] = brick
        self.stopped.discard(brick.name)

    def configured(self, name: str, rep: Replica) -> None:
        table = self.locks.get(name)
        rep.lock_table = table
        self.replicas[name] = rep
        self.unconfigured.discard(name)
        if rep.cfg.primary != name:
            self._lock_primary.discard(name)
        elif name not in self._lock_primary and table is not None:
            self._lock_primary.add(name)
            # Promoted with the old primary's locks: their owners get one session expiry
            # to be heard here before the locks go (docs/replication.md, "Locks").
            owners = self.sessions.grace(name, table.sessions(), LOCK_GRACE_INTERVAL)
            if owners:
                log.info("lock owners on grace brick=%s sessions=%d", name, len(owners))

    def remove(self, name: str, stopped: bool = False) -> Brick | None:
        self._lock_primary.discard(name)
        brick = self.bricks.pop(name, None)
        self.locks.pop(name, None)
        self.replicas.pop(name, None)
        self.unconfigured.discard(name)
        if stopped:
            self.stopped.add(name)
        return brick

    def missing(self, name: str) -> int:
        """The answer for a brick name this daemon does not serve."""
        return errno.ESHUTDOWN if name in self.stopped else errno.ENODEV

    def privileged_ok(self, brick: str, caller_uid: int | None) -> bool:
        """May this request make a device node, a setuid/setgid-root file or a file
        capability: only a caller that is root on its client, and only while the
        volume option server.allow-privileged-nodes is on (the default)."""
        rep = self.replicas.get(brick)
        if rep is not None and rep.cfg.deny_privileged:
            return False
        return caller_uid == 0

    def refused(self, brick: str, ctx: grpc.ServicerContext | None) -> bool:
        """Whether the volume options auth.allow/auth.reject refuse the caller's address
        (docs/options.md). The set's own members and, with TLS, node and admin
        certificates are exempt: heal, forwards and gfsd must keep working."""
        rep = self.replicas.get(brick)
        if rep is None or ctx is None:
            return False
        cfg = rep.cfg
        if not cfg.auth_allow and not cfg.auth_reject:
            return False
        host = addrs.peer_host(ctx.peer())
        if addrs.admitted(host, cfg.auth_allow, cfg.auth_reject):
            return False
        ident = peer_identity(ctx)
        if ident is not None and ident.role in ("node", "admin"):
            return False
        if host in {addrs.address_host(a) for a, _ in cfg.members.values()}:
            return False
        if (brick, host) not in self._refused_logged:
            if len(self._refused_logged) > 1024:
                self._refused_logged.clear()
            self._refused_logged.add((brick, host))
            log.warning(
                "refused client address brick=%s address=%s (auth.allow/auth.reject)", brick, host
            )
        return True

    def certified(self, rep: Replica, ctx: Any, op: str, sender: str | None) -> bool:
        """Whether a brick daemon calling a replication RPC holds a certificate for the
        host of the member it claims to be (`sender`; None: any member of the set), so
        a node certificate of another set or cluster node cannot forward or heal here.
        Callers that are not nodes (admin; plaintext under --insecure) pass."""
        hosts = node_hosts(ctx) if ctx is not None else None
        if hosts is None:
            return True
        cfg = rep.cfg
        members = [cfg.members[sender]] if sender in cfg.members else []
        if sender is None:
            members = list(cfg.members.values())
        for address, _ in members:
            if host_key(addrs.address_host(address)) in hosts:
                return True
        log.warning(
            "refused op=%s brick=%s sender=%s peer=%s reason=certificate does not name "
            "the member's host",
            op,
            rep.name,
            (sender or "-")[:128],
            ctx.peer(),
        )
        return False

    def local(self, method: str, req: Any) -> Any:
        """Apply `req` on this brick, bypassing the replication rules."""
        return getattr(type(self), method).local(self, req, None)

    @rpc
    def Ping(self, b: Brick, req: pb.PingRequest, ctx: Any) -> pb.PingReply:
        return pb.PingReply(
            root=attr_pb(b.getattr(ROOT_GFID)), brick_id=b.brick_id, version=__version__
        )

    @rpc
    def Lookup(self, b: Brick, req: pb.LookupRequest, ctx: Any) -> pb.EntryReply:
        return pb.EntryReply(attr=attr_pb(b.lookup(req.parent, req.name)))

    @rpc
    def GetAttr(self, b: Brick, req: pb.GfidRequest, ctx: Any) -> pb.AttrReply:
        return pb.AttrReply(attr=attr_pb(b.getattr(req.gfid)))

    @rpc
    def SetAttr(self, b: Brick, req: pb.SetAttrRequest, ctx: Any) -> pb.AttrReply:
        caller = req.caller_uid if req.HasField("caller_uid") else None
        resolve_now(req)  # a single-brick volume: this brick's clock
        a = b.setattr(
            req.gfid,
            req.fh,
            req.mode if req.set_mode else None,
            req.uid if req.set_uid else None,
            req.gid if req.set_gid else None,
            req.size if req.set_size else None,
            req.atime_ns if req.set_atime else None,
            req.mtime_ns if req.set_mtime else None,
            allow_privileged=self.privileged_ok(req.brick, caller),
        )
        return pb.AttrReply(attr=attr_pb(a))

    @rpc
    def MakeNode(self, b: Brick, req: pb.MakeNodeRequest, ctx: Any) -> pb.EntryReply:
        kind = KINDS.get(req.kind)
        if kind is None:
            return pb.EntryReply(err=errno.EINVAL)
        a, fh = b.make_node(
            req.parent,
            req.name,
            req.gfid,
            kind,
            req.mode,
            req.rdev,
            req.uid,
            req.gid,
            req.target,
            req.open,
            req.flags,
            # The new object's owner is the caller (the FUSE request's uid).
            allow_privileged=self.privileged_ok(req.brick, req.uid),
            new_gfid=True,
            umask=req.umask,
        )
        return pb.EntryReply(attr=attr_pb(a), fh=fh)

    @rpc
    def Unlink(self, b: Brick, req: pb.NameRequest, ctx: Any) -> pb.Reply:
        b.unlink(req.parent, req.name)
        return pb.Reply()

    @rpc
    def Rmdir(self, b: Brick, req: pb.NameRequest, ctx: Any) -> pb.Reply:
        b.rmdir(req.parent, req.name)
        return pb.Reply()

    @rpc
    def Rename(self, b: Brick, req: pb.RenameRequest, ctx: Any) -> pb.Reply:
        b.rename(req.old_parent, req.old_name, req.new_parent, req.new_name, req.flags)
        return pb.Reply()

    @rpc
    def Link(self, b: Brick, req: pb.LinkRequest, ctx: Any) -> pb.EntryReply:
        return pb.EntryReply(attr=attr_pb(b.link(req.gfid, req.new_parent, req.new_name)))

    @rpc
    def ReadLink(self, b: Brick, req: pb.GfidRequest, ctx: Any) -> pb.ReadLinkReply:
        return pb.ReadLinkReply(target=b.readlink(req.gfid))

    @rpc
    def Open(self, b: Brick, req: pb.OpenRequest, ctx: Any) -> pb.OpenReply:
        fh, a = b.open(req.gfid, req.flags)
        return pb.OpenReply(fh=fh, attr=attr_pb(a))

    @rpc
    def Read(self, b: Brick, req: pb.ReadRequest, ctx: Any) -> pb.ReadReply:
        if req.size > MAX_CHUNK:
            return pb.ReadReply(err=errno.EINVAL)
        return pb.ReadReply(data=b.read(req.fh, req.offset, req.size))

    @rpc
    def Write(self, b: Brick, req: pb.WriteRequest, ctx: Any) -> pb.WriteReply:
        if len(req.data) > MAX_CHUNK:
            return pb.WriteReply(err=errno.EINVAL)
        n, size = b.write(req.fh, req.offset, req.data)
        return pb.WriteReply(written=n, size=size)

    @rpc
    def Flush(self, b: Brick, req: pb.FhRequest, ctx: Any) -> pb.Reply:
        b.flush(req.fh)
        return pb.Reply()

    @rpc
    def Release(self, b: Brick, req: pb.FhRequest, ctx: Any) -> pb.Reply:
        b.release(req.fh)
        return pb.Reply()

    @rpc
    def Fsync(self, b: Brick, req: pb.FsyncRequest, ctx: Any) -> pb.Reply:
        b.fsync(req.fh, req.datasync)
        return pb.Reply()

    @rpc
    def FsyncDir(self, b: Brick, req: pb.FsyncRequest, ctx: Any) -> pb.Reply:
        b.fsyncdir(req.gfid, req.datasync)
        return pb.Reply()

    @rpc
    def Fallocate(self, b: Brick, req: pb.FallocateRequest, ctx: Any) -> pb.Reply:
        b.fallocate(req.fh, req.mode, req.offset, req.length)
        return pb.Reply()

    @rpc
    def CopyRange(self, b: Brick, req: pb.CopyRangeRequest, ctx: Any) -> pb.CopyRangeReply:
        copied, size = b.copy_range(
            req.fh, req.fh_in, req.gfid_in, req.offset_in, req.offset_out, req.length
        )
        return pb.CopyRangeReply(copied=copied, size=size)

    @rpc
    def Seek(self, b: Brick, req: pb.SeekRequest, ctx: Any) -> pb.SeekReply:
        return pb.SeekReply(offset=b.seek(req.fh, req.offset, req.whence))

    @rpc
    def ReadDir(self, b: Brick, req: pb.ReadDirRequest, ctx: Any) -> pb.ReadDirReply:
        entries, eof = b.readdir_xattrs(req.gfid, req.offset, req.max_entries)
        return pb.ReadDirReply(
            entries=[
                pb.DirEntry(
                    name=n,
                    cookie=c,
                    attr=attr_pb(a),
                    xattr_names=x or (),
                    xattrs_listed=x is not None,
                )
                for n, c, a, x in entries
            ],
            eof=eof,
        )

    @rpc
    def Statfs(self, b: Brick, req: pb.StatfsRequest, ctx: Any) -> pb.StatfsReply:
        s = b.statfs()
        return pb.StatfsReply(
            bsize=s.f_bsize,
            frsize=s.f_frsize,
            blocks=s.f_blocks,
            bfree=s.f_bfree,
            bavail=s.f_bavail,
            files=s.f_files,
            ffree=s.f_ffree,
            favail=s.f_favail,
            namemax=s.f_namemax,
        )

    @rpc
    def SetXattr(self, b: Brick, req: pb.XattrRequest, ctx: Any) -> pb.Reply:
        if req.name == CAPABILITY_XATTR and not self.privileged_ok(
            req.brick, req.caller_uid if req.HasField("caller_uid") else None
        ):
            log.warning("refused capability xattr brick=%s", req.brick)
            return pb.Reply(err=errno.EPERM)
        b.setxattr(req.gfid, req.name, req.value, req.flags)
        return pb.Reply()

    @rpc
    def GetXattr(self, b: Brick, req: pb.XattrRequest, ctx: Any) -> pb.XattrReply:
        return pb.XattrReply(value=b.getxattr(req.gfid, req.name))

    @rpc
    def ListXattr(self, b: Brick, req: pb.GfidRequest, ctx: Any) -> pb.ListXattrReply:
        return pb.ListXattrReply(names=b.listxattr(req.gfid))

    @rpc
    def RemoveXattr(self, b: Brick, req: pb.XattrRequest, ctx: Any) -> pb.Reply:
        b.removexattr(req.gfid, req.name)
        return pb.Reply()

    @rpc
    def Lock(self, b: Brick, req: pb.LockRequest, ctx: grpc.ServicerContext) -> pb.LockReply:
        if req.type not in (pb.LOCK_TYPE_READ, pb.LOCK_TYPE_WRITE, pb.LOCK_TYPE_UNLOCK):
            return pb.LockReply(err=errno.EINVAL)
        b.getattr(req.gfid)  # ESTALE for an unknown object
        table = self.locks.get(req.brick)
        rep = self.replicas.get(req.brick)
        if rep is not None and rep.cfg.primary != req.brick:
            return pb.LockReply(err=NOT_PRIMARY)  # a member's table is the primary's copy
        if table is None:  # the brick stopped being served meanwhile
            return pb.LockReply(err=self.missing(req.brick))
        # flock(2) locks and record locks do not interact (as on Linux): separate keys
        key = req.gfid + b"/flock" if req.flock else req.gfid
        if req.test:
            c = table.test(key, req.owner, req.type, req.start, req.length)
            if c is None:
                return pb.LockReply(type=pb.LOCK_TYPE_UNLOCK)
            length = 0 if c.end == locks.EOF else c.end - c.start
            return pb.LockReply(
                type=pb.LOCK_TYPE_WRITE if c.type == locks.WRITE else pb.LOCK_TYPE_READ,
                start=c.start,
                length=length,
                pid=c.pid,
            )
        wait_until = None
        if req.wait:
            remaining = ctx.time_remaining()
            # Leave time for the reply to travel before the caller's deadline.
            wait_until = table.clock() + max(0.0, (remaining or 30.0) - 0.2)
        epoch = rep.cfg.epoch if rep is not None else 0
        table.set(
            key, req.owner, req.type, req.start, req.length, req.pid, wait_until, ctx.is_active,
            epoch,
        )  # fmt: skip
        if rep is not None:
            # Answered only once every in-sync member holds it too: a failover keeps it.
            return pb.LockReply(err=rep.sync_locks([key]))
        return pb.LockReply()

    # -- replication -----------------------------------------------------------------------

    def Forward(self, req: pb.ForwardRequest, ctx: grpc.ServicerContext) -> pb.ForwardReply:
        rep = self.replicas.get(req.brick)
        if rep is None:
            return pb.ForwardReply(err=self.missing(req.brick))
        if not self.certified(rep, ctx, "Forward", req.sender):
            return pb.ForwardReply(err=errno.EACCES, epoch=rep.cfg.epoch)
        try:
            return rep.on_forward(req, self.local)
        except Exception:
            log.exception("forward op=%s brick=%s failed", req.method, req.brick)
            return pb.ForwardReply(err=errno.EIO)

    def Heartbeat(self, req: pb.HeartbeatRequest, ctx: Any) -> pb.HeartbeatReply:
        errs = []
        for ask in req.asks:
            rep = self.replicas.get(ask.brick)
            if rep is not None:
                ok = self.certified(rep, ctx, "Heartbeat", ask.primary)
                errs.append(rep.grant(ask) if ok else errno.EACCES)
            elif ask.brick in self.bricks:  # served, not configured yet: a refusal, alive
                errs.append(errno.EAGAIN)
            else:  # not served: the primary counts this member as failed
                errs.append(self.missing(ask.brick))
        return pb.HeartbeatReply(errs=errs)

    def LockSync(self, req: pb.LockSyncRequest, ctx: Any) -> pb.LockSyncReply:
        rep = self.replicas.get(req.brick)
        table = self.locks.get(req.brick)
        if rep is None or table is None:
            return pb.LockSyncReply(err=self.missing(req.brick))
        if not self.certified(rep, ctx, "LockSync", req.sender):
            return pb.LockSyncReply(err=errno.EACCES, epoch=rep.cfg.epoch)
        try:
            return rep.on_lock_sync(req, table)
        except Exception:
            log.exception("lock sync brick=%s failed", req.brick)
            return pb.LockSyncReply(err=errno.EIO)

    def Session(self, req: pb.SessionRequest, ctx: grpc.ServicerContext) -> pb.Reply:
        if self.refused(req.brick, ctx):
            return pb.Reply(err=errno.EACCES)
        try:
            # "ipv4:10.0.0.5:51234" -> "10.0.0.5:51234"
            self.sessions.update(req, ctx.peer().partition(":")[2])
        except ValueError as e:
            log.info("bad session brick=%s error=%s", req.brick[:128], e)
            return pb.Reply(err=errno.EINVAL)
        if req.brick in self.unconfigured:
            return pb.Reply(err=errno.EAGAIN)  # being started: not serving yet
        return pb.Reply(err=0 if req.brick in self.bricks else self.missing(req.brick))

    @heal_rpc(pb.HealEntriesReply, writes=False)
    def HealEntries(self, b: Brick, req: pb.ReadDirRequest) -> pb.HealEntriesReply:
        return pb.HealEntriesReply(entries=heal.entries(b, req.gfid))

    @heal_rpc(pb.HealSumsReply, writes=False)
    def HealSums(self, b: Brick, req: pb.GfidRequest) -> pb.HealSumsReply:
        return pb.HealSumsReply(sums=heal.sums(b, req.gfid))

    @heal_rpc(pb.EntryReply, writes=True)
    def HealPut(self, b: Brick, req: pb.HealPutRequest) -> pb.EntryReply:
        return pb.EntryReply(attr=attr_pb(heal.put(b, req)))

    @heal_rpc(pb.Reply, writes=True)
    def HealRemove(self, b: Brick, req: pb.HealRemoveRequest) -> pb.Reply:
        heal.remove(b, req.parent, req.name)
        return pb.Reply()


def umask_zero() -> None:
    # A new object gets exactly the mode the client sent, or its parent's default ACL
    # masked by that mode: the caller's umask (MakeNode's umask) is applied by make_node.
    os.umask(0)
