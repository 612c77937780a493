from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_KIND_UNSPECIFIED: _ClassVar[NodeKind]
    NODE_KIND_FILE: _ClassVar[NodeKind]
    NODE_KIND_DIR: _ClassVar[NodeKind]
    NODE_KIND_SYMLINK: _ClassVar[NodeKind]
    NODE_KIND_SPECIAL: _ClassVar[NodeKind]

class LockType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOCK_TYPE_UNSPECIFIED: _ClassVar[LockType]
    LOCK_TYPE_READ: _ClassVar[LockType]
    LOCK_TYPE_WRITE: _ClassVar[LockType]
    LOCK_TYPE_UNLOCK: _ClassVar[LockType]
NODE_KIND_UNSPECIFIED: NodeKind
NODE_KIND_FILE: NodeKind
NODE_KIND_DIR: NodeKind
NODE_KIND_SYMLINK: NodeKind
NODE_KIND_SPECIAL: NodeKind
LOCK_TYPE_UNSPECIFIED: LockType
LOCK_TYPE_READ: LockType
LOCK_TYPE_WRITE: LockType
LOCK_TYPE_UNLOCK: LockType

class Attr(_message.Message):
    __slots__ = ("gfid", "mode", "nlink", "uid", "gid", "rdev", "size", "blocks", "blksize", "atime_ns", "mtime_ns", "ctime_ns")
    GFID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NLINK_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    RDEV_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BLKSIZE_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    gfid: bytes
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blocks: int
    blksize: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    def __init__(self, gfid: _Optional[bytes] = ..., mode: _Optional[int] = ..., nlink: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., rdev: _Optional[int] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ..., blksize: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ...) -> None: ...

