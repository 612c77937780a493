"""The Admin gRPC service: node facts, and brick folders provisioned and served on
gfsd's request. Brick folders live only under the roots the daemon was given
(`--root`), so gfsd can never make it create, serve or delete anything else.

What is served survives a restart of the daemon: it is kept in
`<first root>/.gfs-node.json`, so I/O goes on while gfsd is down.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shutil
import socket
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gfs import __version__, addrs
from gfs.api.models import FOLDER_NAME_MAX, brick_folder_error
from gfs.brick.heal import HealWorker
from gfs.brick.replica import Config, Replica
from gfs.brick.service import BrickService
from gfs.brick.store import META, Brick
from gfs.certs import revoked_digest
from gfs.proto import admin_pb2 as pb

log = logging.getLogger(__name__)

STATE_FILE = ".gfs-node.json"
#: The cluster's revocation list (Admin.Revoke), next to STATE_FILE in the first root.
REVOKED_FILE = ".gfs-revoked.json"
REPLICA_FILE = "replica.json"
#: The ownership marker of a brick folder made for gfsd, in its META folder.
OWNER_FILE = "owner.json"

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
                code = e.errno or errno.EIO
                if "message" in reply.DESCRIPTOR.fields_by_name:
                    what = e.strerror or os.strerror(code)
                    return reply(err=code, message=f"{e.filename}: {what}" if e.filename else what)
                return reply(err=code)
            except Exception:
                log.exception("admin op=%s failed", fn.__name__)
                return reply(err=errno.EIO)

        return handler

    return wrap


def _replica_file(brick_path: Path) -> Path:
    # Kept with the brick (one small file per change) rather than in the node's state
    # file, which a thousand volumes would make rewrite-heavy on every change.
    return brick_path / META.decode() / REPLICA_FILE


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, mode 0600 whatever the umask (the daemon
    runs with umask 0 so that client files get exactly the client's mode)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # never reuse a tmp file someone else may have made
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check_private(path: Path, folder_mode: int | None = None) -> bool:
    """Make state file `path` (and its folder) private to this daemon's user: fix a mode
    others could read or write, with a warning; refuse (SystemExit) a file or folder
    another user owns or a symlink, which may have been tampered with. False when the
    file does not exist."""
    folder = path.parent
    if folder_mode is not None:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise SystemExit(f"gfs-brickd: {folder} is not a folder of user {os.geteuid()}")
        if stat.S_IMODE(st.st_mode) != folder_mode:
            log.warning("state_folder_mode_fixed path=%s mode=%o", folder, stat.S_IMODE(st.st_mode))
            os.chmod(folder, folder_mode)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        raise SystemExit(
            f"gfs-brickd: refusing state file {path}: not a regular file of user {os.geteuid()}"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        log.warning("state_file_mode_fixed path=%s mode=%o", path, stat.S_IMODE(st.st_mode))
        os.chmod(path, 0o600)
    return True


def _save_replica(brick_path: Path, cfg: Config) -> None:
    write_private(_replica_file(brick_path), json.dumps(cfg.to_json()))


def _load_replica(brick_path: Path) -> Config | None:
    path = _replica_file(brick_path)
    if not check_private(path, folder_mode=0o700):
        return None
    try:
        return Config.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise SystemExit(f"gfs-brickd: {path} is damaged: {e}") from e


class Revocations:
    """Fingerprints of the certificates refused on every call (the authorizer asks),
    kept in `path` (0600) when the daemon has a root, else in memory until gfsd pushes
    them again (it does when Info shows another digest)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fingerprints: frozenset[str] = frozenset()
        if path is not None and check_private(path):
            try:
                data = json.loads(path.read_text())
                self.fingerprints = frozenset(str(f) for f in data["fingerprints"])
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"gfs-brickd: {path} is damaged: {e}") from e
            log.info("revocations loaded count=%d", len(self.fingerprints))

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.fingerprints

    @property
    def digest(self) -> str:
        return revoked_digest(self.fingerprints)

    def replace(self, fingerprints: frozenset[str]) -> None:
        if self.path is not None:
            write_private(self.path, json.dumps({"fingerprints": sorted(fingerprints)}))
        # Swapped as a whole: the authorizer reads it without a lock.
        self.fingerprints = fingerprints


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
        self.revoked = Revocations(self.roots[0] / REVOKED_FILE if self.roots else None)

    # -- persisted state ---------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.roots[0] / STATE_FILE

    def _load_state(self) -> None:
        try:
            check_private(self._state_path())
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
            why = self._outside_roots(name, path)
            if why:
                # Never trust the file alone: it may have been edited by someone else.
                log.error("brick_outside_roots brick=%s path=%s: %s; not served", name, path, why)
                continue
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
        write_private(
            self._state_path(),
            json.dumps({"node_id": self.node_id, "served": self._served}, indent=1),
        )

    def _outside_roots(self, name: object, path: object) -> str | None:
        """Why a served entry of the state file may not be served (None: it may)."""
        if not isinstance(name, str) or not name or "/" in name or not name.isprintable():
            return "bad brick name"
        if not isinstance(path, str):
            return "path is not text"
        try:
            self._under_root(path)
        except OSError as e:
            return e.strerror
        return None

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
            revoked_digest=self.revoked.digest,
        )

    def _in_use(self, path: Path) -> str | None:
        """Why `path` cannot become a brick folder: it is, contains or lies inside a
        brick served here, or lies inside a brick folder on disk (served or not)."""
        for name, b in self.bricks.bricks.items():
            served = b.path.resolve()
            if served == path or served in path.parents or path in served.parents:
                return f"{path} is, contains or lies inside brick {name} ({served}) served here"
        for parent in path.parents:
            meta = parent / META.decode()
            if (meta / OWNER_FILE).exists() or (meta / "brick-id").exists():
                return f"{path} lies inside the brick folder {parent}"
        return None

    @admin_rpc(pb.ProvisionReply)
    def Provision(self, req: pb.ProvisionRequest, ctx: Any) -> pb.ProvisionReply:
        path = self._root(req.root) / self._name(req.name)
        if not req.volume_id or not req.brick:
            raise _err(errno.EINVAL, "a provision names its volume id and brick")
        owner = _read_owner(path) if path.is_dir() and not path.is_symlink() else None
        if owner is not None and (owner.get("volume_id"), owner.get("brick")) == (
            req.volume_id,
            req.brick,
        ):
            # Already done (a retried request), even if it is served by now.
            return pb.ProvisionReply(path=str(path), created=bool(owner.get("created")))
        why = self._in_use(path)
        if why:
            raise _err(errno.EEXIST, why)
        try:
            path.mkdir(mode=0o755)
            created = True
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise _err(errno.EEXIST, f"{path} exists and is not a folder") from None
            if owner is not None:
                raise _err(
                    errno.EEXIST, f"{path} is already part of a volume: {_owner_text(owner)}"
                ) from None
            if any(path.iterdir()):
                raise _err(errno.EEXIST, f"{path} exists and is not empty") from None
            created = False
        marker = {
            "volume_id": req.volume_id,
            "volume": req.volume,
            "brick": req.brick,
            "created": created,
        }
        try:
            _write_owner(path, marker)
        except OSError:
            _clear(path, created)  # a refused Provision has made nothing
            raise
        log.info(
            "provisioned path=%s volume=%s brick=%s created=%s",
            path,
            req.volume,
            req.brick,
            created,
        )
        return pb.ProvisionReply(path=str(path), created=created)

    @admin_rpc(pb.AdminReply)
    def Remove(self, req: pb.RemoveRequest, ctx: Any) -> pb.AdminReply:
        path = self._root(req.root) / self._name(req.name)
        if not path.exists() and not path.is_symlink():
            if not req.only_if_untouched:
                self._unserve_path(path)
            return pb.AdminReply()
        owner = _read_owner(path) if path.is_dir() and not path.is_symlink() else None
        mine = owner is not None and (owner.get("volume_id"), owner.get("brick")) == (
            req.volume_id,
            req.brick,
        )
        if req.only_if_untouched:
            # Undo of a Provision that may not have run: only our own marker, alone.
            if owner is None or not mine or not _untouched(path) or self._served_at(path):
                kept = f"{path} kept: " + (
                    "it is not marked for this brick"
                    if not mine
                    else "it holds more than its marker"
                )
                log.info("remove skipped: %s", kept)
                return pb.AdminReply(message=kept)
            _clear(path, bool(owner.get("created")))
            log.info("removed untouched path=%s created=%s", path, owner.get("created"))
            return pb.AdminReply()
        if owner is not None and not mine:
            raise _err(errno.EPERM, f"{path} belongs to {_owner_text(owner)}; not removed")
        if owner is None and req.delete_data:
            raise _err(
                errno.EPERM,
                f"{path} has no ownership marker ({META.decode()}/{OWNER_FILE}): gfsd did not "
                "provision it, so its data is not deleted",
            )
        self._unserve_path(path)
        if owner is not None and req.delete_data:
            _clear(path, bool(owner.get("created")), everything=True)
            log.info("removed path=%s with data created=%s", path, owner.get("created"))
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
        self.bricks.add(Brick(name, path, req.quota_bytes), req.replicated)
        self._served[name] = {"path": str(path), "quota": req.quota_bytes}
        self._save_state()
        log.info("serving brick=%s path=%s quota=%d", name, path, req.quota_bytes)
        return pb.AdminReply()

    @admin_rpc(pb.AdminReply)
    def Unserve(self, req: pb.UnserveRequest, ctx: Any) -> pb.AdminReply:
        self._unserve(req.name, req.stopped)
        return pb.AdminReply()

    def Sessions(self, req: pb.SessionsRequest, ctx: Any) -> pb.SessionsReply:
        # Not under the admin lock: a long Remove must not make gfsd's check time out.
        return pb.SessionsReply(
            sessions=[
                pb.ClientSession(
                    brick=s.brick,
                    session=s.session,
                    hostname=s.hostname,
                    mountpoint=s.mountpoint,
                    pid=s.pid,
                    peer=s.peer,
                    idle_seconds=idle,
                )
                for s, idle in self.bricks.sessions.list(req.bricks)
            ]
        )

    @admin_rpc(pb.RevokeReply)
    def Revoke(self, req: pb.RevokeRequest, ctx: Any) -> pb.RevokeReply:
        fps = frozenset(f.lower() for f in req.fingerprints)
        bad = [f for f in fps if len(f) != 64 or any(c not in "0123456789abcdef" for c in f)]
        if bad:
            raise _err(errno.EINVAL, f"not a SHA-256 fingerprint: {bad[0][:80]!r}")
        added = len(fps - self.revoked.fingerprints)
        self.revoked.replace(fps)
        log.info("revocations set count=%d added=%d", len(fps), added)
        return pb.RevokeReply(digest=self.revoked.digest)

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
        try:
            addrs.parse(",".join([*req.auth_allow, *req.auth_reject]))
        except addrs.RuleError as e:
            raise _err(errno.EINVAL, f"bad auth rules for brick {req.brick}: {e}") from None
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
            deny_privileged=req.deny_privileged,
            auth_allow=list(req.auth_allow),
            auth_reject=list(req.auth_reject),
        )
        rep = self.bricks.replicas.get(req.brick)
        if rep is None:
            rep = Replica(brick, cfg, confirmed=True)
            log.info("replicated brick=%s epoch=%d primary=%s", req.brick, cfg.epoch, cfg.primary)
        else:
            code = rep.configure(cfg, req.old_primary_gone)
            if code:
                return pb.ConfigureReply(err=code, epoch=rep.cfg.epoch)
        self.bricks.configured(req.brick, rep)
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

    def _served_at(self, path: Path) -> list[str]:
        return [n for n, b in self.bricks.bricks.items() if b.path.resolve() == path]

    def _unserve_path(self, path: Path) -> None:
        for name, served in list(self._served.items()):
            if Path(served["path"]) == path:
                self._unserve(name)

    def _unserve(self, name: str, stopped: bool = False) -> None:
        """`stopped`: gfsd stops the brick's volume; its clients get ESHUTDOWN from now on."""
        if name not in self._served:
            # Bricks from the command line stay; unknown names are already gone (a
            # retried stop still marks them).
            if stopped and name not in self.bricks.bricks:
                self.bricks.stopped.add(name)
            return
        brick = self.bricks.remove(name, stopped)
        if brick is not None:
            brick.close()
        del self._served[name]
        self._save_state()
        log.info("stopped serving brick=%s volume_stopped=%s", name, stopped)


