"""Peers and volumes: what the REST handlers call. Anything that touches more than
the database runs as a transaction of do/undo steps (gfs_mgmt.txn)."""

from __future__ import annotations

import errno
import logging
import posixpath
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from gfs.api import models as m
from gfs.errors import GfsError
from gfs.rpc.channel import parse_address
from gfs_mgmt.peer.brickd import BrickdAdmin, PeerError, is_unreachable
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import (
    Brick,
    BrickRoot,
    Event,
    Peer,
    ReplicaSet,
    Volume,
    VolumeOption,
    Webhook,
    new_id,
    now,
)
from gfs_mgmt.txn.engine import Engine, Registry, Result, Step
from gfs_mgmt.volume import options as vopts
from gfs_mgmt.volume import sessions
from gfs_mgmt.volume.credentials import Credentials
from gfs_mgmt.volume.placement import Candidate, PlacementError, place
from gfs_mgmt.volume.replication import Membership, set_wire

log = logging.getLogger(__name__)

#: The port gfs-brickd listens on by convention (GlusterFS's; docs/deploy.md).
BRICKD_PORT = 24007


def _peer_error(e: PeerError) -> GfsError:
    if e.answered and e.errno == errno.EEXIST:  # the daemon's own in-use check
        return GfsError("already_exists", "brick_in_use", str(e))
    if e.answered and e.errno == errno.EPERM:  # the folder is not gfsd's to remove
        return GfsError("busy", "not_owner", str(e))
    kind = "unavailable" if is_unreachable(e) else "invalid"
    return GfsError(kind, "peer_error", str(e))


