"""gfsd's side of the brick daemons' Admin service: one blocking call per method,
each with a deadline; failures become PeerError with a one-line reason."""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

import grpc

from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc
from gfs.rpc.channel import shared_channel
from gfs.rpc.errors import status_errno
from gfs.rpc.tracing import traced_channel

TIMEOUT = 10.0


#: longest reconnect backoff of a shared channel (gfs.rpc.channel), plus a margin
RECONNECT_WAIT = 1.5


class PeerError(Exception):
    def __init__(self, address: str, code: int, what: str, message: str = "") -> None:
        detail = f"{os.strerror(code)}: {message}" if message else os.strerror(code)
        super().__init__(f"peer {address}: {what}: {detail}")
        self.errno = code
        #: True when the peer answered (the operation was refused, not lost in transit).
        self.answered = False


_channels: dict[str, grpc.Channel] = {}
_channels_lock = threading.Lock()


def _channel(address: str) -> grpc.Channel:
    """The shared channel to a peer (one per peer for the life of gfsd: a channel per
    call cost a handshake per step), traced."""
    with _channels_lock:
        ch = _channels.get(address)
        if ch is None:
            ch = _channels[address] = traced_channel(shared_channel(address))
        return ch


class BrickdAdmin:
    def __init__(self, address: str, timeout: float = TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self.stub: Any = admin_pb2_grpc.AdminStub(_channel(address))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        pass  # the channel is shared and kept

    def __enter__(self) -> BrickdAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, name: str, req: Any) -> Any:
        method = getattr(self.stub, name)
        try:
            try:
                reply = method(req, timeout=self.timeout)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                    raise
                # A daemon that just came back finds the shared channel in its reconnect
                # backoff (at most RECONNECT_WAIT): wait that long for it to connect, no
                # more, so a dead peer still fails fast. Admin calls are idempotent.
                reply = method(req, timeout=min(self.timeout, RECONNECT_WAIT), wait_for_ready=True)
        except grpc.RpcError as e:
            raise PeerError(self.address, status_errno(e), name) from e
        if reply.err:
            refused = PeerError(self.address, reply.err, name, getattr(reply, "message", ""))
            refused.answered = True
            raise refused
        return reply

    def info(self) -> apb.InfoReply:
        r: apb.InfoReply = self._call("Info", apb.InfoRequest())
        return r

    def provision(
        self, root: str, name: str, volume_id: str, volume: str, brick: str
    ) -> apb.ProvisionReply:
        req = apb.ProvisionRequest(
            root=root, name=name, volume_id=volume_id, volume=volume, brick=brick
        )
        r: apb.ProvisionReply = self._call("Provision", req)
        return r

    def remove(
        self,
        root: str,
        name: str,
        volume_id: str,
        brick: str,
        delete_data: bool,
        only_if_untouched: bool = False,
    ) -> str:
        """Returns what the daemon kept and why (empty when it kept nothing it was asked
        to remove)."""
        req = apb.RemoveRequest(
            root=root,
            name=name,
            volume_id=volume_id,
            brick=brick,
            delete_data=delete_data,
            only_if_untouched=only_if_untouched,
        )
        return str(self._call("Remove", req).message)

    def serve(self, name: str, path: str, quota: int = 0) -> None:
        # Every brick gfsd serves belongs to a replica set and is configured next.
        req = apb.ServeRequest(name=name, path=path, quota_bytes=quota, replicated=True)
        self._call("Serve", req)

    def unserve(self, name: str, stopped: bool = False) -> None:
        """`stopped`: its volume stops; mounts still using it get ESHUTDOWN."""
        self._call("Unserve", apb.UnserveRequest(name=name, stopped=stopped))

    def sessions(self, bricks: list[str]) -> list[apb.ClientSession]:
        r = self._call("Sessions", apb.SessionsRequest(bricks=bricks))
        return list(r.sessions)

    def configure(self, req: apb.ConfigureRequest) -> None:
        self._call("Configure", req)

    def heal(self, brick: str, full: bool) -> apb.HealStatusReply:
        r: apb.HealStatusReply = self._call("Heal", apb.HealRequest(brick=brick, full=full))
        return r

    def revoke(self, fingerprints: list[str]) -> str:
        """Replace the daemon's revocation list; returns its digest."""
        r: apb.RevokeReply = self._call("Revoke", apb.RevokeRequest(fingerprints=fingerprints))
        return r.digest

    def heal_status(self, brick: str) -> apb.HealStatusReply:
        r: apb.HealStatusReply = self._call("HealStatus", apb.HealRequest(brick=brick))
        return r


def is_unreachable(e: PeerError) -> bool:
    return e.errno in (errno.ENOTCONN, errno.ETIMEDOUT)
