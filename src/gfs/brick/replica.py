"""The brick side of replication (docs/replication.md): a replicated brick knows its
replica set's configuration (epoch, primary, members), and

- as primary, orders mutations per GFID, applies each locally once, forwards it to
  the other members and acknowledges only when every in-sync member applied it; a
  member that fails is first removed from `in_sync` through gfsd;
- as a member, applies what the primary of its epoch (or a newer one) forwards and
  refuses forwards from an older epoch (fencing);
- answers a request id it has seen from its dedup table instead of applying twice.

A brick that restarts serves nothing to clients until gfsd has confirmed its
configuration again: it may have been deposed while it was down.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import signal
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc

from gfs.api.client import ApiError
from gfs.api.client import Client as ApiClient
from gfs.brick import locks
from gfs.brick.store import Brick
from gfs.brick.sys import RENAME_EXCHANGE
from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc import ops, pool
from gfs.rpc.channel import shared_channel

log = logging.getLogger(__name__)

#: Answer of a brick that is not the primary of the caller's epoch: fetch the layout again.
NOT_PRIMARY = errno.EREMCHG
#: A member's daemon answers that it does not serve the brick (never served or gone,
#: stopped by gfsd): that member failed, as surely as a silent one.
NOT_SERVED = (errno.ENODEV, errno.ESHUTDOWN)
#: Heartbeat answer of a member served but not configured yet: not a grant, and not
#: proof of life either (it cannot grant until gfsd configures it).
NOT_CONFIGURED = errno.EAGAIN
#: LockSync answer of a member that has not had the whole lock table from this primary
LOCKS_WANTED = errno.ENOENT

READS = ops.names(ops.READ)
#: Operations on a handle: ordered under the handle's GFID. Members hold no handles: a
#: forwarded one opens the object by GFID for that one operation.
HANDLE_OPS = ops.names(ops.HANDLE)
#: Forwarded handle operations that need a descriptor on the member.
FD_OPS = frozenset(op.name for op in ops.OPS.values() if op.fd)
#: Open flags of the primary's handle a member applies to its own descriptor.
SYNC_FLAGS = os.O_SYNC | os.O_DSYNC
REQUESTS = ops.FORWARDED
DEDUP_SIZE = 1 << 16
#: forwards a member keeps to pass on if it is promoted (the old primary's last round)
APPLIED_SIZE = 256
#: Fault injection for the fault tests only: "METHOD[:NAME]" makes the primary kill
#: itself (SIGKILL) after applying such a mutation and before forwarding it, a moment
#: no outside signal can hit reliably.
CRASH_BEFORE_FORWARD = os.environ.get("GFS_FAULT_CRASH_BEFORE_FORWARD", "")
#: the same, but after the forward reached the first other in-sync member only
CRASH_MID_FORWARD = os.environ.get("GFS_FAULT_CRASH_MID_FORWARD", "")

Apply = Callable[[Any], Any]


@dataclass
class Config:
    volume: str
    set_index: int
    epoch: int
    primary: str
    #: brick name -> [address, state]; state "in_sync" or "out"
    members: dict[str, list[str]]
    min_in_sync: int
    gfsd: list[str] = field(default_factory=list)
    token: str = ""
    failure_timeout: float = 3.0
    relaxed_reads: bool = False
    #: server.allow-privileged-nodes=off (service.BrickService.privileged_ok)
    deny_privileged: bool = False
    #: volume options auth.allow / auth.reject (gfs.addrs; empty allow: every address)
    auth_allow: list[str] = field(default_factory=list)
    auth_reject: list[str] = field(default_factory=list)

    def in_sync(self) -> list[str]:
        return [b for b, (_, st) in self.members.items() if st == "in_sync"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(**d)


def is_mutation(method: str, req: Any) -> bool:
    """Whether the primary forwards `method` (gfs.rpc.ops: an open only when it
    truncates, a Release never — see Replica.release)."""
    return ops.forwards(method, req)


def _clock_offset() -> int:
    # Fault hook: this host's clock runs ahead by so many ns (tests cannot skew the clock
    # of one process on one machine otherwise).
    try:
        return int(os.environ.get("GFS_FAULT_CLOCK_OFFSET_NS", "0"))
    except ValueError:
        return 0


CLOCK_OFFSET_NS = _clock_offset()


def resolve_now(req: Any) -> None:
    """A SetAttr's UTIME_NOW as this brick's clock's time, in place: what the primary
    applies is what it forwards, so every member sets the same time."""
    if req.atime_now or req.mtime_now:
        now = time.time_ns() + CLOCK_OFFSET_NS
        if req.atime_now:
            req.atime_ns, req.atime_now, req.set_atime = now, False, True
        if req.mtime_now:
            req.mtime_ns, req.mtime_now, req.set_mtime = now, False, True


def _fault(spec: str, method: str, req: Any) -> bool:
    """Whether a fault-injection setting "Method[:name]" names this request."""
    want, _, name = spec.partition(":")
    return method == want and (not name or getattr(req, "name", b"") == name.encode())


def _crash(why: str, method: str) -> None:
    log.warning("fault injection: crash %s op=%s", why, method)
    os.kill(os.getpid(), signal.SIGKILL)


class GfidLocks:
    """One lock per GFID, taken in sorted order so multi-object operations cannot deadlock."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._locks: dict[bytes, list[Any]] = {}  # gfid -> [lock, users]

    @contextlib.contextmanager
    def hold(self, keys: list[bytes]) -> Iterator[None]:
        keys = sorted(set(keys))
        taken: list[bytes] = []
        try:
            for k in keys:
                with self._mu:
                    entry = self._locks.setdefault(k, [threading.Lock(), 0])
                    entry[1] += 1
                entry[0].acquire()
                taken.append(k)
            yield
        finally:
            for k in reversed(taken):
                with self._mu:
                    entry = self._locks[k]
                    entry[0].release()
                    entry[1] -= 1
                    if not entry[1]:
                        del self._locks[k]