class Manager:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = Registry()
        self.registry.register("provision", self._provision, self._unprovision)
        self.registry.register("serve", self._serve, self._serve_undo)
        self.registry.register("unserve", self._unserve, self._unserve_undo)
        self.registry.register("remove", self._remove, self._noop)
        self.registry.register("db_volume", self._db_volume, self._db_volume_undo)
        self.registry.register("db_state", self._db_state, self._db_state_undo)
        self.registry.register("db_delete", self._db_delete, self._noop)
        self.registry.register("configure", self._configure, self._noop)
        self.registry.register("db_replace", self._db_replace, self._db_replace_undo)
        self.registry.register("unserve_quiet", self._unserve_quiet, self._noop)
        self.registry.register("options", self._options, self._options_undo)
        self.credentials = Credentials(db, self.registry)
        self.engine = Engine(db, self.registry, self)
        self.credentials.engine = self.engine
        self.membership = Membership(db)

    # -- peers -------------------------------------------------------------------------------

    def peer_add(self, address: str) -> m.Peer:
        try:
            parse_address(address)
        except ValueError as e:
            raise GfsError("invalid", "bad_address", str(e)) from e
        try:
            with BrickdAdmin(address) as admin:
                info = admin.info()
        except PeerError as e:
            raise _peer_error(e) from e
        with self.db.session() as s:
            if self.db.dialect == "postgresql":
                # Names are chosen from the other peers': one peer_add at a time.
                s.execute(text("LOCK TABLE peers IN SHARE ROW EXCLUSIVE MODE"))
            if s.scalar(select(Peer).where(Peer.node_id == info.node_id)) is not None:
                raise GfsError("already_exists", "peer_exists", f"peer {address} is already added")
            name = self._peer_name(s, info.hostname, address)
            peer = Peer(
                node_id=info.node_id,
                name=name,
                address=address,
                zone=info.zone,
                online=True,
                last_seen=now(),
            )
            peer.roots = [
                BrickRoot(
                    path=r.path,
                    total_bytes=r.total_bytes,
                    free_bytes=r.free_bytes,
                    used_bytes=r.used_bytes,
                )
                for r in info.roots
            ]
            s.add(peer)
            try:
                s.flush()
            except IntegrityError as e:
                raise GfsError("already_exists", "peer_exists", f"peer {address} exists") from e
            self._event(s, "peer_added", None, f"peer {name} ({address}) added")
            return _peer_wire(peer)

    def _peer_name(self, s: Session, hostname: str, address: str) -> str:
        """Like GlusterD2, a peer is named by its hostname when its daemon listens on
        the standard port; any other daemon on that host is HOSTNAME:PORT. The name
        depends only on the peer (never renamed later); a hostname that two hosts share
        falls back to the address, the one thing that is unique."""
        port = address.rpartition(":")[2]
        name = hostname if port == str(BRICKD_PORT) else f"{hostname}:{port}"
        if not hostname or s.scalar(select(Peer.id).where(Peer.name == name)) is not None:
            return address
        return name

    def peers(self) -> list[m.Peer]:
        with self.db.session() as s:
            rows = s.scalars(select(Peer).options(selectinload(Peer.roots)).order_by(Peer.name))
            return [_peer_wire(p) for p in rows]

    def _find_peer(self, s: Session, ref: str) -> Peer:
        peer = s.scalar(
            select(Peer)
            .options(selectinload(Peer.roots))
            .where((Peer.id == ref) | (Peer.name == ref) | (Peer.address == ref))
        )
        if peer is None:
            raise GfsError("not_found", "peer_not_found", f"no peer {ref!r}")
        return peer

    def peer(self, ref: str) -> m.Peer:
        with self.db.session() as s:
            return _peer_wire(self._find_peer(s, ref))

    def peer_remove(self, ref: str) -> None:
        with self.db.session() as s:
            peer = self._find_peer(s, ref)
            held = s.scalar(select(func.count()).where(Brick.peer_id == peer.id))
            if held:
                raise GfsError(
                    "busy",
                    "peer_has_bricks",
                    f"peer {peer.name} holds {held} brick(s); delete those volumes first",
                )
            s.delete(peer)
            self._event(s, "peer_removed", None, f"peer {peer.name} removed")

    # -- volumes -----------------------------------------------------------------------------

    def volume_create(self, spec: m.VolumeCreate) -> m.Volume:
        spec = spec.model_copy(update={"options": self._create_options(spec)})
        with self.db.session() as s:
            if s.scalar(select(Volume).where(Volume.name == spec.name)) is not None:
                raise GfsError("already_exists", "volume_exists", f"volume {spec.name} exists")
            # Made up front: the brick daemons mark the folders they provision with it.
            volume_id = new_id()
            layout = self._layout(s, spec, volume_id)
        steps = [Step("provision", b) for b in layout]
        steps.append(
            Step(
                "db_volume",
                {"spec": spec.model_dump(mode="json"), "bricks": layout, "volume_id": volume_id},
            )
        )
        try:
            self.engine.run("volume_create", spec.name, steps)
        except PeerError as e:
            raise _peer_error(e) from e
        except IntegrityError as e:
            raise GfsError("already_exists", "volume_exists", f"volume {spec.name} exists") from e
        return self.volume(spec.name)

    def _create_options(self, spec: m.VolumeCreate) -> dict[str, str]:
        merged: dict[str, str] = {}
        if spec.template is not None:
            if spec.template not in vopts.TEMPLATES:
                raise GfsError("not_found", "template_not_found", f"no template {spec.template!r}")
            merged.update(vopts.TEMPLATES[spec.template][1])
        merged.update(spec.options)
        return {k: vopts.check(k, v) for k, v in merged.items()}

    # -- options, templates, expand, events ----------------------------------------------

    def options_table(self) -> list[m.OptionInfo]:
        return [
            m.OptionInfo(
                name=o.name,
                type=o.kind,
                default=o.default,
                accepted=o.describe(),
                help=o.help,
                applies=o.applies,
            )
            for o in vopts.OPTIONS.values()
        ]

    def volume_options(self, name: str) -> dict[str, str]:
        with self.db.session() as s:
            v = self._volume_row(s, name)
            values = {k: o.default for k, o in vopts.OPTIONS.items()}
            values.update({o.key: o.value for o in v.options})
            return values

    def volume_set(self, name: str, options: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str | None] = {k: vopts.check(k, v) for k, v in options.items()}
        return self._set_options("volume_set", name, checked, "volume_options_set")

    def volume_reset(self, name: str, key: str) -> dict[str, str]:
        vopts.get(key)
        return self._set_options("volume_reset", name, {key: None}, "volume_option_reset")

    def _set_options(
        self, kind: str, name: str, changes: dict[str, str | None], what: str
    ) -> dict[str, str]:
        """Under the volume's transaction lock (a start or stop cannot interleave): store,
        and push what the bricks enforce (docs/options.md, "When options apply")."""
        self.volume_options(name)  # not_found before a transaction is recorded
        params = {"volume": name, "changes": changes, "what": what}
        self._run(kind, name, [Step("options", params)])
        return self.volume_options(name)

    def templates(self) -> list[m.Template]:
        return [
            m.Template(name=n, description=d, options=o) for n, (d, o) in vopts.TEMPLATES.items()
        ]

    def template(self, name: str) -> m.Template:
        if name not in vopts.TEMPLATES:
            raise GfsError("not_found", "template_not_found", f"no template {name!r}")
        d, o = vopts.TEMPLATES[name]
        return m.Template(name=name, description=d, options=o)

    def volume_expand(self, name: str, size_text: int | str) -> m.Volume:
        size = m.parse_size(size_text)
        with self.db.session() as s:
            v = self._volume_row(s, name)
            old = v.size_bytes
            if old is None:
                raise GfsError(
                    "invalid",
                    "not_size_based",
                    f"volume {name} was made from explicit bricks; it has no size",
                )
            if size <= old:
                raise GfsError(
                    "invalid", "not_larger", f"new size {size} is not larger than the current {old}"
                )
            for rs in v.replica_sets:
                for b in rs.bricks:
                    root = s.scalar(
                        select(BrickRoot).where(
                            BrickRoot.peer_id == b.peer_id, BrickRoot.path == b.root
                        )
                    )
                    if root is not None and root.free_bytes < size - old:
                        raise GfsError(
                            "no_space",
                            "expand_no_space",
                            f"brick {b.name}: {root.path} has {root.free_bytes} bytes"
                            f" free, {size - old} more needed",
                        )
            v.size_bytes = size
            v.version += 1
            self._event(s, "volume_expanded", name, f"size {old} -> {size}")
        state, served = self._bricks(name)
        if state == "started":  # serving bricks take the new limit at once
            try:
                for params in served:
                    self._serve(None, params)
            except PeerError as e:
                raise _peer_error(e) from e
        return self.volume(name)

    def events(self, volume: str | None, limit: int) -> list[m.EventOut]:
        with self.db.session() as s:
            q = select(Event).order_by(Event.id.desc()).limit(limit)
            if volume is not None:
                q = q.where(Event.volume == volume)
            return [
                m.EventOut(id=e.id, ts=e.ts, kind=e.kind, volume=e.volume, message=e.message)
                for e in s.scalars(q)
            ]

    def webhook_add(self, url: str) -> m.WebhookOut:
        with self.db.session() as s:
            if s.scalar(select(Webhook).where(Webhook.url == url)) is not None:
                raise GfsError("already_exists", "webhook_exists", f"webhook {url} exists")
            # A new hook receives events from now on, not the whole history.
            last = s.scalar(select(func.max(Event.id))) or 0
            h = Webhook(url=url, last_event=last)
            s.add(h)
            s.flush()
            return m.WebhookOut(id=h.id, url=h.url, created=h.created)

    def webhooks(self) -> list[m.WebhookOut]:
        with self.db.session() as s:
            return [
                m.WebhookOut(id=h.id, url=h.url, created=h.created)
                for h in s.scalars(select(Webhook).order_by(Webhook.created))
            ]

    def webhook_remove(self, hook_id: str) -> None:
        with self.db.session() as s:
            h = s.get(Webhook, hook_id)
            if h is None:
                raise GfsError("not_found", "webhook_not_found", f"no webhook {hook_id!r}")
            s.delete(h)

    def _check_free(self, s: Session, wanted: list[tuple[Peer, str]]) -> None:
        """gluster's "is already part of a volume": refuse a path that is, contains or
        lies inside a brick of any volume on the same peer, or another path asked for
        in the same request. Paths are normalized; the brick daemon checks again from
        what it serves and the markers on disk (either side can be stale)."""
        peer_ids = {p.id for p, _ in wanted}
        taken = [
            (pid, PurePosixPath(path), f"brick {bname} of volume {vname}")
            for pid, path, bname, vname in s.execute(
                select(Brick.peer_id, Brick.path, Brick.name, Volume.name)
                .join(Volume, Volume.id == Brick.volume_id)
                .where(Brick.peer_id.in_(peer_ids))
            )
        ]
        for peer, want in wanted:
            me = PurePosixPath(want)
            for pid, other, what in taken:
                if pid == peer.id and (me == other or other in me.parents or me in other.parents):
                    how = "is" if me == other else "contains" if me in other.parents else "lies in"
                    raise GfsError(
                        "already_exists",
                        "brick_in_use",
                        f"{peer.name}:{me} is already part of a volume: it {how} {what} ({other})",
                    )
            taken.append((peer.id, me, "another brick of this request"))

    def _layout(self, s: Session, spec: m.VolumeCreate, volume_id: str) -> list[dict[str, Any]]:
        peers = s.scalars(select(Peer).options(selectinload(Peer.roots))).all()
        by_id = {p.id: p for p in peers}
        if spec.bricks is not None:
            if spec.size is not None:
                raise GfsError("invalid", "bricks_and_size", "give either bricks or size")
            if not spec.bricks or len(spec.bricks) % spec.replica:
                raise GfsError(
                    "invalid",
                    "brick_count",
                    f"{len(spec.bricks)} bricks is not a multiple of replica {spec.replica}",
                )
            one_replica_set(spec.name, len(spec.bricks) // spec.replica, spec.replica)
            chosen = [self._explicit(peers, text) for text in spec.bricks]
        else:
            if spec.size is None:
                raise GfsError("invalid", "size_missing", "give a size (smart create) or bricks")
            size = m.parse_size(spec.size)
            reserved: dict[tuple[str, str], int] = {
                (peer_id, root): int(total or 0)
                for peer_id, root, total in s.execute(
                    select(Brick.peer_id, Brick.root, func.sum(Volume.size_bytes))
                    .join(Volume, Volume.id == Brick.volume_id)
                    .group_by(Brick.peer_id, Brick.root)
                )
            }
            cands = [
                Candidate(
                    p.id, p.name, p.zone, r.path, r.free_bytes - reserved.get((p.id, r.path), 0)
                )
                for p in peers
                for r in p.roots
            ]
            try:
                picks = place(cands, spec.replica, size, spec.zones)
            except PlacementError as e:
                raise GfsError("no_space", "placement_failed", str(e)) from e
            chosen = [(by_id[pk.peer_id], pk.root, "") for pk in picks]
        out: list[dict[str, Any]] = []
        for i, (peer, root, given) in enumerate(chosen):
            rs, pos = divmod(i, spec.replica)
            name = f"{spec.name}-r{rs}-b{pos}"
            # A fresh folder per volume: the folders of a deleted volume of the same
            # name (kept with their data) are never reused.
            folder = given or f"{name}-{volume_id[:8]}"
            out.append(
                {
                    "peer_id": peer.id,
                    "address": peer.address,
                    "root": root,
                    "name": name,
                    "folder": folder,
                    "path": f"{root.rstrip('/')}/{folder}",
                    "set": rs,
                    "pos": pos,
                    "volume_id": volume_id,
                    "volume": spec.name,
                }
            )
        self._check_free(s, [(by_id[b["peer_id"]], b["path"]) for b in out])
        if len({(b["peer_id"]) for b in out[: spec.replica]}) < min(spec.replica, len(out)):
            raise GfsError(
                "invalid",
                "replicas_share_peer",
                "bricks of one replica set must be on distinct peers",
            )
        return out

    def _explicit(self, peers: Sequence[Peer], text: str) -> tuple[Peer, str, str]:
        ref, sep, path = text.partition(":/")
        if not sep or not ref:
            raise GfsError("invalid", "bad_brick", f"brick {text!r}: expected HOST:/PATH")
        p = _brick_peer(peers, ref, text)
        root, _, folder = posixpath.normpath("/" + path).rstrip("/").rpartition("/")
        root = root or "/"
        if root not in {r.path for r in p.roots}:
            raise GfsError(
                "invalid",
                "brick_outside_roots",
                f"brick {text!r}: {root} is not a brick root of {p.name}",
            )
        # Checked here, before any transaction: the brick daemon would refuse it anyway.
        problem = m.brick_folder_error(folder)
        if problem is not None:
            raise GfsError("invalid", "bad_brick", f"brick {text!r}: {problem}")
        return p, root, folder

    def _volume_row(self, s: Session, name: str) -> Volume:
        v = s.scalar(
            select(Volume)
            .options(
                selectinload(Volume.replica_sets)
                .selectinload(ReplicaSet.bricks)
                .selectinload(Brick.peer),
                selectinload(Volume.options),
            )
            .where(Volume.name == name)
        )
        if v is None:
            raise GfsError("not_found", "volume_not_found", f"no volume {name!r}")
        return v

    def volume(self, name: str) -> m.Volume:
        with self.db.session() as s:
            return _volume_wire(self._volume_row(s, name))

    def volumes(self) -> list[m.Volume]:
        with self.db.session() as s:
            rows = s.scalars(
                select(Volume)
                .options(
                    selectinload(Volume.replica_sets)
                    .selectinload(ReplicaSet.bricks)
                    .selectinload(Brick.peer),
                    selectinload(Volume.options),
                )
                .order_by(Volume.name)
            )
            return [_volume_wire(v) for v in rows]

    def _bricks(self, name: str) -> tuple[str, list[dict[str, Any]]]:
        with self.db.session() as s:
            v = self._volume_row(s, name)
            bricks = [
                {
                    "address": b.peer.address,
                    "name": b.name,
                    "path": b.path,
                    "root": b.root,
                    "folder": b.path.rpartition("/")[2],
                    "quota": v.size_bytes or 0,
                    "volume_id": v.id,
                }
                for rs in v.replica_sets
                for b in rs.bricks
            ]
            return v.state, bricks

    def volume_start(self, name: str) -> m.Volume:
        with self.db.session() as s:
            v = self._volume_row(s, name)
            one_replica_set(name, len(v.replica_sets), v.replica_count)  # stored by older gfsd
        state, bricks = self._bricks(name)
        if state == "started":
            raise GfsError("busy", "volume_started", f"volume {name} is already started")
        steps = [Step("serve", b) for b in bricks]
        steps.append(Step("configure", {"volume": name}))
        steps.append(Step("db_state", {"volume": name, "state": "started", "was": state}))
        self._run("volume_start", name, steps)
        return self.volume(name)

    def volume_clients(self, name: str) -> list[m.ClientInfo]:
        """The mounts of a volume, as its brick daemons know them."""
        _, bricks = self._bricks(name)
        return sessions.clients([(b["address"], b["name"]) for b in bricks])

    def volume_stop(self, name: str, force: bool = False) -> m.Volume:
        """Refused while mounted unless `force`; the mounts then answer ESHUTDOWN."""
        state, bricks = self._bricks(name)
        if state != "started":
            raise GfsError("busy", "volume_not_started", f"volume {name} is not started")
        if not force:
            sessions.refuse_if_mounted(name, "stop", self.volume_clients(name))
        # Primaries first: a primary that still serves would find its members gone
        # and drop them from in_sync, costing a heal at the next start.
        primaries = {
            b.name for rs in self.volume(name).replica_sets for b in rs.bricks if b.id == rs.primary
        }
        bricks.sort(key=lambda b: b["name"] not in primaries)
        steps = [Step("unserve", {**b, "stopped": True}) for b in bricks]
        steps.append(Step("db_state", {"volume": name, "state": "stopped", "was": state}))
        self._run("volume_stop", name, steps)
        return self.volume(name)

    def volume_delete(self, name: str, delete_data: bool, force: bool = False) -> None:
        """Refused while mounted (a stopped volume's mounts stay until unmounted) unless
        `force`."""
        state, bricks = self._bricks(name)
        if state == "started":
            raise GfsError("busy", "volume_started", f"stop volume {name} before deleting it")
        if not force:
            sessions.refuse_if_mounted(name, "delete", self.volume_clients(name))
        # A first pass that deletes nothing: every daemon must answer and prove the
        # folder is this volume's (its marker) before any data goes.
        steps = [Step("remove", {**b, "delete_data": False}) for b in bricks]
        if delete_data:
            steps += [Step("remove", {**b, "delete_data": True}) for b in bricks]
        steps.append(Step("db_delete", {"volume": name}))
        self._run("volume_delete", name, steps)

    def volume_replace_brick(self, name: str, old: str, new: str) -> m.Volume:
        """Put a new, empty brick in the place of `old` (a brick name or HOST:/PATH); the
        primary's heal worker fills it and gfsd puts it back into in_sync."""
        with self.db.session() as s:
            v = self._volume_row(s, name)
            if v.state != "started":
                raise GfsError("busy", "volume_not_started", f"start volume {name} first")
            peers = s.scalars(select(Peer).options(selectinload(Peer.roots))).all()
            ob = next(
                (
                    b
                    for rs in v.replica_sets
                    for b in rs.bricks
                    if old in (b.name, f"{b.peer.address}:{b.path}", f"{b.peer.name}:{b.path}")
                ),
                None,
            )
            if ob is None:
                raise GfsError("not_found", "brick_not_found", f"volume {name} has no brick {old}")
            peer, root, folder = self._explicit(peers, new)
            rs = ob.replica_set
            if any(b.peer_id == peer.id for b in rs.bricks if b is not ob):
                raise GfsError(
                    "invalid",
                    "replicas_share_peer",
                    "bricks of one replica set must be on distinct peers",
                )
            path = f"{root.rstrip('/')}/{folder}"
            self._check_free(s, [(peer, path)])
            quota = v.size_bytes or 0
            nb = {
                "peer_id": peer.id,
                "address": peer.address,
                "root": root,
                "folder": folder,
                "path": path,
                "name": f"{name}-r{rs.index}-b{ob.position}-{new_id()[:8]}",
                "quota": quota,
                "volume_id": v.id,
                "volume": name,
            }
            ob_ = {
                "peer_id": ob.peer_id,
                "address": ob.peer.address,
                "root": ob.root,
                "folder": ob.path.rpartition("/")[2],
                "path": ob.path,
                "name": ob.name,
                "quota": quota,
            }
            bid = ob.id
        steps = [
            Step("provision", nb),
            Step("serve", nb),
            Step("db_replace", {"volume": name, "brick": bid, "new": nb, "old": ob_}),
            Step("configure", {"volume": name, "required": [nb["name"]]}),
            Step("unserve_quiet", ob_),
        ]
        self._run("volume_replace_brick", name, steps)
        return self.volume(name)

    def volume_status(self, name: str) -> m.VolumeStatus:
        state, bricks = self._bricks(name)
        out = []
        for b in bricks:
            st = m.BrickStatus(
                name=b["name"],
                peer_name=b["address"],
                address=b["address"],
                path=b["path"],
                online=False,
            )
            try:
                with BrickdAdmin(b["address"], timeout=3) as admin:
                    info = admin.info()
                st.peer_name = info.hostname
                st.online = b["name"] in {x.name for x in info.bricks}
                for r in info.roots:
                    if r.path == b["root"]:
                        st.total_bytes, st.free_bytes = r.total_bytes, r.free_bytes
                        st.used_bytes = r.used_bytes
            except PeerError:
                pass
            out.append(st)
        return m.VolumeStatus(name=name, state=state, bricks=out)

    def _run(self, kind: str, volume: str, steps: list[Step]) -> str:
        try:
            return self.engine.run(kind, volume, steps)
        except PeerError as e:
            raise _peer_error(e) from e

    # -- steps -------------------------------------------------------------------------------

    def _provision(self, _: Any, p: dict[str, Any]) -> Result:
        with BrickdAdmin(p["address"]) as a:
            r = a.provision(p["root"], p["folder"], p["volume_id"], p["volume"], p["name"])
        return {"path": r.path, "created": r.created}

    def _unprovision(self, _: Any, p: dict[str, Any], result: Result) -> None:
        """With a result: remove what the Provision made (the folder it created, or
        the contents of the empty folder it took). Without: only a folder holding
        nothing but this brick's marker (a refused Provision made nothing)."""
        if m.brick_folder_error(p["folder"]) is not None:
            return  # refused by the brick, so never made (transactions of older gfsd)
        with BrickdAdmin(p["address"]) as a:
            kept = a.remove(
                p["root"],
                p["folder"],
                p.get("volume_id", ""),
                p["name"],
                delete_data=True,
                only_if_untouched=result is None,
            )
        if kept:
            log.info("unprovision brick=%s %s", p["name"], kept)

    def _serve(self, _: Any, p: dict[str, Any]) -> Result:
        with BrickdAdmin(p["address"]) as a:
            a.serve(p["name"], p["path"], p.get("quota", 0))
        return {}

    def _serve_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        with BrickdAdmin(p["address"]) as a:
            if result is None:  # maybe refused: stop only a brick served as asked
                served = {(b.name, b.path) for b in a.info().bricks}
                if (p["name"], p["path"]) not in served:
                    return
            a.unserve(p["name"])

    def _unserve(self, _: Any, p: dict[str, Any]) -> Result:
        with BrickdAdmin(p["address"]) as a:
            a.unserve(p["name"], p.get("stopped", False))
        return {}

    def _unserve_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        self._serve(None, p)  # serving again what was served destroys nothing

    def _remove(self, _: Any, p: dict[str, Any]) -> Result:
        with BrickdAdmin(p["address"]) as a:
            a.remove(p["root"], p["folder"], p.get("volume_id", ""), p["name"], p["delete_data"])
        return {}

    def _configure(self, _: Any, p: dict[str, Any]) -> Result:
        self.membership.configure_volume(p["volume"], p.get("required"))
        return None

    def _options(self, _: Any, p: dict[str, Any]) -> Result:
        self.membership.set_options(p["volume"], p["changes"], p["what"])
        return {}

    def _options_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        # set_options restores the old values itself when a brick refuses; what is left
        # (a gfsd that died between storing and pushing) is bricks behind the store.
        with self.db.session() as s:
            v = s.scalar(select(Volume).where(Volume.name == p["volume"]))
            started = v is not None and v.state == "started"
        if started:
            try:
                self.membership.configure_volume(p["volume"], required=[])
            except GfsError as e:
                log.warning("options push after undo incomplete volume=%s: %s", p["volume"], e)

    def _unserve_quiet(self, _: Any, p: dict[str, Any]) -> Result:
        try:
            self._unserve(None, p)
        except PeerError as e:  # a dead brick being replaced: nothing to stop
            log.info("unserve skipped brick=%s error=%s", p["name"], e)
        return None

    def _db_replace(self, _: Any, p: dict[str, Any]) -> Result:
        self.membership.replace(p["volume"], p["brick"], p["new"])
        return None

    def _db_replace_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        self.membership.replace(p["volume"], p["brick"], p["old"], undo=True)

    def _noop(self, _: Any, p: dict[str, Any], result: Result = None) -> None:
        pass

    def _db_volume(self, _: Any, p: dict[str, Any]) -> Result:
        spec = m.VolumeCreate.model_validate(p["spec"])
        size = m.parse_size(spec.size) if spec.size is not None else None
        with self.db.session() as s:
            v = Volume(
                id=p["volume_id"],
                name=spec.name,
                replica_count=spec.replica,
                size_bytes=size,
                template=spec.template,
            )
            v.options = [VolumeOption(key=k, value=val) for k, val in spec.options.items()]
            sets: dict[int, ReplicaSet] = {}
            for b in p["bricks"]:
                rs = sets.get(b["set"])
                if rs is None:
                    rs = sets[b["set"]] = ReplicaSet(
                        index=b["set"], min_in_sync=spec.replica // 2 + 1
                    )
                    v.replica_sets.append(rs)
                rs.bricks.append(
                    Brick(
                        volume_id=v.id,
                        position=b["pos"],
                        peer_id=b["peer_id"],
                        root=b["root"],
                        path=b["path"],
                        name=b["name"],
                    )
                )
            s.add(v)
            s.flush()
            for rs in v.replica_sets:
                rs.primary_brick_id = rs.bricks[0].id
            self._event(s, "volume_created", spec.name, f"volume {spec.name} created")
        return {"volume_id": p["volume_id"]}

    def _db_volume_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        # By id, never by name: a volume of the same name made meanwhile is not ours.
        with self.db.session() as s:
            v = s.get(Volume, p.get("volume_id", ""))
            if v is not None:
                s.delete(v)
                self._event(s, "volume_deleted", v.name, f"volume {v.name} deleted")

    def _db_state(self, _: Any, p: dict[str, Any]) -> Result:
        with self.db.session() as s:
            v = self._volume_row(s, p["volume"])
            v.state = p["state"]
            v.version += 1
            self._event(s, f"volume_{p['state']}", v.name, f"volume {v.name} {p['state']}")
        return None

    def _db_state_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        with self.db.session() as s:
            v = s.scalar(select(Volume).where(Volume.name == p["volume"]))
            if v is not None:
                v.state = p["was"]

    def _db_delete(self, _: Any, p: dict[str, Any]) -> Result:
        with self.db.session() as s:
            v = s.scalar(select(Volume).where(Volume.name == p["volume"]))
            if v is not None:
                s.delete(v)
                self._event(s, "volume_deleted", p["volume"], f"volume {p['volume']} deleted")
        return None

    def _event(self, s: Session, kind: str, volume: str | None, message: str) -> None:
        s.add(Event(kind=kind, volume=volume, message=message))


def _host(ref: str) -> str:
    """The host of a peer address or name (HOST:PORT, or a bare hostname)."""
    return ref.rpartition(":")[0] if ":" in ref else ref


def _brick_peer(peers: Sequence[Peer], ref: str, text: str) -> Peer:
    """The peer a brick's PEER, HOST:PORT or HOST means; HOST only when one peer runs
    there: picking one of several would put a brick on a node the user did not mean."""
    found = {p.id: p for p in peers if ref in (p.id, p.name, p.address)}
    if not found:
        found = {p.id: p for p in peers if ref in (_host(p.address), _host(p.name))}
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise GfsError("not_found", "peer_not_found", f"brick {text!r}: no peer {ref!r}")
    names = ", ".join(sorted(f"{p.name} ({p.address})" for p in found.values()))
    raise GfsError(
        "invalid",
        "ambiguous_brick_host",
        f"brick {text!r}: {len(found)} peers run on {ref}: {names};"
        " name one as PEER:/PATH or HOST:PORT:/PATH",
    )


def one_replica_set(volume: str, sets: int, replica: int) -> None:
    """Refuse a volume of several replica sets: the mount serves one set until scale-out
    (distribute) is built. The one place that says so: scale-out removes it."""
    if sets > 1:
        raise GfsError(
            "invalid",
            "scale_out_unsupported",
            f"volume {volume}: {sets} replica sets ({sets * replica} bricks for replica"
            f" {replica}): more than one replica set is not supported yet; a volume has"
            f" exactly {replica} bricks until scale-out",
        )


def _peer_wire(p: Peer) -> m.Peer:
    return m.Peer(
        id=p.id,
        name=p.name,
        address=p.address,
        zone=p.zone,
        online=p.online,
        last_seen=p.last_seen,
        roots=[
            m.RootInfo(
                path=r.path,
                total_bytes=r.total_bytes,
                free_bytes=r.free_bytes,
                used_bytes=r.used_bytes,
            )
            for r in p.roots
        ],
    )


def _volume_wire(v: Volume) -> m.Volume:
    return m.Volume(
        id=v.id,
        name=v.name,
        state=v.state,  # type: ignore[arg-type]
        replica=v.replica_count,
        size_bytes=v.size_bytes,
        template=v.template,
        options={o.key: o.value for o in v.options},
        created=v.created,
        replica_sets=[set_wire(rs) for rs in v.replica_sets],
    )
