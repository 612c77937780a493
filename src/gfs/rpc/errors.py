"""Transport failures as errno: the one table the client and REST layer share.

A brick reports filesystem errors as data (`err`); a gRPC status other than OK
means the call itself failed, and the caller sees one of these.
"""

from __future__ import annotations

import errno

import grpc

STATUS_ERRNO: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.UNAVAILABLE: errno.ENOTCONN,
    grpc.StatusCode.DEADLINE_EXCEEDED: errno.ETIMEDOUT,
    grpc.StatusCode.CANCELLED: errno.EINTR,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errno.ENOMEM,
    # the brick's authorizer refused the caller's certificate (gfs.brick.authz)
    grpc.StatusCode.PERMISSION_DENIED: errno.EACCES,
}


def status_errno(e: grpc.RpcError) -> int:
    """The errno a caller sees for a failed RPC (EIO for anything unexpected)."""
    code = e.code() if isinstance(e, grpc.Call) else None
    return STATUS_ERRNO.get(code, errno.EIO) if code is not None else errno.EIO
