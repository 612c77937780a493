"""The Admin gRPC service: node facts, and brick folders provisioned and served on
gfsd's request. Brick folders live only under the roots the daemon was given
(`--root`), so gfsd can never make it create, serve or delete anything else.

What is served survives a restart of the daemon: it is kept in
`<first root>/.gfs-node.json`, so I/O goes on while gfsd is down.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gfs import __version__
from gfs.api.models import FOLDER_NAME_MAX, brick_folder_error
from gfs.brick.heal import HealWorker
from gfs.brick.replica import Config, Replica
from gfs.brick.service import BrickService
from gfs.brick.store import META, Brick
from gfs.proto import admin_pb2 as pb

log = logging.getLogger(__name__)

STATE_FILE = ".gfs-node.json"
REPLICA_FILE = "replica.json"

Impl = Callable[[Any, Any, Any], Any]
Handler = Callable[[Any, Any, grpc.ServicerContext], Any]


def admin_rpc(reply: type[Any]) -> Callable[[Impl], Handler]:
    def wrap(fn: Impl) -> Handler:
        @functools.wraps(fn)
        def handler(self: AdminService, req: Any, ctx: grpc.ServicerContext) -> Any:
            try:
                with self.lock:
                    return fn(self, req, ctx)
            except OSError as e:
                log.info("admin op=%s errno=%s %s", fn.__name__, e.errno, e.strerror)
                return reply(err=e.errno or errno.EIO)
            except Exception:
                log.exception("admin op=%s failed", fn.__name__)
                return reply(err=errno.EIO)

        return handler

    return wrap


def _replica_file(brick_path: Path) -> Path:
    # Kept with the brick (one small file per change) rather than in the node's state
    # file, which a thousand volumes would make rewrite-heavy on every change.
    return brick_path / META.decode() / REPLICA_FILE


def _save_replica(brick_path: Path, cfg: Config) -> None:
    path = _replica_file(brick_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg.to_json()))
    os.replace(tmp, path)


def _load_replica(brick_path: Path) -> Config | None:
    try:
        return Config.from_json(json.loads(_replica_file(brick_path).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise SystemExit(f"gfs-brickd: {_replica_file(brick_path)} is damaged: {e}") from e


def _err(code: int, what: str) -> OSError:
    return OSError(code, what)


class AdminService:
    """Implements the Admin service of admin.proto."""

    def __init__(self, bricks: BrickService, roots: list[Path], zone: str) -> None:
        self.bricks = bricks
        self.roots = [r.resolve() for r in roots]
        self.zone = zone
        self.lock = threading.Lock()
        self.healer: HealWorker | None = None
        self.node_id = ""
        self._served: dict[str, dict[str, Any]] = {}
        if self.roots:
            self._load_state()

    # -- persisted state ---------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.roots[0] / STATE_FILE

    def _load_state(self) -> None:
        try:
            data = json.loads(self._state_path().read_text())
            self.node_id = str(data["node_id"])
            served = dict(data.get("served", {}))
        except FileNotFoundError:
            self.node_id = str(uuid.uuid4())
            served = {}
            self._save_state()
        except (ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"gfs-brickd: {self._state_path()} is damaged: {e}") from e
        for name, entry in served.items():
            if name in self.bricks.bricks:
                continue
            if isinstance(entry, str):  # the first format: the path alone
                entry = {"path": entry, "quota": 0}
            path, quota = entry["path"], int(entry.get("quota", 0))
            try:
                brick = Brick(name, Path(path), quota)
                self.bricks.add(brick)
                self._served[name] = {"path": path, "quota": quota}
                cfg = _load_replica(Path(path))
                if cfg is not None:
                    # Not confirmed: gfsd may have moved on while this daemon was down.
                    self.bricks.replicas[name] = Replica(brick, cfg, confirmed=False)
                log.info("serving again brick=%s path=%s quota=%d", name, path, quota)
            except OSError as e:
                log.error("cannot serve brick=%s path=%s error=%s", name, path, e.strerror)

    def _save_state(self) -> None:
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"node_id": self.node_id, "served": self._served}, indent=1))
        os.replace(tmp, self._state_path())

    # -- checks ------------------------------------------------------------------------------

    def _root(self, text: str) -> Path:
        p = Path(text)
        if not p.is_absolute() or p.resolve() not in self.roots:
            raise _err(errno.EACCES, f"{text} is not a brick root of this node")
        return p.resolve()

    @staticmethod
    def _name(name: str) -> str:
        problem = brick_folder_error(name)
        if problem is not None:
            long = len(name.encode(errors="surrogateescape")) > FOLDER_NAME_MAX
            raise _err(errno.ENAMETOOLONG if long else errno.EINVAL, problem)
        return name

    def _under_root(self, path: str) -> Path:
        p = Path(path)
        if not p.is_absolute():
            raise _err(errno.EINVAL, f"{path} is not absolute")
        real = p.resolve()
        if real.parent not in self.roots or real != p:
            raise _err(errno.EACCES, f"{path} is not a folder directly under a brick root")
        return real

    # -- RPCs --------------------------------------------------------------------------------

    @admin_rpc(pb.InfoReply)
    def Info(self, req: pb.InfoRequest, ctx: Any) -> pb.InfoReply:
        roots = []
        for r in self.roots:
            s = os.statvfs(r)
            total = s.f_blocks * s.f_frsize
            roots.append(
                pb.Root(
                    path=str(r),
                    total_bytes=total,
                    free_bytes=s.f_bavail * s.f_frsize,
                    used_bytes=total - s.f_bfree * s.f_frsize,
                )
            )
        bricks = [pb.ServedBrick(name=n, path=str(b.path)) for n, b in self.bricks.bricks.items()]
        return pb.InfoReply(
            hostname=socket.gethostname(),
            zone=self.zone,
            version=__version__,
            node_id=self.node_id,
            roots=roots,
            bricks=bricks,
        )

    @admin_rpc(pb.ProvisionReply)
    def Provision(self, req: pb.ProvisionRequest, ctx: Any) -> pb.ProvisionReply:
        path = self._root(req.root) / self._name(req.name)
        try:
            path.mkdir(mode=0o755)
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise _err(errno.EEXIST, f"{path} exists and is not a folder") from None
            leftovers = [p.name for p in path.iterdir() if p.name != META.decode()]
            if leftovers:
                raise _err(errno.EEXIST, f"{path} exists and is not empty") from None
            return pb.ProvisionReply(path=str(path), created=False)
        log.info("provisioned path=%s", path)
        return pb.ProvisionReply(path=str(path), created=True)

    @admin_rpc(pb.AdminReply)
    def Remove(self, req: pb.RemoveRequest, ctx: Any) -> pb.AdminReply:
        path = self._root(req.root) / self._name(req.name)
        for name, served in list(self._served.items()):
            if Path(served["path"]) == path:
                self._unserve(name)
        if req.delete_data and path.exists():
            shutil.rmtree(path)
            log.info("removed path=%s with data", path)
        return pb.AdminReply()

    @admin_rpc(pb.AdminReply)
    def Serve(self, req: pb.ServeRequest, ctx: Any) -> pb.AdminReply:
        name = req.name
        if not name or "/" in name or len(name) > 128 or not name.isprintable():
            raise _err(errno.EINVAL, f"bad brick name {name!r}")
        path = self._under_root(req.path)
        current = self.bricks.bricks.get(name)
        if current is not None:
            if current.path != path:
                raise _err(errno.EEXIST, f"brick {name} is served from {current.path}")
            if current.quota != req.quota_bytes:  # e.g. the volume was expanded
                current.set_quota(req.quota_bytes)
                if name in self._served:
                    self._served[name]["quota"] = req.quota_bytes
                    self._save_state()
                log.info("quota brick=%s quota=%d", name, req.quota_bytes)
            return pb.AdminReply()
        if not path.is_dir():
            raise _err(errno.ENOENT, f"{path} does not exist")
        self.bricks.add(Brick(name, path, req.quota_bytes))
        self._served[name] = {"path": str(path), "quota": req.quota_bytes}
        self._save_state()
        log.info("serving brick=%s path=%s quota=%d", name, path, req.quota_bytes)
        return pb.AdminReply()

    @admin_rpc(pb.AdminReply)
    def Unserve(self, req: pb.UnserveRequest, ctx: Any) -> pb.AdminReply:
        self._unserve(req.name)
        return pb.AdminReply()

    @admin_rpc(pb.ConfigureReply)
    def Configure(self, req: pb.ConfigureRequest, ctx: Any) -> pb.ConfigureReply:
        brick = self.bricks.bricks.get(req.brick)
        if brick is None:
            raise _err(errno.ENODEV, f"brick {req.brick} is not served here")
        states = {m.brick: m.state for m in req.members}
        if (
            req.primary not in states
            or req.brick not in states
            or any(st not in ("in_sync", "out") for st in states.values())
            or not 1 <= req.min_in_sync <= len(states)
            or not 0 < req.failure_timeout <= 600
            or req.epoch < 1
        ):
            raise _err(errno.EINVAL, f"bad replica configuration for brick {req.brick}")
        cfg = Config(
            volume=req.volume,
            set_index=req.set_index,
            epoch=req.epoch,
            primary=req.primary,
            members={m.brick: [m.address, m.state] for m in req.members},
            min_in_sync=req.min_in_sync,
            gfsd=list(req.gfsd),
            token=req.token,
            failure_timeout=req.failure_timeout,
            relaxed_reads=req.relaxed_reads,
        )
        rep = self.bricks.replicas.get(req.brick)
        if rep is None:
            self.bricks.replicas[req.brick] = Replica(brick, cfg, confirmed=True)
            log.info("replicated brick=%s epoch=%d primary=%s", req.brick, cfg.epoch, cfg.primary)
        else:
            code = rep.configure(cfg, req.old_primary_gone)
            if code:
                return pb.ConfigureReply(err=code, epoch=rep.cfg.epoch)
        if req.brick in self._served:
            _save_replica(brick.path, cfg)
        return pb.ConfigureReply(epoch=cfg.epoch)

    def _heal_status(self, brick: str) -> pb.HealStatusReply:
        if self.healer is None:
            raise _err(errno.EOPNOTSUPP, "this daemon runs no heal worker")
        p, out = self.healer.status(brick)
        if p is None:
            return pb.HealStatusReply(members_out=out)
        s = p.stats
        return pb.HealStatusReply(
            running=p.running, files=s.files, bytes=s.bytes, seconds=p.seconds, members_out=out
        )

    @admin_rpc(pb.HealStatusReply)
    def Heal(self, req: pb.HealRequest, ctx: Any) -> pb.HealStatusReply:
        rep = self.bricks.replicas.get(req.brick)
        if rep is None or rep.cfg.primary != req.brick:
            raise _err(errno.EREMCHG, f"brick {req.brick} is not a primary here")
        assert self.healer is not None
        self.healer.trigger(req.brick, req.full)
        return self._heal_status(req.brick)

    @admin_rpc(pb.HealStatusReply)
    def HealStatus(self, req: pb.HealRequest, ctx: Any) -> pb.HealStatusReply:
        return self._heal_status(req.brick)

    def _unserve(self, name: str) -> None:
        if name not in self._served:
            return  # bricks from the command line stay; unknown names are already gone
        brick = self.bricks.remove(name)
        if brick is not None:
            brick.close()
        del self._served[name]
        self._save_state()
        log.info("stopped serving brick=%s", name)
