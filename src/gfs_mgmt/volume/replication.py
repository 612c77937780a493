"""Replica-set membership (docs/replication.md): gfsd is the only writer of a set's
configuration (epoch, primary, in_sync). Every change is one SQL transaction with
compare-and-set on the epoch, after which the new configuration is pushed to the
set's bricks, primary first.

- shrink: the primary reports members that failed a mutation (I4);
- rejoin: the primary's heal worker reports a member made identical (I8);
- reconcile: a client that cannot use the primary; gfsd confirms the configuration
  to the bricks (a restarted brick serves nothing until then), or, when the primary
  does not answer or its daemon no longer serves it, promotes an in-sync member
  that is served (I3);
- options: a change of an option the bricks enforce (min-in-sync, failure timeout,
  relaxed reads) is a configuration change like the others (epoch + 1 under CAS),
  acknowledged by every in-sync brick before `volume set` returns.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from gfs.api import models as m
from gfs.errors import GfsError
from gfs.proto import admin_pb2 as apb
from gfs_mgmt.peer.brickd import BrickdAdmin, PeerError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Brick, Event, ReplicaSet, Volume, VolumeOption
from gfs_mgmt.volume import options as vopts

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0


def min_in_sync(replica: int, opts: dict[str, str]) -> int:
    value = opts.get("replica.min-in-sync", vopts.OPTIONS["replica.min-in-sync"].default)
    if value == "majority":
        return replica // 2 + 1
    if value == "all":
        return replica
    return min(int(value), replica)


def failure_timeout(opts: dict[str, str]) -> float:
    key = "replica.failure-detection-seconds"
    return float(opts.get(key, vopts.OPTIONS[key].default))


def set_wire(rs: ReplicaSet) -> m.ReplicaSet:
    return m.ReplicaSet(
        index=rs.index,
        epoch=rs.epoch,
        primary=rs.primary_brick_id,
        bricks=[
            m.BrickInfo(
                id=b.id,
                name=b.name,
                peer_id=b.peer_id,
                peer_name=b.peer.name,
                address=b.peer.address,
                path=b.path,
                in_sync=b.in_sync,
            )
            for b in rs.bricks
        ],
    )


class Membership:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: what bricks use to reach gfsd (set by the daemon)
        self.token = ""
        self.advertise: list[str] = []
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="push")

    # -- loading -----------------------------------------------------------------------------

    def _volume(self, s: Session, name: str) -> Volume:
        v = s.scalar(
            select(Volume)
            .where(Volume.name == name)
            .options(
                selectinload(Volume.options),
                selectinload(Volume.replica_sets)
                .selectinload(ReplicaSet.bricks)
                .selectinload(Brick.peer),
            )
        )
        if v is None:
            raise GfsError("not_found", "volume_not_found", f"no volume named {name}")
        return v

    def _load(self, s: Session, name: str, index: int) -> tuple[Volume, ReplicaSet]:
        v = self._volume(s, name)
        for rs in v.replica_sets:
            if rs.index == index:
                return v, rs
        raise GfsError("not_found", "replica_set_not_found", f"volume {name} has no set {index}")

    def _configs(
        self, v: Volume, rs: ReplicaSet, old_primary_gone: bool = False
    ) -> list[tuple[str, apb.ConfigureRequest]]:
        opts = {o.key: o.value for o in v.options}
        timeout = failure_timeout(opts)
        primary = next((b for b in rs.bricks if b.id == rs.primary_brick_id), rs.bricks[0])
        members = [
            apb.Member(
                brick=b.name, address=b.peer.address, state="in_sync" if b.in_sync else "out"
            )
            for b in rs.bricks
        ]
        out = []
        for b in sorted(rs.bricks, key=lambda b: b is not primary):
            req = apb.ConfigureRequest(
                brick=b.name,
                volume=v.name,
                set_index=rs.index,
                epoch=rs.epoch,
                primary=primary.name,
                members=members,
                min_in_sync=min_in_sync(v.replica_count, opts),
                gfsd=self.advertise,
                token=self.token,
                failure_timeout=timeout,
                relaxed_reads=opts.get("replica.relaxed-reads", "off") == "on",
                deny_privileged=opts.get("server.allow-privileged-nodes", "on") == "off",
                auth_allow=_rules(opts.get("auth.allow", "*")),
                auth_reject=_rules(opts.get("auth.reject", "")),
                old_primary_gone=old_primary_gone,
            )
            out.append((b.peer.address, req))
        return out

    def push(
        self,
        configs: list[tuple[str, apb.ConfigureRequest]],
        primary_first: bool = True,
        superseded_ok: bool = False,
    ) -> set[str]:
        """Send each brick its configuration, the primary first (or last); the bricks
        that took it (`superseded_ok`: or already hold a newer one)."""

        def one(address: str, req: apb.ConfigureRequest) -> str | None:
            # A member that granted the old primary a read lease says EBUSY until it ran
            # out (at most one failure timeout): that is the wait failover must make.
            deadline = time.monotonic() + req.failure_timeout + PROBE_TIMEOUT
            tries = 2  # a daemon busy with a thousand volume starts may miss one deadline
            while True:
                try:
                    with BrickdAdmin(address) as a:
                        a.configure(req)
                    return req.brick
                except PeerError as e:
                    if e.errno == errno.ESTALE and superseded_ok:
                        return req.brick
                    if e.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                    tries -= 1
                    if e.errno == errno.ETIMEDOUT and tries:
                        continue
                    log.warning(
                        "configure failed brick=%s epoch=%d error=%s", req.brick, req.epoch, e
                    )
                    return None

        if not configs:
            return set()
        first, rest = configs[0], configs[1:]
        done = {one(*first)} if primary_first else set()
        done |= set(self._pool.map(lambda c: one(*c), rest))
        if not primary_first:
            done.add(one(*first))
        done.discard(None)
        return {d for d in done if d}

    def configure_volume(self, name: str, required: list[str] | None = None) -> None:
        """Push every replica set's configuration (volume start: every brick must take
        it; else the primaries and `required` must)."""
        with self.db.session() as s:
            v = self._volume(s, name)
            configs = [c for rs in v.replica_sets for c in self._configs(v, rs)]
            if required is not None:
                required = required + [
                    b.name
                    for rs in v.replica_sets
                    for b in rs.bricks
                    if b.id == rs.primary_brick_id
                ]
        took = self.push(configs)
        missing = [
            c.brick
            for _, c in configs
            if c.brick not in took and (required is None or c.brick in required)
        ]
        if missing:
            raise GfsError(
                "unavailable", "configure_failed", f"bricks {', '.join(missing)} not configured"
            )

    # -- changes -----------------------------------------------------------------------------

    def _change(
        self,
        name: str,
        index: int,
        epoch: int,
        what: str,
        change: Callable[[Volume, ReplicaSet], str],
        old_primary_gone: bool = False,
    ) -> m.ReplicaSet:
        """Apply `change` (which returns the event message) with CAS on `epoch`, then push."""
        with self.db.session() as s:
            v, rs = self._load(s, name, index)
            if rs.epoch != epoch:
                raise GfsError(
                    "busy",
                    "epoch_changed",
                    f"volume {name} set {index} is at epoch {rs.epoch}, not {epoch}",
                    epoch=rs.epoch,
                )
            message = change(v, rs)
            hit = s.execute(
                update(ReplicaSet)
                .where(ReplicaSet.id == rs.id, ReplicaSet.epoch == epoch)
                .values(epoch=epoch + 1, primary_brick_id=rs.primary_brick_id)
                .execution_options(synchronize_session=False)
            )
            if hit.rowcount != 1:  # type: ignore[attr-defined]
                raise GfsError("busy", "epoch_changed", f"volume {name} set {index} changed")
            rs.epoch = epoch + 1
            s.add(Event(kind=what, volume=name, message=message, payload={"epoch": epoch + 1}))
            log.info("membership volume=%s set=%d epoch=%d %s", name, index, epoch + 1, message)
            configs = self._configs(v, rs, old_primary_gone)
            wire = set_wire(rs)
        self.push(configs)
        return wire

    def set_options(self, name: str, changes: dict[str, str | None], what: str) -> None:
        """Store option values (None: back to the default) and, on a started volume
        whose brick-enforced options change, bump every set's epoch (CAS) and push;
        every in-sync brick must take it. If one does not, the old values are put back
        (epoch + 1 again, pushed as far as possible) and the call fails."""
        old = self._store_options(name, changes, what)
        if old is None:
            return
        before, after, configs = old
        took = self._push_options(configs, before, after)
        missing = [
            req.brick for _, req in configs if req.brick not in took and _in_sync(req, req.brick)
        ]
        if not missing:
            return
        log.warning("options not taken volume=%s bricks=%s: restoring", name, ",".join(missing))
        restore = {k: before.get(k) for k in changes}
        undo = self._store_options(name, restore, "volume_options_restored")
        if undo is not None:
            self._push_options(undo[2], after, before)
        raise GfsError(
            "unavailable",
            "configure_failed",
            f"volume {name}: bricks {', '.join(missing)} did not take the new options;"
            " the previous values are in force again",
        )

    def _store_options(
        self, name: str, changes: dict[str, str | None], what: str
    ) -> tuple[dict[str, str], dict[str, str], list[tuple[str, apb.ConfigureRequest]]] | None:
        """One SQL transaction; (options before, after, configurations to push) when
        the bricks must hear of it, else None."""
        for _ in range(5):
            try:
                return self._store_options_once(name, changes, what)
            except _Moved:
                continue  # a membership change won the race: read it again
        raise GfsError("busy", "epoch_changed", f"volume {name} keeps changing; try again")

    def _store_options_once(
        self, name: str, changes: dict[str, str | None], what: str
    ) -> tuple[dict[str, str], dict[str, str], list[tuple[str, apb.ConfigureRequest]]] | None:
        with self.db.session() as s:
            v = self._volume(s, name)
            rows = {o.key: o for o in v.options}
            before = {k: o.value for k, o in rows.items()}
            for k, val in changes.items():
                if val is None:
                    if k in rows:
                        v.options.remove(rows[k])
                elif k in rows:
                    rows[k].value = val
                else:
                    v.options.append(VolumeOption(key=k, value=val))
            after = {k: val for k, val in {**before, **changes}.items() if val is not None}
            v.version += 1
            message = ", ".join(
                f"{k}={val}" if val is not None else f"{k} reset" for k, val in changes.items()
            )
            s.add(Event(kind=what, volume=name, message=message))
            default = {k: o.default for k, o in vopts.OPTIONS.items()}
            live = v.state == "started" and any(
                {**default, **before}.get(k) != {**default, **after}.get(k)
                for k in vopts.BRICK_OPTIONS
            )
            if not live:
                return None
            for rs in v.replica_sets:
                hit = s.execute(
                    update(ReplicaSet)
                    .where(ReplicaSet.id == rs.id, ReplicaSet.epoch == rs.epoch)
                    .values(epoch=rs.epoch + 1)
                    .execution_options(synchronize_session=False)
                )
                if hit.rowcount != 1:  # type: ignore[attr-defined]
                    raise _Moved  # rolls the whole SQL transaction back
                rs.epoch += 1
            configs = [c for rs in v.replica_sets for c in self._configs(v, rs)]
            log.info("options volume=%s %s: pushing to %d bricks", name, message, len(configs))
            return before, after, configs

    def _push_options(
        self,
        configs: list[tuple[str, apb.ConfigureRequest]],
        before: dict[str, str],
        after: dict[str, str],
    ) -> set[str]:
        """Push set by set. A longer failure timeout goes to the members before the
        primary, a shorter one to the primary first: the primary never counts on a
        read lease longer than the one its members grant."""
        longer = failure_timeout(after) > failure_timeout(before)
        took: set[str] = set()
        by_set: dict[int, list[tuple[str, apb.ConfigureRequest]]] = {}
        for c in configs:
            by_set.setdefault(c[1].set_index, []).append(c)
        for group in by_set.values():
            took |= self.push(group, primary_first=not longer, superseded_ok=True)
        return took

    def _names(self, rs: ReplicaSet) -> dict[str, Brick]:
        return {b.name: b for b in rs.bricks}

    def _require_primary(self, rs: ReplicaSet, reporter: str) -> None:
        primary = next((b for b in rs.bricks if b.id == rs.primary_brick_id), None)
        if primary is None or primary.name != reporter:
            raise GfsError("busy", "not_primary", f"{reporter} is not the primary of this set")

    def shrink(self, name: str, index: int, body: m.ReplicaShrink) -> m.ReplicaSet:
        def change(v: Volume, rs: ReplicaSet) -> str:
            self._require_primary(rs, body.reporter)
            names = self._names(rs)
            for b in body.bricks:
                if b not in names or b == body.reporter:
                    raise GfsError("invalid", "bad_member", f"{b} is not a secondary of this set")
                names[b].in_sync = False
            return f"members {','.join(body.bricks)} left in_sync (reported by {body.reporter})"

        return self._change(name, index, body.epoch, "replica_shrunk", change)

    def rejoin(self, name: str, index: int, body: m.ReplicaRejoin) -> m.ReplicaSet:
        def change(v: Volume, rs: ReplicaSet) -> str:
            self._require_primary(rs, body.reporter)
            b = self._names(rs).get(body.brick)
            if b is None:
                raise GfsError("invalid", "bad_member", f"{body.brick} is not in this set")
            b.in_sync = True
            return f"member {body.brick} healed and back in_sync"

        return self._change(name, index, body.epoch, "member_rejoined", change)

    def reconcile(self, name: str, index: int, body: m.ReplicaReconcile) -> m.ReplicaSet:
        with self.db.session() as s:
            v, rs = self._load(s, name, index)
            if v.state != "started":
                raise GfsError("busy", "volume_not_started", f"volume {name} is not started")
            if rs.epoch != body.epoch:
                return set_wire(rs)  # the caller is behind: the current layout is the answer
            primary = next((b for b in rs.bricks if b.id == rs.primary_brick_id), None)
            candidates = [
                (b.id, b.peer.address, b.name) for b in rs.bricks if b.in_sync and b is not primary
            ]
            primary_address = primary.peer.address if primary else ""
            configs = self._configs(v, rs)
        # A daemon that answers but no longer serves the primary's brick counts as a
        # failed primary, like one that does not answer.
        served = _served(primary_address) if primary is not None else None
        if primary is not None and served is not None and primary.name in served:
            self.push(configs)  # confirm: a restarted brick waits for this
            with self.db.session() as s:
                return set_wire(self._load(s, name, index)[1])
        new = next((bid for bid, addr, b in candidates if _serves(addr, b)), None)
        if new is None:
            raise GfsError(
                "unavailable", "no_primary", f"volume {name} set {index}: no in-sync member answers"
            )

        def change(v: Volume, rs: ReplicaSet) -> str:
            old = next((b for b in rs.bricks if b.id == rs.primary_brick_id), None)
            if old is not None:
                old.in_sync = False
            rs.primary_brick_id = new
            nb = next(b for b in rs.bricks if b.id == new)
            return f"primary {old.name if old else '?'} failed; {nb.name} promoted"

        # A refused connection means no process serves there (a restarted one serves
        # nothing until confirmed), and a daemon that does not serve the brick has
        # dropped its replication state with it (served again, it waits for gfsd's
        # configuration): either way members need not wait out its read lease.
        gone = primary is not None and (served is not None or _refused(primary_address))
        return self._change(name, index, body.epoch, "primary_changed", change, gone)

    def replace(self, name: str, brick_id: str, new: dict[str, Any], undo: bool = False) -> None:
        """Point brick row `brick_id` at `new` (peer, root, path, name), out of in_sync,
        epoch + 1; a primary being replaced hands over to an in-sync member first."""
        with self.db.session() as s:
            v = self._volume(s, name)
            rs, b = next(
                ((rs, b) for rs in v.replica_sets for b in rs.bricks if b.id == brick_id),
                (None, None),
            )
            if rs is None or b is None:
                raise GfsError("not_found", "brick_not_found", f"no brick {brick_id}")
            if b.name == new["name"]:
                return  # already done (a resumed transaction)
            b.peer_id, b.root, b.path, b.name = (
                new["peer_id"],
                new["root"],
                new["path"],
                new["name"],
            )
            b.in_sync = undo
            if rs.primary_brick_id == b.id and not undo:
                other = next((x for x in rs.bricks if x.in_sync and x is not b), None)
                if other is None:
                    raise GfsError(
                        "busy", "no_primary", f"no in-sync member can take over from {b.name}"
                    )
                rs.primary_brick_id = other.id
            rs.epoch += 1
            s.add(
                Event(
                    kind="brick_replaced",
                    volume=name,
                    message=f"brick {brick_id} is now {new['name']} at {new['path']}",
                    payload={"epoch": rs.epoch},
                )
            )

    def served(self, addresses: set[str]) -> dict[str, set[str] | None]:
        """What each daemon serves (None: it does not answer), asked in parallel."""
        order = list(addresses)
        return dict(zip(order, self._pool.map(_served, order), strict=True))

    def heal_info(self, name: str) -> m.HealInfo:
        with self.db.session() as s:
            v = self._volume(s, name)
            addresses = {b.peer.address for rs in v.replica_sets for b in rs.bricks}
        # `online`: the brick is served, not just its daemon answering.
        served = self.served(addresses)
        with self.db.session() as s:
            v = self._volume(s, name)
            opts = {o.key: o.value for o in v.options}
            sets = []
            primaries: list[tuple[str, str]] = []
            for rs in v.replica_sets:
                members = [
                    m.HealMember(
                        brick=b.name,
                        address=b.peer.address,
                        path=b.path,
                        state="in_sync" if b.in_sync else "out",
                        primary=b.id == rs.primary_brick_id,
                        online=b.name in (served.get(b.peer.address) or ()),
                    )
                    for b in rs.bricks
                ]
                primary = next((x for x in members if x.primary), None)
                primaries.append((primary.address, primary.brick) if primary else ("", ""))
                sets.append(
                    m.HealSet(
                        index=rs.index,
                        epoch=rs.epoch,
                        primary=primary.brick if primary else None,
                        in_sync=sum(b.in_sync for b in rs.bricks),
                        min_in_sync=min_in_sync(v.replica_count, opts),
                        members=members,
                    )
                )
        for hs, st in zip(sets, self._pool.map(lambda p: _heal_status(*p), primaries), strict=True):
            if st is not None:
                hs.running, hs.files, hs.bytes, hs.seconds = (
                    st.running,
                    st.files,
                    st.bytes,
                    st.seconds,
                )
        return m.HealInfo(volume=name, sets=sets)

    def heal_start(self, name: str, full: bool) -> m.HealInfo:
        """Ask each set's primary to heal now (`full`: crawl the in-sync members too).
        A brick whose daemon answers but does not serve it (stopped behind gfsd's back)
        is served again first: the store says it belongs there, and heal can fill it."""
        with self.db.session() as s:
            v = self._volume(s, name)
            if v.state != "started":
                raise GfsError("busy", "volume_not_started", f"volume {name} is not started")
            bricks = [
                (b.peer.address, b.name, b.path, v.size_bytes or 0)
                for rs in v.replica_sets
                for b in rs.bricks
            ]
        self._serve_missing(name, bricks)
        with self.db.session() as s:
            v = self._volume(s, name)
            targets = [
                (b.peer.address, b.name)
                for rs in v.replica_sets
                for b in rs.bricks
                if b.id == rs.primary_brick_id
            ]
        for address, brick in targets:
            try:
                with BrickdAdmin(address, timeout=PROBE_TIMEOUT * 2) as a:
                    a.heal(brick, full)
            except PeerError as e:
                raise GfsError("unavailable", "heal_failed", f"heal on {brick}: {e}") from e
        return self.heal_info(name)

    def _serve_missing(self, name: str, bricks: list[tuple[str, str, str, int]]) -> None:
        served = self.served({address for address, *_ in bricks})
        again = []
        for address, brick, path, quota in bricks:
            have = served[address]
            if have is None or brick in have:
                continue  # served, or its daemon is away: nothing to do from here
            try:
                with BrickdAdmin(address) as a:
                    a.serve(brick, path, quota)
            except PeerError as e:
                raise GfsError(
                    "unavailable",
                    "brick_not_served",
                    f"brick {brick} is not served by {address} and cannot be served again"
                    f" ({e}); replace it: gfs volume replace-brick {name} {brick} HOST:/PATH",
                ) from e
            log.warning("brick served again volume=%s brick=%s address=%s", name, brick, address)
            again.append(brick)
        if again:
            with self.db.session() as s:
                s.add(
                    Event(
                        kind="brick_served_again",
                        volume=name,
                        message=f"bricks {','.join(again)} were not served; served again",
                    )
                )
            self.configure_volume(name, again)


def _served(address: str) -> set[str] | None:
    """The brick names the daemon at `address` serves; None when it does not answer."""
    try:
        with BrickdAdmin(address, timeout=PROBE_TIMEOUT) as a:
            return {b.name for b in a.info().bricks}
    except PeerError:
        return None


def _serves(address: str, brick: str) -> bool:
    return brick in (_served(address) or ())


class _Moved(Exception):
    pass


def _in_sync(req: apb.ConfigureRequest, brick: str) -> bool:
    return any(mb.brick == brick and mb.state == "in_sync" for mb in req.members)


def _heal_status(address: str, brick: str) -> apb.HealStatusReply | None:
    if not address:
        return None
    try:
        with BrickdAdmin(address, timeout=PROBE_TIMEOUT) as a:
            return a.heal_status(brick)
    except PeerError:
        return None


def _refused(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


def _rules(value: str) -> list[str]:
    """An auth.* option's entries as the bricks take them; `*` alone is no allow list."""
    rules = [r for r in value.split(",") if r]
    return [] if "*" in rules else rules
