"""Who may call what on a brick daemon, from the role in the caller's certificate.

    admin   (gfsd, operators)  every RPC, the Admin service included
    node    (brick daemons)    every Brick RPC: data, Forward, Heartbeat, heal, LockSync
    client  (mounts)           the Brick data RPCs, only for bricks of the volumes
                               the certificate names

A certificate on the revocation list (Admin.Revoke, pushed by gfsd) is refused whatever
its role. A refused call ends with PERMISSION_DENIED: a transport status, since the brick did not
run the operation at all. A daemon started with --insecure installs no authorizer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gfs.brick.admin import OWNER_FILE, Revocations
from gfs.brick.service import BrickService
from gfs.brick.store import META
from gfs.rpc import ops
from gfs.rpc.tls import Identity, peer_fingerprint, peer_identity

log = logging.getLogger(__name__)

BRICK_SERVICE = "/gfs.brick.v1.Brick/"
ADMIN_SERVICE = "/gfs.admin.v1.Admin/"
#: replication between the bricks of a set: never from a client
NODE_ONLY = ops.names(ops.REPLICATION)


def allowed(
    ident: Identity | None, method: str, brick: str, volume_of: Callable[[str], str | None]
) -> str:
    """'' when `ident` may call `method` on `brick`, else the reason it may not."""
    if ident is None:
        return "no gfs certificate"
    if ident.role == "admin":
        return ""
    if not method.startswith(BRICK_SERVICE):
        return f"role {ident.role} may not call the Admin service"
    if ident.role == "node":
        return ""
    op = method[len(BRICK_SERVICE) :]
    if op in NODE_ONLY:
        return f"role client may not call {op}"
    volume = volume_of(brick)
    if volume is not None and volume not in ident.volumes:
        return f"certificate does not name the volume of brick {brick!r}"
    return ""


class Authorizer(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self, volume_of: Callable[[str], str | None], revoked: Revocations | None = None
    ) -> None:
        self.volume_of = volume_of
        self.revoked = revoked
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method: str = details.method
        handler = continuation(details)
        if handler is None or not handler.unary_unary:
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:  # one wrapper per method handler
            cached = self._wrapped[method] = (handler, self._wrap(method, handler))
        return cached[1]

    def _wrap(self, method: str, handler: Any) -> Any:
        inner = handler.unary_unary

        def checked(req: Any, ctx: grpc.ServicerContext) -> Any:
            ident = peer_identity(ctx)
            why = allowed(ident, method, getattr(req, "brick", ""), self.volume_of)
            # Checked on every call, not at the handshake: a connection made before the
            # revocation is cut off at its next call.
            if not why and self.revoked is not None and peer_fingerprint(ctx) in self.revoked:
                why = "certificate revoked"
            if why:
                log.warning(
                    "refused method=%s peer=%s name=%s role=%s reason=%r",
                    method,
                    ctx.peer(),
                    ident.name if ident else "",
                    ident.role if ident else "",
                    why,
                )
                ctx.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            return inner(req, ctx)

        return grpc.unary_unary_rpc_method_handler(
            checked,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class BrickVolumes:
    """The volume a served brick belongs to: from its replica configuration, else its
    ownership marker (written by gfsd), else the brick's own name (a brick given with
    --brick NAME=PATH is mounted as HOST:PORT/NAME). None for a brick not served here:
    such a call is answered ENODEV or ESHUTDOWN and touches nothing."""

    def __init__(self, service: BrickService) -> None:
        self.service = service
        self._known: dict[str, str] = {}

    def __call__(self, brick: str) -> str | None:
        volume = self._known.get(brick)
        if volume is not None:
            return volume
        rep = self.service.replicas.get(brick)
        served = self.service.bricks.get(brick)
        if rep is not None:
            volume = rep.cfg.volume
        elif served is not None:
            volume = _owner_volume(served.path, brick)
        else:
            return None
        # A brick keeps its volume for life: kept, so a stopped brick's clients still
        # get their ESHUTDOWN rather than a refusal.
        self._known[brick] = volume
        return volume


def _owner_volume(path: Path, brick: str) -> str:
    try:
        owner = json.loads((path / META.decode() / OWNER_FILE).read_text())
    except FileNotFoundError:
        return brick
    except (OSError, ValueError):
        return "?"  # unreadable marker: no client certificate names "?"
    volume = owner.get("volume") if isinstance(owner, dict) else None
    return volume if isinstance(volume, str) and volume else "?"
