"""The Brick RPCs of the data path, one entry each: what the client, the brick service,
the replica logic and the authorizer know about an operation, kept in one place.

kind
    probe        any member answers (Ping, Statfs), whatever its role
    read         the primary answers under its lease; never forwarded
    mutation     the primary applies it, then forwards it to the in-sync members
    handle       a mutation on an open handle, ordered under the handle's GFID
    replication  between the bricks of a set only (node certificates)
    session      a mount announcing itself
keys
    request fields naming the objects a mutation is ordered under (per-GFID locks);
    a handle operation is ordered under its handle's GFID
fd
    a forwarded handle operation the member applies on a descriptor of its own
forwarded
    whether a mutation goes to the members (Release and Flush do not: members hold no
    handles); `forward_if` narrows it per request (an Open only when it truncates)
rpc
    False for a method that exists only inside a Forward (Unpin)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gfs.proto import brick_pb2 as pb

PROBE = "probe"
READ = "read"
MUTATION = "mutation"
HANDLE = "handle"
REPLICATION = "replication"
SESSION = "session"


@dataclass(frozen=True)
class Op:
    name: str
    request: type[Any]
    reply: type[Any]
    kind: str
    keys: tuple[str, ...] = ()
    fd: bool = False
    forwarded: bool = True
    forward_if: Callable[[Any], bool] | None = None
    rpc: bool = True

    @property
    def tagged(self) -> bool:
        """Whether a client call carries a request id, so that a retry after a lost reply
        is answered from the primary's record rather than applied twice."""
        return self.kind in (MUTATION, HANDLE) and self.forwarded and self.rpc


def _truncates(req: Any) -> bool:
    return bool(req.flags & os.O_TRUNC)


_TABLE = [
    Op("Ping", pb.PingRequest, pb.PingReply, PROBE),
    Op("Statfs", pb.StatfsRequest, pb.StatfsReply, PROBE),
    Op("Lookup", pb.LookupRequest, pb.EntryReply, READ),
    Op("GetAttr", pb.GfidRequest, pb.AttrReply, READ),
    Op("ReadLink", pb.GfidRequest, pb.ReadLinkReply, READ),
    Op("Read", pb.ReadRequest, pb.ReadReply, READ),
    Op("ReadDir", pb.ReadDirRequest, pb.ReadDirReply, READ),
    Op("GetXattr", pb.XattrRequest, pb.XattrReply, READ),
    Op("ListXattr", pb.GfidRequest, pb.ListXattrReply, READ),
    Op("Lock", pb.LockRequest, pb.LockReply, READ),
    Op("Seek", pb.SeekRequest, pb.SeekReply, READ),
    Op("SetAttr", pb.SetAttrRequest, pb.AttrReply, MUTATION, keys=("gfid",)),
    Op("MakeNode", pb.MakeNodeRequest, pb.EntryReply, MUTATION, keys=("parent",)),
    Op("Unlink", pb.NameRequest, pb.Reply, MUTATION, keys=("parent",)),
    Op("Rmdir", pb.NameRequest, pb.Reply, MUTATION, keys=("parent",)),
    Op("Rename", pb.RenameRequest, pb.Reply, MUTATION, keys=("old_parent", "new_parent")),
    Op("Link", pb.LinkRequest, pb.EntryReply, MUTATION, keys=("gfid", "new_parent")),
    Op("Open", pb.OpenRequest, pb.OpenReply, MUTATION, keys=("gfid",), forward_if=_truncates),
    Op("FsyncDir", pb.FsyncRequest, pb.Reply, MUTATION, keys=("gfid",)),
    Op("SetXattr", pb.XattrRequest, pb.Reply, MUTATION, keys=("gfid",)),
    Op("RemoveXattr", pb.XattrRequest, pb.Reply, MUTATION, keys=("gfid",)),
    Op("Unpin", pb.GfidRequest, pb.Reply, MUTATION, keys=("gfid",), rpc=False),
    Op("Write", pb.WriteRequest, pb.WriteReply, HANDLE, fd=True),
    Op("Fallocate", pb.FallocateRequest, pb.Reply, HANDLE, fd=True),
    Op("CopyRange", pb.CopyRangeRequest, pb.CopyRangeReply, HANDLE, fd=True),
    Op("Fsync", pb.FsyncRequest, pb.Reply, HANDLE, fd=True),
    Op("Release", pb.FhRequest, pb.Reply, HANDLE, forwarded=False),
    Op("Flush", pb.FhRequest, pb.Reply, HANDLE, forwarded=False),
    Op("Forward", pb.ForwardRequest, pb.ForwardReply, REPLICATION),
    Op("Heartbeat", pb.HeartbeatRequest, pb.HeartbeatReply, REPLICATION),
    Op("HealEntries", pb.ReadDirRequest, pb.HealEntriesReply, REPLICATION),
    Op("HealPut", pb.HealPutRequest, pb.EntryReply, REPLICATION),
    Op("HealRemove", pb.HealRemoveRequest, pb.Reply, REPLICATION),
    Op("HealSums", pb.GfidRequest, pb.HealSumsReply, REPLICATION),
    Op("LockSync", pb.LockSyncRequest, pb.LockSyncReply, REPLICATION),
    Op("Session", pb.SessionRequest, pb.Reply, SESSION),
]

OPS: dict[str, Op] = {op.name: op for op in _TABLE}


def names(*kinds: str) -> frozenset[str]:
    return frozenset(op.name for op in _TABLE if op.kind in kinds)


#: what a member may be asked to apply inside a Forward, by method: the payload's type
FORWARDED: dict[str, type[Any]] = {
    op.name: op.request for op in _TABLE if op.kind in (MUTATION, HANDLE) and op.forwarded
}


def forwards(method: str, req: Any) -> bool:
    """Whether the primary forwards this request to the members."""
    op = OPS.get(method)
    if op is None or not op.rpc or op.name not in FORWARDED:
        return False
    return op.forward_if is None or op.forward_if(req)