def _owner_path(folder: Path) -> Path:
    return folder / META.decode() / OWNER_FILE


def _read_owner(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_owner_path(folder).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        data = None
    if not isinstance(data, dict):
        # Unreadable: still somebody's brick, never free.
        return {"volume_id": "?", "volume": "?", "brick": "?", "created": False}
    return data


def _owner_text(owner: dict[str, Any]) -> str:
    return (
        f"brick {owner.get('brick')} of volume {owner.get('volume')} (id {owner.get('volume_id')})"
    )


def _write_owner(folder: Path, owner: dict[str, Any]) -> None:
    meta = folder / META.decode()
    meta.mkdir(mode=0o700, exist_ok=True)
    write_private(meta / OWNER_FILE, json.dumps(owner))


def _untouched(folder: Path) -> bool:
    """The folder holds nothing but its ownership marker."""
    top = {p.name for p in folder.iterdir()}
    if top - {META.decode()}:
        return False
    meta = folder / META.decode()
    return not top or {p.name for p in meta.iterdir()} <= {OWNER_FILE, OWNER_FILE + ".tmp"}


def _clear(folder: Path, created: bool, everything: bool = False) -> None:
    """Delete what a brick folder holds: the folder itself if this daemon created it,
    else its contents (`everything`) or only the marker, keeping the operator's folder."""
    if created:
        shutil.rmtree(folder)
        return
    if everything:
        for p in folder.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        return
    meta = folder / META.decode()
    for name in (OWNER_FILE, OWNER_FILE + ".tmp"):
        (meta / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        meta.rmdir()  # only if nothing else is in it