class Gate:
    """Mutations pass shared; a member rejoining `in_sync` closes it for a moment so no
    mutation slips between the last heal check and the new configuration."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._closed = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, Any] = OrderedDict()
        self._mu = threading.Lock()

    def get(self, key: str) -> Any:
        with self._mu:
            return self._d.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._mu:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def pop(self, key: str) -> Any:
        with self._mu:
            return self._d.pop(key, None)


def brick_stub(address: str) -> Any:
    return brick_pb2_grpc.BrickStub(shared_channel(address))  # type: ignore[no-untyped-call]


class Replica:
    """The replication state of one served brick."""

    def __init__(self, brick: Brick, cfg: Config, confirmed: bool) -> None:
        self.brick = brick
        self.name = brick.name
        self.cfg = cfg
        self.confirmed = confirmed
        self.session = uuid.uuid4().hex
        self.locks = GfidLocks()
        self.gate = Gate()
        self.dedup = Lru(DEDUP_SIZE)
        #: request id -> (reply, forward payload) applied here but not yet acknowledged
        self.pending = Lru(4096)
        #: As a member: (epoch, request id, forward, reply) of the forwards applied here,
        #: newest last. The old primary may have died with a round half done: promoted,
        #: we pass its last epoch's forwards on before taking a mutation (I1, I6).
        self.applied: deque[tuple[int, str, pb.ForwardRequest, Any]] = deque(maxlen=APPLIED_SIZE)
        self._replay: list[tuple[str, pb.ForwardRequest, Any]] = []
        self._replay_due = False
        self._replay_mu = threading.Lock()
        #: As primary: objects we have open whose last name went, pinned on the members
        #: until our last close of them (docs/replication.md, "unlink while open").
        self.pinned: set[bytes] = set()
        #: members being healed (receive forwards, failures only mark them dirty)
        self.healing: dict[str, bool] = {}
        self._cfg_cond = threading.Condition()
        self._membership = threading.Lock()
        # As a member: the lease we granted (to whom, for which epoch, until when).
        # After a restart we no longer know what we granted: behave as if we had just
        # granted the last primary a lease.
        self.granted_to = "" if confirmed else cfg.primary
        self.granted_until = 0.0 if confirmed else time.monotonic() + cfg.failure_timeout
        self.withholding = False  # a configuration naming another primary waits
        # As primary: member -> when its grant runs out (our clock), last grant time.
        self.lease: dict[str, float] = {}
        self.last_heard: dict[str, float] = {}
        #: members whose daemon answered that it does not serve their brick
        self.not_served: set[str] = set()
        # As primary: the change index, GFIDs touched since each member left in_sync
        # while we were primary. A member without an entry needs a full crawl.
        self.changes: dict[str, set[bytes]] = {}
        #: what members missed before they left in_sync (forwards that failed)
        self._missed: dict[str, set[bytes]] = {}
        self.epoch_changes = 0
        #: this brick's lock table (set by the service): as primary we copy it to the
        #: members (LockSync), as a member we hold the primary's copy
        self.lock_table: locks.LockTable | None = None
        #: as primary: members that have had the whole table from us (the others get
        #: all of it with the next sync)
        self.lock_synced: set[str] = set()
        #: as a member: the primary whose whole table we installed ("" after a restart:
        #: deltas alone are refused until the whole table came)
        self.lock_baseline = ""
        # Set when we become primary: a mutation the old primary forwarded to only some
        # members (then died, and its client gave up) may linger on one of them, so the
        # heal worker crawls every member once.
        self.repair_needed = False

    # -- configuration -----------------------------------------------------------------------

    def configure(self, cfg: Config, old_primary_gone: bool = False) -> int:
        """Take `cfg` from gfsd; ESTALE when it is older than what we have, EBUSY while
        a lease we granted to another primary still runs (gfsd retries) — unless gfsd
        found nothing listening where that primary was."""
        with self._cfg_cond:
            if cfg.epoch < self.cfg.epoch:
                return errno.ESTALE
            if (
                not (old_primary_gone and self.granted_to == self.cfg.primary)
                and cfg.primary != self.granted_to
                and self.granted_until > time.monotonic()
                and cfg.epoch > self.cfg.epoch
            ):
                self.withholding = True  # stop renewing so the lease runs out
                return errno.EBUSY
            if cfg.epoch > self.cfg.epoch or cfg.primary != self.cfg.primary:
                self.healing = {}
            if cfg.primary != self.cfg.primary:
                self.lock_synced = set()
                self.lock_baseline = ""
            else:  # one that left in_sync may have missed changes: all of it again
                self.lock_synced &= set(cfg.in_sync())
            if cfg.primary != self.cfg.primary:
                self.lease.clear()
                self.changes.clear()
                self.repair_needed = cfg.primary == self.name
                if cfg.primary == self.name:
                    last = self.cfg.epoch
                    self._replay = [(r, f, rp) for e, r, f, rp in self.applied if e == last]
                    self._replay_due = bool(self._replay)
                self.applied.clear()
                # Promoted: what the old primary pinned here we now unpin at our own last
                # close (a client reopens its handles here by GFID).
                self.pinned = set(self.brick.pins()) if cfg.primary == self.name else set()
                # Any grant to the old primary has run out or is void (nothing serves
                # there): the new primary may have its lease at once.
                self.granted_to, self.granted_until = "", 0.0
            if self.confirmed and cfg.primary == self.name == self.cfg.primary:
                for b in set(self.cfg.in_sync()) - set(cfg.in_sync()):
                    # From now on note what changes, starting with what it missed.
                    self.changes.setdefault(b, set()).update(self._missed.pop(b, set()))
            for b in cfg.in_sync():
                self.changes.pop(b, None)
                self._missed.pop(b, None)
            now = time.monotonic()
            for b in set(cfg.in_sync()) - set(self.cfg.in_sync()):
                # Newly in sync (rejoined): what we heard of it before is void.
                self.last_heard.pop(b, None)
                self.not_served.discard(b)
            for b in cfg.in_sync():  # grace: a member gets one lease time to answer
                self.last_heard.setdefault(b, now)
            if cfg.epoch > self.cfg.epoch:
                self.epoch_changes += 1
            # Out of in_sync (or out under a new primary), no Unpin is owed to us any
            # more: drop the pins, or a deleted file's space stays held. Heal works on
            # names, which a pinned file no longer has.
            out = self.name not in cfg.in_sync() and cfg.primary != self.name
            unpin = out and (self.name in self.cfg.in_sync() or cfg.primary != self.cfg.primary)
            self.cfg = cfg
            self.confirmed = True
            self.withholding = False
            self._cfg_cond.notify_all()
        if unpin:
            self.drop_pins()
        log.info(
            "configured brick=%s volume=%s epoch=%d primary=%s in_sync=%s",
            self.name,
            cfg.volume,
            cfg.epoch,
            cfg.primary,
            ",".join(cfg.in_sync()),
        )
        return 0

    def drop_pins(self) -> int:
        """As a member leaving in_sync: drop every pin (the data of files unlinked while
        the primary had them open goes now)."""
        dropped = sum(self.brick.unpin(g) for g in self.brick.pins())
        if dropped:
            log.info("dropped pins brick=%s count=%d", self.name, dropped)
        return dropped

    # -- leases ------------------------------------------------------------------------------

    def grant(self, ask: pb.LeaseAsk) -> int:
        """As a member: grant the primary `ask.primary` a lease of one failure timeout."""
        with self._cfg_cond:
            cfg = self.cfg
            if self.withholding or ask.epoch < cfg.epoch:
                return errno.ESTALE
            if ask.epoch == cfg.epoch and ask.primary != cfg.primary:
                return errno.ESTALE
            if ask.primary != self.granted_to and self.granted_until > time.monotonic():
                return errno.EBUSY
            self.granted_to = ask.primary
            self.granted_until = time.monotonic() + cfg.failure_timeout
            return 0

    def lease_valid(self) -> bool:
        cfg = self.cfg
        now = time.monotonic()
        return all(self.lease.get(b, 0.0) > now for b in cfg.in_sync() if b != self.name)

    def _wait_lease(self) -> bool:
        with self._cfg_cond:
            return self._cfg_cond.wait_for(self.lease_valid, self.cfg.failure_timeout * 2)

    def lease_asks(self) -> list[tuple[str, pb.LeaseAsk]]:
        """As primary: (address, ask) for every other in-sync member."""
        cfg = self.cfg
        if not self.confirmed or cfg.primary != self.name:
            return []
        return [
            (cfg.members[b][0], pb.LeaseAsk(brick=b, epoch=cfg.epoch, primary=self.name))
            for b in cfg.in_sync()
            if b != self.name
        ]

    def lease_result(self, member: str, sent: float, code: int | None) -> None:
        """`code`: the member's answer (0: granted), None when it did not answer."""
        cfg = self.cfg
        with self._cfg_cond:
            if code in NOT_SERVED:
                self.not_served.add(member)
                return
            self.not_served.discard(member)
            if code is not None and code != NOT_CONFIGURED:
                # An answer, even a refusal (busy, a newer epoch), is not silence.
                self.last_heard[member] = sent
            if code == 0:
                # Our view ends before the member's: it started counting after we sent.
                self.lease[member] = sent + cfg.failure_timeout * 0.8
                self._cfg_cond.notify_all()

    def failed_members(self) -> tuple[list[str], list[str]]:
        """In-sync members that failed: (silent for longer than a failure timeout, whose
        daemon answers that it does not serve them)."""
        cfg = self.cfg
        now = time.monotonic()
        others = [b for b in cfg.in_sync() if b != self.name]
        silent = [b for b in others if now - self.last_heard.get(b, now) > cfg.failure_timeout]
        return silent, [b for b in others if b in self.not_served and b not in silent]

    def take_changes(self, member: str) -> set[bytes] | None:
        """The change index of `member`, emptied (None: it cannot tell, crawl fully)."""
        with self._cfg_cond:
            changed = self.changes.get(member)
            if changed is not None:
                self.changes[member] = set()
            return changed

    def give_back_changes(self, member: str, changed: set[bytes] | None) -> None:
        with self._cfg_cond:
            if changed is not None and member in self.changes:
                self.changes[member] |= changed

    def wait_epoch(self, epoch: int, timeout: float) -> Config:
        with self._cfg_cond:
            self._cfg_cond.wait_for(lambda: self.cfg.epoch >= epoch, timeout)
            return self.cfg

    def _api(self, cfg: Config) -> Iterator[ApiClient]:
        for server in cfg.gfsd:
            with ApiClient(server, cfg.token, timeout=max(5.0, cfg.failure_timeout * 3)) as c:
                yield c

    def ask_gfsd(self, cfg: Config, call: Callable[[ApiClient], Any]) -> str:
        """Ask gfsd (each address in turn) for a membership change: "ok", "refused" (it
        answered no, e.g. the epoch moved) or "unreachable"."""
        for api in self._api(cfg):
            try:
                call(api)
                return "ok"
            except ApiError as e:
                log.warning("membership change refused brick=%s error=%s", self.name, e.message)
                if e.code != "unreachable":
                    return "refused"
        return "unreachable"

    # -- client requests ---------------------------------------------------------------------

    def client_call(
        self, method: str, req: Any, ctx: grpc.ServicerContext, apply: Apply, reply: type[Any]
    ) -> Any:
        md = dict(ctx.invocation_metadata() or ())
        try:
            epoch = int(md.get("gfs-epoch", "0"))
        except ValueError:
            return reply(err=errno.EINVAL)
        cfg = self.cfg
        primary = self.confirmed and epoch == cfg.epoch and cfg.primary == self.name
        if method == "Release":
            return self.release(req, apply) if primary else reply(err=NOT_PRIMARY)
        if method in READS:
            if cfg.relaxed_reads and self.confirmed and epoch == cfg.epoch:
                return apply(req)
            if not primary or not (self.lease_valid() or self._wait_lease()):
                return reply(err=NOT_PRIMARY)
            return apply(req)
        if not primary:
            return reply(err=NOT_PRIMARY)
        if not is_mutation(method, req):
            return apply(req)
        if len(cfg.in_sync()) < cfg.min_in_sync:
            return reply(err=errno.EROFS)
        reqid = str(md.get("gfs-req", ""))
        keys, hgfid = self._keys(method, req)
        victim = self._victim(method, req)
        for attempt in range(3):
            with self.gate.shared(), self.locks.hold([*keys, victim] if victim else keys):
                # The name's object cannot change under its parent's lock; it may have
                # before: take the new one's lock too.
                now = self._victim(method, req)
                if now == victim or attempt == 2:
                    pin = now if now and self.brick.is_open(now) else b""
                    return self._mutate(method, req, apply, reply, reqid, keys, hgfid, pin)
            victim = now
        raise AssertionError("unreachable")

    def _mutate(
        self,
        method: str,
        req: Any,
        apply: Apply,
        reply: type[Any],
        reqid: str,
        keys: list[bytes],
        hgfid: bytes,
        pin: bytes,
    ) -> Any:
        """Apply once, forward, acknowledge (under the mutation's locks)."""
        if self._replay_due:
            self._pass_on_applied()
        if reqid:
            hit = self.dedup.get(reqid)
            if hit is not None:
                return reply.FromString(hit)
        pend = self.pending.get(reqid) if reqid else None
        if pend is not None:
            rep, fwd = pend
        else:
            if method == "SetAttr":
                resolve_now(req)
            rep = apply(req)
            if rep.err:
                return rep
            for changed in list(self.changes.values()):
                changed.update(k for k in keys if k)
            if CRASH_BEFORE_FORWARD and _fault(CRASH_BEFORE_FORWARD, method, req):
                _crash("before forwarding", method)
            fwd = self._payload(method, req, rep, hgfid)
            fwd.times.extend(self._stamps(method, req, rep, hgfid))
            if pin:
                fwd.pin = pin
                self.pinned.add(pin)
            if reqid:
                self.pending.put(reqid, (rep, fwd))
        half = bool(CRASH_MID_FORWARD) and _fault(CRASH_MID_FORWARD, method, req)
        code = self.forward(fwd, reqid, rep, reply, keys, half)
        if code:
            return reply(err=code)
        if reqid:
            self.pending.pop(reqid)
            self.dedup.put(reqid, rep.SerializeToString())
        return rep

    def _pass_on_applied(self) -> None:
        """Promoted: the old primary's last forwards go to every other in-sync member, in
        the order we applied them, before our first mutation. A member that has one
        answers from its dedup table; one that missed it (the old primary died before its
        call) applies it. Without this a retry answered from our dedup table would leave
        that member in sync without the change."""
        with self._replay_mu:
            if not self._replay_due:
                return
            todo, self._replay = self._replay, []
            for reqid, fwd, rep in todo:
                code = self.forward(fwd, reqid, rep, type(rep), [fwd.gfid])
                if code:
                    log.warning(
                        "pass on failed brick=%s op=%s req=%s err=%s",
                        self.name,
                        fwd.method,
                        reqid,
                        code,
                    )
                    if code == NOT_PRIMARY:
                        break
            log.info("passed on brick=%s forwards=%d", self.name, len(todo))
            self._replay_due = False

    def _victim(self, method: str, req: Any) -> bytes:
        """The object whose name an Unlink or Rename removes (b"": none)."""
        if method == "Unlink":
            parent, name = req.parent, req.name
        elif method == "Rename" and not req.flags & RENAME_EXCHANGE:
            parent, name = req.new_parent, req.new_name
        else:
            return b""
        try:
            return self.brick.lookup(parent, name).gfid
        except (OSError, ValueError):
            return b""

    def release(self, req: Any, apply: Apply) -> Any:
        """Close a handle here only: members hold none. The last close of a file pinned
        on the members (unlinked while open) unpins it there, unawaited: until the
        Unpin lands a member only keeps a file that has no name any more."""
        try:
            g = self.brick.handle(req.fh).gfid
        except OSError:
            return apply(req)  # EBADF
        with self.locks.hold([g]):  # orders with an Unlink that pins g
            rep = apply(req)
            if rep.err or g not in self.pinned or self.brick.is_open(g):
                return rep
            self.pinned.discard(g)
            self.brick.unpin(g)  # ours, when we took over from the primary that pinned it
        self._unpin_elsewhere(g)
        return rep

    def _keys(self, method: str, req: Any) -> tuple[list[bytes], bytes]:
        op = ops.OPS[method]
        if op.kind == ops.MUTATION and op.keys != ("gfid",):
            return [getattr(req, k) for k in op.keys], b""
        if method in HANDLE_OPS:
            try:
                g = self.brick.handle(req.fh).gfid
            except OSError:
                g = b""
            if method == "CopyRange":  # the source, too: every member copies the same bytes
                with contextlib.suppress(OSError):
                    req.gfid_in = self.brick.handle(req.fh_in).gfid if req.fh_in else req.gfid_in
                return [g, req.gfid_in], g
            return [g], g
        return [req.gfid], req.gfid

    def _stamps(self, method: str, req: Any, rep: Any, hgfid: bytes) -> list[pb.TimeStamp]:
        """The times the mutation just applied here gave its objects (one stat each),
        for the members to set after applying it: every replica then holds the
        primary's mtime, whatever each member's clock said (docs/replication.md,
        "Times"). ctime cannot be set; a rename or link changes only the object's ctime,
        an xattr change only ctime."""
        touched: list[tuple[bytes, bool]] = []  # (gfid, atime too)
        if method in ("Write", "Fallocate", "CopyRange", "Open"):
            touched = [(hgfid, False)]
        elif method == "SetAttr" and req.set_size:  # explicit times travel in the request
            touched = [(req.gfid, False)]
        elif method == "MakeNode":
            touched = [(req.parent, False), (rep.attr.gfid, True)]
        elif method in ("Unlink", "Rmdir"):
            touched = [(req.parent, False)]
        elif method == "Rename":
            touched = [(req.old_parent, False), (req.new_parent, False)]
        elif method == "Link":
            touched = [(req.new_parent, False)]
        out: list[pb.TimeStamp] = []
        for g, with_atime in dict(touched).items():  # one parent for a rename within it
            try:
                st = self.brick.getattr(g).st
            except (OSError, ValueError) as e:
                log.warning("no times to forward brick=%s op=%s err=%s", self.name, method, e)
                continue
            t = pb.TimeStamp(gfid=g, mtime_ns=st.st_mtime_ns)
            if with_atime:
                t.set_atime, t.atime_ns = True, st.st_atime_ns
            out.append(t)
        return out

    def _payload(self, method: str, req: Any, rep: Any, hgfid: bytes) -> pb.ForwardRequest:
        fh, gfid, flags = 0, hgfid, 0
        out = type(req)()
        out.CopyFrom(req)
        if method in FD_OPS:
            h = self.brick.handle(req.fh)
            fh, flags = req.fh, h.flags & SYNC_FLAGS
            if method == "Write":
                if h.append:  # members write where the primary's append landed
                    out.offset = rep.size - rep.written
                out.data = req.data[: rep.written]
            elif method == "CopyRange":  # members copy from their own copy of the source
                out.fh_in, out.length = 0, rep.copied
        elif method == "Open":
            out.flags = req.flags & ~os.O_APPEND
            gfid = req.gfid
        elif method == "MakeNode":
            out.flags = req.flags & ~(os.O_APPEND | os.O_EXCL)
        elif method == "SetAttr" and req.fh:
            out.fh, gfid = 0, req.gfid  # members change it by GFID
        return pb.ForwardRequest(
            method=method,
            payload=out.SerializeToString(),
            session=self.session,
            fh=fh,
            gfid=gfid,
            flags=flags,
        )

    def forward(
        self,
        fwd: pb.ForwardRequest,
        reqid: str,
        rep: Any,
        reply: type[Any],
        keys: list[bytes],
        half: bool = False,
    ) -> int:
        """Hand a mutation applied here to the other members; the errno to answer instead
        of success (0: every in-sync member has it). `half`: fault injection, to the
        first member only and then die."""
        for _ in range(3):
            cfg = self.cfg
            targets = self._targets(cfg)[:1] if half else self._targets(cfg)
            calls = []
            with pool.batch() as batch:  # all in flight at once
                for b, addr, counted in targets:
                    f = pb.ForwardRequest()
                    f.CopyFrom(fwd)
                    f.brick, f.epoch, f.req, f.sender = b, cfg.epoch, reqid, self.name
                    fut = batch.start(brick_stub(addr).Forward, f, cfg.failure_timeout)
                    calls.append((b, counted, fut))
            failed: list[str] = []
            newer = 0
            for b, counted, fut in calls:
                ok = False
                try:
                    r = fut.result()
                    if r.err == errno.ESTALE:
                        newer = max(newer, r.epoch)
                        continue
                    got = reply.FromString(r.reply)
                    ok = not r.err and got.err == rep.err
                    if ok and fwd.method == "Write":
                        ok = got.written == rep.written
                    if r.err in NOT_SERVED:
                        log.warning(
                            "member not served brick=%s member=%s op=%s err=%s",
                            self.name,
                            b,
                            fwd.method,
                            r.err,
                        )
                    elif not ok:
                        log.warning(
                            "member diverged brick=%s member=%s op=%s err=%s",
                            self.name,
                            b,
                            fwd.method,
                            r.err or got.err,
                        )
                except grpc.RpcError as e:
                    log.warning(
                        "forward failed brick=%s member=%s op=%s status=%s",
                        self.name,
                        b,
                        fwd.method,
                        e.code() if isinstance(e, grpc.Call) else "?",
                    )
                if not ok:
                    self._missed.setdefault(b, set()).update(k for k in keys if k)
                    if counted:
                        failed.append(b)
                    else:
                        self.healing[b] = True  # dirty: heal again before it rejoins
            if half:
                _crash("after forwarding to one member", fwd.method)
            end = self._round_end(cfg, newer, failed)
            if end is not None:
                return end
        return errno.EIO

    def _targets(self, cfg: Config, only: str = "") -> list[tuple[str, str, bool]]:
        """The members a primary sends a change to: (brick, address, counted) for every
        other in-sync member and every one being healed (not counted: a failure marks
        it dirty instead of removing it). `only`: that member alone."""
        return [
            (b, addr, st == "in_sync")
            for b, (addr, st) in cfg.members.items()
            if b != self.name and (st == "in_sync" or b in self.healing) and only in ("", b)
        ]

    def _round_end(self, cfg: Config, newer: int, failed: list[str]) -> int | None:
        """After one round of calls to the members: the errno to answer (0: all have
        it), or None to go round again (a newer epoch that still names us primary)."""
        if newer:
            # gfsd may have told the members before us: wait briefly for our own copy.
            now = self.wait_epoch(newer, 2.0)
            if now.epoch < newer or now.primary != self.name:
                self.confirmed = now.epoch >= newer
                return NOT_PRIMARY
            return None
        if failed:
            return self.drop_members(cfg, failed)
        return 0

    # -- lock state (docs/replication.md, "Locks") ---------------------------------------------

    def sync_locks(self, keys: list[bytes], only: str = "", drop: bool = True) -> int:
        """As primary: copy the lock state of `keys` to every other in-sync member (and
        those being healed), the whole table to one that has not had it; 0 once every
        in-sync member has it, else the errno to answer (a member that failed is first
        removed from in_sync, as for a forward: I4). `only`: to that member alone.
        `drop=False` (a sync no client waits for): a member that fails is left to the
        failure detector, and the next lock change tries it again."""
        table = self.lock_table
        for _ in range(3):
            cfg = self.cfg
            if table is None or cfg.primary != self.name:
                return NOT_PRIMARY
            targets = self._targets(cfg, only)
            if not targets:
                return 0
            synced = set(self.lock_synced)
            full = table.snapshot() if any(b not in synced for b, _, _ in targets) else None
            delta = table.snapshot(keys)
            calls = []
            with pool.batch() as batch:
                for b, addr, counted in targets:
                    snap = delta if b in synced or full is None else full
                    req = lock_sync_request(snap, b not in synced)
                    req.brick, req.epoch, req.sender = b, cfg.epoch, self.name
                    fut = batch.start(brick_stub(addr).LockSync, req, cfg.failure_timeout)
                    calls.append((b, counted, fut))
            failed: list[str] = []
            newer, again = 0, False
            for b, counted, fut in calls:
                try:
                    r = fut.result()
                    err = r.err
                except grpc.RpcError as e:
                    err = errno.EIO
                    log.warning(
                        "lock sync failed brick=%s member=%s status=%s",
                        self.name,
                        b,
                        e.code() if isinstance(e, grpc.Call) else "?",
                    )
                if err == errno.ESTALE:
                    newer = max(newer, r.epoch)
                    continue
                if not err:
                    self.lock_synced.add(b)
                    continue
                self.lock_synced.discard(b)
                if err == LOCKS_WANTED:
                    again = True  # it lost its copy (restarted): the whole table now
                    continue
                if counted and drop:
                    log.warning("lock sync refused brick=%s member=%s err=%d", self.name, b, err)
                    failed.append(b)
                elif counted:
                    continue
                else:
                    self.healing[b] = True  # dirty: heal again before it rejoins
            end = self._round_end(cfg, newer, failed)
            if end is None or (end == 0 and again and not failed):
                continue  # again: the whole table to a member that lost its copy
            return end
        return errno.EIO

    def lock_sync_due(self) -> list[str]:
        """As primary: in-sync (or healing) members that have not had the whole table."""
        cfg = self.cfg
        if self.lock_table is None or not self.confirmed or cfg.primary != self.name:
            return []
        return [
            b
            for b, (_, st) in cfg.members.items()
            if b != self.name
            and (st == "in_sync" or b in self.healing)
            and b not in self.lock_synced
        ]

    def on_lock_sync(self, req: pb.LockSyncRequest, table: locks.LockTable) -> pb.LockSyncReply:
        """As a member: install the primary's lock state (fenced like a forward)."""
        cfg = self.cfg
        if req.epoch < cfg.epoch:
            return pb.LockSyncReply(err=errno.ESTALE, epoch=cfg.epoch)
        if not self.sender_ok("LockSync", req.epoch, req.sender):
            return pb.LockSyncReply(err=errno.EACCES, epoch=cfg.epoch)
        if not req.full and self.lock_baseline != req.sender:
            return pb.LockSyncReply(err=LOCKS_WANTED, epoch=cfg.epoch)
        n = table.install(lock_snapshot(req), req.full)
        if req.full:
            self.lock_baseline = req.sender
        log.debug("lock sync brick=%s full=%s keys=%d changed=%d", self.name, req.full,
                  len(req.keys), n)  # fmt: skip
        return pb.LockSyncReply(epoch=cfg.epoch)

    def _unpin_elsewhere(self, gfid: bytes) -> None:
        """Best effort, unawaited: Unpin `gfid` on every other member (one outside
        in_sync may still hold a pin from before; one without it answers success)."""
        cfg = self.cfg
        for b, (addr, _) in cfg.members.items():
            if b == self.name:
                continue
            f = pb.ForwardRequest(
                brick=b,
                epoch=cfg.epoch,
                method="Unpin",
                payload=pb.GfidRequest(gfid=gfid).SerializeToString(),
                gfid=gfid,
                sender=self.name,
            )
            fut = pool.start(brick_stub(addr).Forward, f, cfg.failure_timeout)
            fut.add_done_callback(functools.partial(_log_unpin, self.name, b))

    def drop_members(self, seen: Config, failed: list[str]) -> int:
        """Remove failed members from in_sync through gfsd before acknowledging (I4)."""
        with self._membership:
            for _ in range(3):
                cfg = self.cfg
                still = [b for b in failed if b in cfg.in_sync()]
                if not still:
                    break

                # A member that failed a mutation leaves, whatever else changed meanwhile.
                def shrink(api: ApiClient, c: Config = cfg, bs: list[str] = still) -> None:
                    api.replica_shrink(c.volume, c.set_index, c.epoch, bs, self.name)

                got = self.ask_gfsd(cfg, shrink)
                if got == "unreachable":
                    return errno.EIO  # not acknowledged: gfsd could not record the change
                # Refused (another change won the race): its push reaches us, then retry.
                self.wait_epoch(cfg.epoch + 1, 5.0 if got == "ok" else 1.0)
                if got == "ok":
                    break
            cfg = self.cfg
            if cfg.epoch <= seen.epoch:
                return errno.EIO
            if cfg.primary != self.name:
                return NOT_PRIMARY
            if any(b in cfg.in_sync() for b in failed):
                return errno.EIO
            if len(cfg.in_sync()) < cfg.min_in_sync:
                return errno.EROFS
            return 0

    # -- forwards from the primary -----------------------------------------------------------

    def sender_ok(self, op: str, epoch: int, sender: str) -> bool:
        """Whether a forward or heal write for `epoch` claims to come from the primary
        this member knows for it: the configured primary of its own epoch, or, for a
        newer epoch it has not been given yet (gfsd configures the primary first), one
        of the other members. The claim itself is only as good as the channel's
        authentication (docs/architecture.md, "Brick hardening")."""
        cfg = self.cfg
        if epoch == cfg.epoch:
            ok = sender == cfg.primary and sender != self.name
        else:
            ok = sender in cfg.members and sender != self.name
        if not ok:
            log.warning(
                "refused op=%s brick=%s epoch=%d sender=%s primary=%s own_epoch=%d",
                op,
                self.name,
                epoch,
                sender[:128] or "-",
                cfg.primary,
                cfg.epoch,
            )
        return ok

    def on_forward(self, f: pb.ForwardRequest, local: Callable[[str, Any], Any]) -> pb.ForwardReply:
        cfg = self.cfg
        if f.epoch < cfg.epoch:
            return pb.ForwardReply(err=errno.ESTALE, epoch=cfg.epoch)
        if not self.sender_ok(f.method or "Forward", f.epoch, f.sender):
            return pb.ForwardReply(err=errno.EACCES, epoch=cfg.epoch)
        if f.req:
            hit = self.dedup.get(f.req)
            if hit is not None:
                return pb.ForwardReply(reply=hit)
        if f.method == "Unpin":
            self.brick.unpin(f.gfid)
        # An older primary forwarded Release and Flush too: nothing is held here.
        if f.method in ("Unpin", "Release", "Flush"):
            return pb.ForwardReply(reply=pb.Reply().SerializeToString())
        cls = REQUESTS.get(f.method)
        if cls is None:
            return pb.ForwardReply(err=errno.EINVAL)
        req = cls.FromString(f.payload)
        req.brick = self.name
        if f.pin:  # before the name goes: the primary still has the file open
            self.brick.pin(f.pin)
        fd_fh = 0
        if f.method in FD_OPS:
            try:
                fd_fh, _ = self.brick.open(f.gfid, os.O_RDWR | (f.flags & SYNC_FLAGS))
            except OSError as e:
                return pb.ForwardReply(err=e.errno or errno.EIO)
            req.fh = fd_fh
        try:
            rep = local(f.method, req)
        finally:
            if fd_fh:
                with contextlib.suppress(OSError):
                    self.brick.release(fd_fh)
        new_fh: int = getattr(rep, "fh", 0)
        if new_fh and f.method in ("Open", "MakeNode"):
            with contextlib.suppress(OSError):
                self.brick.release(new_fh)  # a create or truncate: nothing stays open here
        if not rep.err:
            self._set_times(f)
        data = rep.SerializeToString()
        if f.req and not rep.err:
            self.dedup.put(f.req, data)
            self.applied.append((f.epoch, f.req, f, rep))
        return pb.ForwardReply(reply=data)

    def _set_times(self, f: pb.ForwardRequest) -> None:
        """As a member, after applying `f`: the primary's times instead of our clock's."""
        for t in f.times:
            try:
                self.brick.set_times(t.gfid, t.atime_ns if t.set_atime else None, t.mtime_ns)
            except (OSError, ValueError) as e:
                # Only when a later mutation raced it away; heal copies times anyway.
                log.warning("times not set brick=%s op=%s err=%s", self.name, f.method, e)