class Reply(_message.Message):
    __slots__ = ("err",)
    ERR_FIELD_NUMBER: _ClassVar[int]
    err: int
    def __init__(self, err: _Optional[int] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("brick",)
    BRICK_FIELD_NUMBER: _ClassVar[int]
    brick: str
    def __init__(self, brick: _Optional[str] = ...) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("err", "root", "brick_id", "version")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    BRICK_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    err: int
    root: Attr
    brick_id: str
    version: str
    def __init__(self, err: _Optional[int] = ..., root: _Optional[_Union[Attr, _Mapping]] = ..., brick_id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GfidRequest(_message.Message):
    __slots__ = ("brick", "gfid")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("brick", "parent", "name")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    brick: str
    parent: bytes
    name: bytes
    def __init__(self, brick: _Optional[str] = ..., parent: _Optional[bytes] = ..., name: _Optional[bytes] = ...) -> None: ...

class EntryReply(_message.Message):
    __slots__ = ("err", "attr", "fh")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    err: int
    attr: Attr
    fh: int
    def __init__(self, err: _Optional[int] = ..., attr: _Optional[_Union[Attr, _Mapping]] = ..., fh: _Optional[int] = ...) -> None: ...

class AttrReply(_message.Message):
    __slots__ = ("err", "attr")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    err: int
    attr: Attr
    def __init__(self, err: _Optional[int] = ..., attr: _Optional[_Union[Attr, _Mapping]] = ...) -> None: ...

class SetAttrRequest(_message.Message):
    __slots__ = ("brick", "gfid", "fh", "set_mode", "mode", "set_uid", "uid", "set_gid", "gid", "set_size", "size", "set_atime", "atime_ns", "set_mtime", "mtime_ns", "caller_uid", "atime_now", "mtime_now")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    SET_MODE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SET_UID_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    SET_GID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    SET_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SET_ATIME_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    SET_MTIME_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CALLER_UID_FIELD_NUMBER: _ClassVar[int]
    ATIME_NOW_FIELD_NUMBER: _ClassVar[int]
    MTIME_NOW_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    fh: int
    set_mode: bool
    mode: int
    set_uid: bool
    uid: int
    set_gid: bool
    gid: int
    set_size: bool
    size: int
    set_atime: bool
    atime_ns: int
    set_mtime: bool
    mtime_ns: int
    caller_uid: int
    atime_now: bool
    mtime_now: bool
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., fh: _Optional[int] = ..., set_mode: _Optional[bool] = ..., mode: _Optional[int] = ..., set_uid: _Optional[bool] = ..., uid: _Optional[int] = ..., set_gid: _Optional[bool] = ..., gid: _Optional[int] = ..., set_size: _Optional[bool] = ..., size: _Optional[int] = ..., set_atime: _Optional[bool] = ..., atime_ns: _Optional[int] = ..., set_mtime: _Optional[bool] = ..., mtime_ns: _Optional[int] = ..., caller_uid: _Optional[int] = ..., atime_now: _Optional[bool] = ..., mtime_now: _Optional[bool] = ...) -> None: ...

class MakeNodeRequest(_message.Message):
    __slots__ = ("brick", "parent", "name", "gfid", "kind", "mode", "rdev", "uid", "gid", "target", "open", "flags", "umask")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RDEV_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    UMASK_FIELD_NUMBER: _ClassVar[int]
    brick: str
    parent: bytes
    name: bytes
    gfid: bytes
    kind: NodeKind
    mode: int
    rdev: int
    uid: int
    gid: int
    target: bytes
    open: bool
    flags: int
    umask: int
    def __init__(self, brick: _Optional[str] = ..., parent: _Optional[bytes] = ..., name: _Optional[bytes] = ..., gfid: _Optional[bytes] = ..., kind: _Optional[_Union[NodeKind, str]] = ..., mode: _Optional[int] = ..., rdev: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., target: _Optional[bytes] = ..., open: _Optional[bool] = ..., flags: _Optional[int] = ..., umask: _Optional[int] = ...) -> None: ...

class NameRequest(_message.Message):
    __slots__ = ("brick", "parent", "name")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    brick: str
    parent: bytes
    name: bytes
    def __init__(self, brick: _Optional[str] = ..., parent: _Optional[bytes] = ..., name: _Optional[bytes] = ...) -> None: ...

class RenameRequest(_message.Message):
    __slots__ = ("brick", "old_parent", "old_name", "new_parent", "new_name", "flags")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    OLD_PARENT_FIELD_NUMBER: _ClassVar[int]
    OLD_NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_PARENT_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    brick: str
    old_parent: bytes
    old_name: bytes
    new_parent: bytes
    new_name: bytes
    flags: int
    def __init__(self, brick: _Optional[str] = ..., old_parent: _Optional[bytes] = ..., old_name: _Optional[bytes] = ..., new_parent: _Optional[bytes] = ..., new_name: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class LinkRequest(_message.Message):
    __slots__ = ("brick", "gfid", "new_parent", "new_name")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    NEW_PARENT_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    new_parent: bytes
    new_name: bytes
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., new_parent: _Optional[bytes] = ..., new_name: _Optional[bytes] = ...) -> None: ...

class ReadLinkReply(_message.Message):
    __slots__ = ("err", "target")
    ERR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    err: int
    target: bytes
    def __init__(self, err: _Optional[int] = ..., target: _Optional[bytes] = ...) -> None: ...

class OpenRequest(_message.Message):
    __slots__ = ("brick", "gfid", "flags")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    flags: int
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class OpenReply(_message.Message):
    __slots__ = ("err", "fh", "attr")
    ERR_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    err: int
    fh: int
    attr: Attr
    def __init__(self, err: _Optional[int] = ..., fh: _Optional[int] = ..., attr: _Optional[_Union[Attr, _Mapping]] = ...) -> None: ...

class FhRequest(_message.Message):
    __slots__ = ("brick", "fh")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("brick", "fh", "offset", "size")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    offset: int
    size: int
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ReadReply(_message.Message):
    __slots__ = ("err", "data")
    ERR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    err: int
    data: bytes
    def __init__(self, err: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ("brick", "fh", "offset", "data")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    offset: int
    data: bytes
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteReply(_message.Message):
    __slots__ = ("err", "written", "size")
    ERR_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    err: int
    written: int
    size: int
    def __init__(self, err: _Optional[int] = ..., written: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class FsyncRequest(_message.Message):
    __slots__ = ("brick", "fh", "gfid", "datasync")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    DATASYNC_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    gfid: bytes
    datasync: bool
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., gfid: _Optional[bytes] = ..., datasync: _Optional[bool] = ...) -> None: ...

class FallocateRequest(_message.Message):
    __slots__ = ("brick", "fh", "mode", "offset", "length")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    mode: int
    offset: int
    length: int
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., mode: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class CopyRangeRequest(_message.Message):
    __slots__ = ("brick", "fh", "fh_in", "gfid_in", "offset_in", "offset_out", "length")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    FH_IN_FIELD_NUMBER: _ClassVar[int]
    GFID_IN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_IN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_OUT_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    fh_in: int
    gfid_in: bytes
    offset_in: int
    offset_out: int
    length: int
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., fh_in: _Optional[int] = ..., gfid_in: _Optional[bytes] = ..., offset_in: _Optional[int] = ..., offset_out: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class CopyRangeReply(_message.Message):
    __slots__ = ("err", "copied", "size")
    ERR_FIELD_NUMBER: _ClassVar[int]
    COPIED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    err: int
    copied: int
    size: int
    def __init__(self, err: _Optional[int] = ..., copied: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class SeekRequest(_message.Message):
    __slots__ = ("brick", "fh", "offset", "whence")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    WHENCE_FIELD_NUMBER: _ClassVar[int]
    brick: str
    fh: int
    offset: int
    whence: int
    def __init__(self, brick: _Optional[str] = ..., fh: _Optional[int] = ..., offset: _Optional[int] = ..., whence: _Optional[int] = ...) -> None: ...

class SeekReply(_message.Message):
    __slots__ = ("err", "offset")
    ERR_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    err: int
    offset: int
    def __init__(self, err: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ReadDirRequest(_message.Message):
    __slots__ = ("brick", "gfid", "offset", "max_entries")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    offset: int
    max_entries: int
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., offset: _Optional[int] = ..., max_entries: _Optional[int] = ...) -> None: ...

class DirEntry(_message.Message):
    __slots__ = ("name", "cookie", "attr", "xattr_names", "xattrs_listed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    XATTR_NAMES_FIELD_NUMBER: _ClassVar[int]
    XATTRS_LISTED_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    cookie: int
    attr: Attr
    xattr_names: _containers.RepeatedScalarFieldContainer[bytes]
    xattrs_listed: bool
    def __init__(self, name: _Optional[bytes] = ..., cookie: _Optional[int] = ..., attr: _Optional[_Union[Attr, _Mapping]] = ..., xattr_names: _Optional[_Iterable[bytes]] = ..., xattrs_listed: _Optional[bool] = ...) -> None: ...

class ReadDirReply(_message.Message):
    __slots__ = ("err", "entries", "eof")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    err: int
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    eof: bool
    def __init__(self, err: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ..., eof: _Optional[bool] = ...) -> None: ...

class StatfsRequest(_message.Message):
    __slots__ = ("brick",)
    BRICK_FIELD_NUMBER: _ClassVar[int]
    brick: str
    def __init__(self, brick: _Optional[str] = ...) -> None: ...

class StatfsReply(_message.Message):
    __slots__ = ("err", "bsize", "frsize", "blocks", "bfree", "bavail", "files", "ffree", "favail", "namemax")
    ERR_FIELD_NUMBER: _ClassVar[int]
    BSIZE_FIELD_NUMBER: _ClassVar[int]
    FRSIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BFREE_FIELD_NUMBER: _ClassVar[int]
    BAVAIL_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FFREE_FIELD_NUMBER: _ClassVar[int]
    FAVAIL_FIELD_NUMBER: _ClassVar[int]
    NAMEMAX_FIELD_NUMBER: _ClassVar[int]
    err: int
    bsize: int
    frsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    favail: int
    namemax: int
    def __init__(self, err: _Optional[int] = ..., bsize: _Optional[int] = ..., frsize: _Optional[int] = ..., blocks: _Optional[int] = ..., bfree: _Optional[int] = ..., bavail: _Optional[int] = ..., files: _Optional[int] = ..., ffree: _Optional[int] = ..., favail: _Optional[int] = ..., namemax: _Optional[int] = ...) -> None: ...

class XattrRequest(_message.Message):
    __slots__ = ("brick", "gfid", "name", "value", "flags", "caller_uid")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    CALLER_UID_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    name: bytes
    value: bytes
    flags: int
    caller_uid: int
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., name: _Optional[bytes] = ..., value: _Optional[bytes] = ..., flags: _Optional[int] = ..., caller_uid: _Optional[int] = ...) -> None: ...

class XattrReply(_message.Message):
    __slots__ = ("err", "value")
    ERR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    err: int
    value: bytes
    def __init__(self, err: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...

class ListXattrReply(_message.Message):
    __slots__ = ("err", "names")
    ERR_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    err: int
    names: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, err: _Optional[int] = ..., names: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LockRequest(_message.Message):
    __slots__ = ("brick", "gfid", "owner", "type", "start", "length", "test", "wait", "pid", "flock")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    FLOCK_FIELD_NUMBER: _ClassVar[int]
    brick: str
    gfid: bytes
    owner: bytes
    type: LockType
    start: int
    length: int
    test: bool
    wait: bool
    pid: int
    flock: bool
    def __init__(self, brick: _Optional[str] = ..., gfid: _Optional[bytes] = ..., owner: _Optional[bytes] = ..., type: _Optional[_Union[LockType, str]] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., test: _Optional[bool] = ..., wait: _Optional[bool] = ..., pid: _Optional[int] = ..., flock: _Optional[bool] = ...) -> None: ...

class LockReply(_message.Message):
    __slots__ = ("err", "type", "start", "length", "pid")
    ERR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    err: int
    type: LockType
    start: int
    length: int
    pid: int
    def __init__(self, err: _Optional[int] = ..., type: _Optional[_Union[LockType, str]] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("brick", "epoch", "req", "method", "payload", "session", "fh", "gfid", "sender", "pin", "flags", "times")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REQ_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    FH_FIELD_NUMBER: _ClassVar[int]
    GFID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    brick: str
    epoch: int
    req: str
    method: str
    payload: bytes
    session: str
    fh: int
    gfid: bytes
    sender: str
    pin: bytes
    flags: int
    times: _containers.RepeatedCompositeFieldContainer[TimeStamp]
    def __init__(self, brick: _Optional[str] = ..., epoch: _Optional[int] = ..., req: _Optional[str] = ..., method: _Optional[str] = ..., payload: _Optional[bytes] = ..., session: _Optional[str] = ..., fh: _Optional[int] = ..., gfid: _Optional[bytes] = ..., sender: _Optional[str] = ..., pin: _Optional[bytes] = ..., flags: _Optional[int] = ..., times: _Optional[_Iterable[_Union[TimeStamp, _Mapping]]] = ...) -> None: ...

class TimeStamp(_message.Message):
    __slots__ = ("gfid", "mtime_ns", "set_atime", "atime_ns")
    GFID_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    SET_ATIME_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    gfid: bytes
    mtime_ns: int
    set_atime: bool
    atime_ns: int
    def __init__(self, gfid: _Optional[bytes] = ..., mtime_ns: _Optional[int] = ..., set_atime: _Optional[bool] = ..., atime_ns: _Optional[int] = ...) -> None: ...

class ForwardReply(_message.Message):
    __slots__ = ("err", "reply", "epoch")
    ERR_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    err: int
    reply: bytes
    epoch: int
    def __init__(self, err: _Optional[int] = ..., reply: _Optional[bytes] = ..., epoch: _Optional[int] = ...) -> None: ...

class LeaseAsk(_message.Message):
    __slots__ = ("brick", "epoch", "primary")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    brick: str
    epoch: int
    primary: str
    def __init__(self, brick: _Optional[str] = ..., epoch: _Optional[int] = ..., primary: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("asks",)
    ASKS_FIELD_NUMBER: _ClassVar[int]
    asks: _containers.RepeatedCompositeFieldContainer[LeaseAsk]
    def __init__(self, asks: _Optional[_Iterable[_Union[LeaseAsk, _Mapping]]] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("err", "errs")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ERRS_FIELD_NUMBER: _ClassVar[int]
    err: int
    errs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, err: _Optional[int] = ..., errs: _Optional[_Iterable[int]] = ...) -> None: ...

class HealEntriesReply(_message.Message):
    __slots__ = ("err", "entries")
    ERR_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    err: int
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    def __init__(self, err: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ...) -> None: ...

class HealPutRequest(_message.Message):
    __slots__ = ("brick", "epoch", "parent", "name", "attr", "target", "set_data", "offset", "data", "xattr_names", "xattr_values", "finish", "sender")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SET_DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    XATTR_NAMES_FIELD_NUMBER: _ClassVar[int]
    XATTR_VALUES_FIELD_NUMBER: _ClassVar[int]
    FINISH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    brick: str
    epoch: int
    parent: bytes
    name: bytes
    attr: Attr
    target: bytes
    set_data: bool
    offset: int
    data: bytes
    xattr_names: _containers.RepeatedScalarFieldContainer[bytes]
    xattr_values: _containers.RepeatedScalarFieldContainer[bytes]
    finish: bool
    sender: str
    def __init__(self, brick: _Optional[str] = ..., epoch: _Optional[int] = ..., parent: _Optional[bytes] = ..., name: _Optional[bytes] = ..., attr: _Optional[_Union[Attr, _Mapping]] = ..., target: _Optional[bytes] = ..., set_data: _Optional[bool] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., xattr_names: _Optional[_Iterable[bytes]] = ..., xattr_values: _Optional[_Iterable[bytes]] = ..., finish: _Optional[bool] = ..., sender: _Optional[str] = ...) -> None: ...

class HealSumsReply(_message.Message):
    __slots__ = ("err", "sums")
    ERR_FIELD_NUMBER: _ClassVar[int]
    SUMS_FIELD_NUMBER: _ClassVar[int]
    err: int
    sums: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, err: _Optional[int] = ..., sums: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HealRemoveRequest(_message.Message):
    __slots__ = ("brick", "epoch", "parent", "name", "sender")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    brick: str
    epoch: int
    parent: bytes
    name: bytes
    sender: str
    def __init__(self, brick: _Optional[str] = ..., epoch: _Optional[int] = ..., parent: _Optional[bytes] = ..., name: _Optional[bytes] = ..., sender: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("brick", "session", "hostname", "mountpoint", "pid", "interval", "end")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    MOUNTPOINT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    brick: str
    session: str
    hostname: str
    mountpoint: str
    pid: int
    interval: float
    end: bool
    def __init__(self, brick: _Optional[str] = ..., session: _Optional[str] = ..., hostname: _Optional[str] = ..., mountpoint: _Optional[str] = ..., pid: _Optional[int] = ..., interval: _Optional[float] = ..., end: _Optional[bool] = ...) -> None: ...

class LockEntry(_message.Message):
    __slots__ = ("owner", "type", "start", "end", "pid")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    owner: bytes
    type: LockType
    start: int
    end: int
    pid: int
    def __init__(self, owner: _Optional[bytes] = ..., type: _Optional[_Union[LockType, str]] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class LockKeyState(_message.Message):
    __slots__ = ("key", "epoch", "seq", "locks")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    epoch: int
    seq: int
    locks: _containers.RepeatedCompositeFieldContainer[LockEntry]
    def __init__(self, key: _Optional[bytes] = ..., epoch: _Optional[int] = ..., seq: _Optional[int] = ..., locks: _Optional[_Iterable[_Union[LockEntry, _Mapping]]] = ...) -> None: ...

class LockSyncRequest(_message.Message):
    __slots__ = ("brick", "epoch", "sender", "full", "seq", "keys", "stamp_epoch")
    BRICK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    STAMP_EPOCH_FIELD_NUMBER: _ClassVar[int]
    brick: str
    epoch: int
    sender: str
    full: bool
    seq: int
    keys: _containers.RepeatedCompositeFieldContainer[LockKeyState]
    stamp_epoch: int
    def __init__(self, brick: _Optional[str] = ..., epoch: _Optional[int] = ..., sender: _Optional[str] = ..., full: _Optional[bool] = ..., seq: _Optional[int] = ..., keys: _Optional[_Iterable[_Union[LockKeyState, _Mapping]]] = ..., stamp_epoch: _Optional[int] = ...) -> None: ...

class LockSyncReply(_message.Message):
    __slots__ = ("err", "epoch")
    ERR_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    err: int
    epoch: int
    def __init__(self, err: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...
