from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Root(_message.Message):
    __slots__ = ("path", "total_bytes", "free_bytes", "used_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    total_bytes: int
    free_bytes: int
    used_bytes: int
    def __init__(self, path: _Optional[str] = ..., total_bytes: _Optional[int] = ..., free_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ...) -> None: ...

class ServedBrick(_message.Message):
    __slots__ = ("name", "path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class InfoReply(_message.Message):
    __slots__ = ("err", "hostname", "zone", "version", "node_id", "roots", "bricks", "revoked_digest")
    ERR_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROOTS_FIELD_NUMBER: _ClassVar[int]
    BRICKS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    err: int
    hostname: str
    zone: str
    version: str
    node_id: str
    roots: _containers.RepeatedCompositeFieldContainer[Root]
    bricks: _containers.RepeatedCompositeFieldContainer[ServedBrick]
    revoked_digest: str
    def __init__(self, err: _Optional[int] = ..., hostname: _Optional[str] = ..., zone: _Optional[str] = ..., version: _Optional[str] = ..., node_id: _Optional[str] = ..., roots: _Optional[_Iterable[_Union[Root, _Mapping]]] = ..., bricks: _Optional[_Iterable[_Union[ServedBrick, _Mapping]]] = ..., revoked_digest: _Optional[str] = ...) -> None: ...

class ProvisionRequest(_message.Message):
    __slots__ = ("root", "name", "volume_id", "volume", "brick")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    BRICK_FIELD_NUMBER: _ClassVar[int]
    root: str
    name: str
    volume_id: str
    volume: str
    brick: str
    def __init__(self, root: _Optional[str] = ..., name: _Optional[str] = ..., volume_id: _Optional[str] = ..., volume: _Optional[str] = ..., brick: _Optional[str] = ...) -> None: ...

class ProvisionReply(_message.Message):
    __slots__ = ("err", "path", "created", "message")
    ERR_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    err: int
    path: str
    created: bool
    message: str
    def __init__(self, err: _Optional[int] = ..., path: _Optional[str] = ..., created: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class RemoveRequest(_message.Message):
    __slots__ = ("root", "name", "delete_data", "volume_id", "brick", "only_if_untouched")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DELETE_DATA_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    BRICK_FIELD_NUMBER: _ClassVar[int]
    ONLY_IF_UNTOUCHED_FIELD_NUMBER: _ClassVar[int]
    root: str
    name: str
    delete_data: bool
    volume_id: str
    brick: str
    only_if_untouched: bool
    def __init__(self, root: _Optional[str] = ..., name: _Optional[str] = ..., delete_data: _Optional[bool] = ..., volume_id: _Optional[str] = ..., brick: _Optional[str] = ..., only_if_untouched: _Optional[bool] = ...) -> None: ...

class ServeRequest(_message.Message):
    __slots__ = ("name", "path", "quota_bytes", "replicated")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    quota_bytes: int
    replicated: bool
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., quota_bytes: _Optional[int] = ..., replicated: _Optional[bool] = ...) -> None: ...

class UnserveRequest(_message.Message):
    __slots__ = ("name", "stopped")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    name: str
    stopped: bool
    def __init__(self, name: _Optional[str] = ..., stopped: _Optional[bool] = ...) -> None: ...

class AdminReply(_message.Message):
    __slots__ = ("err", "message")
    ERR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    err: int
    message: str
    def __init__(self, err: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("brick", "address", "state")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    brick: str
    address: str
    state: str
    def __init__(self, brick: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ConfigureRequest(_message.Message):
    __slots__ = ("brick", "volume", "set_index", "epoch", "primary", "members", "min_in_sync", "gfsd", "token", "failure_timeout", "relaxed_reads", "old_primary_gone", "deny_privileged", "auth_allow", "auth_reject")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    SET_INDEX_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MIN_IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    GFSD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FAILURE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RELAXED_READS_FIELD_NUMBER: _ClassVar[int]
    OLD_PRIMARY_GONE_FIELD_NUMBER: _ClassVar[int]
    DENY_PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    AUTH_ALLOW_FIELD_NUMBER: _ClassVar[int]
    AUTH_REJECT_FIELD_NUMBER: _ClassVar[int]
    brick: str
    volume: str
    set_index: int
    epoch: int
    primary: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    min_in_sync: int
    gfsd: _containers.RepeatedScalarFieldContainer[str]
    token: str
    failure_timeout: float
    relaxed_reads: bool
    old_primary_gone: bool
    deny_privileged: bool
    auth_allow: _containers.RepeatedScalarFieldContainer[str]
    auth_reject: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, brick: _Optional[str] = ..., volume: _Optional[str] = ..., set_index: _Optional[int] = ..., epoch: _Optional[int] = ..., primary: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., min_in_sync: _Optional[int] = ..., gfsd: _Optional[_Iterable[str]] = ..., token: _Optional[str] = ..., failure_timeout: _Optional[float] = ..., relaxed_reads: _Optional[bool] = ..., old_primary_gone: _Optional[bool] = ..., deny_privileged: _Optional[bool] = ..., auth_allow: _Optional[_Iterable[str]] = ..., auth_reject: _Optional[_Iterable[str]] = ...) -> None: ...

class ConfigureReply(_message.Message):
    __slots__ = ("err", "epoch")
    ERR_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    err: int
    epoch: int
    def __init__(self, err: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class HealRequest(_message.Message):
    __slots__ = ("brick", "full")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    brick: str
    full: bool
    def __init__(self, brick: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class HealStatusReply(_message.Message):
    __slots__ = ("err", "running", "files", "bytes", "seconds", "members_out")
    ERR_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_OUT_FIELD_NUMBER: _ClassVar[int]
    err: int
    running: bool
    files: int
    bytes: int
    seconds: float
    members_out: int
    def __init__(self, err: _Optional[int] = ..., running: _Optional[bool] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ..., seconds: _Optional[float] = ..., members_out: _Optional[int] = ...) -> None: ...

class SessionsRequest(_message.Message):
    __slots__ = ("bricks",)
    BRICKS_FIELD_NUMBER: _ClassVar[int]
    bricks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bricks: _Optional[_Iterable[str]] = ...) -> None: ...

class ClientSession(_message.Message):
    __slots__ = ("brick", "session", "hostname", "mountpoint", "pid", "peer", "idle_seconds")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    MOUNTPOINT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    brick: str
    session: str
    hostname: str
    mountpoint: str
    pid: int
    peer: str
    idle_seconds: float
    def __init__(self, brick: _Optional[str] = ..., session: _Optional[str] = ..., hostname: _Optional[str] = ..., mountpoint: _Optional[str] = ..., pid: _Optional[int] = ..., peer: _Optional[str] = ..., idle_seconds: _Optional[float] = ...) -> None: ...

class SessionsReply(_message.Message):
    __slots__ = ("err", "sessions")
    ERR_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    err: int
    sessions: _containers.RepeatedCompositeFieldContainer[ClientSession]
    def __init__(self, err: _Optional[int] = ..., sessions: _Optional[_Iterable[_Union[ClientSession, _Mapping]]] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("fingerprints",)
    FINGERPRINTS_FIELD_NUMBER: _ClassVar[int]
    fingerprints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fingerprints: _Optional[_Iterable[str]] = ...) -> None: ...

class RevokeReply(_message.Message):
    __slots__ = ("err", "message", "digest")
    ERR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    err: int
    message: str
    digest: str
    def __init__(self, err: _Optional[int] = ..., message: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...