LOCK_TYPES = {locks.READ: pb.LOCK_TYPE_READ, locks.WRITE: pb.LOCK_TYPE_WRITE}
LOCK_KINDS = {v: k for k, v in LOCK_TYPES.items()}


def lock_sync_request(snap: locks.Snapshot, full: bool) -> pb.LockSyncRequest:
    return pb.LockSyncRequest(
        full=full,
        stamp_epoch=snap.stamp[0],
        seq=snap.stamp[1],
        keys=[
            pb.LockKeyState(
                key=k,
                epoch=st[0],
                seq=st[1],
                locks=[
                    pb.LockEntry(
                        owner=lk.owner,
                        type=LOCK_TYPES[lk.type],
                        start=lk.start,
                        end=lk.end,
                        pid=lk.pid,
                    )
                    for lk in snap.locks.get(k, ())
                ],
            )
            for k, st in snap.stamps.items()
        ],
    )


def lock_snapshot(req: pb.LockSyncRequest) -> locks.Snapshot:
    """The snapshot a LockSync carries (`full`: stamped with the request's epoch, seq)."""
    snap = locks.Snapshot(stamp=(req.stamp_epoch, req.seq) if req.full else (0, 0))
    for ks in req.keys:
        snap.stamps[ks.key] = (ks.epoch, ks.seq)
        snap.locks[ks.key] = [
            locks.Lock(e.owner, LOCK_KINDS.get(e.type, locks.WRITE), e.start, e.end, e.pid)
            for e in ks.locks
        ]
    return snap


def _log_unpin(brick: str, member: str, fut: Any) -> None:
    try:
        fut.result()
    except (grpc.RpcError, grpc.FutureCancelledError) as e:
        log.info(
            "unpin not forwarded brick=%s member=%s status=%s",
            brick,
            member,
            e.code() if isinstance(e, grpc.Call) else "?",
        )


class LeaseWorker:
    """One per brick daemon: asks the members of every replica set this node is primary
    of for leases (one Heartbeat per peer daemon), and has members that stay silent
    for a failure timeout, or whose daemon answers that it does not serve them, removed
    from in_sync, so reads do not wait for a write to find out. `run_once()` is one
    round (tests call it)."""

    def __init__(self, replicas: dict[str, Replica], tick: float = 0.25) -> None:
        self.replicas = replicas
        self.tick = tick
        self._stop = threading.Event()
        self._dropping: set[str] = set()
        self._lock_syncing: set[str] = set()
        self._mu = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="lease", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_once()
            except Exception:
                log.exception("lease round failed")

    def run_once(self) -> None:
        groups: dict[str, list[tuple[Replica, pb.LeaseAsk]]] = {}
        reps = list(self.replicas.values())
        for rep in reps:
            for address, ask in rep.lease_asks():
                groups.setdefault(address, []).append((rep, ask))
        sent = time.monotonic()
        with pool.batch() as batch:
            calls = [
                (items, batch.start(
                    brick_stub(a).Heartbeat, pb.HeartbeatRequest(asks=[x for _, x in items]), 1.0
                ))
                for a, items in groups.items()
            ]  # fmt: skip
        for items, fut in calls:
            codes: list[int | None]
            try:
                codes = list(fut.result().errs)
            except grpc.RpcError:
                codes = []
            codes += [None] * (len(items) - len(codes))
            for (rep, ask), code in zip(items, codes, strict=False):
                rep.lease_result(ask.brick, sent, code)
        for rep in reps:
            silent, not_served = rep.failed_members()
            if (silent or not_served) and rep.cfg.primary == rep.name:
                self._drop(rep, silent, not_served)
            elif rep.lock_sync_due():
                self._sync_locks(rep)

    def _sync_locks(self, rep: Replica) -> None:
        """A member (re)joined, or is being healed, without the lock table: send it all
        now, not only with the next lock change (off this thread: a lease round must not
        wait for it)."""
        with self._mu:
            if rep.name in self._lock_syncing:
                return
            self._lock_syncing.add(rep.name)

        def run() -> None:
            try:
                # No client waits: a silent member is the lease's to drop, after its
                # failure timeout, not this sync's at once.
                rep.sync_locks([], drop=False)
            finally:
                with self._mu:
                    self._lock_syncing.discard(rep.name)

        threading.Thread(target=run, name="locksync", daemon=True).start()

    def _drop(self, rep: Replica, silent: list[str], not_served: list[str]) -> None:
        with self._mu:
            if rep.name in self._dropping:
                return
            self._dropping.add(rep.name)

        def run() -> None:
            try:
                log.warning(
                    "members failed brick=%s silent=%s not_served=%s",
                    rep.name,
                    ",".join(silent),
                    ",".join(not_served),
                )
                rep.drop_members(rep.cfg, silent + not_served)
            finally:
                with self._mu:
                    self._dropping.discard(rep.name)

        threading.Thread(target=run, name="drop", daemon=True).start()
